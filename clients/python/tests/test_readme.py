"""The repository README's Python client examples run as written against a live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from live import ADMIN_KEY, Server

README = Path(__file__).resolve().parents[3] / "README.md"


def block_after(marker: str) -> str:
    """The first ```python block after `marker` in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.search(re.escape(marker) + r".*?```python\n(.*?)```", text, re.S)
    assert found, f"README.md has no ```python block after {marker}"
    return found.group(1)


def run(code: str, server: Server) -> str:
    env = dict(os.environ, REFLECTOR_URL=server.url, REFLECTOR_API_KEY=ADMIN_KEY)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_quick_start_runs_as_written(server: Server) -> None:
    out = run(block_after("<!-- client-quickstart -->"), server)
    assert "completed" in out
    assert "Berlin" in out


def test_the_migration_note_runs_as_written(server: Server) -> None:
    # The snippet uses the caller's own variables; give them values.
    preamble = (
        "user_id, session_id = 'migrating-user', 's1'\n"
        "user_message, assistant_response = 'I work at Globex now.', 'Congratulations!'\n"
    )
    run(preamble + block_after("<!-- client-migration -->"), server)
