//! The dashboard's API and its pages: `GET /api/users`, `GET /api/me`, the turn lookup
//! (`GET /api/memory/turn/{user_id}`), and the embedded files at `/ui`. Runs on SQLite, and
//! on PostgreSQL with `REFLECTOR_TEST_DATABASE_URL` (scripts/test.sh runs both). The pages
//! in a real browser: scripts/ui.sh.

mod common;

use common::*;
use reflector::api::auth::ApiKeys;
use serde_json::{Value, json};

const ADMIN: &str = "dash-admin-key-0123456789";
const ANA: &str = "dash-key-for-ana-0123456789";

async fn get_as(t: &TestServer, key: Option<&str>, path: &str) -> (u16, Value) {
    let mut r = t.http.get(format!("{}{path}", t.base));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Posts a turn for `user` with a LoCoMo-style dia_id and waits for its job; returns the
/// turn's job id.
async fn reflected_turn(t: &TestServer, user: &str, id: &str, dia: &str, text: &str) -> String {
    let (s, r) = t
        .turn(
            user,
            text,
            "2024-03-01T10:00:00Z",
            json!({"interaction_id": id, "metadata": {"speaker": user, "dia_id": dia}}),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let job = r["reflection_job_id"].as_str().unwrap().to_string();
    let j = t.wait_job(&job).await;
    assert_eq!(j["state"], "completed", "{j}");
    job
}

#[tokio::test]
async fn users_lists_every_user_with_the_counts_of_their_stats_searchable_and_paged() {
    let t = start().await;
    reflected_turn(
        &t,
        "ana",
        "a1",
        "D1:1",
        "I moved to Lisbon and I have a dog named Rex.",
    )
    .await;
    reflected_turn(&t, "ana", "a2", "D1:2", "I always prefer short answers.").await;
    reflected_turn(&t, "Anabel", "b1", "D1:1", "My sister Inês lives in Porto.").await;
    reflected_turn(&t, "carl", "c1", "D1:1", "I work as a nurse in Leeds.").await;

    let (s, v) = t.get("/api/users").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total"], 3, "{v}");
    let ids: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["Anabel", "ana", "carl"],
        "by user id ascending (bytewise)"
    );
    // Each user's counts are those of its stats.
    for u in v["users"].as_array().unwrap() {
        let id = u["user_id"].as_str().unwrap();
        let (_, st) = t.get(&format!("/api/memory/stats/{id}")).await;
        assert_eq!(u["turns"], st["short_term"]["turns"], "{u} {st}");
        assert_eq!(u["episodes"], st["episodic"]["episodes"], "{u} {st}");
        assert_eq!(u["entities"], st["semantic"]["entities"], "{u} {st}");
        assert_eq!(u["facts"], st["semantic"]["facts"], "{u} {st}");
        assert_eq!(u["rules"], st["procedural"]["rules"], "{u} {st}");
        assert_eq!(
            u["active_rules"], st["procedural"]["active_rules"],
            "{u} {st}"
        );
        assert_eq!(u["jobs_waiting"], 0, "{u}");
        assert_eq!(u["jobs_dead"], 0, "{u}");
        assert!(u["last_activity"].as_str().unwrap().ends_with('Z'), "{u}");
    }
    assert_eq!(v["users"][1]["turns"], 2);
    assert!(v["users"][1]["episodes"].as_i64().unwrap() >= 1, "{v}");

    // Search: case-insensitive, anywhere in the id.
    let (_, v) = t.get("/api/users?q=ANA").await;
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(v["users"].as_array().unwrap().len(), 2);
    let (_, v) = t.get("/api/users?q=%25").await;
    assert_eq!(v["total"], 0, "'%' is text, not a pattern: {v}");
    // Paging.
    let (_, v) = t.get("/api/users?limit=1&offset=1").await;
    assert_eq!(v["total"], 3);
    assert_eq!(v["users"].as_array().unwrap().len(), 1);
    assert_eq!(v["users"][0]["user_id"], "ana");
    for bad in ["limit=0", "offset=-1", "q=%01"] {
        let (s, e) = t.get(&format!("/api/users?{bad}")).await;
        assert_eq!(s, 422, "{bad}: {e}");
        assert_eq!(e["field"], bad.split('=').next().unwrap(), "{e}");
    }

    // Forgetting a user takes it off the list.
    let r = t
        .http
        .delete(format!("{}/api/memory/user/carl", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = t.get("/api/users").await;
    assert_eq!(v["total"], 2, "{v}");
    t.stop().await;
}

#[tokio::test]
async fn me_says_what_a_key_may_see_and_users_is_for_admins_only() {
    let t = start_with(
        |c| c.api_keys = ApiKeys::parse(&format!("{ADMIN}:admin,{ANA}:user=ana|ana.work")).unwrap(),
        Default::default(),
    )
    .await;
    let (s, v) = get_as(&t, Some(ADMIN), "/api/me").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["access"], "admin");
    assert_eq!(v["all_users"], true);
    assert_eq!(v["users"], Value::Null);
    assert_eq!(v["key_id"].as_str().unwrap().len(), 8);

    let (s, v) = get_as(&t, Some(ANA), "/api/me").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["access"], "users");
    assert_eq!(v["all_users"], false);
    assert_eq!(v["users"], json!(["ana", "ana.work"]));

    assert_eq!(get_as(&t, None, "/api/me").await.0, 401);
    assert_eq!(
        get_as(&t, Some("not-a-key-0123456789"), "/api/me").await.0,
        401
    );
    assert_eq!(get_as(&t, Some(ADMIN), "/api/users").await.0, 200);
    let (s, e) = get_as(&t, Some(ANA), "/api/users").await;
    assert_eq!(s, 403, "{e}");
    // The turn lookup is a user route: the key's users only.
    assert_eq!(
        get_as(&t, Some(ANA), "/api/memory/turn/bob?evidence=x")
            .await
            .0,
        403
    );
    assert_eq!(
        get_as(&t, Some(ANA), "/api/memory/turn/ana?evidence=x")
            .await
            .0,
        404
    );
    t.stop().await;

    let open = start().await;
    let (s, v) = open.get("/api/me").await;
    assert_eq!(s, 200);
    assert_eq!(v["access"], "open");
    assert_eq!(v["all_users"], true);
    open.stop().await;
}

#[tokio::test]
async fn a_turn_is_found_by_dia_id_interaction_id_or_job_id_and_a_pruned_one_says_so() {
    let t = start().await;
    let job = reflected_turn(
        &t,
        "ana",
        "chat-1-turn-1",
        "D3:7",
        "I moved to Lisbon and I have a dog named Rex.",
    )
    .await;
    reflected_turn(
        &t,
        "bob",
        "chat-2-turn-1",
        "D3:7",
        "My brother lives in Oslo.",
    )
    .await;

    for q in [
        "evidence=D3:7",
        "evidence=chat-1-turn-1",
        &format!("job_id={job}"),
    ] {
        let (s, v) = t.get(&format!("/api/memory/turn/ana?{q}")).await;
        assert_eq!(s, 200, "{q}: {v}");
        assert_eq!(v["status"], "stored", "{v}");
        assert_eq!(v["turn"]["interaction_id"], "chat-1-turn-1", "{v}");
        assert_eq!(v["turn"]["user_id"], "ana", "{v}");
        assert_eq!(v["turn"]["reflection_job_id"], job.as_str(), "{v}");
        assert!(
            v["turn"]["user_message"]
                .as_str()
                .unwrap()
                .contains("Lisbon")
        );
    }
    // Every id the user's episodes carry as evidence finds its turn.
    let (_, eps) = t.get("/api/memory/episodic/ana").await;
    let ev = eps["episodes"][0]["evidence"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = t.get(&format!("/api/memory/turn/ana?evidence={ev}")).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("stored")), "{v}");

    // Another user's turn is not reachable through this user.
    let (s, v) = t.get("/api/memory/turn/bob?evidence=chat-1-turn-1").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"], "not_found");
    let (s, _) = t.get(&format!("/api/memory/turn/bob?job_id={job}")).await;
    assert_eq!(s, 404);
    // Explicit memories never had a turn.
    let (s, v) = t.get("/api/memory/turn/ana?job_id=manual:123").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("no_turn")), "{v}");
    // ... nor does their evidence (`manual:<edit id>`), whether or not memories cite it.
    let (s, v) = t.get("/api/memory/turn/ana?evidence=manual:1").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("no_turn")), "{v}");

    for (q, field) in [
        ("", "evidence"),
        ("evidence=a&job_id=b", "job_id"),
        ("evidence=", "evidence"),
    ] {
        let (s, e) = t.get(&format!("/api/memory/turn/ana?{q}")).await;
        assert_eq!(s, 422, "{q}: {e}");
        assert_eq!(e["field"], field, "{q}: {e}");
    }

    // Retention removes the reflected turns; the memories made from them remain and cite them.
    let store = t.svc.as_ref().unwrap().store.clone();
    let cutoff = chrono::Utc::now().timestamp_millis() + 1000;
    let (_, turns) = store.run(move |s| s.prune(cutoff)).await.unwrap();
    assert!(turns >= 2, "{turns}");
    // (Memories cite a turn by its dia_id when it has one, so that is what stays known.)
    for q in ["evidence=D3:7", &format!("job_id={job}")] {
        let (s, v) = t.get(&format!("/api/memory/turn/ana?{q}")).await;
        assert_eq!(s, 200, "{q}: {v}");
        assert_eq!(v["status"], "pruned", "{q}: {v}");
        assert_eq!(v["turn"], Value::Null);
        assert!(v["message"].as_str().unwrap().contains("retention"), "{v}");
    }
    let (s, _) = t.get("/api/memory/turn/ana?evidence=D9:9").await;
    assert_eq!(s, 404);
    t.stop().await;
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_with_a_strict_content_security_policy() {
    let t = start_with(
        |c| c.api_keys = ApiKeys::parse(&format!("{ADMIN}:admin")).unwrap(),
        Default::default(),
    )
    .await;
    // Public like /docs: the files hold no data.
    let r = t.http.get(format!("{}/ui/", t.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"<script type="module" src="app.js">"#),
        "{html}"
    );
    for (name, ctype, body) in reflector::api::ui::ASSETS {
        let r = t
            .http
            .get(format!("{}/ui/{name}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.headers()["content-type"].to_str().unwrap(), *ctype);
        assert_eq!(r.text().await.unwrap(), *body);
        // No file reaches out: no CDN, no absolute URL to load.
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{name}"
        );
        // Stored text is never parsed as HTML.
        assert!(
            !body.contains("innerHTML") && !body.contains("insertAdjacentHTML"),
            "{name}"
        );
    }
    let (s, e) = t.get("/ui/nope.js").await;
    assert_eq!(s, 404, "{e}");
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/ui", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/ui/");
    t.stop().await;
}

#[tokio::test]
async fn context_names_the_items_max_tokens_left_out() {
    let t = start().await;
    for (i, text) in [
        "My sister Lucia lives in Porto and works as an architect.",
        "I always prefer short answers without emojis.",
        "Lucia and I went hiking in the Alps last summer.",
        "I adopted a cat named Miso from the shelter.",
        "Lucia is learning to play the cello.",
    ]
    .iter()
    .enumerate()
    {
        reflected_turn(&t, "eve", &format!("e{i}"), &format!("D1:{i}"), text).await;
    }
    let q = "/api/memory/context/eve?query=Where%20does%20Lucia%20live&limit=10";
    let (_, full) = t.get(q).await;
    let tokens = full["context_tokens"].as_u64().unwrap();
    assert!(
        full.get("omitted_items").is_none(),
        "only with max_tokens: {full}"
    );

    let (s, cut) = t.get(&format!("{q}&max_tokens={}", tokens / 2)).await;
    assert_eq!(s, 200, "{cut}");
    let left = cut["omitted_items"].as_array().unwrap();
    assert_eq!(left.len() as u64, cut["omitted"].as_u64().unwrap(), "{cut}");
    assert!(!left.is_empty(), "{cut}");
    let block = cut["context"].as_str().unwrap();
    // Each item left out is one of the candidates: a ranked memory, a standing rule or a
    // recent turn of the full answer, with its text.
    for item in left {
        let (tier, id, text) = (&item["tier"], &item["id"], &item["text"]);
        let known = full["memories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| &m["tier"] == tier && &m["id"] == id && &m["text"] == text)
            || full["rules"].as_array().unwrap().iter().any(|r| {
                tier == "procedural"
                    && Some(r["id"].as_i64().unwrap().to_string().as_str()) == id.as_str()
                    && &r["statement"] == text
            })
            || full["short_term"].as_array().unwrap().iter().any(|t| {
                tier == "short_term" && &t["interaction_id"] == id && &t["user_message"] == text
            });
        assert!(known, "{item} / {full}");
    }
    // Every ranked memory not named as left out is in the block (one named may still show
    // there: a recent turn left out reads like the episode made from it).
    for m in cut["memories"].as_array().unwrap() {
        if !left
            .iter()
            .any(|i| i["tier"] == m["tier"] && i["id"] == m["id"])
        {
            assert!(block.contains(m["text"].as_str().unwrap()), "{m} / {block}");
        }
    }
    let (_, same) = t.get(&format!("{q}&max_tokens={tokens}")).await;
    assert_eq!(same["omitted_items"], json!([]), "{same}");
    t.stop().await;
}
