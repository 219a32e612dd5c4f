//! The methods above against SQLite's, on the same inputs. Skipped (with a note) unless
//! `REFLECTOR_TEST_DATABASE_URL` names a PostgreSQL server; FAIL when it is set and the
//! server cannot be reached. Each test works in a fresh schema, dropped at the end.

use std::path::Path;

use chrono::{TimeZone, Utc};

use crate::extract::{EntityDraft, EpisodeDraft, GraphDraft, RelationDraft, RuleDraft};
use crate::job::{JobState, Priority, ReflectionJob};
use crate::store::Counts;
use crate::store::Embedded;
use crate::store::blob_to_vec;
use crate::store::postgres::PgOptions;
use crate::store::postgres::{PgStore, VectorMode};
use crate::store::{Backend, Editor, JobWriter, NewTurn, QueueLimits, SqliteStore, TierWriter};
use crate::store::{
    EditRefused, EditTier, EpisodePatch, FactPatch, NewEpisode, NewFact, NewRule, RulePatch,
};
use serde_json::{Value, json};

const DIM: usize = 8;

/// A PostgreSQL store in a schema of its own, dropped with it.
struct TestPg {
    store: Option<PgStore>,
    url: String,
    schema: String,
}

impl TestPg {
    fn store(&self) -> &PgStore {
        self.store.as_ref().unwrap()
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        self.store.take();
        if let Ok(mut c) = ::postgres::Client::connect(&self.url, ::postgres::NoTls) {
            // Never drop a schema an extension lives in (another test may use it).
            let ext: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                     WHERE n.nspname = $1",
                    &[&self.schema],
                )
                .map(|r| r.get(0))
                .unwrap_or(1);
            if ext == 0 {
                let _ = c.batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema));
            }
        }
    }
}

/// `None` (the test is skipped) without `REFLECTOR_TEST_DATABASE_URL`; panics when it is
/// set and the store cannot be opened.
fn pg() -> Option<TestPg> {
    let url = match std::env::var("REFLECTOR_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            eprintln!("skipped: REFLECTOR_TEST_DATABASE_URL is not set");
            return None;
        }
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let store = PgStore::open(&PgOptions {
        url: url.clone(),
        schema: Some(schema.clone()),
        pgvector: "auto".into(),
        dim: DIM,
        max_connections: 4,
    })
    .unwrap_or_else(|e| {
        panic!("REFLECTOR_TEST_DATABASE_URL is set but PostgreSQL cannot be opened: {e:#}")
    });
    eprintln!("PostgreSQL store, vectors: {:?}", store.vector_mode());
    Some(TestPg {
        store: Some(store),
        url,
        schema,
    })
}

fn sqlite(dir: &Path, name: &str) -> SqliteStore {
    SqliteStore::open(&dir.join(name), "normal").unwrap()
}

fn vector(seed: u32) -> Vec<f32> {
    (0..DIM as u32)
        .map(|i| ((seed * 31 + i * 7) % 17) as f32 / 16.0 - 0.5 + seed as f32 * 1e-3)
        .collect()
}

fn t(day: u32, hour: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, day, hour, 0, 0).unwrap()
}

/// `manual:<uuid>` job ids are random: replaced by `manual:<uuid>`, so that two stores'
/// outputs compare.
fn scrub_str(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("manual:") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        let uuid_len = rest
            .chars()
            .take(36)
            .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
            .count();
        if uuid_len == 36 {
            out.push_str("<uuid>");
            rest = &rest[36..];
        }
    }
    out.push_str(rest);
    out
}

/// Drop what differs between two runs of the same edits (times stamped "now", random
/// job ids); ids are kept (the scripts are ordered so that they match).
fn scrub(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = if matches!(k.as_str(), "at" | "stated_at" | "observed_at") {
                        Value::String("<now>".into())
                    } else {
                        scrub(x)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
        Value::String(s) => Value::String(scrub_str(s)),
        other => other.clone(),
    }
}

/// One table as sorted text rows, from SQL both backends read alike.
fn dump_sql(times: bool) -> Vec<(&'static str, String)> {
    let row = |cols: &[&str]| {
        cols.iter()
            .map(|c| format!("coalesce(CAST({c} AS TEXT), '-')"))
            .collect::<Vec<_>>()
            .join(" || '|' || ")
    };
    let b = |c: &str| format!("CASE WHEN {c} THEN 1 ELSE 0 END");
    let f = |c: &str| format!("CAST(round({c} * 1000) AS BIGINT)");
    let mut tables = [
        (
            "episodes",
            vec!["user_id", "job_id", "speaker", "text", "summary", &f("importance"), "tags",
                 "occurred_ms", "evidence", "context"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            "episodes",
            vec!["observed_ms", "created_ms"],
        ),
        (
            "entities",
            ["user_id", "name", "norm_name", "kind"].map(String::from).to_vec(),
            "entities",
            vec!["created_ms"],
        ),
        (
            "aliases",
            ["a.user_id", "a.alias_norm", "e.norm_name"].map(String::from).to_vec(),
            "entity_aliases a JOIN entities e ON e.id = a.entity_id",
            vec![],
        ),
        (
            "relations",
            vec!["r.user_id".into(), "s.norm_name".into(), "r.predicate".into(), "o.norm_name".into(),
                 "r.fact".into(), b("r.exclusive"), "r.valid_ms".into(), "r.invalid_ms".into(),
                 "mo.norm_name || '@' || CAST(m.valid_ms AS TEXT)".into(), "r.evidence".into(),
                 "r.job_id".into()],
            "relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id
             LEFT JOIN relations m ON m.id = r.merged_into LEFT JOIN entities mo ON mo.id = m.object_id",
            vec!["r.created_ms"],
        ),
        (
            "rules",
            vec!["r.user_id".into(), "r.kind".into(), "r.topic".into(), "r.statement".into(),
                 f("r.confidence"), "x.statement".into(), b("r.invalid_ms IS NULL"), "r.evidence".into()],
            "rules r LEFT JOIN rules x ON x.id = r.superseded_by",
            vec!["r.first_ms", "r.last_ms", "r.invalid_ms", "r.created_ms"],
        ),
        (
            "edits",
            ["user_id", "tier", "memory_id", "action", "actor", "signature", "source_job_id", "evidence"]
                .map(String::from)
                .to_vec(),
            "memory_edits",
            vec!["at_ms", "before", "after"],
        ),
        (
            "turns",
            vec!["id".into(), "user_id".into(), "session_id".into(), "user_message".into(),
                 "assistant_response".into(), "ts_ms".into(), "metadata".into(), "request_hash".into(),
                 "job_id".into(), b("reflected"), b("folded")],
            "turns",
            vec!["created_ms"],
        ),
        (
            "jobs",
            ["job_id", "user_id", "priority", "state", "payload", "attempts", "max_retries",
             "lease_owner", "lease_expires_ms", "last_error", "dead_reason"]
                .map(String::from)
                .to_vec(),
            "jobs",
            vec!["available_ms", "published_ms", "created_ms", "updated_ms", "completed_ms"],
        ),
    ];
    tables
        .iter_mut()
        .map(|(name, cols, from, timed)| {
            if times {
                cols.extend(timed.iter().map(|c| c.to_string()));
            }
            let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
            (*name, format!("SELECT {} FROM {from}", row(&cols)))
        })
        .collect()
}

fn dump_sqlite(path: &Path, times: bool) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    for (name, sql) in dump_sql(times) {
        let mut st = c.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(|r| format!("{name}: {}", scrub_str(&r.unwrap()))));
    }
    out.sort();
    out
}

fn dump_pg(pg: &PgStore, times: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (name, sql) in dump_sql(times) {
        let rows = pg
            .read(|c| Ok(c.query(&sql, &[])?))
            .unwrap_or_else(|e| panic!("{sql}: {e:#}"));
        out.extend(
            rows.iter()
                .map(|r| format!("{name}: {}", scrub_str(r.get::<_, &str>(0)))),
        );
    }
    out.sort();
    out
}

fn assert_same_rows(pg: &[String], sq: &[String]) {
    let only_pg: Vec<_> = pg.iter().filter(|r| !sq.contains(r)).collect();
    let only_sq: Vec<_> = sq.iter().filter(|r| !pg.contains(r)).collect();
    assert!(
        only_pg.is_empty() && only_sq.is_empty() && pg.len() == sq.len(),
        "stored state differs\nonly in PostgreSQL: {only_pg:#?}\nonly in SQLite: {only_sq:#?}"
    );
}

/// With pgvector, every episode's `embedding_v` is its `embedding`.
fn assert_vectors_in_step(pg: &PgStore) {
    if pg.vector_mode() != VectorMode::Pgvector {
        return;
    }
    let mut checked = 0;
    let rows = pg
        .read(|c| Ok(c.query("SELECT id, embedding, embedding_v::text FROM episodes", &[])?))
        .unwrap();
    for r in rows {
        let blob: Vec<u8> = r.get(1);
        let text: Option<String> = r.get(2);
        let want = blob_to_vec(&blob);
        match text {
            Some(t) => {
                let got: Vec<f32> = t
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|x| x.parse().unwrap())
                    .collect();
                assert_eq!(got, want, "episode {}", r.get::<_, i64>(0));
                checked += 1;
            }
            None => assert!(
                want.is_empty() || !want.iter().all(|x| x.is_finite()),
                "episode {} has no embedding_v",
                r.get::<_, i64>(0)
            ),
        }
    }
    assert!(checked > 0, "no episode with a vector to check");
}

fn outcome(r: anyhow::Result<Result<Value, EditRefused>>) -> Value {
    match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => json!({"refused": e.to_string()}),
        Err(e) => json!({"error": format!("{e:#}")}),
    }
}

fn pause() {
    // Distinct "now" for each edit, so the order of rules stated now is the same on both.
    std::thread::sleep(std::time::Duration::from_millis(3));
}

/// The same edits on any backend: adds, then updates, then deletes, then refusals (ids
/// stay equal across backends: PostgreSQL consumes an id on a refused insert, SQLite
/// reuses the highest id after a delete).
fn edit_script(b: &dyn Backend) -> Vec<Value> {
    let mut out = Vec::new();
    let ep = |text: &str, seed| NewEpisode {
        text: text.into(),
        speaker: "Ana".into(),
        occurred_ms: t(3, 12).timestamp_millis(),
        importance: 0.7,
        tags: vec!["move".into(), "city".into()],
        embedding: vector(seed),
    };
    let fact = |o: &str, day, excl| NewFact {
        subject: "Ana".into(),
        predicate: "LIVES_IN".into(),
        object: o.into(),
        fact: format!("Ana lives in {o}."),
        valid_ms: t(day, 10).timestamp_millis(),
        exclusive: excl,
    };
    let rule = |s: &str, seed| NewRule {
        kind: "preference".into(),
        topic: "language".into(),
        statement: s.into(),
        embedding: vector(seed),
    };
    let e1 = b
        .add_episode("ana", "local", &ep("Ana moved to Paris.", 1))
        .unwrap();
    let e1 = e1["id"].as_i64().unwrap();
    pause();
    let e2 = b
        .add_episode("bob", "key1", &ep("Bob likes tea.", 2))
        .unwrap();
    let e2 = e2["id"].as_i64().unwrap();
    out.push(json!([e1, e2]));
    let mut facts = Vec::new();
    for (o, day, excl) in [
        ("Paris", 1, Some(true)),
        ("Berlin", 5, None),
        ("Rome", 5, None),
        ("the Paris", 9, None),
    ] {
        pause();
        let v = outcome(b.add_fact("ana", "local", &fact(o, day, excl)));
        facts.push(v["id"].as_i64().unwrap_or(-1));
        out.push(v);
    }
    pause();
    out.push(outcome(b.add_fact(
        "ana",
        "local",
        &NewFact {
            subject: "my sister Eva".into(),
            predicate: "LIKES".into(),
            object: "Jazz".into(),
            fact: "Eva likes jazz.".into(),
            valid_ms: t(2, 9).timestamp_millis(),
            exclusive: None,
        },
    )));
    let mut rules = Vec::new();
    for (s, seed) in [
        ("Answer in Spanish.", 3),
        ("Answer in French.", 4),
        ("Answer in Dutch.", 7),
    ] {
        pause();
        let v = outcome(b.add_rule("ana", "local", &rule(s, seed)));
        rules.push(v["id"].as_i64().unwrap());
        out.push(v);
    }
    // Updates.
    pause();
    out.push(outcome(b.update_episode(
        "ana",
        "local",
        e1,
        &EpisodePatch {
            text: Some(("Ana moved to Lyon.".into(), vector(9))),
            importance: Some(0.25),
            tags: Some(vec!["lyon".into()]),
        },
    )));
    pause();
    out.push(outcome(b.update_episode(
        "ana",
        "local",
        e2,
        &EpisodePatch::default(),
    )));
    pause();
    out.push(outcome(b.update_fact(
        "ana",
        "local",
        facts[1],
        &FactPatch {
            fact: Some("Ana lives in Munich.".into()),
            object: Some("Munich".into()),
        },
    )));
    pause();
    out.push(outcome(b.update_fact(
        "ana",
        "local",
        999,
        &FactPatch {
            fact: Some("x".into()),
            object: None,
        },
    )));
    pause();
    out.push(outcome(b.update_fact(
        "ana",
        "local",
        facts[3],
        &FactPatch {
            fact: None,
            object: Some("Madrid".into()),
        },
    )));
    // A fact by id: this user's, as it is now; another user's or a missing id, none.
    for (user, id) in [
        ("ana", facts[1]),
        ("ana", facts[3]),
        ("bob", facts[1]),
        ("ana", 999),
    ] {
        out.push(json!(b.fact_by_id(user, id).unwrap()));
    }
    pause();
    out.push(outcome(b.update_rule(
        "ana",
        "local",
        rules[0],
        &RulePatch {
            statement: Some(("Answer in German.".into(), vector(5))),
            kind: None,
        },
    )));
    pause();
    out.push(outcome(b.update_rule(
        "ana",
        "local",
        rules[1],
        &RulePatch {
            statement: None,
            kind: Some("instruction".into()),
        },
    )));
    out.push(json!(b.list_edits("ana", 100, 0).unwrap()));
    // Deletes.
    pause();
    out.push(outcome(b.delete_memory(
        "ana",
        "local",
        EditTier::Procedural,
        rules[1],
    )));
    pause();
    out.push(outcome(b.delete_memory(
        "ana",
        "local",
        EditTier::Semantic,
        facts[0],
    )));
    pause();
    out.push(outcome(b.delete_memory(
        "ana",
        "local",
        EditTier::Episodic,
        e1,
    )));
    pause();
    out.push(outcome(b.delete_memory(
        "ana",
        "local",
        EditTier::Episodic,
        e2,
    )));
    out.push(outcome(b.delete_memory(
        "ana",
        "local",
        EditTier::Semantic,
        facts[0],
    )));
    out.push(outcome(b.delete_memory(
        "ana",
        "local",
        EditTier::Procedural,
        999,
    )));
    pause();
    out.push(outcome(b.add_fact(
        "ana",
        "local",
        &fact("Paris", 12, Some(true)),
    )));
    // Refusals that insert nothing.
    out.push(outcome(b.update_fact(
        "ana",
        "local",
        facts[1],
        &FactPatch {
            fact: None,
            object: Some("Rome".into()),
        },
    )));
    out.push(outcome(b.update_rule(
        "ana",
        "local",
        rules[0],
        &RulePatch {
            statement: Some(("Answer in Dutch.".into(), vector(8))),
            kind: None,
        },
    )));
    out.push(outcome(b.update_rule(
        "bob",
        "local",
        rules[0],
        &RulePatch::default(),
    )));
    out.push(json!(b.list_edits("ana", 100, 0).unwrap()));
    out
}

/// After [`edit_script`], what makes ids diverge: PostgreSQL consumes an id on a refused
/// or rolled-back insert, SQLite reuses the highest id after a delete. Compared without ids.
fn edit_script_ids_apart(b: &dyn Backend) -> Vec<Value> {
    let mut out = Vec::new();
    let fact = |o: &str, day| NewFact {
        subject: "Ana".into(),
        predicate: "LIVES_IN".into(),
        object: o.into(),
        fact: format!("Ana lives in {o}."),
        valid_ms: t(day, 10).timestamp_millis(),
        exclusive: None,
    };
    let rule = |s: &str| NewRule {
        kind: "preference".into(),
        topic: "language".into(),
        statement: s.into(),
        embedding: vector(11),
    };
    // Paris on day 14 restates Paris on day 12: merged into it at once, so the reply is
    // the fact it merged into and the edit is recorded on that fact (on SQLite too).
    pause();
    out.push(outcome(b.add_fact("ana", "local", &fact("Paris", 14))));
    out.push(outcome(b.add_fact("ana", "local", &fact("Rome", 5))));
    out.push(outcome(b.add_rule(
        "ana",
        "local",
        &rule("Answer in German."),
    )));
    pause();
    out.push(outcome(b.add_rule(
        "ana",
        "local",
        &rule("Answer in Italian."),
    )));
    pause();
    out.push(outcome(b.add_fact("ana", "local", &fact("Oslo", 20))));
    out.push(json!(b.list_edits("ana", 3, 2).unwrap()));
    out.push(json!(b.list_edits("ana", 100, 0).unwrap()));
    out.push(json!(b.list_edits("bob", 100, 0).unwrap()));
    out.push(json!(b.list_edits("nobody", 100, 0).unwrap()));
    out
}

/// [`scrub`], and ids too: `id`, `memory_id`, `superseded_by`, `edit_id` and the edit
/// ids in `manual:<n>` evidence.
fn scrub_ids(v: &Value) -> Value {
    match scrub(v) {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| {
                    let x = match k.as_str() {
                        "id" | "memory_id" | "superseded_by" | "edit_id" if !x.is_null() => {
                            json!("<id>")
                        }
                        _ => scrub_ids(&x),
                    };
                    (k, x)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(scrub_ids).collect()),
        Value::String(s) => Value::String(scrub_edit_ids(&s)),
        other => other,
    }
}

/// `manual:<digits>` as `manual:<n>`.
fn scrub_edit_ids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("manual:") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("<n>");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn edits_audit_and_tombstones_match_sqlite() {
    let Some(pg) = pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sq = sqlite(dir.path(), "edits.db");
    let want = edit_script(&sq);
    let got_a = edit_script(pg.store());
    assert_eq!(want.len(), got_a.len());
    for (i, (w, g)) in want.iter().zip(&got_a).enumerate() {
        assert_eq!(scrub(g), scrub(w), "step {i}");
    }
    assert_same_rows(
        &dump_pg(pg.store(), false),
        &dump_sqlite(&dir.path().join("edits.db"), false),
    );
    let want = edit_script_ids_apart(&sq);
    let got = edit_script_ids_apart(pg.store());
    assert_eq!(want.len(), got.len());
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(scrub_ids(g), scrub_ids(w), "step {i} after the first part");
    }
    // Spot checks that the script did what it means to.
    let all = serde_json::to_string(&(got_a, got)).unwrap();
    assert!(all.contains("Answer in Italian."), "{all}");
    assert!(all.contains("is already stored"), "{all}");
    assert!(all.contains("another fact already says that"), "{all}");
    assert!(all.contains("no episode with id"), "{all}");
    assert!(!all.contains("fact just added"), "{all}");
    let ids_apart = |rows: Vec<String>| -> Vec<String> {
        let mut rows: Vec<String> = rows
            .into_iter()
            .map(|r| {
                // The edits' memory_id (third column) and manual:<edit id> evidence.
                let r = scrub_edit_ids(&r);
                match r.strip_prefix("edits: ") {
                    Some(e) => {
                        let mut c: Vec<&str> = e.split('|').collect();
                        c[2] = "<id>";
                        format!("edits: {}", c.join("|"))
                    }
                    None => r,
                }
            })
            .collect();
        rows.sort();
        rows
    };
    assert_same_rows(
        &ids_apart(dump_pg(pg.store(), false)),
        &ids_apart(dump_sqlite(&dir.path().join("edits.db"), false)),
    );
    let tombstones = pg
        .store()
        .read(|c| {
            Ok(c.query(
                "SELECT tier, signature FROM memory_edits WHERE signature IS NOT NULL ORDER BY id",
                &[],
            )?)
        })
        .unwrap();
    let sigs: Vec<String> = tombstones
        .iter()
        .map(|r| format!("{}:{}", r.get::<_, &str>(0), r.get::<_, &str>(1)))
        .collect();
    assert!(
        sigs.contains(&"semantic:ana|LIVES_IN|berlin".to_string()),
        "{sigs:?}"
    );
    assert!(
        sigs.contains(&"procedural:language|Answer in Spanish.".to_string()),
        "{sigs:?}"
    );
    assert!(
        sigs.iter().any(|s| s.starts_with("episodic:job:manual:")),
        "{sigs:?}"
    );
    assert_vectors_in_step(pg.store());
}

fn job(user: &str, n: u32, ts: chrono::DateTime<Utc>, text: &str) -> (NewTurn, ReflectionJob) {
    let id = format!("{user}-turn-{n}");
    let metadata = json!({"interaction_id": id, "speaker": "Ana", "dia_id": format!("D1:{n}")});
    let turn = NewTurn {
        interaction_id: id.clone(),
        user_id: user.into(),
        session_id: "s1".into(),
        user_message: text.into(),
        assistant_response: "Nice!".into(),
        ts_ms: ts.timestamp_millis(),
        metadata: metadata.clone(),
        request_hash: format!("hash-{id}"),
    };
    let job = ReflectionJob {
        job_id: format!("job-{id}"),
        user_id: user.into(),
        session_id: "s1".into(),
        user_message: text.into(),
        assistant_response: "Nice!".into(),
        timestamp: ts,
        priority: Priority::High,
        metadata,
        retry_count: 0,
        max_retries: 3,
        created_at: ts,
    };
    (turn, job)
}

/// A graph draft of `entities` and `relations`, ending nothing.
fn graph(entities: Vec<EntityDraft>, relations: Vec<RelationDraft>) -> GraphDraft {
    GraphDraft {
        entities,
        relations,
        ..Default::default()
    }
}

fn relation(
    s: &str,
    p: &str,
    o: &str,
    at: chrono::DateTime<Utc>,
    exclusive: bool,
) -> RelationDraft {
    RelationDraft {
        subject: s.into(),
        predicate: p.into(),
        object: o.into(),
        fact: format!("{s} {p} {o}."),
        valid_at: at,
        exclusive,
    }
}

/// A SQLite store with reflected turns (episodes, a graph with aliases, restatements and
/// an accumulating slot, rules of one topic), a queued and a dead job, explicit edits
/// with tombstones, and a second user.
fn seed_sqlite(sq: &SqliteStore) {
    let entity = |name: &str, kind: &str, aliases: &[&str]| EntityDraft {
        name: name.into(),
        kind: kind.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
    };
    let turns = [
        ("ana", 1, t(1, 9), "I live in Paris with my mom Sarah."),
        (
            "ana",
            2,
            t(4, 9),
            "I moved to Berlin. Please answer in Spanish.",
        ),
        ("ana", 3, t(6, 9), "Still in Berlin! I like jazz and tea."),
        (
            "ana",
            4,
            t(8, 9),
            "Back in Paris. Answer in French from now on.",
        ),
        ("bob", 1, t(2, 9), "I live in Oslo."),
        ("ana", 5, t(9, 9), "Queued, never reflected."),
        ("ana", 6, t(9, 9), "This one died."),
    ];
    for (k, (user, n, ts, text)) in turns.into_iter().enumerate() {
        let (turn, job) = job(user, n, ts, text);
        let state = if n == 5 {
            JobState::Queued
        } else {
            JobState::Processing
        };
        sq.insert_turn_and_job(&turn, &job, state, QueueLimits::NONE)
            .unwrap();
        if n >= 5 {
            if n == 6 {
                sq.dead_job(&job.job_id, "the processor failed").unwrap();
            }
            continue;
        }
        let draft = EpisodeDraft {
            text: format!("[{} May 2024] {text}", ts.format("%-d")),
            summary: text.chars().take(20).collect(),
            importance: 0.3 + 0.1 * n as f32,
            tags: vec!["life".into(), format!("t{n}")],
            occurred_at: ts - chrono::Duration::hours(n as i64),
        };
        sq.commit_episode(
            &job,
            "Ana",
            Some(&draft),
            Some(&vector(k as u32 + 10)),
            "previous turn",
            1.5,
        )
        .unwrap();
        let graph = match (user, n) {
            ("ana", 1) => graph(
                vec![
                    entity("Ana", "person", &[]),
                    entity("Sarah", "person", &["mom", "my mom"]),
                    entity("Paris", "place", &[]),
                ],
                vec![
                    relation("Ana", "LIVES_IN", "Paris", ts, true),
                    relation("Sarah", "LIVES_IN", "Paris", ts, true),
                    relation("Ana", "MOTHER", "mom", ts, false),
                ],
            ),
            ("ana", 2) => graph(
                vec![entity("Berlin", "place", &["berlin city"])],
                vec![relation("Ana", "LIVES_IN", "Berlin", ts, true)],
            ),
            ("ana", 3) => graph(
                vec![entity("Jazz", "thing", &[])],
                vec![
                    relation("Ana", "LIVES_IN", "Berlin", ts, true),
                    relation("Ana", "LIKES", "Jazz", ts, false),
                    relation("Ana", "LIKES", "Tea", ts, false),
                ],
            ),
            ("ana", 4) => graph(
                vec![],
                vec![
                    relation("Ana", "LIVES_IN", "Paris", ts, true),
                    relation("Ana", "LIKES", "Jazz", t(1, 8), false),
                ],
            ),
            _ => graph(
                vec![entity("Bob", "person", &[])],
                vec![relation("Bob", "LIVES_IN", "Oslo", ts, true)],
            ),
        };
        sq.commit_graph(&job, &graph, 2.0).unwrap();
        let rules: Vec<(RuleDraft, Vec<f32>)> = match n {
            2 => vec![(
                RuleDraft {
                    kind: "preference".into(),
                    statement: "Ana wants answers in Spanish.".into(),
                    confidence: 0.8,
                    topic: "language".into(),
                },
                vector(30),
            )],
            4 => vec![
                (
                    RuleDraft {
                        kind: "instruction".into(),
                        statement: "Ana wants answers in French.".into(),
                        confidence: 0.9,
                        topic: "language".into(),
                    },
                    vector(31),
                ),
                (
                    RuleDraft {
                        kind: "preference".into(),
                        statement: "Ana likes short answers.".into(),
                        confidence: 0.6,
                        topic: "length".into(),
                    },
                    vector(32),
                ),
            ],
            _ => vec![],
        };
        sq.commit_rules(&job, &rules, 0.5).unwrap();
        sq.complete_job(&job.job_id).unwrap();
    }
    // Explicit edits, with tombstones.
    let e = sq
        .add_episode(
            "ana",
            "local",
            &NewEpisode {
                text: "Ana's birthday is in June.".into(),
                speaker: "Ana".into(),
                occurred_ms: t(10, 0).timestamp_millis(),
                importance: 0.9,
                tags: vec![],
                embedding: vector(40),
            },
        )
        .unwrap();
    sq.update_episode(
        "ana",
        "key9",
        e["id"].as_i64().unwrap(),
        &EpisodePatch {
            importance: Some(0.95),
            ..Default::default()
        },
    )
    .unwrap()
    .unwrap();
    let eps = sq.list_episodes("ana", 100, 0).unwrap();
    let reflected = eps.iter().find(|e| e.job_id == "job-ana-turn-3").unwrap();
    sq.delete_memory("ana", "local", EditTier::Episodic, reflected.id)
        .unwrap()
        .unwrap();
    let f = sq
        .add_fact(
            "ana",
            "local",
            &NewFact {
                subject: "Ana".into(),
                predicate: "WORKS_AT".into(),
                object: "Acme".into(),
                fact: "Ana works at Acme.".into(),
                valid_ms: t(7, 0).timestamp_millis(),
                exclusive: Some(true),
            },
        )
        .unwrap()
        .unwrap();
    sq.update_fact(
        "ana",
        "local",
        f["id"].as_i64().unwrap(),
        &FactPatch {
            fact: Some("Ana works at Acme Corp.".into()),
            object: None,
        },
    )
    .unwrap()
    .unwrap();
    let tea = sq
        .list_facts("ana", 100, 0)
        .unwrap()
        .into_iter()
        .find(|f| f.object == "Tea")
        .unwrap();
    sq.delete_memory("ana", "local", EditTier::Semantic, tea.id)
        .unwrap()
        .unwrap();
    sq.add_rule(
        "ana",
        "local",
        &NewRule {
            kind: "constraint".into(),
            topic: "units".into(),
            statement: "Use metric units.".into(),
            embedding: vector(41),
        },
    )
    .unwrap()
    .unwrap();
    let spanish = sq
        .list_rules("ana", true, 100, 0)
        .unwrap()
        .into_iter()
        .find(|r| r.statement.contains("Spanish"))
        .unwrap();
    sq.update_rule(
        "ana",
        "local",
        spanish.id,
        &RulePatch {
            statement: Some(("Ana wants answers in Spanish, always.".into(), vector(42))),
            kind: None,
        },
    )
    .unwrap()
    .unwrap();
    sq.add_episode(
        "bob",
        "local",
        &NewEpisode {
            text: "Bob's note.".into(),
            speaker: "Bob".into(),
            occurred_ms: t(3, 0).timestamp_millis(),
            importance: 0.5,
            tags: vec!["x".into()],
            embedding: vec![],
        },
    )
    .unwrap();
}

fn export(b: &dyn Backend, user: &str) -> (Counts, Vec<String>) {
    let mut buf = Vec::new();
    let counts = b.export_user(user, "hash-test-model", &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // The header's time is the export's own.
    let mut header: Value = serde_json::from_str(&lines[0]).unwrap();
    header["exported_at"] = Value::Null;
    lines[0] = header.to_string();
    (counts, lines)
}

fn import(b: &dyn Backend, lines: &[String]) -> anyhow::Result<Counts> {
    let text = lines.join("\n") + "\n";
    b.import_user(&mut text.as_bytes())
}

#[test]
fn export_from_sqlite_imports_into_postgres_and_exports_the_same_lines() {
    let Some(pg) = pg() else { return };
    let pg = pg.store();
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite(dir.path(), "src.db");
    seed_sqlite(&src);
    for user in ["ana", "bob", "nobody"] {
        let (counts, lines) = export(&src, user);
        if user == "ana" {
            assert!(
                counts["turn"] == 6 && counts["edit"] >= 6 && counts["rule"] == 4,
                "{counts:?}"
            );
        }
        // The reference: the same file imported into an empty SQLite store.
        let dst = sqlite(dir.path(), &format!("dst-{user}.db"));
        let want = import(&dst, &lines).unwrap();
        let got = import(pg, &lines).unwrap();
        assert_eq!(got, want, "{user}: import counts");
        let (_, again) = export(pg, user);
        assert_eq!(again, lines, "{user}: PostgreSQL's export of the import");
        assert_eq!(
            export(&dst, user).1,
            lines,
            "{user}: SQLite's export of the import"
        );
        // Idempotent: a second import adds nothing and changes nothing.
        assert_eq!(
            import(pg, &lines).unwrap(),
            Counts::new(),
            "{user}: second import"
        );
        assert_eq!(
            export(pg, user).1,
            lines,
            "{user}: export after the second import"
        );
    }
    // Same stored state as SQLite's import of the same files, derived columns included.
    let mut want = Vec::new();
    for user in ["ana", "bob", "nobody"] {
        want.extend(dump_sqlite(
            &dir.path().join(format!("dst-{user}.db")),
            true,
        ));
    }
    want.sort();
    let got = dump_pg(pg, true);
    // Non-trivial: restatements merged, superseded rules, tombstones, every table.
    for needle in [
        "|berlin@",
        "rules: ana|preference|language|Ana wants answers in Spanish, always.|800|Ana wants answers in French.|0",
        "edits: ana|semantic|",
        "turns: ana-turn-5|",
        "jobs: job-ana-turn-6|ana|2|dead|",
        "aliases: ana|mom|sarah",
    ] {
        assert!(
            got.iter().any(|r| r.contains(needle)),
            "no {needle:?} in {got:#?}"
        );
    }
    assert_same_rows(&got, &want);
    assert_vectors_in_step(pg);
    // Derived state really was derived: Paris (day 1) is invalid from Berlin (day 4).
    let invalid: Option<i64> = pg
        .read(|c| {
            Ok(c.query_one(
                "SELECT r.invalid_ms FROM relations r JOIN entities o ON o.id = r.object_id
                 WHERE r.user_id = 'ana' AND r.predicate = 'LIVES_IN' AND o.norm_name = 'paris'
                   AND r.valid_ms = $1 AND r.subject_id = (SELECT id FROM entities WHERE user_id = 'ana' AND norm_name = 'ana')",
                &[&t(1, 9).timestamp_millis()],
            )?
            .get(0))
        })
        .unwrap();
    assert_eq!(invalid, Some(t(4, 9).timestamp_millis()));
}

#[test]
fn a_bad_import_line_is_named_and_nothing_is_stored() {
    let Some(pg) = pg() else { return };
    let pg = pg.store();
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite(dir.path(), "src.db");
    seed_sqlite(&src);
    let (_, lines) = export(&src, "ana");
    let dst = sqlite(dir.path(), "dst.db");
    let mut bad = lines.clone();
    let i = bad
        .iter()
        .position(|l| l.contains("\"type\":\"rule\""))
        .unwrap();
    let mut rule: Value = serde_json::from_str(&bad[i]).unwrap();
    rule["confidence"] = json!("high");
    bad[i] = rule.to_string();
    let cases: Vec<Vec<String>> = vec![
        bad,
        vec![],
        vec![r#"{"type":"header","format":"other"}"#.into()],
        vec![lines[0].replace("\"version\":1", "\"version\":2")],
        vec![lines[0].clone(), lines[0].clone()],
        vec![lines[0].clone(), r#"{"type":"mystery"}"#.into()],
        vec![lines[0].clone(), "not json".into()],
    ];
    for case in cases {
        let want = format!("{:#}", import(&dst, &case).unwrap_err());
        let got = format!("{:#}", import(pg, &case).unwrap_err());
        assert_eq!(got, want);
    }
    assert_same_rows(&dump_pg(pg, true), &[]);
}

#[test]
fn reembed_helpers_match_sqlite() {
    let Some(pg) = pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sq = sqlite(dir.path(), "reembed.db");
    let run = |b: &dyn Backend| -> Vec<Value> {
        for (user, n) in [("ana", 5), ("bob", 2)] {
            for i in 0..n {
                b.add_episode(
                    user,
                    "local",
                    &NewEpisode {
                        text: format!("{user} episode {i}"),
                        speaker: user.into(),
                        occurred_ms: 0,
                        importance: 0.5,
                        tags: vec![],
                        embedding: vector(i),
                    },
                )
                .unwrap();
                b.add_rule(
                    user,
                    "local",
                    &NewRule {
                        kind: "preference".into(),
                        topic: format!("topic{i}"),
                        statement: format!("{user} rule {i}"),
                        embedding: vector(i),
                    },
                )
                .unwrap()
                .unwrap();
            }
        }
        let mut out = vec![
            json!(b.count_embedded(None).unwrap()),
            json!(b.count_embedded(Some("bob")).unwrap()),
            json!(b.count_embedded(Some("nobody")).unwrap()),
        ];
        for what in [Embedded::Episodes, Embedded::Rules] {
            for user in [None, Some("ana"), Some("bob")] {
                // Page through by id, 3 at a time.
                let mut after = 0;
                let mut all = Vec::new();
                loop {
                    let page = b.texts_to_embed(what, user, after, 3).unwrap();
                    let Some(last) = page.last() else { break };
                    after = last.0;
                    all.extend(page);
                }
                let rows: Vec<(i64, Vec<f32>)> = all
                    .iter()
                    .map(|(id, text)| (*id, vector(text.len() as u32 + 50)))
                    .collect();
                b.set_embeddings(what, &rows).unwrap();
                out.push(json!(all));
            }
        }
        b.set_embeddings(Embedded::Episodes, &[]).unwrap();
        // A vector pgvector cannot hold is kept as bytes only.
        let first = b.texts_to_embed(Embedded::Episodes, None, 0, 1).unwrap()[0].0;
        b.set_embeddings(Embedded::Episodes, &[(first, vec![f32::NAN; DIM])])
            .unwrap();
        for user in ["ana", "bob"] {
            let (_, lines) = export(b, user);
            // Without the edit records and the times stamped "now".
            let records: Vec<Value> = lines
                .iter()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v["type"] != "edit")
                .map(|mut v| {
                    for k in [
                        "created_at",
                        "observed_at",
                        "first_stated_at",
                        "last_stated_at",
                    ] {
                        if v.get(k).is_some() {
                            v[k] = Value::Null;
                        }
                    }
                    v
                })
                .collect();
            out.push(json!(records));
        }
        out
    };
    let want = run(&sq);
    let got = run(pg.store());
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(scrub(g), scrub(w), "step {i}");
    }
    assert_vectors_in_step(pg.store());
}
