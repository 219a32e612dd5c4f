"""Live `reflector` servers for the tests, and the keys they accept (see conftest.py)."""

from __future__ import annotations

import http.server
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ADMIN_KEY = "admin-" + secrets.token_hex(16)
SCOPED_KEY = "scoped-" + secrets.token_hex(16)
SCOPED_USER = "scoped-user"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary() -> str:
    path = os.environ.get("REFLECTOR_BIN")
    if not path:
        pytest.fail(
            "REFLECTOR_BIN is not set: point it at a reflector binary "
            "(scripts/python-client.sh [BINARY] sets it)",
            pytrace=False,
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"REFLECTOR_BIN={path} is not an executable file", pytrace=False)
    return path


class Server:
    """A `reflector` process on a free port; :meth:`stop` ends it and removes its data."""

    def __init__(self, command: str, args: list[str], keys: str | None = None) -> None:
        binary = _binary()
        self.data = Path(tempfile.mkdtemp(prefix="reflector-pyclient-"))
        self.log_path = self.data / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REFLECTOR_")}
        env.update(REFLECTOR_LOG="warn", REFLECTOR_EMBEDDER="hash")
        env.pop("RABBITMQ_URL", None)
        env.pop("DATABASE_URL", None)
        if keys:
            env["REFLECTOR_API_KEYS"] = keys
        for _ in range(3):  # another process may take the free port before the server binds it
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            argv = [binary, command, "--listen", f"127.0.0.1:{self.port}"]
            argv += ["--data-dir", str(self.data), "--embed-threads", "1", *args]
            self._log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
            if self._wait_healthy() or "in use" not in self.log():
                break
            self._log.close()
        if self.proc.poll() is not None:
            log = self.log()
            self.stop()
            pytest.fail(f"reflector exited with {self.proc.returncode}:\n{log}", pytrace=False)

    def _wait_healthy(self) -> bool:
        """Wait for the health check; False if the process exited first."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(self.url + "/api/reflection/health", timeout=1).status_code < 500:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        log = self.log()
        self.stop()
        pytest.fail(f"reflector did not answer its health check within 20 s:\n{log}", pytrace=False)

    def log(self) -> str:
        """The server's output so far (the last 4000 characters)."""
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL after 10 s) and remove its data."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.data, ignore_errors=True)


class RefusingLLM(http.server.BaseHTTPRequestHandler):
    """An "LLM" that refuses every request with 400, so that every tier fails at once."""

    def do_POST(self) -> None:
        body = b'{"error": {"message": "stub LLM: refused"}}'
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
