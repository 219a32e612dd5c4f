//! The library's modules import along the flow of a turn, a job and a recall query, never
//! against it (docs/ARCHITECTURE.md):
//!
//! api → manager → queue → reflect → llm → recall → store / extract / embed / job → tokens
//!
//! A module may use any module further along the flow, and the modules of one level may use
//! each other as long as no two use each other (no circle within a level). `manager` never
//! uses `reflect` (the traditional path's inline run is the queue's). `config`, `server`,
//! `cli` and `seams` stand outside the flow: they wire it and may use all of it, and no module
//! of the flow uses `server`, `cli` or `seams`. (Whether `config` and the flow import each other
//! is issue 20's to end, with settings declared once.)
//!
//! The test reads every `crate::<module>` path in `src/` outside comments, `use` lines and
//! paths written inline alike, and fails naming each import that runs against the flow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The level of each top-level module of the flow: lower levels come first.
const LEVELS: &[(&str, u32)] = &[
    ("api", 0),
    ("manager", 1),
    ("queue", 2),
    ("reflect", 3),
    ("llm", 4),
    ("recall", 5),
    ("store", 6),
    ("extract", 6),
    ("embed", 6),
    ("job", 6),
    ("tokens", 7),
];

/// Modules outside the flow, which may use every module of it.
const OUTSIDE: &[&str] = &["config", "server", "cli", "seams"];
/// Outside modules that no module of the flow may use.
const NEVER_FROM_THE_FLOW: &[&str] = &["server", "cli", "seams"];

fn level(module: &str) -> Option<u32> {
    LEVELS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Every module named after `crate::` in `code` (comments removed), in order: the first
/// identifier of a path, or of each path in a `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let code: String = code
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro, or the end of another name
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Split the group's top level at commas.
            let (mut depth, mut start) = (0, 0);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

/// (importing module, imported module) → the files where it happens.
fn imports() -> BTreeMap<(String, String), BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = top.trim_end_matches(".rs").to_string();
            // lib.rs declares the modules; main.rs and measure/ are the binary (its `crate` is
            // the binary, and it reaches the library as `reflector::`).
            if matches!(module.as_str(), "lib" | "main" | "measure" | "ui") {
                continue;
            }
            let code = std::fs::read_to_string(&path).unwrap();
            for used in crate_paths(&code) {
                if used != module {
                    out.entry((module.clone(), used))
                        .or_default()
                        .insert(rel.display().to_string());
                }
            }
        }
    }
    out
}

#[test]
fn every_top_level_module_is_placed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut unplaced = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let is_module = path.is_dir() || path.extension().and_then(|e| e.to_str()) == Some("rs");
        if !is_module || matches!(name.as_str(), "lib" | "main" | "measure" | "ui") {
            continue;
        }
        if level(&name).is_none() && !OUTSIDE.contains(&name.as_str()) {
            unplaced.push(name);
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules with no place in the flow (add them to LEVELS or OUTSIDE in tests/layers.rs, and to docs/ARCHITECTURE.md): {unplaced:?}"
    );
}

/// Each import in `all` that runs against the flow, with the reason.
fn violations(all: &BTreeMap<(String, String), BTreeSet<String>>) -> Vec<String> {
    let mut wrong = Vec::new();
    for ((from, to), files) in all {
        let why = match (level(from), level(to)) {
            (Some(_), None) if NEVER_FROM_THE_FLOW.contains(&to.as_str()) => {
                Some("the flow never uses server, cli or seams")
            }
            (Some(a), Some(b)) if b < a => Some("against the flow"),
            (Some(a), Some(b)) if a == b && all.contains_key(&(to.clone(), from.clone())) => {
                Some("a circle within a level")
            }
            _ if from == "manager" && to == "reflect" => Some("manager never uses reflect"),
            _ => None,
        };
        if let Some(why) = why {
            wrong.push(format!("{from} -> {to} ({why}): {files:?}"));
        }
    }
    wrong
}

#[test]
fn imports_run_along_the_flow() {
    let wrong = violations(&imports());
    assert!(
        wrong.is_empty(),
        "imports against the flow:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_names_each_kind_of_wrong_import() {
    let edge = |a: &str, b: &str| {
        (
            (a.to_string(), b.to_string()),
            BTreeSet::from(["f.rs".to_string()]),
        )
    };
    let all = BTreeMap::from([
        edge("store", "api"),
        edge("manager", "reflect"),
        edge("store", "extract"),
        edge("extract", "store"),
        edge("recall", "server"),
        edge("api", "store"),
        edge("server", "api"),
        edge("store", "config"),
    ]);
    let wrong = violations(&all);
    let named = |s: &str| wrong.iter().any(|w| w.starts_with(s));
    assert!(named("store -> api (against the flow)"), "{wrong:?}");
    assert!(
        named("manager -> reflect (manager never uses reflect)"),
        "{wrong:?}"
    );
    assert!(named("store -> extract (a circle"), "{wrong:?}");
    assert!(named("extract -> store (a circle"), "{wrong:?}");
    assert!(named("recall -> server (the flow never uses"), "{wrong:?}");
    assert_eq!(wrong.len(), 5, "{wrong:?}");
}

#[test]
fn the_reader_sees_every_kind_of_path() {
    let code = "use crate::store::Store;\n\
                let x = crate::recall::render(a); // crate::server is only a comment\n\
                /// docs name crate::cli\n\
                macro_rules! m { () => { $crate::store::X } }\n\
                use crate::{job, embed};\n";
    assert_eq!(crate_paths(code), ["store", "recall", "job", "embed"]);
    let grouped = "use crate::{\n    api::auth,\n    store::{Store, model::X},\n};";
    assert_eq!(crate_paths(grouped), ["api", "store"]);
}
