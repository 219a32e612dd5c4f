#!/usr/bin/env python3
"""The MCP server, checked with a client no one here wrote: PyPI's official `mcp` package.

Run by scripts/mcp.sh (which makes the virtualenv); standalone:

    python scripts/mcp_check.py --reflector target/release/reflector [--readme README.md]

1. Streamable HTTP (`/mcp` on `reflector serve`, keys configured):
   - a key limited to ana lists the tools, stores two turns, waits for their reflection
     jobs, and finds both turns as episodic memories by `search` and by `recall`;
   - the same key cannot reach bob: not with the X-Reflector-User header, not with a
     `user_id` argument, and a key limited to bob does not see ana's memories;
   - an admin key needs the header; without a key the HTTP request is refused (401);
   - `forget_user` is not offered (the operator did not enable it).
2. stdio, `reflector mcp --user carol --data-dir D` (the service in process): the same
   store, wait, search and recall; and `reflector mcp --server URL` against the server above.
3. The README (with --readme): the MCP quick start (the ```python block after the marker
   `<!-- mcp-quickstart -->`) runs as written against a fresh server, and the Claude Desktop
   and Cursor configurations (```json blocks after `<!-- mcp-config -->`) parse, and the
   command they name starts and lists the tools over stdio.

Exits non-zero at the first failure, naming it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ADMIN = "admin-key-for-the-mcp-check-0001"
ANA = "ana-only-key-for-the-mcp-check-01"
BOB = "bob-only-key-for-the-mcp-check-01"
TOOLS = {"store_turn", "store_note", "recall", "search", "list_memories", "delete_memory", "job_status"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(binary: str, env_extra: dict[str, str]) -> Iterator[str]:
    """`reflector serve` on a free port and a temporary data directory; yields its base URL."""
    data = tempfile.mkdtemp(prefix="mcp-check-")
    port = free_port()
    env = dict(os.environ, **env_extra)
    log = open(Path(data) / "serve.log", "w")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--embedder", "hash"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/api/reflection/health", timeout=1)
                break
            except Exception:
                if proc.poll() is not None:
                    raise SystemExit(f"reflector serve exited: {Path(data, 'serve.log').read_text()}")
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def http(url: str, key: str | None, user: str | None = None) -> Client:
    headers = {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if user:
        headers["X-Reflector-User"] = user
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=60)))


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok   {what}")


async def remember_and_find(client: Client, label: str) -> None:
    """Store two turns, wait for their jobs, find both by search and by recall."""
    turns = [
        "My sister Carla adopted a grey cat called Pixel last Sunday.",
        "I am training for the Lisbon half marathon in October.",
    ]
    jobs = []
    for i, t in enumerate(turns):
        r = await client.call_tool(
            "store_turn",
            {"user_message": t, "session_id": "s1", "timestamp": f"2024-05-1{i}T10:00:00Z"},
        )
        check(not r.is_error, f"{label}: store_turn answered {text_of(r)[:120]}")
        jobs.append(json.loads(text_of(r))["reflection_job_id"])
    for j in jobs:
        r = await client.call_tool("job_status", {"job_id": j, "wait_seconds": 60})
        check(not r.is_error and json.loads(text_of(r))["state"] == "completed", f"{label}: job {j} completed")
    r = await client.call_tool("search", {"query": "Carla cat Pixel", "tier": "episodic"})
    items = json.loads(text_of(r))["items"]
    check(
        any("Pixel" in i["text"] and i["tier"] == "episodic" for i in items),
        f"{label}: search finds the first turn as an episodic memory",
    )
    r = await client.call_tool("search", {"query": "half marathon Lisbon", "tier": "episodic", "since": "2024-05-11"})
    items = json.loads(text_of(r))["items"]
    check(
        bool(items) and "marathon" in items[0]["text"] and all(i["date"] >= "2024-05-11" for i in items),
        f"{label}: search (tier and date filters) finds the second turn first",
    )
    r = await client.call_tool("recall", {"query": "What is the name of Carla's cat?"})
    check(not r.is_error and "Pixel" in text_of(r), f"{label}: recall's context has the first turn")
    r = await client.call_tool("recall", {"query": "Which race am I training for?"})
    check("marathon" in text_of(r), f"{label}: recall's context has the second turn")


async def over_http(binary: str) -> str:
    keys = f"{ADMIN}:admin,{ANA}:user=ana,{BOB}:user=bob"
    with serve(binary, {"REFLECTOR_API_KEYS": keys}) as base:
        url = f"{base}/mcp"
        async with http(url, ANA) as c:
            listed = (await c.list_tools()).tools
            tools = {t.name for t in listed}
            check(tools == TOOLS, f"HTTP: tools listed {sorted(tools)}")
            size = len(json.dumps([t.model_dump(mode="json") for t in listed]))
            check(size < 12_000, f"HTTP: tools/list is small enough to read every session ({size} bytes)")
            await remember_and_find(c, "HTTP")
            r = await c.call_tool("search", {"query": "cat", "user_id": "bob"})
            check(bool(r.is_error) and "refused" in text_of(r), "HTTP: a user_id argument naming bob is refused")
            r = await c.call_tool("store_turn", {"user_message": "My bike is red.", "mood": "happy"})
            check(bool(r.is_error) and "mood" in text_of(r), "HTTP: an unknown argument is refused, named")
            r = await c.call_tool("list_memories", {"tier": "all"})
            check(bool(r.is_error) and "tier" in text_of(r), "HTTP: a tier outside the enum is refused, named")
            r = await c.call_tool("store_turn", {"user_message": "Noted.", "session_id": None})
            check(not r.is_error, "HTTP: a null argument counts as absent")
        async with http(url, ANA, user="bob") as c:
            r = await c.call_tool("search", {"query": "cat"})
            check(bool(r.is_error) and "not allowed" in text_of(r), "HTTP: ana's key with X-Reflector-User bob is refused")
        async with http(url, BOB) as c:
            r = await c.call_tool("search", {"query": "Carla cat Pixel"})
            check(not r.is_error and json.loads(text_of(r))["items"] == [], "HTTP: bob's key sees none of ana's memories")
        async with http(url, ADMIN) as c:
            r = await c.call_tool("search", {"query": "cat"})
            check(bool(r.is_error) and "X-Reflector-User" in text_of(r), "HTTP: an admin key must name the user")
        async with httpx2.AsyncClient() as raw:
            stored = await raw.post(f"{base}/api/interactions", headers={"Authorization": f"Bearer {BOB}"},
                                    json={"user_id": "bob", "session_id": "s", "user_message": "My PIN is 4321."})
            bob_job = stored.json()["reflection_job_id"]
        async with http(url, ADMIN, user="ana") as c:
            r = await c.call_tool("search", {"query": "Carla cat Pixel"})
            check(bool(json.loads(text_of(r))["items"]), "HTTP: an admin key with X-Reflector-User ana reaches ana")
            r = await c.call_tool("job_status", {"job_id": bob_job})
            check(bool(r.is_error) and "4321" not in text_of(r) + json.dumps(r.structured_content),
                  "HTTP: a session for ana cannot read bob's job")
            r = await c.call_tool("search", {"query": "cat", "limit": 1000})
            check(bool(r.is_error) and "limit" in text_of(r), f"HTTP: a 422 comes back as a tool error naming the field: {text_of(r)}")
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "check", "version": "1"}}}
        async with httpx2.AsyncClient() as raw:
            resp = await raw.post(url, json=init, headers={"Accept": "application/json, text/event-stream"})
            check(resp.status_code == 401, f"HTTP: /mcp without a key answers 401 ({resp.status_code})")
            resp = await raw.get(url, headers={"Authorization": f"Bearer {ANA}"})
            check(resp.status_code == 405 and resp.headers.get("allow") == "POST" and resp.json()["error"] == "method_not_allowed",
                  f"HTTP: GET /mcp answers 405 with Allow and the JSON error body ({resp.status_code} {resp.headers.get('allow')})")
            resp = await raw.post(url, content=b"{bad json", headers={"Authorization": f"Bearer {ANA}", "Content-Type": "application/json",
                                                                     "Accept": "application/json, text/event-stream"})
            check(resp.status_code >= 400 and "message" in resp.json(), f"HTTP: a malformed body gets the JSON error body ({resp.status_code})")
        failed = False
        try:
            async with http(url, None) as c:
                await c.list_tools()
        except BaseException:  # the transport raises an ExceptionGroup on the 401
            failed = True
        check(failed, "HTTP: the mcp client without a key cannot list the tools")
        # stdio against the running server, as ana.
        params = StdioServerParameters(
            command=binary,
            args=["mcp", "--user", "ana", "--server", base],
            env={"REFLECTOR_API_KEY": ANA},
        )
        async with Client(params) as c:
            r = await c.call_tool("search", {"query": "Carla cat Pixel", "tier": "episodic"})
            check(any("Pixel" in i["text"] for i in json.loads(text_of(r))["items"]), "stdio --server: search reaches the server's memory")
        wrong = subprocess.run([binary, "mcp", "--user", "ana", "--server", base], env=dict(os.environ, REFLECTOR_API_KEY=BOB),
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        check(wrong.returncode != 0 and "REFLECTOR_API_KEY" in wrong.stderr,
              f"stdio --server: a key refused for the user stops it at startup ({wrong.stderr.strip()[-160:]})")
        # A user id outside ASCII, as raw UTF-8 in the header.
        hc = httpx2.AsyncClient(headers={"Authorization": f"Bearer {ADMIN}", "X-Reflector-User": "zoë".encode()})
        async with Client(streamable_http_client(url, http_client=hc)) as c:
            r = await c.call_tool("store_turn", {"user_message": "I live in Graz."})
            check(not r.is_error and json.loads(text_of(r))["interaction_id"], "HTTP: a user id outside ASCII in the header")
        async with httpx2.AsyncClient() as raw:
            listed = await raw.get(f"{base}/api/memory/short-term/zo%C3%AB", headers={"Authorization": f"Bearer {ADMIN}"})
            check(listed.json()["turns"][0]["user_message"] == "I live in Graz.", "HTTP: … and the turn is zoë's")
        return base


async def over_stdio(binary: str) -> None:
    data = tempfile.mkdtemp(prefix="mcp-stdio-")
    try:
        params = StdioServerParameters(
            command=binary,
            args=["mcp", "--user", "carol", "--data-dir", data, "--embedder", "hash"],
        )
        async with Client(params) as c:
            tools = {t.name for t in (await c.list_tools()).tools}
            check(tools == TOOLS, f"stdio: tools listed {sorted(tools)}")
            await remember_and_find(c, "stdio")
    finally:
        shutil.rmtree(data, ignore_errors=True)


def blocks_after(readme: str, marker: str, lang: str) -> list[str]:
    """The fenced ```lang blocks between `marker` and the next heading."""
    at = readme.index(marker)
    section = readme[at:]
    nxt = re.search(r"\n#{1,3} ", section)
    section = section[: nxt.start()] if nxt else section
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


async def readme_examples(binary: str, readme_path: str) -> None:
    readme = Path(readme_path).read_text()
    [quick] = blocks_after(readme, "<!-- mcp-quickstart -->", "python")
    configs = blocks_after(readme, "<!-- mcp-config -->", "json")
    check(len(configs) >= 2, "README: the Claude Desktop and Cursor configurations are there")
    with serve(binary, {}) as base:
        code = quick.replace("http://127.0.0.1:8080", base)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        check(out.returncode == 0 and "Pixel" in out.stdout, f"README: the MCP quick start runs as written ({out.stdout[-300:]}{out.stderr[-600:]})")
        for cfg in configs:
            parsed = json.loads(cfg)
            ((name, server),) = parsed["mcpServers"].items()
            data = tempfile.mkdtemp(prefix="mcp-readme-")
            try:
                if "url" in server:
                    url = server["url"].replace("http://127.0.0.1:8080", base)
                    transport = streamable_http_client(url, http_client=httpx2.AsyncClient(headers=server.get("headers", {})))
                    how = f"url {server['url']}"
                else:
                    # `reflector` is on the PATH after `cargo install --path .`; here, the build.
                    command = binary if server["command"] == "reflector" else server["command"]
                    args = [a.replace("/path/to/data", data).replace("http://127.0.0.1:8080", base) for a in server.get("args", [])]
                    env = dict(server.get("env", {}), REFLECTOR_EMBEDDER="hash")
                    transport = StdioServerParameters(command=command, args=args, env=env)
                    how = f"command {server['command']} {' '.join(server.get('args', []))}"
                async with Client(transport) as c:
                    tools = {t.name for t in (await c.list_tools()).tools}
                    r = await c.call_tool("search", {"query": "anything"})
                check(TOOLS <= tools and not r.is_error, f"README: the configuration with {how} starts and serves the tools")
            finally:
                shutil.rmtree(data, ignore_errors=True)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reflector", required=True)
    ap.add_argument("--readme")
    a = ap.parse_args()
    await over_http(a.reflector)
    await over_stdio(a.reflector)
    if a.readme:
        await readme_examples(a.reflector, a.readme)
    print("MCP check passed")


if __name__ == "__main__":
    asyncio.run(main())
