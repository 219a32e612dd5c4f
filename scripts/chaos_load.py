#!/usr/bin/env python3
"""Load generator for scripts/chaos.sh: posts TURNS turns from USERS users to
POST /api/interactions over keep-alive connections, CONCURRENCY at a time, each with an
interaction id `chaos-<i>`, and writes its progress (turns answered so far) to --progress.

Every answer is recorded: 2xx with the job id, anything else (or no answer at all) as
non-2xx. It never retries, so a refused request counts against the service.
Writes a JSON summary to --out: {"turns", "ok", "non_2xx", "accepted": {interaction_id: job_id}}.
"""

import argparse
import http.client
import json
import threading
import time
from urllib.parse import urlparse

TEMPLATES = [
    "I moved to {city} last month.",
    "Please always answer in {lang}.",
    "My friend {name} works as a {job} in {city}.",
    "I really like {food}, I had it twice this week.",
    "I'm allergic to {food}, never suggest it.",
    "Yesterday I went hiking with {name} near {city}.",
    "Important: my meeting with {name} is on Friday.",
    "hi, how are you?",
]
CITIES = ["Berlin", "Lisbon", "Osaka", "Lima", "Oslo", "Quito", "Porto", "Austin"]
LANGS = ["German", "Portuguese", "Japanese", "Spanish"]
NAMES = ["Lena", "Tom", "Aiko", "Marta", "Ravi", "Jonas"]
JOBS = ["nurse", "baker", "pilot", "teacher"]
FOODS = ["sushi", "peanuts", "ramen", "tapas", "curry"]


def body(i: int, users: int) -> dict:
    t = TEMPLATES[i % len(TEMPLATES)]
    msg = t.format(
        city=CITIES[i % len(CITIES)],
        lang=LANGS[i % len(LANGS)],
        name=NAMES[(i // 3) % len(NAMES)],
        job=JOBS[(i // 5) % len(JOBS)],
        food=FOODS[(i // 7) % len(FOODS)],
    )
    sec = 1_700_000_000 + i
    return {
        "interaction_id": f"chaos-{i}",
        "user_id": f"chaos.user-{i % users}",  # dots on purpose
        "session_id": f"s{(i // users) // 20}",
        "user_message": msg,
        "assistant_response": "Noted.",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec)),
        "metadata": {"speaker": f"User{i % users}"},
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--turns", type=int, required=True)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rate", type=float, default=0.0, help="turns/s cap (0: none)")
    ap.add_argument("--progress", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    url = urlparse(args.base)
    lock = threading.Lock()
    nxt = [0]
    done = [0]
    accepted = {}
    failures = []
    start = time.time()

    def worker():
        conn = None
        while True:
            with lock:
                i = nxt[0]
                if i >= args.turns:
                    return
                nxt[0] += 1
            if args.rate > 0:
                wait = start + i / args.rate - time.time()
                if wait > 0:
                    time.sleep(wait)
            payload = json.dumps(body(i, args.users))
            status, resp = None, None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                conn.request("POST", "/api/interactions", payload,
                             {"content-type": "application/json"})
                r = conn.getresponse()
                status, resp = r.status, r.read()
            except Exception as e:  # no answer counts as a failure, never retried
                status, resp = None, str(e).encode()
                conn = None
            with lock:
                if status is not None and 200 <= status < 300:
                    accepted[f"chaos-{i}"] = json.loads(resp)["reflection_job_id"]
                else:
                    failures.append({"i": i, "status": status, "body": resp[:200].decode("utf-8", "replace")})
                done[0] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        with lock:
            n = done[0]
        with open(args.progress + ".tmp", "w") as f:
            f.write(str(n))
        import os
        os.replace(args.progress + ".tmp", args.progress)
        time.sleep(0.1)
    for t in threads:
        t.join()
    with open(args.progress, "w") as f:
        f.write(str(done[0]))
    elapsed = time.time() - start
    with open(args.out, "w") as f:
        json.dump({"turns": args.turns, "ok": len(accepted), "non_2xx": len(failures),
                   "failures": failures[:20], "elapsed_s": elapsed, "accepted": accepted}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
