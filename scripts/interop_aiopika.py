#!/usr/bin/env python3
"""Interoperability check: the original Python reflector's producer and consumer, written with
aio-pika as the original is, against a running `reflector` in RabbitMQ mode.

The original producer (`queue/producer.py` of the service this project replaces) declares, on
connect and in this order:
  1. topic exchange `memory_reflection_exchange`, durable;
  2. queue `memory_reflection_queue`, durable, with x-dead-letter-exchange =
     memory_reflection_exchange.dlx, x-dead-letter-routing-key = failed, x-max-retries = 3;
  3. a binding of that queue with `reflection.*`;
  4. topic exchange `memory_reflection_exchange.dlx`, durable;
  5. queue `memory_reflection_dlq`, durable;
  6. a binding of that queue with `failed`.
Its consumer declares the queue of step 2 with the same arguments.

Scenarios (each starts from a broker without these entities, and its own `reflector serve`):
  A  our service starts first; then the producer declares (all six steps) and publishes;
  B  the producer declares; then our service starts; then the producer publishes (publishing
     earlier would lose dotted user ids to the original's own `reflection.*` binding before
     our `reflection.#` binding exists);
  C  an older deployment whose dead-letter exchange is direct: our service still starts, and
     queue-status names the difference.
In A and B the original consumer's declaration follows while our workers run. Jobs are in the
original `MemoryReflectionJob` schema (naive ISO timestamps, integer priority), persistent,
routing key `reflection.<user_id>`, for user ids with and without dots. Every job must be
completed, and no declaration refused.

Usage: interop_aiopika.py --amqp URL --reflector PATH [--scenarios ABC] [--jobs N] [--timeout S]
Prints one JSON line per scenario; exit 0 when all passed, 1 otherwise.
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta

import aio_pika

EXCHANGE = "memory_reflection_exchange"
DLX = "memory_reflection_exchange.dlx"
QUEUE = "memory_reflection_queue"
DLQ = "memory_reflection_dlq"
QUEUE_ARGS = {
    "x-dead-letter-exchange": DLX,
    "x-dead-letter-routing-key": "failed",
    "x-max-retries": 3,
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


async def reset(url: str) -> None:
    """Delete the default-named entities, so that the scenario's order is the real one."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for q in [QUEUE, QUEUE + ".priority", DLQ]:
            await channel.queue_delete(q)
        for x in [EXCHANGE, DLX]:
            await channel.exchange_delete(x)


async def producer_declares(channel) -> aio_pika.abc.AbstractExchange:
    """The original producer's connect sequence, steps 1-6."""
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(QUEUE, durable=True, arguments=QUEUE_ARGS)
    await queue.bind(exchange, routing_key="reflection.*")
    dlx = await channel.declare_exchange(DLX, aio_pika.ExchangeType.TOPIC, durable=True)
    dlq = await channel.declare_queue(DLQ, durable=True)
    await dlq.bind(dlx, routing_key="failed")
    return exchange


async def publish(exchange, jobs: list) -> None:
    for job in jobs:
        await exchange.publish(
            aio_pika.Message(
                body=json.dumps(job).encode(),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/json",
            ),
            routing_key=f"reflection.{job['user_id']}",
        )


async def consumer_declares(url: str) -> None:
    """The original consumer's declaration of the intake queue."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(QUEUE, durable=True, arguments=QUEUE_ARGS)


def get(api: str, path: str):
    try:
        with urllib.request.urlopen(f"{api}{path}", timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


class Service:
    """`reflector serve` on a free loopback port with its own data directory."""

    def __init__(self, reflector: str, amqp: str):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        self.api = f"http://127.0.0.1:{port}"
        self.dir = tempfile.TemporaryDirectory(prefix="reflector-interop.")
        env = dict(os.environ, RABBITMQ_URL=amqp, REFLECTOR_EMBEDDER="hash", REFLECTOR_LOG="warn")
        self.proc = subprocess.Popen(
            [reflector, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", self.dir.name],
            env=env,
        )

    def wait_consuming(self, timeout: float) -> dict:
        """Wait until the workers consume the priority queue; returns queue-status."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"reflector serve exited with {self.proc.returncode}")
            try:
                q = get(self.api, "/api/reflection/queue-status")
                if q and q.get("broker", {}).get("queues", {}).get("priority", {}).get("consumers"):
                    return q
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        raise RuntimeError("reflector serve never started consuming")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


def wait_completed(api: str, jobs: list, timeout: float) -> dict:
    deadline = time.time() + timeout
    states = {}
    while time.time() < deadline:
        states = {}
        for j in jobs:
            rec = get(api, f"/api/reflection/jobs/{j['job_id']}")
            states[j["job_id"]] = rec["state"] if rec else "unknown"
        if all(s == "completed" for s in states.values()):
            break
        time.sleep(0.5)
    return states


async def scenario(name: str, args) -> dict:
    await reset(args.amqp)
    jobs = [original_job(i) for i in range(args.jobs)]
    result = {"scenario": name}
    service = None
    try:
        if name == "C":
            # An older deployment: the dead-letter exchange exists as a direct exchange.
            connection = await aio_pika.connect(args.amqp)
            async with connection:
                channel = await connection.channel()
                await channel.declare_exchange(DLX, aio_pika.ExchangeType.DIRECT, durable=True)
        connection = await aio_pika.connect(args.amqp)
        async with connection:
            channel = await connection.channel()
            if name == "B":
                exchange = await producer_declares(channel)
            service = Service(args.reflector, args.amqp)
            status = service.wait_consuming(args.timeout)
            if name == "A":
                exchange = await producer_declares(channel)
            if name == "C":
                # The original producer would be refused at step 4 here: publish without it.
                exchange = await channel.get_exchange(EXCHANGE)
            await publish(exchange, jobs)
        if name in "AB":
            await consumer_declares(args.amqp)
        states = wait_completed(service.api, jobs, args.timeout)
        topology = get(service.api, "/api/reflection/queue-status")["broker"]["topology"]
        differs = {e["name"]: e["differences"] for e in topology if e["status"] != "as declared"}
        dotted = [j for j in jobs if "." in j["user_id"]]
        result.update(
            jobs=len(jobs),
            completed=sum(s == "completed" for s in states.values()),
            dotted_user_jobs=len(dotted),
            dotted_user_jobs_completed=sum(states[j["job_id"]] == "completed" for j in dotted),
            topology_differs=differs,
        )
        expect_differs = {DLX} if name == "C" else set()
        result["ok"] = (
            result["completed"] == len(jobs)
            and set(differs) == expect_differs
            and status.get("broker", {}).get("status") == "up"
        )
    except aio_pika.exceptions.ChannelPreconditionFailed as e:
        result.update(ok=False, error=f"declaration refused: {e}")
    except Exception as e:  # noqa: BLE001 - reported, and the scenario fails
        result.update(ok=False, error=f"{type(e).__name__}: {e}")
    finally:
        if service:
            service.stop()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--amqp", required=True, help="broker URL (amqp://user:pass@host/)")
    ap.add_argument("--reflector", required=True, help="path of the reflector binary")
    ap.add_argument("--scenarios", default="ABC")
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    ok = True
    for name in args.scenarios:
        result = asyncio.run(scenario(name, args))
        print(json.dumps(result), flush=True)
        ok = ok and result["ok"]
    asyncio.run(reset(args.amqp))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
