#!/usr/bin/env bash
# Property-based test of the HTTP API against its own OpenAPI document (GET /openapi.json),
# with Schemathesis: every operation gets generated valid and invalid requests (examples,
# coverage of bounds and types, fuzzing, and stateful sequences that follow the links
# between operations), and every answer is checked — no 5xx, only documented status codes,
# bodies, content types and headers as documented, invalid data refused, valid data
# accepted, auth enforced (`--checks all`; schemathesis.toml next to this script says which
# operations may refuse schema-valid data, and why).
#
# Starts `reflector serve` on a temporary data directory with the hash embedder (fast; no
# model needed) and an admin API key, so the security the document declares is real.
# Installs Schemathesis (pinned) into a virtualenv under ~/.cache once; later runs reuse it.
#
# Usage: scripts/schemathesis.sh [--max-examples N] [extra `st run` arguments…]
# Needs the release binary: CARGO_TARGET_DIR/release/reflector (scripts/test.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memory-reflector/target}"
ST_VERSION=4.32.5
VENV="$HOME/.cache/memory-reflector/schemathesis-$ST_VERSION"
MAX_EXAMPLES=25
if [ "${1:-}" = "--max-examples" ]; then MAX_EXAMPLES="$2"; shift 2; fi

BIN="$CARGO_TARGET_DIR/release/reflector"
[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release first" >&2; exit 1; }

if [ ! -x "$VENV/bin/st" ]; then
  echo "installing schemathesis $ST_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

DATA="$(mktemp -d /tmp/reflector-schemathesis.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
KEY="schemathesis-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
REFLECTOR_API_KEYS="$KEY:admin" REFLECTOR_EMBEDDER=hash REFLECTOR_LOG="${REFLECTOR_LOG:-warn}" \
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --workers 2 --embed-threads 1 \
  >"$DATA/server.log" 2>&1 &
SERVE_PID=$!
cleanup() {
  kill "$SERVE_PID" 2>/dev/null || true
  wait "$SERVE_PID" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/api/reflection/health" >/dev/null 2>&1 && break
  sleep 0.1
done

start=$(date +%s)
# One worker: with two, Schemathesis's threads call ast.parse concurrently (Hypothesis
# describing its filter lambdas) and CPython 3.11.7 then raises "SystemError: AST
# constructor recursion depth mismatch" (python/cpython#106905), a tool error that failed
# two CI runs in a row on 30 Nov.
set +e
# Run from the temporary directory: Schemathesis keeps its state in ./.schemathesis.
ROOT="$PWD"
(cd "$DATA" && "$VENV/bin/st" --no-color --config-file "$ROOT/scripts/schemathesis.toml" \
  run "http://127.0.0.1:$PORT/openapi.json" \
  --checks all \
  --max-examples "$MAX_EXAMPLES" \
  --seed 1 \
  --workers 1 \
  --request-timeout 10 \
  -H "Authorization: Bearer $KEY" \
  "$@")
rc=$?
set -e
echo "schemathesis: exit $rc after $(( $(date +%s) - start )) s"
if grep -q -i -e panicked -e "internal error" "$DATA/server.log"; then
  echo "the server logged a panic or an internal error:" >&2
  grep -i -e panicked -e "internal error" "$DATA/server.log" | head -20 >&2
  rc=1
fi
exit "$rc"
