#!/usr/bin/env bash
# The MCP server, checked with PyPI's official `mcp` client (scripts/mcp_check.py): both
# transports (streamable HTTP at /mcp with keys, stdio on a data directory and against a
# server), the tools, storing and finding turns, user isolation, and the README's MCP quick
# start and client configurations as written. Each check starts its own `reflector serve` (hash
# embedder, temporary data directory, free loopback port). About 15 s.
#
# Installs the `mcp` package (pinned) into a virtualenv under ~/.cache once; later runs reuse it.
# Usage: scripts/mcp.sh [BINARY]  (default CARGO_TARGET_DIR/release/reflector, which
# scripts/test.sh builds). Exits non-zero at the first failed check.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memory-reflector/target}"
MCP_VERSION=2.3.0
VENV="$HOME/.cache/memory-reflector/venv-mcp-$MCP_VERSION"
BIN="${1:-$CARGO_TARGET_DIR/release/reflector}"
[ -x "$BIN" ] || { echo "no reflector binary at $BIN: run cargo build --release first" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import mcp' 2>/dev/null; then
  echo "installing mcp $MCP_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_VERSION"
fi
REFLECTOR_LOG="${REFLECTOR_LOG:-warn}" "$VENV/bin/python" scripts/mcp_check.py --reflector "$BIN" --readme README.md
