"""Fixtures: live `reflector` servers started by the test session itself.

The binary comes from the environment variable ``REFLECTOR_BIN`` (``scripts/python-client.sh``
sets it). A test that needs a server fails with a clear message when it is unset or missing:
the suite never skips.

Servers (each on a free loopback port with a temporary data directory and the hash embedder,
which needs no model):

- ``server``: ``reflector serve`` with an admin key and a key limited to ``scoped-user``; the
  suite's main server, shared by the session (tests use their own user ids).
- ``backlog_server``: ``reflector api`` (no workers, so jobs stay queued) with
  ``--max-waiting-per-user 1``: a user's second turn gets 429 with ``Retry-After``.
- ``dead_server``: ``reflector serve`` in LLM mode against a local stub that answers 400
  to everything, with ``--max-retries 0``: every job is dead-lettered at once.
"""

from __future__ import annotations

import http.server
import threading
import uuid
from typing import AsyncIterator, Iterator

import pytest
from live import ADMIN_KEY, SCOPED_KEY, SCOPED_USER, RefusingLLM, Server

from memory_reflector import AsyncReflectorClient, ReflectorClient


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """The main server: `reflector serve`, with an admin key and a key for `scoped-user`."""
    s = Server(
        "serve", ["--workers", "2"], keys=f"{ADMIN_KEY}:admin,{SCOPED_KEY}:user={SCOPED_USER}"
    )
    yield s
    s.stop()


@pytest.fixture(scope="session")
def backlog_server() -> Iterator[Server]:
    """`reflector api` without workers and a ceiling of 1 waiting job per user (429s)."""
    s = Server("api", ["--max-waiting-per-user", "1"])
    yield s
    s.stop()


@pytest.fixture(scope="session")
def dead_server() -> Iterator[Server]:
    """`reflector serve` whose jobs are all dead-lettered (LLM mode against a refusing stub)."""
    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingLLM)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    llm = f"http://127.0.0.1:{stub.server_address[1]}/v1"
    s = Server(
        "serve",
        ["--workers", "1", "--max-retries", "0", "--llm-base-url", llm, "--llm-model", "stub"],
    )
    yield s
    s.stop()
    stub.shutdown()


@pytest.fixture
def user_id() -> str:
    """A fresh user id, so that tests sharing a server do not see each other's memories."""
    return f"py-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(server: Server) -> Iterator[ReflectorClient]:
    """A sync client of the main server with the admin key."""
    with ReflectorClient(server.url, api_key=ADMIN_KEY) as c:
        yield c


@pytest.fixture
async def aclient(server: Server) -> AsyncIterator[AsyncReflectorClient]:
    """An async client of the main server with the admin key."""
    async with AsyncReflectorClient(server.url, api_key=ADMIN_KEY) as c:
        yield c
