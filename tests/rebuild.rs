//! `reflector reflect` and `reflector reembed` on a stopped server's store: the processors
//! really run again, idempotently, without undoing user deletions; vectors are recomputed.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

fn run(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reflector"))
        .args(args)
        .args(["--embedder", "hash", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("reflector.db")).unwrap()
}

/// Seed two users, delete one of ana's episodes through the API, stop; returns the data dir.
async fn seeded() -> (tempfile::TempDir, Vec<String>) {
    let mut t = start().await;
    for (i, (u, m)) in [
        ("ana", "I adopted a parrot called Kiwi yesterday."),
        ("ana", "I ran the Lisbon marathon in May."),
        ("ana", "Please always answer in Portuguese."),
        ("bob", "I live in Oslo."),
    ]
    .iter()
    .enumerate()
    {
        let (s, r) = t
            .turn(u, m, &format!("2024-07-0{}T10:00:00Z", i + 1), json!({}))
            .await;
        assert_eq!(s, 202, "{r}");
        t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    }
    let (_, ep) = t.get("/api/memory/episodic/ana").await;
    let kiwi = ep["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"].as_str().unwrap().contains("Kiwi"))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = t
        .http
        .delete(format!("{}/api/memory/episodic/ana/{kiwi}", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, ep) = t.get("/api/memory/episodic/ana").await;
    let mut texts: Vec<String> = ep["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    let dir = std::mem::replace(&mut t.dir, tempfile::tempdir().unwrap());
    t.stop().await;
    (dir, texts)
}

fn episode_texts(dir: &Path, user: &str) -> Vec<String> {
    let c = db(dir);
    let mut st = c
        .prepare("SELECT text FROM episodes WHERE user_id = ?1 ORDER BY text")
        .unwrap();
    st.query_map([user], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn counts(dir: &Path) -> Value {
    let c = db(dir);
    let n = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    json!({
        "episodes": n("SELECT count(*) FROM episodes"),
        "relations": n("SELECT count(*) FROM relations"),
        "rules": n("SELECT count(*) FROM rules"),
        "completed": n("SELECT count(*) FROM jobs WHERE state = 'completed'"),
        "tiers": n("SELECT count(*) FROM job_tiers WHERE status = 'completed'"),
    })
}

#[tokio::test]
async fn reflect_reruns_the_processors_idempotently_and_keeps_deletions() {
    let (dir, texts) = seeded().await;
    let before = counts(dir.path());
    // Lose a memory behind the service's back (as a rule change might): only a real re-run
    // of the processors brings it back.
    db(dir.path())
        .execute("DELETE FROM episodes WHERE text LIKE '%marathon%'", [])
        .unwrap();
    let (ok, err) = run(&["reflect", "--user", "ana"], dir.path());
    assert!(ok, "{err}");
    assert!(err.contains("re-reflected 3 turns of ana"), "{err}");
    assert_eq!(
        episode_texts(dir.path(), "ana"),
        texts,
        "marathon back, Kiwi still deleted"
    );
    assert_eq!(counts(dir.path()), before);
    // Again, and for everyone: nothing changes.
    let (ok, err) = run(&["reflect", "--all"], dir.path());
    assert!(ok && err.contains("re-reflected 4 turns"), "{err}");
    assert_eq!(counts(dir.path()), before);
    assert_eq!(episode_texts(dir.path(), "ana"), texts);
    // --since after every turn selects nothing; bad arguments are refused.
    let (ok, err) = run(
        &["reflect", "--all", "--since", "2024-07-04T00:00:00Z"],
        dir.path(),
    );
    assert!(ok && err.contains("re-reflected 1 turns"), "{err}");
    let (ok, err) = run(&["reflect", "--user", "ana", "--all"], dir.path());
    assert!(!ok && err.contains("not both"), "{err}");
    let (ok, err) = run(&["reflect", "--all", "--since", "yesterday"], dir.path());
    assert!(!ok && err.contains("--since"), "{err}");
}

#[tokio::test]
async fn reembed_recomputes_every_vector() {
    let (dir, _) = seeded().await;
    let vectors = |dir: &Path| -> Vec<(i64, Vec<u8>)> {
        let c = db(dir);
        let mut st = c.prepare("SELECT id, embedding FROM episodes UNION ALL SELECT -id, embedding FROM rules ORDER BY 1").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let original = vectors(dir.path());
    assert!(original.len() >= 3, "{original:?}");
    {
        let c = db(dir.path());
        c.execute(
            "UPDATE episodes SET embedding = zeroblob(length(embedding))",
            [],
        )
        .unwrap();
        c.execute(
            "UPDATE rules SET embedding = zeroblob(length(embedding))",
            [],
        )
        .unwrap();
    }
    assert_ne!(vectors(dir.path()), original);
    let (ok, err) = run(&["reembed", "--all"], dir.path());
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("re-embedded {} memories", original.len())),
        "{err}"
    );
    assert_eq!(vectors(dir.path()), original);
}
