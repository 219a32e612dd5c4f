#!/usr/bin/env bash
# The Python client package (clients/python): installs it with its test tools into a
# virtualenv under ~/.cache (created once, reused), type-checks it with `mypy --strict`, and
# runs its pytest suite, which starts its own `reflector` servers (hash embedder, temporary
# data directories, free loopback ports) from the binary given here. About 20 s.
#
# Usage: scripts/python-client.sh [BINARY] [extra pytest arguments…]
# BINARY defaults to $REFLECTOR_BIN, else CARGO_TARGET_DIR/release/reflector
# (scripts/test.sh builds it). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memory-reflector/target}"
VENV="$HOME/.cache/memory-reflector/venv-client"

BIN="${REFLECTOR_BIN:-$CARGO_TARGET_DIR/release/reflector}"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BIN="$1"; shift; fi
[ -x "$BIN" ] || { echo "no reflector binary at $BIN: run cargo build --release, or pass one" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

[ -x "$VENV/bin/python" ] || { echo "creating $VENV"; python3 -m venv "$VENV"; }
# The package is reinstalled on every run (a few seconds), so that the suite tests the working
# tree; the tools are pinned, so that a new release cannot fail a run that changed nothing.
"$VENV/bin/pip" install --quiet --disable-pip-version-check ./clients/python \
  pytest==9.2.0 pytest-asyncio==1.5.0 mypy==2.4.1

start=$(date +%s)
echo "mypy --strict: the package, as installed (so that its py.typed marker counts), and its tests"
(cd /tmp && "$VENV/bin/mypy" --strict --cache-dir "$VENV/mypy-cache" -p memory_reflector)
(cd clients/python/tests && "$VENV/bin/mypy" --strict --cache-dir "$VENV/mypy-cache" .)

echo "pytest clients/python/tests with REFLECTOR_BIN=$BIN"
(cd clients/python && REFLECTOR_BIN="$BIN" "$VENV/bin/pytest" -p no:cacheprovider -q "$@")
echo "python client: passed in $(( $(date +%s) - start )) s"
