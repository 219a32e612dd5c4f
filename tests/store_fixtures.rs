//! Stores written by earlier binaries open with this one and read back the same.
//!
//! Each folder of `tests/fixtures/stores/` was written by `scripts/store-fixture.sh` with the
//! binary of one commit (the folder's name): an SQLite file and a plain `pg_dump` of a
//! PostgreSQL 15 database without pgvector, each with what that binary exported from it.
//! This binary opens each store (applying its own migrations) and must export the same
//! lines, but for the header's `exported_at`. A commit that adds a migration adds a fixture
//! made by the binary before it (docs/STORE.md).
//!
//! The PostgreSQL half runs with `REFLECTOR_TEST_DATABASE_URL` (scripts/test.sh runs the
//! store suite on PostgreSQL 15 and 16): each dump is loaded into a database of its own,
//! dropped at the end. Set but unreachable: the test fails.

use std::path::{Path, PathBuf};

use reflector::store::postgres::PgOptions;
use reflector::store::{Backend, PgStore, SqliteStore};
use serde_json::Value;

const USER: &str = "demo-ana";

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stores");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixture in {}", root.display());
    dirs
}

/// Export lines as JSON values, with the header's `exported_at` removed.
fn comparable(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if v["type"] == "header" {
                v.as_object_mut().unwrap().remove("exported_at");
            }
            v
        })
        .collect()
}

/// Export `USER` from `store` and compare with the fixture's `expected` file, line by line.
fn assert_reads_back_the_same(store: &dyn Backend, expected: &Path) {
    let want = comparable(&std::fs::read_to_string(expected).unwrap());
    let model = want[0]["embedding_model"].as_str().unwrap().to_string();
    let mut out = Vec::new();
    store.export_user(USER, &model, &mut out).unwrap();
    let got = comparable(std::str::from_utf8(&out).unwrap());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{}: line {} differs", expected.display(), i + 1);
    }
    assert_eq!(got.len(), want.len(), "{}: line count", expected.display());
}

#[test]
fn sqlite_stores_of_earlier_binaries_read_back_the_same() {
    for dir in fixtures() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("reflector.db");
        std::fs::copy(dir.join("sqlite.db"), &db).unwrap();
        let store = SqliteStore::open(&db, "NORMAL").unwrap();
        assert_reads_back_the_same(&store, &dir.join("sqlite.export.jsonl"));
    }
}

#[test]
fn postgres_dumps_of_earlier_binaries_read_back_the_same() {
    let Ok(url) = std::env::var("REFLECTOR_TEST_DATABASE_URL") else {
        eprintln!("REFLECTOR_TEST_DATABASE_URL is not set: PostgreSQL fixtures not read");
        return;
    };
    for dir in fixtures() {
        let name = format!("fixture_{}", uuid::Uuid::new_v4().simple());
        let mut admin = postgres::Client::connect(&url, postgres::NoTls)
            .expect("REFLECTOR_TEST_DATABASE_URL is set but the server is unreachable");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let db_url = format!("{}/{name}", url.rsplit_once('/').unwrap().0);
        // A plain dump, less psql's meta-commands (\restrict), run as one batch.
        let dump: String = std::fs::read_to_string(dir.join("pg15.sql"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('\\'))
            .collect::<Vec<_>>()
            .join("\n");
        postgres::Client::connect(&db_url, postgres::NoTls)
            .unwrap()
            .batch_execute(&dump)
            .unwrap_or_else(|e| panic!("{}: loading the dump: {e}", dir.display()));
        let result = std::panic::catch_unwind(|| {
            let store = PgStore::open(&PgOptions {
                url: db_url.clone(),
                schema: None,
                pgvector: "auto".into(),
                dim: 384,
                max_connections: 2,
            })
            .unwrap();
            assert_reads_back_the_same(&store, &dir.join("pg15.export.jsonl"));
        });
        admin
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }
}
