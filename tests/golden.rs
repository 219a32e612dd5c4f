//! Golden tests of memory quality: short dialogues written for this project, each checking
//! one promise of the tiers (issue: "Memory that remembers what matters").
//!
//! The server runs the traditional path (reflection inside the request), so each turn is
//! fully reflected when its POST returns and the order of processing is the order of posting.

mod common;

use std::collections::BTreeSet;

use common::*;
use reflector::server::Options;
use serde_json::{Value, json};

async fn traditional() -> TestServer {
    start_with(|c| c.fast_mode = false, Options::default()).await
}

async fn say(t: &TestServer, user: &str, speaker: &str, text: &str, ts: &str) -> Value {
    let (s, r) = t
        .turn(user, text, ts, json!({"metadata": {"speaker": speaker}}))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "completed", "{r}");
    r
}

/// The graph as a set of (subject, predicate, object, valid_at, invalid_at) by names.
async fn graph(t: &TestServer, user: &str) -> BTreeSet<(String, String, String, String, String)> {
    let (_, v) = t
        .get(&format!("/api/memory/semantic/{user}?limit=500"))
        .await;
    v["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (
                s("subject"),
                s("predicate"),
                s("object"),
                s("valid_at"),
                s("invalid_at"),
            )
        })
        .collect()
}

fn valid(g: &BTreeSet<(String, String, String, String, String)>, p: &str) -> Vec<String> {
    g.iter()
        .filter(|f| f.1 == p && f.4.is_empty())
        .map(|f| f.2.clone())
        .collect()
}

const MOVE: [(&str, &str); 3] = [
    (
        "I live in Paris and I work at Atelier Nord.",
        "2024-01-10T10:00:00Z",
    ),
    ("I adopted a cat named Miso.", "2024-03-01T10:00:00Z"),
    (
        "I moved to Berlin last week, it is lovely.",
        "2024-06-10T10:00:00Z",
    ),
];

#[tokio::test]
async fn a_move_invalidates_only_the_old_residence() {
    let t = traditional().await;
    for (text, ts) in MOVE {
        say(&t, "ana", "Ana", text, ts).await;
    }
    let g = graph(&t, "ana").await;
    assert_eq!(valid(&g, "LIVES_IN"), vec!["Berlin"], "{g:?}");
    let paris = g
        .iter()
        .find(|f| f.1 == "LIVES_IN" && f.2 == "Paris")
        .expect("Paris kept as history");
    assert!(
        !paris.4.is_empty(),
        "Paris is invalid from the move: {paris:?}"
    );
    assert!(
        paris.4.starts_with("2024-06-0"),
        "invalid_at = when the move happened (last week): {paris:?}"
    );
    assert_eq!(
        valid(&g, "WORKS_AT"),
        vec!["Atelier Nord"],
        "unrelated facts stay valid: {g:?}"
    );
    assert_eq!(valid(&g, "HAS_PET"), vec!["Miso"], "{g:?}");
    // Recall shows only the current residence unless asked for history.
    let (_, ctx) = t
        .get("/api/memory/context/ana?query=Where%20does%20Ana%20live")
        .await;
    let facts: Vec<&str> = ctx["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["object"].as_str().unwrap())
        .collect();
    assert!(
        facts.contains(&"Berlin") && !facts.contains(&"Paris"),
        "{facts:?}"
    );
    assert_eq!(
        ctx["memories"][0]["tier"], "semantic",
        "the current fact ranks first: {ctx}"
    );
    let (_, ctx) = t
        .get("/api/memory/context/ana?query=Where%20does%20Ana%20live&include_invalid=true")
        .await;
    let facts: Vec<&str> = ctx["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["object"].as_str().unwrap())
        .collect();
    assert!(facts.contains(&"Paris"), "{facts:?}");
    t.stop().await;
}

#[tokio::test]
async fn processing_order_does_not_change_the_graph() {
    let t = traditional().await;
    for (text, ts) in MOVE {
        say(&t, "forward", "Ana", text, ts).await;
    }
    for (text, ts) in MOVE.iter().rev() {
        say(&t, "reverse", "Ana", text, ts).await;
    }
    let (f, r) = (graph(&t, "forward").await, graph(&t, "reverse").await);
    assert!(!f.is_empty());
    assert_eq!(f, r);
    // A restatement merges into its run, and a statement processed later that falls between
    // two restatements splits the run again: Lisbon, Porto, Lisbon in any order.
    let moves = [
        ("I live in Lisbon.", "2024-01-01T10:00:00Z"),
        ("I live in Porto.", "2024-02-01T10:00:00Z"),
        ("I live in Lisbon.", "2024-03-01T10:00:00Z"),
    ];
    for order in [[0, 1, 2], [0, 2, 1], [2, 1, 0]] {
        let user = format!("moves-{}{}{}", order[0], order[1], order[2]);
        for i in order {
            say(&t, &user, "Ana", moves[i].0, moves[i].1).await;
        }
        let g = graph(&t, &user).await;
        let chain: Vec<(&str, &str, &str)> = g
            .iter()
            .map(|f| {
                (
                    f.2.as_str(),
                    &f.3[..10],
                    if f.4.is_empty() { "" } else { &f.4[..10] },
                )
            })
            .collect();
        assert_eq!(
            chain,
            vec![
                ("Lisbon", "2024-01-01", "2024-02-01"),
                ("Lisbon", "2024-03-01", ""),
                ("Porto", "2024-02-01", "2024-03-01")
            ],
            "order {order:?}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn the_same_turn_twice_gives_one_fact_and_one_episode() {
    let t = start().await;
    let body = json!({"interaction_id": "dup-1", "metadata": {"speaker": "Ana"}});
    let (_, a) = t
        .turn(
            "ana",
            "I live in Lisbon.",
            "2024-01-01T00:00:00Z",
            body.clone(),
        )
        .await;
    t.wait_job(a["reflection_job_id"].as_str().unwrap()).await;
    let (_, b) = t
        .turn("ana", "I live in Lisbon.", "2024-01-01T00:00:00Z", body)
        .await;
    assert_eq!(a["reflection_job_id"], b["reflection_job_id"]);
    // And the same statement in a new turn: still one LIVES_IN fact, one more episode.
    let (_, c) = t
        .turn(
            "ana",
            "I live in Lisbon.",
            "2024-02-01T00:00:00Z",
            json!({"metadata": {"speaker": "Ana"}}),
        )
        .await;
    t.wait_job(c["reflection_job_id"].as_str().unwrap()).await;
    let (_, st) = t.get("/api/memory/stats/ana").await;
    assert_eq!(st["episodic"]["episodes"], 2, "{st}");
    let g = graph(&t, "ana").await;
    assert_eq!(valid(&g, "LIVES_IN"), vec!["Lisbon"], "{g:?}");
    t.stop().await;
}

#[tokio::test]
async fn my_mom_sarah_then_sarah_then_mom_is_one_entity() {
    let t = traditional().await;
    say(
        &t,
        "ana",
        "Ana",
        "My mom Sarah is visiting me next week.",
        "2024-01-01T10:00:00Z",
    )
    .await;
    say(
        &t,
        "ana",
        "Ana",
        "Sarah loves the Berlin zoo.",
        "2024-01-02T10:00:00Z",
    )
    .await;
    say(
        &t,
        "ana",
        "Ana",
        "I took mom to the opera yesterday.",
        "2024-01-09T10:00:00Z",
    )
    .await;
    let (_, v) = t.get("/api/memory/semantic/ana?limit=500").await;
    let sarahs: Vec<&Value> = v["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let n = e["name"].as_str().unwrap().to_lowercase();
            n == "sarah" || n == "mom" || n == "my mom"
        })
        .collect();
    assert_eq!(sarahs.len(), 1, "{v}");
    assert!(
        sarahs[0]["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "mom"),
        "{v}"
    );
    // A query that says "mom" finds the facts about Sarah.
    let (_, ctx) = t
        .get("/api/memory/context/ana?query=What%20about%20mom")
        .await;
    assert!(
        ctx["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["subject"] == "Sarah" || f["object"] == "Sarah"),
        "{ctx}"
    );
    t.stop().await;
}

#[tokio::test]
async fn relative_dates_cross_month_and_year_boundaries() {
    let t = traditional().await;
    let cases = [
        (
            "I ran my first marathon yesterday.",
            "2023-03-01T10:00:00Z",
            "28 February 2023",
        ),
        (
            "I started painting last month.",
            "2024-01-05T10:00:00Z",
            "December 2023",
        ),
        ("We got married last year.", "2024-01-05T10:00:00Z", "2023"),
        (
            "I visited Rome last Friday.",
            "2024-01-01T10:00:00Z",
            "29 December 2023",
        ),
        (
            "My exam is next month.",
            "2023-12-20T10:00:00Z",
            "January 2024",
        ),
    ];
    for (i, (text, ts, want)) in cases.iter().enumerate() {
        let user = format!("d{i}");
        say(&t, &user, "Ana", text, ts).await;
        let (_, ep) = t.get(&format!("/api/memory/episodic/{user}")).await;
        let got = ep["episodes"][0]["text"].as_str().unwrap();
        assert!(got.contains(want), "{text:?} at {ts}: {got}");
    }
    t.stop().await;
}

#[tokio::test]
async fn small_talk_is_skipped_but_this_and_high_are_not_hi() {
    let t = traditional().await;
    for (text, kept) in [
        ("Hi!", false),
        ("Hey, how are you?", false),
        ("Thanks, bye!", false),
        ("This is my new high score in chess.", true),
        ("Hi, I just moved to Berlin.", true),
        ("History is my favourite subject.", true),
    ] {
        let r = say(&t, "talk", "Ana", text, "2024-01-01T10:00:00Z").await;
        let ep = &r["results"]["tiers"][0];
        assert_eq!(ep["tier"], "episodic");
        assert_eq!(
            !ep["result"]["episode_id"].is_null(),
            kept,
            "{text:?}: {ep}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn a_newer_rule_supersedes_the_older_one_of_its_topic() {
    let t = traditional().await;
    say(
        &t,
        "ana",
        "Ana",
        "Please always answer me in Spanish.",
        "2024-01-01T10:00:00Z",
    )
    .await;
    say(&t, "ana", "Ana", "I'm vegetarian.", "2024-01-02T10:00:00Z").await;
    say(
        &t,
        "ana",
        "Ana",
        "From now on please answer me in German.",
        "2024-02-01T10:00:00Z",
    )
    .await;
    let (_, v) = t.get("/api/memory/procedural/ana").await;
    let active: Vec<&str> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["statement"].as_str().unwrap())
        .collect();
    assert_eq!(active.len(), 2, "{active:?}");
    assert!(active.iter().any(|s| s.contains("German")), "{active:?}");
    assert!(
        active.iter().any(|s| s.contains("vegetarian")),
        "{active:?}"
    );
    assert!(!active.iter().any(|s| s.contains("Spanish")), "{active:?}");
    let (_, all) = t
        .get("/api/memory/procedural/ana?include_superseded=true")
        .await;
    let spanish = all["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["statement"].as_str().unwrap().contains("Spanish"))
        .unwrap();
    assert!(!spanish["superseded_by"].is_null(), "{spanish}");
    // The same two rules stated in reverse order of time give the same active rule.
    say(
        &t,
        "rev",
        "Ana",
        "From now on please answer me in German.",
        "2024-02-01T10:00:00Z",
    )
    .await;
    say(
        &t,
        "rev",
        "Ana",
        "Please always answer me in Spanish.",
        "2024-01-01T10:00:00Z",
    )
    .await;
    let (_, v) = t.get("/api/memory/procedural/rev").await;
    let active: Vec<&str> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["statement"].as_str().unwrap())
        .collect();
    assert_eq!(active.len(), 1, "{active:?}");
    assert!(active[0].contains("German"), "{active:?}");
    t.stop().await;
}

#[tokio::test]
async fn no_memory_crosses_between_users() {
    let t = traditional().await;
    say(
        &t,
        "u1",
        "Ana",
        "My secret project is called Bluebird.",
        "2024-01-01T10:00:00Z",
    )
    .await;
    say(&t, "u2", "Ben", "I like turtles.", "2024-01-01T10:00:00Z").await;
    let (_, ctx) = t
        .get("/api/memory/context/u2?query=secret%20project%20Bluebird&limit=50")
        .await;
    let text = ctx.to_string();
    assert!(
        !text.contains("Bluebird") || text.matches("Bluebird").count() == 1,
        "only the echoed query may name it: {text}"
    );
    assert_eq!(ctx["query"], "secret project Bluebird");
    for m in ctx["memories"].as_array().unwrap() {
        assert!(!m["text"].as_str().unwrap().contains("Bluebird"), "{m}");
    }
    t.stop().await;
}

#[tokio::test]
async fn an_answer_is_found_by_the_words_of_its_question() {
    // No window: the answer must be found on its own, through its question's words.
    let t = start_with(
        |c| {
            c.fast_mode = false;
            c.recall_window = 0;
        },
        Options::default(),
    )
    .await;
    say(
        &t,
        "pair",
        "Ben",
        "What did you paint for the gallery show?",
        "2024-05-01T10:00:00Z",
    )
    .await;
    say(
        &t,
        "pair",
        "Ana",
        "A sunrise over the lake, in watercolour.",
        "2024-05-01T10:00:01Z",
    )
    .await;
    for (i, filler) in [
        "I had pasta for lunch.",
        "The train was late again.",
        "My sister called me.",
    ]
    .iter()
    .enumerate()
    {
        say(
            &t,
            "pair",
            "Ana",
            filler,
            &format!("2024-05-02T10:00:0{i}Z"),
        )
        .await;
    }
    let (_, ctx) = t
        .get(
            "/api/memory/context/pair?query=What%20did%20Ana%20paint%20for%20the%20gallery&limit=3",
        )
        .await;
    let eps = ctx["episodes"].as_array().unwrap();
    let rank = eps
        .iter()
        .position(|e| e["text"].as_str().unwrap().contains("sunrise"));
    assert!(
        rank.is_some_and(|r| r <= 1),
        "the answer ranks with its question: {ctx}"
    );
    t.stop().await;
}
