"""Fixture for scripts/ui.sh: `reflector export` files (docs/EXPORT.md) that `reflector import
--format reflector` reads into the store before the server starts.

Writes PREFIX.bulk: 10,000 episodes for the user `bulk`, spread over 2020-2024 (the dashboard's
timings with a large user), and PREFIX.ghost: two turns of the user `ghost` whose jobs carry an
unknown time zone, so that the worker dead-letters them at once (the dead-letter page and its
replay button; a replayed job dies again, with a new update time).

Usage: python3 scripts/ui_fixture.py PREFIX
"""

import json
import random
import struct
import sys

DIM = 384  # the hash embedder's dimension (src/embed/hash.rs)
EPISODES = 10_000
WORDS = ("hiking coffee Lisbon guitar sister marathon garden piano ramen Berlin painting "
         "camping novel puppy concert yoga bakery chess river museum").split()


def header(user: str) -> dict:
    return {"type": "header", "format": "memory-reflector-export", "version": 1, "user_id": user,
            "exported_at": "2026-12-01T00:00:00.000Z", "embedding_model": "hash"}


def vectors(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        v = [0.0] * DIM
        for i in rng.sample(range(DIM), 12):
            v[i] = rng.uniform(-1, 1)
        norm = sum(x * x for x in v) ** 0.5
        out.append(struct.pack(f"<{DIM}f", *(x / norm for x in v)).hex())
    return out


def main(prefix: str) -> None:
    rng = random.Random(23)
    vecs = vectors(rng, 64)
    with open(prefix + ".bulk", "w") as f:
        f.write(json.dumps(header("bulk")) + "\n")
        for i in range(EPISODES):
            day = 1 + i * 1826 // EPISODES  # five years, oldest first
            y, rest = 2020 + (day - 1) // 366, (day - 1) % 366
            month, dom = 1 + rest // 31 % 12, 1 + rest % 28
            when = f"{y:04d}-{month:02d}-{dom:02d}T{(i % 14) + 8:02d}:{i % 60:02d}:00.000Z"
            a, b = rng.sample(WORDS, 2)
            f.write(json.dumps({
                "type": "episode", "job_id": f"bulk-{i:05d}", "speaker": "bulk",
                "text": f"[{when[:10]}] bulk: talked about {a} and {b} (episode {i}).",
                "summary": f"{a} and {b}", "importance": round(rng.random(), 2), "tags": [a, b],
                "occurred_at": when, "observed_at": when, "embedding": vecs[i % len(vecs)],
                "evidence": [], "created_at": when, "context": "",
            }) + "\n")
    with open(prefix + ".ghost", "w") as f:
        f.write(json.dumps(header("ghost")) + "\n")
        for n in (1, 2):
            job_id = f"ghost-job-{n}"
            ts = f"2024-01-0{n}T00:00:00.000Z"
            payload = {"job_id": job_id, "user_id": "ghost", "session_id": "s", "user_message": f"hello there, I moved to Oslo ({n})",
                       "timestamp": ts, "priority": 1, "metadata": {"timezone": "Mars/Olympus"},
                       "retry_count": 0, "max_retries": 3, "created_at": ts}
            f.write(json.dumps({
                "type": "turn", "interaction_id": f"ghost-{n}", "session_id": "s", "user_message": payload["user_message"],
                "assistant_response": "", "timestamp": ts, "metadata": {"timezone": "Mars/Olympus"},
                "request_hash": f"ghost-{n}", "stored_at": ts, "reflected": False,
                "job": {"job_id": job_id, "priority": 1, "state": "queued", "payload": payload, "max_retries": 3, "created_at": ts},
            }) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
