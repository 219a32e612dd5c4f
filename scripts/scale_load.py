#!/usr/bin/env python3
"""Load and checks for scripts/scale-test.sh (standard library only).

Subcommands:
  send      --apis URL,URL --data LOCOMO --users 50 --turns 20 --solo 100 --out SENT.json
            Posts 50 users x 20 turns concurrently (one thread per user, round-robin over
            the API processes) plus 100 turns of user `solo` all at once (100 threads),
            writes what was accepted (job ids by user) to SENT.json.
  solo-seq  --api URL --data LOCOMO --solo 100
            Posts the solo user's turns one at a time, each after the previous job
            completed (the sequential reference).
  facts     --api URL --user U --out F.json
            The user's facts as a set of (subject, predicate, object, valid_at, invalid_at)
            by canonical names.
Turns come from the LoCoMo conversations (real multi-session dialogue): user k gets 20
consecutive turns of one conversation, with that conversation's session dates.
"""
import argparse
import concurrent.futures as cf
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime


def http(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def parse_date(s):
    # LoCoMo: "1:56 pm on 8 May, 2023"
    return datetime.strptime(s, "%I:%M %p on %d %B, %Y").strftime("%Y-%m-%dT%H:%M:%SZ")


def all_turns(path):
    """Every turn of every conversation, in order: (conversation index, speaker, text, ts)."""
    out = []
    for ci, c in enumerate(json.load(open(path))):
        conv = c["conversation"]
        n = 1
        while f"session_{n}" in conv:
            ts = parse_date(conv[f"session_{n}_date_time"])
            for t in conv[f"session_{n}"]:
                out.append((ci, t["speaker"], t["text"], ts, t["dia_id"]))
            n += 1
    return out


def body(user, i, turn):
    _, speaker, text, ts, dia = turn
    return {"user_id": user, "session_id": f"{user}-s", "user_message": text,
            "assistant_response": "", "timestamp": ts,
            "interaction_id": f"{user}-{i}", "metadata": {"speaker": speaker, "dia_id": dia}}


def solo_turns(turns, n):
    return turns[:n]


def user_turns(turns, users, per_user, offset):
    out = {}
    for k in range(users):
        start = offset + k * per_user
        out[f"user{k:02d}"] = [turns[(start + j) % len(turns)] for j in range(per_user)]
    return out


def post_until_accepted(api, b):
    for attempt in range(50):
        s, r = http("POST", f"{api}/api/interactions", b)
        if s == 429:
            time.sleep(0.2 * (attempt + 1))
            continue
        return s, r
    return s, r


def cmd_send(a):
    apis = a.apis.split(",")
    turns = all_turns(a.data)
    solo = solo_turns(turns, a.solo)
    users = user_turns(turns, a.users, a.turns, a.solo)
    sent = {"accepted": {}, "non_2xx": 0, "errors": []}

    def run_user(k, user, ts):
        api = apis[k % len(apis)]
        ids = []
        for i, t in enumerate(ts):
            s, r = post_until_accepted(api, body(user, i, t))
            if s in (200, 202):
                ids.append(r["reflection_job_id"])
            else:
                sent["non_2xx"] += 1
                sent["errors"].append([user, s, r])
        return user, ids

    def run_solo(i):
        s, r = post_until_accepted(apis[i % len(apis)], body("solo", i, solo[i]))
        return i, s, r

    t0 = time.time()
    with cf.ThreadPoolExecutor(max_workers=a.users + a.solo) as ex:
        futs = [ex.submit(run_user, k, u, ts) for k, (u, ts) in enumerate(users.items())]
        solo_futs = [ex.submit(run_solo, i) for i in range(len(solo))]
        for f in futs:
            u, ids = f.result()
            sent["accepted"][u] = ids
        solo_ids = []
        for f in solo_futs:
            i, s, r = f.result()
            if s in (200, 202):
                solo_ids.append(r["reflection_job_id"])
            else:
                sent["non_2xx"] += 1
                sent["errors"].append(["solo", s, r])
        sent["accepted"]["solo"] = solo_ids
    sent["send_s"] = round(time.time() - t0, 1)
    json.dump(sent, open(a.out, "w"))
    n = sum(len(v) for v in sent["accepted"].values())
    print(f"sent: {n} accepted, {sent['non_2xx']} refused, {sent['send_s']} s", file=sys.stderr)


def wait_job(api, job_id, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        s, r = http("GET", f"{api}/api/reflection/jobs/{job_id}")
        if s == 200 and r.get("state") in ("completed", "dead"):
            return r["state"]
        time.sleep(0.05)
    raise SystemExit(f"job {job_id} did not finish in {timeout} s")


def cmd_solo_seq(a):
    turns = all_turns(a.data)
    for i, t in enumerate(solo_turns(turns, a.solo)):
        s, r = http("POST", f"{a.api}/api/interactions", body("solo", i, t))
        if s not in (200, 202):
            raise SystemExit(f"sequential reference: turn {i} got {s}: {r}")
        wait_job(a.api, r["reflection_job_id"])


def cmd_facts(a):
    facts = set()
    offset = 0
    while True:
        s, r = http("GET", f"{a.api}/api/memory/semantic/{a.user}?limit=100&offset={offset}")
        if s != 200:
            raise SystemExit(f"facts of {a.user}: {s} {r}")
        page = r.get("facts", [])
        for f in page:
            facts.add((f["subject"].lower(), f["predicate"], f["object"].lower(),
                       f["valid_at"], f.get("invalid_at")))
        if len(page) < 100:
            break
        offset += 100
    json.dump(sorted(facts, key=lambda x: tuple(str(v) for v in x)), open(a.out, "w"))
    print(f"{a.user}: {len(facts)} facts", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--apis", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--users", type=int, default=50)
    s.add_argument("--turns", type=int, default=20)
    s.add_argument("--solo", type=int, default=100)
    s.add_argument("--out", required=True)
    q = sub.add_parser("solo-seq")
    q.add_argument("--api", required=True)
    q.add_argument("--data", required=True)
    q.add_argument("--solo", type=int, default=100)
    f = sub.add_parser("facts")
    f.add_argument("--api", required=True)
    f.add_argument("--user", required=True)
    f.add_argument("--out", required=True)
    a = p.parse_args()
    {"send": cmd_send, "solo-seq": cmd_solo_seq, "facts": cmd_facts}[a.cmd](a)


if __name__ == "__main__":
    main()
