//! Tests against a real server: skipped unless `REFLECTOR_TEST_DATABASE_URL` is set, and
//! then failing (never skipping) when it cannot be reached. Each test works in a schema of
//! its own, dropped at the end. Run against PG15 (no pgvector) and PG16 (pgvector).

use std::sync::{Arc, Barrier};

use ::postgres::NoTls;
use chrono::{DateTime, Utc};

use crate::extract::{EntityDraft, RelationDraft};
use crate::extract::{EpisodeDraft, GraphDraft, RuleDraft};
use crate::job::JobState;
use crate::job::ReflectionJob;
use crate::store::Window;
use crate::store::postgres::PgOptions;
use crate::store::postgres::{PgStore, VectorMode, vector_text};
use crate::store::{Backend, Editor, NewTurn, QueueLimits, SqliteStore, TierWriter};
use crate::store::{blob_to_vec, now_ms, vec_to_blob};
use serde_json::{Value, json};
use std::collections::HashMap;

const DIM: usize = 8;

/// A store on a fresh schema; the schema is dropped when this is.
struct TestDb {
    store: PgStore,
    url: String,
    schema: String,
}

impl std::ops::Deref for TestDb {
    type Target = PgStore;
    fn deref(&self) -> &PgStore {
        &self.store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = ::postgres::Client::connect(&self.url, NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

/// `rows` mapped by `f`, as a JSON array.
fn rows<'a, T, V: serde::Serialize>(rows: &'a [T], f: impl FnMut(&'a T) -> V) -> Value {
    json!(rows.iter().map(f).collect::<Vec<_>>())
}

fn test_url() -> Option<String> {
    match std::env::var("REFLECTOR_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("skipped: REFLECTOR_TEST_DATABASE_URL is not set");
            None
        }
    }
}

fn open_db(url: &str, pgvector: &str) -> TestDb {
    let mut c = ::postgres::Client::connect(url, NoTls)
        .expect("REFLECTOR_TEST_DATABASE_URL is set but the server cannot be reached");
    // pgvector's types must live in `public`, where every test schema sees them: created
    // from a test's connection they would land in that test's schema (first on its
    // search_path), and dropping the schema would drop the extension. No pgvector on
    // the server: the store runs in exact mode, which the tests expect.
    let _ = c.batch_execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public");
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let store = PgStore::open(&PgOptions {
        url: url.to_string(),
        schema: Some(schema.clone()),
        pgvector: pgvector.into(),
        dim: DIM,
        max_connections: 12,
    })
    .expect("PgStore opens on the test server");
    TestDb {
        store,
        url: url.to_string(),
        schema,
    }
}

fn test_db() -> Option<TestDb> {
    test_url().map(|u| open_db(&u, "auto"))
}

/// Can the server create the `vector` extension?
fn server_has_pgvector(url: &str) -> bool {
    let mut c = ::postgres::Client::connect(url, NoTls).unwrap();
    c.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')",
        &[],
    )
    .unwrap()
    .get(0)
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn job(user: &str, id: &str, at: &str, dia: &str) -> ReflectionJob {
    serde_json::from_value(json!({
        "job_id": id, "user_id": user, "session_id": "s1",
        "user_message": format!("message of {id}"), "assistant_response": "ok",
        "timestamp": at,
        "metadata": {"dia_id": dia, "interaction_id": format!("turn-{id}"), "speaker": "Caroline"},
    }))
    .unwrap()
}

/// A unit vector, different for each `i`.
fn unit(i: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM)
        .map(|d| (((i * 7 + d * 3) % 11) as f32 - 5.0) + if d == i % DIM { 4.0 } else { 0.0 })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn episode(text: &str, at: &str, importance: f32) -> EpisodeDraft {
    EpisodeDraft {
        text: text.into(),
        summary: format!("summary: {text}"),
        importance,
        tags: vec!["life".into(), "plan".into()],
        occurred_at: ts(at),
    }
}

fn entity(name: &str, kind: &str, aliases: &[&str]) -> EntityDraft {
    EntityDraft {
        name: name.into(),
        kind: kind.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
    }
}

/// A relation valid from `at` ("MM-DDTHH", in 2023, UTC).
fn rel(s: &str, p: &str, o: &str, at: &str, exclusive: bool) -> RelationDraft {
    let at = format!("2023-{at}:00:00Z");
    RelationDraft {
        subject: s.into(),
        predicate: p.into(),
        object: o.into(),
        fact: format!("{s} {p} {o} ({at})"),
        valid_at: ts(&at),
        exclusive,
    }
}

fn rule(topic: &str, statement: &str, confidence: f32) -> (RuleDraft, Vec<f32>) {
    (
        RuleDraft {
            kind: "preference".into(),
            statement: statement.into(),
            confidence,
            topic: topic.into(),
        },
        unit(statement.len()),
    )
}

/// What the tests need from a backend beyond [`Backend`]: turns and jobs as the request
/// path writes them (the same calls on both backends), and tombstones as the edit API
/// writes them (plain SQL: the PostgreSQL edit methods are ported separately).
trait Fixture: Backend {
    /// The job's turn and job row (through the request path), reflected or not.
    fn add_turn(&self, j: &ReflectionJob, reflected: bool) {
        let turn = NewTurn {
            interaction_id: j.interaction_id().into(),
            user_id: j.user_id.clone(),
            session_id: j.session_id.clone(),
            user_message: j.user_message.clone(),
            assistant_response: j.assistant_response.clone(),
            ts_ms: j.timestamp.timestamp_millis(),
            metadata: j.metadata.clone(),
            request_hash: "h".into(),
        };
        let outcome = self
            .insert_turn_and_job(&turn, j, JobState::Processing, QueueLimits::NONE)
            .unwrap();
        assert_eq!(outcome, crate::store::InsertOutcome::Created);
        if reflected {
            self.complete_job(&j.job_id).unwrap();
        }
    }
    /// A job row without a turn (a job from another producer).
    fn add_job(&self, j: &ReflectionJob) {
        assert!(self.insert_job(j).unwrap());
    }
    /// A tombstone, as the edit API writes it.
    fn tombstone(&self, user: &str, tier: &str, signature: &str, job_id: &str, evidence: &str);
}

impl Fixture for SqliteStore {
    fn tombstone(&self, user: &str, tier: &str, signature: &str, job_id: &str, evidence: &str) {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO memory_edits (user_id, tier, memory_id, action, actor, at_ms, signature, source_job_id, evidence)
                 VALUES (?1, ?2, 0, 'delete', 'test', 0, ?3, ?4, ?5)",
                rusqlite::params![user, tier, signature, job_id, evidence],
            )?;
            Ok(())
        })
        .unwrap();
    }
}

impl Fixture for PgStore {
    fn tombstone(&self, user: &str, tier: &str, signature: &str, job_id: &str, evidence: &str) {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO memory_edits (user_id, tier, memory_id, action, actor, at_ms, signature, source_job_id, evidence)
                 VALUES ($1, $2, 0, 'delete', 'test', 0, $3, $4, $5)",
                &[&user, &tier, &signature, &job_id, &evidence],
            )?;
            Ok(())
        })
        .unwrap();
    }
}

/// Strip what legitimately differs between backends from a commit result: ids.
fn result_shape(mut v: Value) -> Value {
    if let Some(id) = v.get_mut("episode_id") {
        *id = json!(!id.is_null());
    }
    v
}

/// One user's whole life through the memory methods (out-of-order commits,
/// restatements, aliases, rule supersession, tombstones, the window, forgetting),
/// recorded as values with the ids taken out, so two backends can be compared.
fn scenario(s: &dyn Fixture) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let u = "caroline";
    let jobs: Vec<ReflectionJob> = [
        ("j1", "2023-05-01T10:00:00Z", "D1:1"),
        ("j2", "2023-05-02T10:00:00Z", "D1:2"),
        ("j3", "2023-05-03T10:00:00Z", "D1:3"),
        ("j4", "2023-05-04T10:00:00Z", "D1:4"),
        ("j5", "2023-05-05T10:00:00Z", "D1:5"),
        ("j6", "2023-05-06T10:00:00Z", "D1:6"),
    ]
    .iter()
    .map(|(id, at, dia)| job(u, id, at, dia))
    .collect();
    for (i, j) in jobs.iter().enumerate() {
        s.add_turn(j, i < 5);
    }
    // Another user's memory must never show up.
    let other = job("melanie", "m1", "2023-05-03T09:00:00Z", "M:1");
    s.add_turn(&other, true);
    let mut results = Vec::new();
    let mut commit = |v: anyhow::Result<Value>| results.push(result_shape(v.unwrap()));

    // Tier 2. j5 is small talk; j6's episode was deleted by the user (tombstone).
    let texts = [
        "[1 May 2023] Caroline: I moved to Berlin with my mom Sarah.",
        "[2 May 2023] Caroline: Berlin is lovely, I went hiking in the Grunewald.",
        "[3 May 2023] Caroline: We moved again, to Paris, for my new job at Acme.",
        "[4 May 2023] Caroline: My dog Rex loves the Paris parks.",
    ];
    s.tombstone(u, "episodic", "job:j6", "j6", "[\"D1:6\"]");
    for (i, j) in jobs.iter().enumerate() {
        let draft = texts
            .get(i)
            .map(|t| episode(t, &j.timestamp.to_rfc3339(), 0.5 + i as f32 / 10.0));
        let e = unit(i);
        let ctx = if i == 1 {
            "what about the mountains near Berlin?"
        } else {
            ""
        };
        let draft = if i == 5 {
            Some(episode("deleted by the user", "2023-05-06T10:00:00Z", 0.9))
        } else {
            draft
        };
        commit(s.commit_episode(
            j,
            "Caroline",
            draft.as_ref(),
            draft.as_ref().map(|_| e.as_slice()),
            ctx,
            1.5,
        ));
    }
    commit(s.commit_episode(&jobs[0], "Caroline", None, None, "", 1.0)); // already committed
    commit(s.commit_episode(
        &other,
        "Melanie",
        Some(&episode(
            "Melanie paints in Berlin.",
            "2023-05-03T09:00:00Z",
            0.4,
        )),
        Some(&unit(9)),
        "",
        1.0,
    ));

    // Tier 3, committed out of order (j3 before j2), with restatements and aliases.
    let g1 = GraphDraft {
        entities: vec![
            entity("Caroline", "person", &["Caro"]),
            entity("Berlin", "place", &[]),
            entity("my mom Sarah", "person", &["Mom", "Sarah"]),
        ],
        relations: vec![
            rel("Caroline", "LIVES_IN", "Berlin", "05-01T10", true),
            rel("Caroline", "LIKES", "hiking", "05-01T10", false),
            rel("Caroline", "MOTHER_IS", "Sarah", "05-01T10", true),
        ],
        ..Default::default()
    };
    let g2 = GraphDraft {
        entities: vec![
            entity("Caroline", "person", &[]),
            entity("Grunewald", "place", &[]),
        ],
        relations: vec![
            rel("Caroline", "LIVES_IN", "Berlin", "05-02T10", true),
            rel("Caro", "LIKES", "hiking", "04-20T10", false),
            rel("Caroline", "VISITED", "Grunewald", "05-02T10", false),
        ],
        ..Default::default()
    };
    let g3 = GraphDraft {
        entities: vec![
            entity("Paris", "place", &[]),
            entity("Acme", "organization", &["Acme Corp"]),
        ],
        relations: vec![
            rel("Caroline", "LIVES_IN", "Paris", "05-03T10", true),
            rel("Caroline", "WORKS_AT", "Acme Corp", "05-03T10", true),
            rel("Caroline", "LIKES", "hiking", "05-03T10", false),
        ],
        ..Default::default()
    };
    let g4 = GraphDraft {
        entities: vec![
            entity("Rex", "thing", &["the dog"]),
            entity("Berlin", "city", &[]),
        ],
        relations: vec![
            rel("Caroline", "HAS_PET", "Rex", "05-04T10", false),
            rel("Rex", "LOVES", "Paris", "05-04T10", false),
            rel("Caroline", "LIVES_IN", "Berlin", "04-01T10", true),
        ],
        ..Default::default()
    };
    // j6's HAS_PET fact was deleted by the user; its other fact is still written.
    s.tombstone(u, "semantic", "caroline|HAS_PET|cat", "", "[\"D1:6\"]");
    let g6 = GraphDraft {
        entities: vec![entity("Cat", "thing", &[])],
        relations: vec![
            rel("Caroline", "HAS_PET", "Cat", "05-06T10", false),
            rel("Caroline", "LIVES_IN", "Paris", "05-06T10", true),
        ],
        ..Default::default()
    };
    commit(s.commit_graph(&jobs[0], &g1, 2.0));
    commit(s.commit_graph(&jobs[2], &g3, 2.0));
    commit(s.commit_graph(&jobs[1], &g2, 2.0));
    commit(s.commit_graph(&jobs[3], &g4, 2.0));
    commit(s.commit_graph(&jobs[5], &g6, 2.0));
    commit(s.commit_graph(&jobs[2], &g3, 2.0)); // already committed
    commit(s.commit_graph(
        &other,
        &GraphDraft {
            entities: vec![entity("Melanie", "person", &[])],
            relations: vec![rel("Melanie", "LIVES_IN", "Berlin", "05-03T09", true)],
            ..Default::default()
        },
        1.0,
    ));

    // Tier 4: de-duplication, supersession by the latest statement, a tombstone.
    s.tombstone(u, "procedural", "tone|Caroline wants jokes.", "j6", "[]");
    commit(s.commit_rules(
        &jobs[0],
        &[
            rule("language", "Caroline prefers Spanish.", 0.6),
            rule("tone", "Caroline likes short answers.", 0.8),
        ],
        3.0,
    ));
    commit(s.commit_rules(
        &jobs[2],
        &[rule("language", "Caroline prefers English.", 0.7)],
        3.0,
    ));
    commit(s.commit_rules(
        &jobs[1],
        &[rule("language", "Caroline prefers Spanish.", 0.9)],
        3.0,
    ));
    commit(s.commit_rules(
        &jobs[5],
        &[
            rule("tone", "Caroline wants jokes.", 0.9),
            rule("diet", "Caroline is vegetarian.", 0.5),
        ],
        3.0,
    ));
    commit(s.commit_rules(&jobs[4], &[], 3.0));
    // A job whose row is gone (its user forgotten meanwhile): nothing is written.
    let ghost = job(u, "ghost", "2023-05-07T10:00:00Z", "D1:7");
    commit(s.commit_episode(
        &ghost,
        "Caroline",
        Some(&episode("ghost", "2023-05-07T10:00:00Z", 1.0)),
        Some(&unit(1)),
        "",
        1.0,
    ));
    commit(s.commit_graph(&ghost, &g1, 1.0));
    commit(s.commit_rules(&ghost, &[rule("ghost", "Ghost rule.", 1.0)], 1.0));
    // A job from another producer (no turn).
    let foreign = job(u, "foreign", "2023-05-08T10:00:00Z", "D1:8");
    s.add_job(&foreign);
    commit(s.commit_episode(
        &foreign,
        "Caroline",
        Some(&episode(
            "[8 May 2023] Caroline: Rex learned to sit.",
            "2023-05-08T10:00:00Z",
            0.3,
        )),
        Some(&unit(7)),
        "",
        1.0,
    ));
    out.insert("commits".into(), json!(results));

    // Reads.
    let episodes = s.list_episodes(u, 100, 0).unwrap();
    let job_of: HashMap<i64, String> = episodes.iter().map(|e| (e.id, e.job_id.clone())).collect();
    out.insert(
        "episodes".into(),
        rows(&episodes, |e| {
            json!([
                e.job_id,
                e.user_id,
                e.speaker,
                e.text,
                e.summary,
                e.importance,
                e.tags,
                e.occurred_at,
                e.observed_at,
                e.evidence
            ])
        }),
    );
    out.insert(
        "episodes_page".into(),
        rows(&s.list_episodes(u, 2, 1).unwrap(), |e| &e.job_id),
    );
    let ids: Vec<i64> = episodes.iter().map(|e| e.id).rev().collect();
    let mut asked = ids.clone();
    asked.push(999_999);
    let others = s.list_episodes("melanie", 10, 0).unwrap();
    asked.push(others[0].id);
    out.insert(
        "episodes_by_ids".into(),
        rows(&s.episodes_by_ids(u, &asked).unwrap(), |e| &e.job_id),
    );
    let vectors = s.episode_vectors_by_ids(u, &asked).unwrap();
    out.insert(
        "vectors_by_ids".into(),
        rows(&vectors, |(id, v)| json!([job_of[id], v])),
    );
    let (count, max_id, _) = s.episode_version(u).unwrap();
    assert_eq!(max_id, *ids.iter().max().unwrap());
    out.insert("episode_count".into(), json!(count));
    let mut streamed = Vec::new();
    s.each_episode_vector(u, 0, &mut |id, blob| {
        streamed.push(json!([job_of[&id], blob_to_vec(blob)]))
    })
    .unwrap();
    out.insert("streamed".into(), json!(streamed));
    let mut after = Vec::new();
    s.each_episode_vector(u, ids[1], &mut |id, _| after.push(id))
        .unwrap();
    assert!(
        after.iter().all(|id| *id > ids[1]) && after.windows(2).all(|w| w[0] < w[1]),
        "{after:?}"
    );
    out.insert("streamed_after".into(), json!(after.len()));

    let fts = |q: &str| -> Vec<String> {
        let mut hits: Vec<String> = s
            .search_episodes_fts(u, q, 10)
            .unwrap()
            .iter()
            .map(|(id, _)| job_of[id].clone())
            .collect();
        hits.sort();
        hits
    };
    out.insert("fts_or".into(), json!(fts("\"berlin\" OR \"rex\"")));
    out.insert("fts_stem".into(), json!(fts("\"moving\"")));
    out.insert("fts_none".into(), json!(fts("\"zanzibar\"")));
    out.insert("fts_empty".into(), json!(fts("")));
    // The text outranks the context (weights 1.0 and 0.5): "mountains" is only j2's
    // context, "hiking" its text; "berlin" is in j1's and j2's text and j2's context.
    let top = |q: &str| {
        s.search_episodes_fts(u, q, 10)
            .unwrap()
            .iter()
            .map(|(id, _)| job_of[id].clone())
            .collect::<Vec<_>>()
    };
    out.insert("fts_context".into(), json!(top("\"mountains\"")));
    let hits = s
        .search_episodes_fts(u, "\"berlin\" OR \"mountains\"", 10)
        .unwrap();
    assert!(
        hits.windows(2).all(|w| w[0].1 <= w[1].1),
        "scores ascend: {hits:?}"
    );
    out.insert("fts_context_first".into(), json!(job_of[&hits[0].0]));
    out.insert(
        "doc_count".into(),
        json!([
            s.fts_doc_count("\"berlin\"").unwrap(),
            s.fts_doc_count("\"paints\"").unwrap(),
            s.fts_doc_count("\"zanzibar\"").unwrap()
        ]),
    );

    let facts = s.list_facts(u, 100, 0).unwrap();
    out.insert(
        "facts".into(),
        rows(&facts, |f| {
            json!([
                f.subject,
                f.predicate,
                f.object,
                f.fact,
                f.valid_at,
                f.invalid_at,
                f.evidence
            ])
        }),
    );
    out.insert(
        "facts_page".into(),
        rows(&s.list_facts(u, 2, 2).unwrap(), |f| &f.fact),
    );
    let entities = s.list_entities(u, 100, 0).unwrap();
    let name_of: HashMap<i64, String> = entities.iter().map(|e| (e.id, e.name.clone())).collect();
    out.insert(
        "entities".into(),
        rows(&entities, |e| json!([e.name, e.kind, e.aliases])),
    );
    out.insert(
        "entities_page".into(),
        rows(&s.list_entities(u, 2, 1).unwrap(), |e| &e.name),
    );
    let mut names: Vec<(String, String)> = s
        .entity_names(u)
        .unwrap()
        .into_iter()
        .map(|(n, id)| (n, name_of[&id].clone()))
        .collect();
    names.sort();
    out.insert("entity_names".into(), json!(names));
    let caroline = entities.iter().find(|e| e.name == "Caroline").unwrap().id;
    let paris = entities.iter().find(|e| e.name == "Paris").unwrap().id;
    let about = |ids: &[i64], all: bool, n: usize| -> Vec<String> {
        let mut v: Vec<String> = s
            .facts_about(u, ids, all, n)
            .unwrap()
            .iter()
            .map(|f| f.fact.clone())
            .collect();
        v.sort();
        v
    };
    out.insert(
        "facts_about_valid".into(),
        json!(about(&[caroline, paris], false, 20)),
    );
    out.insert(
        "facts_about_all".into(),
        json!(about(&[caroline, paris], true, 20)),
    );
    out.insert(
        "facts_about_top2".into(),
        rows(&s.facts_about(u, &[paris], true, 2).unwrap(), |f| {
            f.valid_ms
        }),
    );
    out.insert("facts_about_none".into(), json!(about(&[], true, 20)));
    out.insert(
        "facts_about_other_user".into(),
        json!(
            s.facts_about("melanie", &[caroline], true, 20)
                .unwrap()
                .len()
        ),
    );

    let rules = s.list_rules(u, true, 100, 0).unwrap();
    let stmt_of: HashMap<i64, String> = rules.iter().map(|r| (r.id, r.statement.clone())).collect();
    out.insert(
        "rules".into(),
        rows(&rules, |r| {
            json!([
                r.kind,
                r.topic,
                r.statement,
                r.confidence,
                r.stated_at,
                r.superseded_by.map(|id| stmt_of[&id].clone()),
                r.evidence,
                r.embedding
            ])
        }),
    );
    out.insert(
        "active_rules".into(),
        rows(&s.list_rules(u, false, 100, 0).unwrap(), |r| &r.statement),
    );

    let turns = s.recent_turns(u, 3).unwrap();
    out.insert(
        "recent_turns".into(),
        rows(&turns, |t| {
            json!([
                t.interaction_id,
                t.user_id,
                t.session_id,
                t.user_message,
                t.assistant_response,
                t.timestamp,
                t.ts_ms,
                t.metadata,
                t.reflection_job_id,
                t.reflected
            ])
        }),
    );
    out.insert(
        "turns_page".into(),
        rows(&s.list_turns(u, 2, 3).unwrap(), |t| &t.interaction_id),
    );
    let window = |j: &str, b: usize, a: usize| {
        let (p, n) = s.turn_window(u, j, b, a).unwrap();
        json!([
            p.iter()
                .map(|w| json!([w.job_id, w.text, w.evidence]))
                .collect::<Vec<_>>(),
            n.iter()
                .map(|w| json!([w.job_id, w.text, w.evidence]))
                .collect::<Vec<_>>()
        ])
    };
    out.insert("window_j3".into(), window("j3", 2, 2));
    out.insert("window_j5".into(), window("j5", 1, 0));
    out.insert("window_unknown".into(), window("nope", 2, 2));
    out.insert("window_other_user".into(), window("m1", 2, 2));
    out.insert("stats".into(), json!(s.user_stats(u).unwrap()));

    // Tier 1 window: keep 2 turns; j6 is not reflected yet, so it stays anyway.
    let w = Window {
        max_turns: 2,
        max_tokens: 10_000,
    };
    out.insert(
        "fold".into(),
        json!([
            s.fold_short_term(u, w).unwrap(),
            s.fold_short_term(u, w).unwrap()
        ]),
    );
    let sum = s.short_term_summary(u).unwrap().unwrap();
    out.insert(
        "summary".into(),
        json!([sum.summary, sum.folded_turns, sum.through]),
    );
    s.add_turn(&job(u, "j7", "2023-05-09T10:00:00Z", "D1:9"), true);
    out.insert(
        "fold_more".into(),
        json!(
            s.fold_short_term(
                u,
                Window {
                    max_turns: 1,
                    max_tokens: 20
                }
            )
            .unwrap()
        ),
    );
    let sum = s.short_term_summary(u).unwrap().unwrap();
    out.insert(
        "summary_more".into(),
        json!([sum.summary, sum.folded_turns, sum.through]),
    );
    out.insert(
        "no_summary".into(),
        json!(s.short_term_summary("nobody").unwrap().is_none()),
    );

    // Forgetting.
    out.insert("forget".into(), json!(s.forget_user(u).unwrap()));
    out.insert(
        "after_forget".into(),
        json!([
            s.list_episodes(u, 10, 0).unwrap().len(),
            s.list_facts(u, 10, 0).unwrap().len(),
            s.list_entities(u, 10, 0).unwrap().len(),
            s.list_rules(u, true, 10, 0).unwrap().len(),
            s.recent_turns(u, 10).unwrap().len(),
            s.entity_names(u).unwrap().len(),
            s.episode_version(u).unwrap(),
            s.short_term_summary(u).unwrap().is_none(),
        ]),
    );
    out.insert(
        "commit_after_forget".into(),
        result_shape(s.commit_graph(&jobs[4], &g1, 1.0).unwrap()),
    );
    out.insert(
        "other_user_kept".into(),
        json!([
            s.list_episodes("melanie", 10, 0).unwrap().len(),
            s.list_facts("melanie", 10, 0).unwrap().len()
        ]),
    );
    out
}

/// Every memory method gives what the SQLite backend gives, on the same history.
#[test]
fn same_results_as_sqlite() {
    let Some(db) = test_db() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(&dir.path().join("m.db"), "normal").unwrap();
    let want = scenario(&lite);
    let got = scenario(&*db);
    for (k, v) in &want {
        assert_eq!(
            got.get(k),
            Some(v),
            "`{k}` differs from SQLite (left: PostgreSQL)"
        );
    }
    assert_eq!(got.len(), want.len());
    // What the scenario is meant to exercise did happen.
    assert_eq!(want["forget"]["entities"], json!(9), "{want:#?}");
    assert_eq!(
        want["active_rules"].as_array().unwrap().len(),
        3,
        "{want:#?}"
    );
}

/// PostgreSQL-only effects: the forgotten user is recorded, job tiers are recorded
/// once, and a forgotten user's late commit writes nothing.
#[test]
fn forget_records_the_user_and_tiers_commit_once() {
    let Some(db) = test_db() else { return };
    let j = job("zoe", "z1", "2023-05-01T10:00:00Z", "Z:1");
    db.add_turn(&j, false);
    let first = db
        .commit_episode(
            &j,
            "Zoe",
            Some(&episode("Zoe swims.", "2023-05-01T10:00:00Z", 0.5)),
            Some(&unit(2)),
            "",
            4.0,
        )
        .unwrap();
    let again = db.commit_episode(&j, "Zoe", None, None, "", 4.0).unwrap();
    assert_eq!(again["already_committed"], json!(true));
    assert_eq!(again["episode_id"], first["episode_id"]);
    let (n, latency): (i64, f64) = db
        .read(|c| {
            let r = c.query_one("SELECT attempts, latency_ms FROM job_tiers WHERE job_id = 'z1' AND tier = 'episodic' AND status = 'completed'", &[])?;
            Ok((r.get(0), r.get(1)))
        })
        .unwrap();
    assert_eq!((n, latency), (1, 4.0));
    let before = now_ms();
    let removed = db.forget_user("zoe").unwrap();
    assert_eq!(removed["job_tiers"], 1);
    assert_eq!(removed["episodes"], 1);
    assert_eq!(removed["jobs"], 1);
    let at: i64 = db
        .read(|c| {
            Ok(c.query_one(
                "SELECT forgotten_ms FROM forgotten_users WHERE user_id = 'zoe'",
                &[],
            )?
            .get(0))
        })
        .unwrap();
    assert!(at >= before, "{at} < {before}");
    // Forgetting again refreshes the time and removes nothing.
    let removed = db.forget_user("zoe").unwrap();
    assert!(removed.values().all(|n| *n == 0), "{removed:?}");
    let late = db
        .commit_rules(&j, &[rule("t", "Zoe rule.", 1.0)], 1.0)
        .unwrap();
    assert!(late["dropped"].is_string(), "{late}");
    assert!(db.list_rules("zoe", true, 10, 0).unwrap().is_empty());
}

/// The graph of jobs committed by 8 threads at once equals the graph of the same jobs
/// committed one after another: no twin entities, the same facts and validity.
///
/// No two jobs state the same exclusive fact at the same `valid_at`: that row is
/// written once (`ON CONFLICT DO NOTHING`, SQLite's `INSERT OR IGNORE`) with the evidence
/// of whichever job commits first, on either backend; restatements at other times are
/// merged into the earliest, whatever the order.
#[test]
fn concurrent_graph_commits_equal_sequential() {
    let Some(db) = test_db() else { return };
    let db = Arc::new(db);
    let cities = [
        "Berlin", "Paris", "Berlin", "Rome", "Paris", "Oslo", "Rome", "Berlin",
    ];
    let likes = [
        "hiking", "chess", "hiking", "jazz", "chess", "hiking", "tea", "jazz",
    ];
    let draft = |i: usize| GraphDraft {
        entities: vec![
            entity("Alice", "person", &["Ally"]),
            entity("Bob", "person", &[]),
            entity("Acme", "organization", &["Acme Inc"]),
            entity(cities[i], "place", &[]),
        ],
        relations: vec![
            rel(
                "Alice",
                "LIVES_IN",
                cities[i],
                &format!("06-{:02}T10", 1 + (i * 5) % 8),
                true,
            ),
            rel(
                "Alice",
                "WORKS_AT",
                "Acme",
                &format!("06-{:02}T11", 1 + i),
                true,
            ),
            rel(
                "Alice",
                "LIKES",
                likes[i],
                &format!("06-{:02}T10", 8 - i),
                false,
            ),
            rel(
                "Bob",
                "KNOWS",
                "Alice",
                &format!("06-{:02}T10", 1 + (i * 3) % 8),
                false,
            ),
            rel(
                "Bob",
                "LIKES",
                likes[(i + 3) % 8],
                &format!("06-{:02}T10", 1 + i),
                false,
            ),
        ],
        ..Default::default()
    };
    let jobs_of = |user: &str| -> Vec<ReflectionJob> {
        (0..8)
            .map(|i| {
                job(
                    user,
                    &format!("{user}-{i}"),
                    &format!("2023-06-{:02}T12:00:00Z", 1 + i),
                    &format!("G:{i}"),
                )
            })
            .collect()
    };
    let graph = |user: &str| {
        let mut facts: Vec<Value> = db
            .list_facts(user, 1000, 0)
            .unwrap()
            .iter()
            .map(|f| {
                json!([
                    f.subject,
                    f.predicate,
                    f.object,
                    f.fact,
                    f.valid_ms,
                    f.invalid_at,
                    f.evidence
                ])
            })
            .collect();
        facts.sort_by_key(|v| v.to_string());
        let mut entities: Vec<Value> = db
            .list_entities(user, 1000, 0)
            .unwrap()
            .iter()
            .map(|e| json!([e.name, e.kind, e.aliases]))
            .collect();
        entities.sort_by_key(|v| v.to_string());
        (
            facts,
            entities,
            json!(db.user_stats(user).unwrap())["semantic"].clone(),
        )
    };
    let seq = jobs_of("seq");
    let mut results = Vec::new();
    for (i, j) in seq.iter().enumerate() {
        db.add_job(j);
        results.push(db.commit_graph(j, &draft(i), 1.0).unwrap());
    }
    let want = graph("seq");
    // Alice, Bob, Acme, four cities, four liked things.
    assert_eq!(want.1.len(), 11, "{want:?}");
    for round in 0..4 {
        let user = format!("conc{round}");
        let jobs = jobs_of(&user);
        for j in &jobs {
            db.add_job(j);
        }
        let barrier = Arc::new(Barrier::new(jobs.len()));
        let threads: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(i, j)| {
                let (db, barrier, d) = (db.clone(), barrier.clone(), draft(i));
                std::thread::spawn(move || {
                    barrier.wait();
                    db.commit_graph(&j, &d, 1.0).unwrap()
                })
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            assert_eq!(t.join().unwrap(), results[i], "job {i}");
        }
        let got = graph(&user);
        let only = |a: &[Value], b: &[Value]| -> Vec<String> {
            a.iter()
                .filter(|x| !b.contains(x))
                .map(|x| x.to_string())
                .collect()
        };
        assert_eq!(
            (only(&got.0, &want.0), only(&want.0, &got.0)),
            (vec![], vec![]),
            "round {round}: facts only concurrent, only sequential"
        );
        assert_eq!(got, want, "round {round}");
        let twins: i64 = db
            .read(|c| {
                Ok(c.query_one(
                    "SELECT count(*) - count(DISTINCT norm_name) FROM entities WHERE user_id = $1",
                    &[&user],
                )?
                .get(0))
            })
            .unwrap();
        assert_eq!(twins, 0);
    }
}

/// A forget racing the tier commits of the same user leaves nothing behind: each
/// commit either ran before it (and its rows were deleted) or found its job gone.
#[test]
fn forget_racing_commits_leaves_nothing() {
    let Some(db) = test_db() else { return };
    let db = Arc::new(db);
    for round in 0..4 {
        let user = format!("race{round}");
        let jobs: Vec<ReflectionJob> = (0..8)
            .map(|i| {
                job(
                    &user,
                    &format!("{user}-{i}"),
                    "2023-06-01T12:00:00Z",
                    &format!("R:{i}"),
                )
            })
            .collect();
        for j in &jobs {
            db.add_turn(j, true);
        }
        let barrier = Arc::new(Barrier::new(jobs.len() + 1));
        let mut threads: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(i, j)| {
                let (db, barrier) = (db.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let d = GraphDraft {
                        entities: vec![entity("Zed", "person", &[])],
                        relations: vec![rel(
                            "Zed",
                            "LIKES",
                            &format!("thing {i}"),
                            "06-01T12",
                            false,
                        )],
                        ..Default::default()
                    };
                    db.commit_episode(
                        &j,
                        "Zed",
                        Some(&episode("Zed likes things.", "2023-06-01T12:00:00Z", 0.5)),
                        Some(&unit(i)),
                        "",
                        1.0,
                    )
                    .unwrap();
                    db.commit_graph(&j, &d, 1.0).unwrap();
                    db.commit_rules(
                        &j,
                        &[rule("things", &format!("Zed likes thing {i}."), 0.5)],
                        1.0,
                    )
                    .unwrap();
                })
            })
            .collect();
        let forget = {
            let (db, barrier, user) = (db.clone(), barrier.clone(), user.clone());
            std::thread::spawn(move || {
                barrier.wait();
                std::thread::sleep(std::time::Duration::from_millis(round * 3));
                db.forget_user(&user).unwrap();
            })
        };
        threads.push(forget);
        for t in threads {
            t.join().unwrap();
        }
        let left = json!(db.user_stats(&user).unwrap());
        assert_eq!(left["episodic"]["episodes"], json!(0), "{left}");
        assert_eq!(left["semantic"]["entities"], json!(0), "{left}");
        assert_eq!(left["semantic"]["facts"], json!(0), "{left}");
        assert_eq!(left["procedural"]["rules"], json!(0), "{left}");
    }
}

/// pgvector's index answers on PG16, with exact cosines, best first; without pgvector
/// (PG15, or `pgvector = off`) there is no index search and recall scans exactly.
#[test]
fn vector_search_uses_pgvector_when_present() {
    let Some(url) = test_url() else { return };
    let db = open_db(&url, "auto");
    let q = unit(3);
    let off = open_db(&url, "off");
    assert_eq!(off.vector_mode(), VectorMode::Exact);
    assert!(off.vector_search("v", &q, 5).unwrap().is_none());
    if !server_has_pgvector(&url) {
        assert_eq!(db.vector_mode(), VectorMode::Exact);
        assert!(db.vector_search("v", &q, 5).unwrap().is_none());
        // Episodes are still written (without the vector column).
        let j = job("v", "v1", "2023-05-01T10:00:00Z", "V:1");
        db.add_job(&j);
        let r = db
            .commit_episode(
                &j,
                "V",
                Some(&episode("x", "2023-05-01T10:00:00Z", 0.5)),
                Some(&unit(1)),
                "",
                1.0,
            )
            .unwrap();
        assert!(r["episode_id"].is_i64(), "{r}");
        assert_eq!(
            db.insert_synthetic_episodes("w", &[("y".into(), 1, unit(2))])
                .unwrap(),
            1
        );
        return;
    }
    assert_eq!(db.vector_mode(), VectorMode::Pgvector);
    // Five episodes of "v" through the tier commit, many of another user.
    let mut vecs = HashMap::new();
    for i in 0..5 {
        let j = job(
            "v",
            &format!("v{i}"),
            "2023-05-01T10:00:00Z",
            &format!("V:{i}"),
        );
        db.add_job(&j);
        let r = db
            .commit_episode(
                &j,
                "V",
                Some(&episode("x", "2023-05-01T10:00:00Z", 0.5)),
                Some(&unit(i)),
                "",
                1.0,
            )
            .unwrap();
        vecs.insert(r["episode_id"].as_i64().unwrap(), unit(i));
    }
    // "v" alone in the index: whichever plan, every vector of the user is found.
    let hits = db
        .vector_search("v", &q, 3)
        .unwrap()
        .expect("pgvector answers");
    assert_eq!(hits.len(), 3);
    let mut exact: Vec<(i64, f32)> = vecs.iter().map(|(id, v)| (*id, cosine(&q, v))).collect();
    exact.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (h, e) in hits.iter().zip(&exact) {
        assert_eq!(h.0, e.0, "{hits:?} vs {exact:?}");
        assert!((h.1 - e.1).abs() < 1e-5, "{hits:?} vs {exact:?}");
    }
    // k beyond the user's episodes: all of them.
    assert_eq!(db.vector_search("v", &q, 50).unwrap().unwrap().len(), 5);
    assert_eq!(db.vector_search("v", &q, 0).unwrap().unwrap().len(), 0);
    assert!(
        db.vector_search("nobody", &q, 5)
            .unwrap()
            .unwrap()
            .is_empty()
    );
    // The query's dimension is not the index's: no answer from the index.
    assert!(db.vector_search("v", &q[..4], 3).unwrap().is_none());
    // An episode the index does not hold (stored without `embedding_v`): the index
    // cannot answer for the user, recall falls back to its exact scan.
    db.write(|tx| {
        tx.execute(
            "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                   observed_ms, embedding, evidence, created_ms)
             VALUES ('v', 'v-raw', 'V', 't', 't', 0.5, '[]', 0, 0, $1, '[]', 0)",
            &[&vec_to_blob(&unit(4))],
        )?;
        Ok(())
    })
    .unwrap();
    assert!(db.vector_search("v", &q, 10).unwrap().is_none());
    assert_eq!(db.vector_search("v", &q, 3).unwrap().unwrap().len(), 3);
    // Another, big user. The HNSW index filters by user after its graph search, so it
    // can lose "v"'s few vectors among the big user's (the planner takes it even for a
    // small user when the rows are wide): then the answer is None (recall scans
    // exactly), never a partial list.
    let others: Vec<(String, i64, Vec<f32>)> = (0..300)
        .map(|i| (format!("other {i}"), i as i64, unit(i + 11)))
        .collect();
    assert_eq!(db.insert_synthetic_episodes("big", &others).unwrap(), 300);
    db.read(|c| Ok(c.batch_execute("ANALYZE episodes")?))
        .unwrap();
    for k in [3, 5, 50] {
        if let Some(hits) = db.vector_search("v", &q, k).unwrap() {
            assert_eq!(hits.len(), k.min(5), "{hits:?}");
            assert!(
                (hits[0].1 - exact[0].1).abs() < 1e-5,
                "{hits:?} vs {exact:?}"
            );
        }
    }
    // The big user is served by the HNSW index (the query's shape matches the index).
    db.read(|c| {
        let plan: Vec<String> = c
            .query(
                &format!(
                    "EXPLAIN SELECT id, 1 - (embedding_v::vector({DIM}) <=> $2::text::vector({DIM}))
                     FROM episodes WHERE user_id = $1 AND vector_dims(embedding_v) = {DIM}
                     ORDER BY embedding_v::vector({DIM}) <=> $2::text::vector({DIM}) LIMIT $3"
                ),
                &[&"big", &vector_text(&q), &10i64],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            plan.iter()
                .any(|l| l.contains(&format!("episodes_hnsw_{DIM}"))),
            "{plan:#?}"
        );
        Ok(())
    })
    .unwrap();
    let big = db
        .vector_search("big", &q, 10)
        .unwrap()
        .expect("the index answers");
    assert_eq!(big.len(), 10);
    assert!(big.windows(2).all(|w| w[0].1 >= w[1].1), "{big:?}");
    // Exact cosines of the hits, and (HNSW is approximate) most of the exact top 10.
    let vec_of: HashMap<i64, Vec<f32>> = db
        .list_episodes("big", 1000, 0)
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.id,
                unit(e.text["other ".len()..].parse::<usize>().unwrap() + 11),
            )
        })
        .collect();
    for (id, sim) in &big {
        assert!((cosine(&q, &vec_of[id]) - sim).abs() < 1e-5, "{big:?}");
    }
    let mut exact: Vec<(i64, f32)> = vec_of.iter().map(|(id, v)| (*id, cosine(&q, v))).collect();
    exact.sort_by(|a, b| b.1.total_cmp(&a.1));
    let found = big
        .iter()
        .filter(|h| exact[..10].iter().any(|e| e.0 == h.0))
        .count();
    assert!(found >= 8, "{big:?} vs {:?}", &exact[..10]);
}
