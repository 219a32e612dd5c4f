#!/usr/bin/env python3
"""Interoperability check: a producer written like the original Python reflector publishes
reflection jobs with aio-pika, and a running `reflector` (RabbitMQ mode) must process them.

What it does, as the original producer did:
- declares the topic exchange `memory_reflection_exchange` (durable) and the queue
  `memory_reflection_queue` (durable) with the ORIGINAL arguments
  (x-dead-letter-exchange=memory_reflection_exchange.dlx, x-dead-letter-routing-key=failed),
  and binds it with `reflection.*` — on a broker our service already set up, so this is the
  declaration that must not be refused with 406 PRECONDITION_FAILED;
- publishes jobs in the original `MemoryReflectionJob` schema: naive ISO timestamps
  (datetime.utcnow().isoformat()), integer priority, the original field set, persistent,
  routing key `reflection.<user_id>` — including user ids with dots, which the original's
  own `reflection.*` binding would have dropped;
then polls `GET /api/reflection/jobs/{job_id}` on the service until every job is completed.

Usage: interop_aiopika.py --amqp URL --api http://127.0.0.1:PORT [--jobs N] [--timeout S]
Prints one JSON line; exit 0 when every job completed, 1 otherwise.
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta

import aio_pika

EXCHANGE = "memory_reflection_exchange"
QUEUE = "memory_reflection_queue"
QUEUE_ARGS = {
    "x-dead-letter-exchange": "memory_reflection_exchange.dlx",
    "x-dead-letter-routing-key": "failed",
}
USERS = ["alice", "bob.smith", "dr.jane.doe", "carol"]
MESSAGES = [
    "I moved to Lisbon last month and I work as a nurse now.",
    "Please always answer in Portuguese from now on.",
    "My daughter Mia starts school next week, I'm nervous.",
    "I'm allergic to peanuts, never suggest recipes with them.",
]


def original_job(i: int) -> dict:
    """A job exactly as the original service's MemoryReflectionJob.to_dict() wrote it."""
    now = datetime.utcnow()
    return {
        "job_id": str(uuid.uuid4()),
        "user_id": USERS[i % len(USERS)],
        "session_id": f"session-{i % 3}",
        "user_message": MESSAGES[i % len(MESSAGES)],
        "assistant_response": "Got it.",
        "timestamp": (now - timedelta(minutes=i)).isoformat(),  # naive, no zone: UTC
        "priority": i % 4,  # 0 LOW .. 3 URGENT
        "metadata": {"source": "interop_aiopika.py"},
        "retry_count": 0,
        "max_retries": 3,
        "created_at": now.isoformat(),
    }


async def publish(url: str, jobs: list) -> None:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # The original declaration: must succeed on a broker our service set up.
        queue = await channel.declare_queue(QUEUE, durable=True, arguments=QUEUE_ARGS)
        await queue.bind(exchange, routing_key="reflection.*")
        for job in jobs:
            await exchange.publish(
                aio_pika.Message(
                    body=json.dumps(job).encode(),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/json",
                ),
                routing_key=f"reflection.{job['user_id']}",
            )


def job_state(api: str, job_id: str):
    try:
        with urllib.request.urlopen(f"{api}/api/reflection/jobs/{job_id}", timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--amqp", required=True, help="broker URL (amqp://user:pass@host/)")
    ap.add_argument("--api", required=True, help="reflector API base URL")
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    jobs = [original_job(i) for i in range(args.jobs)]
    try:
        asyncio.run(publish(args.amqp, jobs))
    except aio_pika.exceptions.ChannelPreconditionFailed as e:
        print(json.dumps({"ok": False, "error": f"original declaration refused: {e}"}))
        return 1
    deadline = time.time() + args.timeout
    states = {}
    while time.time() < deadline:
        states = {}
        for j in jobs:
            rec = job_state(args.api, j["job_id"])
            states[j["job_id"]] = rec["state"] if rec else "unknown"
        if all(s == "completed" for s in states.values()):
            break
        time.sleep(0.5)
    dotted = [j for j in jobs if "." in j["user_id"]]
    result = {
        "ok": all(s == "completed" for s in states.values()),
        "jobs": len(jobs),
        "completed": sum(s == "completed" for s in states.values()),
        "dotted_user_jobs_completed": sum(states[j["job_id"]] == "completed" for j in dotted),
        "dotted_user_jobs": len(dotted),
        "states": sorted(set(states.values())),
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
