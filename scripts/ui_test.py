"""The dashboard (/ui) in headless Chromium (Debian's), driven by Playwright, against a live
server that scripts/ui.sh prepares: one LoCoMo conversation (REFLECTOR_UI_USER), the user `bulk`
with 10,000 episodes, the user `ghost` with dead jobs, and the user `markup` with a turn holding
`<script>` and `<img onerror>`.

Environment (all required; a missing or unreachable server FAILS the suite, it never skips):
REFLECTOR_UI_URL, REFLECTOR_UI_ADMIN_KEY, REFLECTOR_UI_USER_KEY (limited to REFLECTOR_UI_USER),
REFLECTOR_UI_USER, REFLECTOR_UI_CHROMIUM (the browser), REFLECTOR_UI_AXE (axe.min.js).
REFLECTOR_UI_SCREENSHOTS=DIR writes one PNG of each page there (docs/dashboard holds them).
"""

import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import sync_playwright, Page, expect

ENV = ("REFLECTOR_UI_URL", "REFLECTOR_UI_ADMIN_KEY", "REFLECTOR_UI_USER_KEY", "REFLECTOR_UI_USER",
       "REFLECTOR_UI_CHROMIUM", "REFLECTOR_UI_AXE")
BULK = "bulk"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        pytest.fail(f"{name} is not set: run scripts/ui.sh, which starts the server and sets it")
    return v


def call(path: str, key: str | None = None, method: str = "GET", body=None):
    """(status, JSON) of an API call with the admin key (or `key`)."""
    req = urllib.request.Request(env("REFLECTOR_UI_URL") + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("authorization", "Bearer " + (key or env("REFLECTOR_UI_ADMIN_KEY")))
    if body is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def fmt_time(iso):
    """As the page shows an RFC 3339 time (src/ui/dom.js fmtTime)."""
    if not iso:
        return "—"
    return re.sub(r"\.\d+Z$", "Z", iso.replace("T", " "))


def fmt_value(v):
    if v is None:
        return "—"
    if isinstance(v, list):
        return ", ".join(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@pytest.fixture(scope="session", autouse=True)
def server():
    for name in ENV:
        env(name)
    try:
        with urllib.request.urlopen(env("REFLECTOR_UI_URL") + "/api/reflection/health", timeout=10) as r:
            assert r.status == 200
    except Exception as e:  # noqa: BLE001 - any failure to reach it fails the suite
        pytest.fail(f"no server answers at {env('REFLECTOR_UI_URL')}: {e}")


@pytest.fixture(scope="session")
def context():
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        # bypass_csp: axe is injected as a script tag. It also means the text-only check below
        # does not lean on the page's Content-Security-Policy: markup must never be parsed at all.
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=env("REFLECTOR_UI_CHROMIUM"), headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 860}, bypass_csp=True)
        yield ctx
        ctx.close()


def open_page(context, key: str | None, hash_: str) -> Page:
    """A new tab (its own sessionStorage) with `key` stored as the page would store it."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    if key:
        page.add_init_script(f"sessionStorage.setItem('reflector.key', {json.dumps(key)})")
    page.goto(env("REFLECTOR_UI_URL") + "/ui/" + hash_)
    return page


def first_row(page: Page, timeout: float = 20_000):
    """Waits for the first data row (or the page's 'nothing here' text); returns seconds taken."""
    t0 = time.perf_counter()
    page.wait_for_selector("[data-row], main .empty", timeout=timeout)
    return time.perf_counter() - t0


def rows(page: Page, scope: str = "main") -> list[dict]:
    """Each data row (within `scope`) as {data-id, field: text}."""
    return page.eval_on_selector_all(scope + " [data-row]", """rs => rs.map(r => {
        const o = {'data-id': r.dataset.id};
        for (const c of r.querySelectorAll('[data-field]')) if (!(c.dataset.field in o)) o[c.dataset.field] = c.textContent;
        return o; })""")


def shot(page: Page, name: str):
    d = os.environ.get("REFLECTOR_UI_SCREENSHOTS")
    if d:
        os.makedirs(d, exist_ok=True)
        page.screenshot(path=os.path.join(d, f"{name}.png"))


def compare(page_rows, api_items, id_of, fields):
    """The page's rows are the API's items, in order, field by field (`fields`: name → how
    the page shows the item's value)."""
    assert [r["data-id"] for r in page_rows] == [str(id_of(x)) for x in api_items]
    for r, x in zip(page_rows, api_items):
        for name, show in fields.items():
            assert r[name] == show(x), f"{name} of {id_of(x)}: page {r[name]!r}, API {show(x)!r}"


# ------------------------------------------------------------------ access


def test_a_server_with_keys_asks_for_one_and_keeps_it_in_this_tab_only(context):
    page = open_page(context, None, "#/users")
    key = page.get_by_label("API key (admin, or limited to some users)")
    expect(key).to_be_visible()
    key.fill(env("REFLECTOR_UI_ADMIN_KEY"))
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#who")).to_contain_text("Admin key")
    first_row(page)
    assert page.evaluate("sessionStorage.getItem('reflector.key')") == env("REFLECTOR_UI_ADMIN_KEY")
    assert page.evaluate("localStorage.length") == 0
    assert context.cookies() == []
    # Another tab does not have it.
    other = open_page(context, None, "#/users")
    expect(other.get_by_label("API key (admin, or limited to some users)")).to_be_visible()
    # A wrong key is refused, and said so.
    other.get_by_label("API key (admin, or limited to some users)").fill("not-a-key-at-all-0123456789")
    other.get_by_role("button", name="Use key").click()
    expect(other.get_by_text("The server refused this key")).to_be_visible()
    page.close()
    other.close()


def test_a_user_key_sees_only_its_users_and_is_told_what_it_cannot_see(context):
    user = env("REFLECTOR_UI_USER")
    page = open_page(context, env("REFLECTOR_UI_USER_KEY"), "#/users")
    first_row(page)
    assert [r["user_id"] for r in rows(page)] == [user]
    expect(page.get_by_role("note")).to_contain_text("cannot see any other user")
    expect(page.locator("#who")).to_contain_text(f"only {user}")
    shot(page, "user-key")
    # Another user's memory: refused by the API, and nothing of it on the page.
    page.goto(env("REFLECTOR_UI_URL") + f"/ui/#/u/{BULK}/memory/episodic")
    expect(page.get_by_role("alert")).to_contain_text("not allowed to access user")
    assert page.locator("main [data-row]").count() == 0
    assert "episode 0" not in page.inner_text("main")
    page.goto(env("REFLECTOR_UI_URL") + "/ui/#/ops")
    expect(page.get_by_role("note")).to_contain_text("need an admin key")
    assert page.locator("main [data-row]").count() == 0
    # The key itself cannot reach another user through the API either.
    assert call(f"/api/memory/episodic/{BULK}", key=env("REFLECTOR_UI_USER_KEY"))[0] == 403
    assert call("/api/users", key=env("REFLECTOR_UI_USER_KEY"))[0] == 403
    page.close()


# ------------------------------------------------------------------ every page = the API


def tier_pages(user):
    u = q(user)
    return {
        "users": ("#/users", lambda: call("/api/users?limit=50")[1]["users"], lambda x: x["user_id"], {
            "user_id": lambda x: x["user_id"], "turns": lambda x: str(x["turns"]), "episodes": lambda x: str(x["episodes"]),
            "facts": lambda x: str(x["facts"]), "rules": lambda x: str(x["rules"]),
            "jobs_waiting": lambda x: str(x["jobs_waiting"]), "jobs_dead": lambda x: str(x["jobs_dead"]),
            "last_activity": lambda x: fmt_time(x["last_activity"])}),
        "short-term": (f"#/u/{u}/memory/short_term", lambda: call(f"/api/memory/short-term/{u}?limit=50")[1]["turns"],
                       lambda x: x["interaction_id"], {
            "timestamp": lambda x: fmt_time(x["timestamp"]), "session_id": lambda x: x["session_id"],
            "speaker": lambda x: x["metadata"].get("speaker", "—"), "user_message": lambda x: x["user_message"],
            "evidence": lambda x: x["metadata"].get("dia_id", x["interaction_id"]),
            "reflected": lambda x: "yes" if x["reflected"] else "not yet"}),
        "episodic": (f"#/u/{u}/memory/episodic", lambda: call(f"/api/memory/episodic/{u}?limit=50")[1]["episodes"],
                     lambda x: x["id"], {
            "occurred_at": lambda x: fmt_time(x["occurred_at"]), "text": lambda x: x["text"],
            "importance": lambda x: f"{x['importance']:.2f}", "tags": lambda x: fmt_value(x["tags"])}),
        "semantic": (f"#/u/{u}/memory/semantic", lambda: call(f"/api/memory/semantic/{u}?limit=50")[1]["facts"],
                     lambda x: x["id"], {
            "subject": lambda x: x["subject"], "predicate": lambda x: x["predicate"], "object": lambda x: x["object"],
            "fact": lambda x: x["fact"], "valid_at": lambda x: fmt_time(x["valid_at"])}),
        "procedural": (f"#/u/{u}/memory/procedural",
                       lambda: call(f"/api/memory/procedural/{u}?limit=50&include_superseded=true")[1]["rules"],
                       lambda x: x["id"], {
            "statement": lambda x: x["statement"], "kind": lambda x: x["kind"], "topic": lambda x: x["topic"],
            "confidence": lambda x: f"{x['confidence']:.2f}", "stated_at": lambda x: fmt_time(x["stated_at"])}),
        "rules": (f"#/u/{u}/rules",
                  lambda: [r for r in call(f"/api/memory/procedural/{u}?limit=500&include_superseded=true")[1]["rules"]
                           if r["superseded_by"] is None],
                  lambda x: x["id"], {"statement": lambda x: x["statement"], "kind": lambda x: x["kind"],
                                      "topic": lambda x: x["topic"]}),
        "timeline": (f"#/u/{u}/timeline", lambda: call(f"/api/memory/episodic/{u}?limit=50")[1]["episodes"],
                     lambda x: x["id"], {
            "occurred_at": lambda x: fmt_time(x["occurred_at"]), "text": lambda x: x["text"],
            "importance": lambda x: f"{x['importance']:.2f}", "tags": lambda x: "".join(x["tags"])}),
        "ops": ("#/ops", lambda: call("/api/reflection/dlq?limit=50")[1]["jobs"], lambda x: x["job_id"], {
            "user_id": lambda x: x["user_id"], "dead_reason": lambda x: x["dead_reason"] or x["last_error"] or "—",
            "attempts": lambda x: str(x["attempts"]), "updated_at": lambda x: fmt_time(x["updated_at"])}),
    }


@pytest.mark.parametrize("name", ["users", "short-term", "episodic", "semantic", "procedural", "rules", "timeline", "ops"])
def test_each_page_shows_the_first_page_of_the_api_field_by_field(context, name):
    user = env("REFLECTOR_UI_USER")
    hash_, fetch, id_of, fields = tier_pages(user)[name]
    page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), hash_)
    first_row(page)
    page.wait_for_load_state("networkidle")
    items = fetch()
    if name in ("users", "short-term", "episodic", "semantic", "timeline", "ops"):
        assert items, f"the fixture gives the {name} page something to show"
    # The semantic page's first table is the facts (its entities follow); the rules page's
    # own table is the standing rules (every rule, superseded ones included, is folded below).
    scope = {"semantic": "main table:nth-of-type(1)", "rules": "main .tabbody > table"}.get(name, "main")
    compare(rows(page, scope), items, id_of, fields)
    if name == "rules":
        # Each standing rule lists the rules it superseded (directly or through a chain).
        every = call(f"/api/memory/procedural/{q(user)}?limit=500&include_superseded=true")[1]["rules"]
        assert any(r["superseded_by"] for r in every), "the fixture has a superseded rule"
        for r in items:
            chain, frontier = [], [r["id"]]
            while frontier:
                nxt = [x for x in every if x["superseded_by"] in frontier]
                chain += nxt
                frontier = [x["id"] for x in nxt]
            shown = page.eval_on_selector_all(f"main [data-row][data-id='{r['id']}'] [data-rule]",
                                              "ls => ls.map(l => [Number(l.dataset.rule), l.querySelector('s').textContent])")
            assert sorted(shown) == sorted([x["id"], x["statement"]] for x in chain), (r, shown)
    assert not page.errors, page.errors
    if name != "timeline":  # the timeline's screenshot is of the user with 10,000 episodes
        shot(page, name)
    page.close()


def test_the_recall_playground_shows_exactly_what_context_returns(context):
    user = env("REFLECTOR_UI_USER")
    page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), f"#/u/{q(user)}/recall")
    page.get_by_label("Query").fill("What did Caroline research?")
    page.get_by_label("Token budget (max_tokens, optional)").fill("120")
    page.get_by_role("button", name="Recall").click()
    first_row(page)
    status, ctx = call(f"/api/memory/context/{q(user)}?query={q('What did Caroline research?')}&limit=10&max_tokens=120")
    assert status == 200
    assert page.locator("pre.context").text_content() == (ctx["context"] or "(empty)")
    budget = page.locator("[data-field=budget]").text_content()
    assert f"{ctx['context_tokens']} tokens" in budget and f"budget {ctx['max_tokens']}" in budget
    assert f"{ctx['omitted']} item" in budget, budget
    assert ctx["memories"], ctx
    compare(rows(page), ctx["memories"], lambda m: f"{m['tier']}:{m['id']}", {
        "tier": lambda m: m["tier"], "score": lambda m: f"{m['score']:.3f}", "text": lambda m: m["text"],
        "date": lambda m: fmt_time(m["date"]),
        "in_context": lambda m: "left out" if any(o["tier"] == m["tier"] and o["id"] == m["id"] for o in ctx["omitted_items"]) else "yes"})
    # What the budget left out, every item, in the API's order.
    assert ctx["omitted"] == len(ctx["omitted_items"]) > 0, ctx
    shown = page.eval_on_selector_all("[data-left-out]", "ls => ls.map(l => [l.dataset.leftOut, l.textContent])")
    assert shown == [[f"{o['tier']}:{o['id']}", f"{o['tier']} {o['text']}"] for o in ctx["omitted_items"]], shown
    # Each item's evidence: its turns, from the turn lookup.
    with_ev = [i for i, m in enumerate(ctx["memories"]) if m["evidence"]]
    assert with_ev
    i = with_ev[0]
    page.locator("main [data-row]").nth(i).get_by_role("button", name=re.compile("Show the evidence")).click()
    ev = ctx["memories"][i]["evidence"][0]
    item = page.locator(f"main [data-row] >> nth={i} >> li[data-evidence='{ev}']")
    expect(item).to_have_attribute("data-status", "stored")
    _, t = call(f"/api/memory/turn/{q(user)}?evidence={q(ev)}")
    expect(item.locator(".turn-text")).to_have_text(t["turn"]["user_message"])
    shot(page, "recall")
    page.close()


# ------------------------------------------------------------------ changing memory


def test_editing_a_fact_and_deleting_an_episode_through_the_page_reach_the_api(context):
    user = env("REFLECTOR_UI_USER")
    page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), f"#/u/{q(user)}/memory/semantic")
    first_row(page)
    fact = call(f"/api/memory/semantic/{q(user)}?limit=50")[1]["facts"][0]
    page.get_by_role("button", name=f"Edit fact {fact['id']}", exact=True).click()
    dialog = page.get_by_role("dialog")
    new_object = f"Edited Object {int(time.time() * 1000) % 100000}"
    dialog.get_by_label("Object").fill(new_object)
    shot(page, "edit-dialog")
    dialog.get_by_role("button", name="Save change").click()
    expect(page.get_by_role("status")).to_contain_text(f"Saved fact {fact['id']}")
    now = next(f for f in call(f"/api/memory/semantic/{q(user)}?limit=500")[1]["facts"] if f["id"] == fact["id"])
    assert now["object"] == new_object, now
    edits = call(f"/api/memory/edits/{q(user)}")[1]["edits"]
    assert any(e["tier"] == "semantic" and e["action"] == "update" and e["memory_id"] == fact["id"] for e in edits), edits

    page.goto(env("REFLECTOR_UI_URL") + f"/ui/#/u/{q(user)}/memory/episodic")
    first_row(page)
    ep = call(f"/api/memory/episodic/{q(user)}?limit=50")[1]["episodes"][0]
    page.get_by_role("button", name=f"Delete episode {ep['id']}", exact=True).click()
    # Cancel leaves it.
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    assert any(e["id"] == ep["id"] for e in call(f"/api/memory/episodic/{q(user)}?limit=50")[1]["episodes"])
    page.get_by_role("button", name=f"Delete episode {ep['id']}", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text(f"Deleted episode {ep['id']}")
    assert not any(e["id"] == ep["id"] for e in call(f"/api/memory/episodic/{q(user)}?limit=500")[1]["episodes"])
    edits = call(f"/api/memory/edits/{q(user)}")[1]["edits"]
    assert any(e["tier"] == "episodic" and e["action"] == "delete" and e["memory_id"] == ep["id"] for e in edits), edits
    expect(page.locator(f"main [data-row][data-id='{ep['id']}']")).to_have_count(0)
    page.close()


def test_an_emptied_importance_is_refused_not_saved_as_zero(context):
    user = env("REFLECTOR_UI_USER")
    page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), f"#/u/{q(user)}/memory/episodic")
    first_row(page)
    ep = call(f"/api/memory/episodic/{q(user)}?limit=50")[1]["episodes"][0]
    page.get_by_role("button", name=f"Edit episode {ep['id']}", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Importance").fill("")
    dialog.get_by_role("button", name="Save change").click()
    # The dialog stays open, says why, and keeps what was typed; nothing is sent.
    expect(dialog.get_by_role("alert")).to_contain_text("importance must be a number")
    expect(dialog.get_by_label("Text")).to_have_value(ep["text"])
    dialog.get_by_role("button", name="Cancel").click()
    now = next(e for e in call(f"/api/memory/episodic/{q(user)}?limit=50")[1]["episodes"] if e["id"] == ep["id"])
    assert now["importance"] == ep["importance"], (now, ep)
    page.close()


def test_replaying_a_dead_job_from_the_operations_page(context):
    dead = call("/api/reflection/dlq?limit=50")[1]["jobs"]
    job = next(j for j in dead if j["job_id"] == "ghost-job-1")
    page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), "#/ops")
    first_row(page)
    expect(page.locator("main [data-row][data-id='ghost-job-1'] [data-field=dead_reason]")).to_contain_text("metadata.timezone")
    with page.expect_response(lambda r: r.url.endswith("/api/reflection/dlq/replay")) as resp:
        page.get_by_role("button", name="Replay job ghost-job-1", exact=True).click()
    assert resp.value.status == 200 and resp.value.json()["replayed"] == 1, resp.value.json()
    # The job went through the queue again (it dies again: its time zone is still unknown).
    for _ in range(100):
        j = call("/api/reflection/jobs/ghost-job-1")[1]
        if j["updated_at"] != job["updated_at"] and j["state"] == "dead":
            break
        time.sleep(0.1)
    assert j["updated_at"] != job["updated_at"], (job, j)
    page.close()


def test_a_turn_holding_markup_shows_as_text(context):
    page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), "#/u/markup/memory/short_term")
    first_row(page)
    turn = call("/api/memory/short-term/markup")[1]["turns"][0]
    assert "<script>" in turn["user_message"] and "onerror" in turn["user_message"]
    cell = page.locator("main [data-row] [data-field=user_message]").first
    assert cell.text_content() == turn["user_message"]
    assert page.locator("main img, main script, main b, main i").count() == 0
    assert page.evaluate("window.__xss") is None
    # Its episode too, and the turn again as the episode's evidence.
    page.goto(env("REFLECTOR_UI_URL") + "/ui/#/u/markup/memory/episodic")
    first_row(page)
    page.get_by_role("button", name=re.compile("Show the evidence")).first.click()
    expect(page.locator("main .evidence .turn-text").first).to_have_text(turn["user_message"])
    assert page.locator("main img, main script, main b, main i").count() == 0
    assert page.evaluate("window.__xss") is None
    page.close()


# ------------------------------------------------------------------ accessibility


@pytest.mark.parametrize("hash_", ["#/users", "#/u/{u}/memory/episodic", "#/u/{u}/memory/semantic", "#/u/{u}/rules",
                                   "#/u/{u}/timeline", "#/u/{u}/recall?query=Caroline", "#/ops"])
def test_axe_finds_no_serious_or_critical_violations(context, hash_):
    page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), hash_.format(u=q(env("REFLECTOR_UI_USER"))))
    first_row(page)
    page.wait_for_load_state("networkidle")
    page.add_script_tag(path=env("REFLECTOR_UI_AXE"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
           for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, bad
    page.close()


def tab_to(page: Page, label: str, limit: int = 600):
    """Presses Tab until the focused element's accessible label is `label`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.getAttribute('aria-label')") == label:
            return
    pytest.fail(f"Tab never reached {label!r}")


def test_editing_deleting_and_replaying_with_the_keyboard_only(context):
    user = env("REFLECTOR_UI_USER")
    page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), f"#/u/{q(user)}/memory/episodic")
    first_row(page)
    eps = call(f"/api/memory/episodic/{q(user)}?limit=50")[1]["episodes"]
    edit, gone = eps[0], eps[1]
    tab_to(page, f"Edit episode {edit['id']}")
    page.keyboard.press("Enter")
    # Focus is in the dialog's first field (the text).
    assert page.evaluate("document.activeElement.name") == "text"
    page.keyboard.press("Control+A")
    page.keyboard.type("Edited with the keyboard only.")
    page.keyboard.press("Tab")  # importance
    page.keyboard.press("Tab")  # tags
    page.keyboard.press("Tab")  # Cancel
    page.keyboard.press("Tab")  # Save change
    assert page.evaluate("document.activeElement.textContent") == "Save change"
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"Saved episode {edit['id']}")
    now = [e for e in call(f"/api/memory/episodic/{q(user)}?limit=500")[1]["episodes"] if e["id"] == edit["id"]]
    assert now and now[0]["text"] == "Edited with the keyboard only.", now

    page.locator("main").focus()
    tab_to(page, f"Delete episode {gone['id']}")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Delete"
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"Deleted episode {gone['id']}")
    assert not any(e["id"] == gone["id"] for e in call(f"/api/memory/episodic/{q(user)}?limit=500")[1]["episodes"])

    page.goto(env("REFLECTOR_UI_URL") + "/ui/#/ops")
    first_row(page)
    before = call("/api/reflection/jobs/ghost-job-2")[1]
    assert before["state"] == "dead", before
    tab_to(page, "Replay job ghost-job-2")
    with page.expect_response(lambda r: r.url.endswith("/api/reflection/dlq/replay")) as resp:
        page.keyboard.press("Enter")
    assert resp.value.json()["replayed"] == 1
    page.close()


# ------------------------------------------------------------------ timings


def test_time_to_the_first_data_row_of_each_page_with_10000_episodes(context):
    _, stats = call(f"/api/memory/stats/{BULK}")
    assert stats["episodic"]["episodes"] >= 10_000, stats
    pages = {"users": "#/users", "memory: episodic": f"#/u/{BULK}/memory/episodic",
             "memory: short-term": f"#/u/{BULK}/memory/short_term", "memory: semantic": f"#/u/{BULK}/memory/semantic",
             "memory: procedural": f"#/u/{BULK}/memory/procedural", "memory: search": f"#/u/{BULK}/memory/episodic?q=guitar",
             "rules": f"#/u/{BULK}/rules", "timeline": f"#/u/{BULK}/timeline",
             "recall": f"#/u/{BULK}/recall?query=guitar%20and%20coffee", "operations": "#/ops"}
    print(f"\ntime to the first data row, user {BULK!r} with {stats['episodic']['episodes']} episodes "
          "(a full reload of the page from the local server, until its first data row or its empty-list text):")
    for name, hash_ in pages.items():
        page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), "#/ops")
        first_row(page)
        t0 = time.perf_counter()
        page.goto(env("REFLECTOR_UI_URL") + "/ui/" + hash_)
        page.reload()
        page.wait_for_selector("[data-row], main .empty", timeout=30_000)
        took = time.perf_counter() - t0
        n = page.locator("main [data-row]").count()
        print(f"  {name:20s} {took * 1000:7.0f} ms  ({n} rows)")
        if name == "timeline":
            shot(page, "timeline")
        page.close()


def test_forgetting_a_user_needs_the_user_id_typed(context):
    user = f"forget-me-{int(time.time() * 1000)}"
    status, r = call("/api/interactions", method="POST", body={
        "user_id": user, "session_id": "s1", "user_message": "I moved to Oslo last spring.", "timestamp": "2024-05-01T10:00:00Z"})
    assert status == 202, r
    page = open_page(context, env("REFLECTOR_UI_ADMIN_KEY"), f"#/u/{q(user)}/memory/short_term")
    first_row(page)
    page.get_by_role("button", name="Forget this user…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label(f"Type the user id ({user}) to confirm").fill(user[:-1])
    dialog.get_by_role("button", name="Forget this user").click()
    expect(dialog.get_by_role("alert")).to_contain_text("not the user id")
    assert call(f"/api/memory/stats/{q(user)}")[1]["short_term"]["turns"] == 1
    dialog.get_by_label(f"Type the user id ({user}) to confirm").fill(user)
    dialog.get_by_role("button", name="Forget this user").click()
    expect(page.get_by_role("status")).to_contain_text(f"Forgot {user}")
    stats = call(f"/api/memory/stats/{q(user)}")[1]
    assert stats["short_term"]["turns"] == 0 and stats["episodic"]["episodes"] == 0, stats
    assert call(f"/api/users?q={q(user)}")[1]["total"] == 0
    page.close()
