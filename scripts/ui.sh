#!/usr/bin/env bash
# The dashboard (/ui) in a real browser: headless Chromium from Debian's `chromium` package,
# driven by PyPI's Playwright (launched with Debian's Chromium as its executable; Playwright's
# own browser download is never used), with axe-core from the npm registry injected for the
# accessibility check. About 2 minutes.
#
# What it does:
#   1. installs what is missing: Debian's chromium (as root), a virtualenv under
#      ~/.cache/memory-reflector/venv-ui with playwright and pytest (pinned), and axe-core
#      (pinned) under ~/.cache/memory-reflector/ui-npm;
#   2. writes a fixture (scripts/ui_fixture.py) and imports it with `reflector import --format
#      reflector` into a temporary data directory: 10,000 episodes for the user `bulk` (the
#      timing figures), and a turn for the user `ghost` whose job is dead on arrival (an
#      unknown time zone; for the dead-letter page and replay);
#   3. starts `reflector serve` on a free loopback port with an admin key and a key limited
#      to one LoCoMo user, imports one LoCoMo conversation (../shared/data/locomo-dev.json,
#      as the other scripts find it), posts a turn holding `<script>` and `<img onerror>`, and
#      adds two rules of one topic through the edit API (the newer supersedes the older);
#   4. runs scripts/ui_test.py (pytest) against it, which prints the time to the first data
#      row of each page.
#
# Usage: scripts/ui.sh [BINARY] [extra pytest arguments…]
# BINARY defaults to $REFLECTOR_BIN, else CARGO_TARGET_DIR/release/reflector.
# REFLECTOR_UI_SCREENSHOTS=DIR also writes one PNG of each page there (docs/ holds them).
# The pytest suite alone: REFLECTOR_UI_URL=http://… REFLECTOR_UI_ADMIN_KEY=… REFLECTOR_UI_USER_KEY=…
# REFLECTOR_UI_USER=… pytest scripts/ui_test.py — it fails, never skips, when no server answers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memory-reflector/target}"
CACHE="$HOME/.cache/memory-reflector"
VENV="$CACHE/venv-ui"
NPM_DIR="$CACHE/ui-npm"
PLAYWRIGHT_VERSION=1.65.3
AXE_VERSION=4.14.1
LOCOMO="${LOCOMO_FILE:-$ROOT/../shared/data/locomo-dev.json}"
SAMPLE="${LOCOMO_SAMPLE:-conv-26}"

BIN="${REFLECTOR_BIN:-$CARGO_TARGET_DIR/release/reflector}"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BIN="$1"; shift; fi
[ -x "$BIN" ] || { echo "no reflector binary at $BIN: run cargo build --release, or pass one" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
[ -f "$LOCOMO" ] || { echo "no LoCoMo file at $LOCOMO (set LOCOMO_FILE)" >&2; exit 1; }

if ! command -v chromium >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "chromium is missing and we are not root to install it (apt-get install chromium)" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
CHROMIUM="$(command -v chromium)"

[ -x "$VENV/bin/python" ] || { echo "creating $VENV"; python3 -m venv "$VENV"; }
"$VENV/bin/python" -c "import playwright, pytest" 2>/dev/null && \
  [ "$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("playwright"))')" = "$PLAYWRIGHT_VERSION" ] || \
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "playwright==$PLAYWRIGHT_VERSION" pytest==9.2.0
AXE="$NPM_DIR/node_modules/axe-core/axe.min.js"
if [ ! -f "$AXE" ] || ! grep -q "\"version\": \"$AXE_VERSION\"" "$NPM_DIR/node_modules/axe-core/package.json"; then
  mkdir -p "$NPM_DIR"
  npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" "axe-core@$AXE_VERSION" >/dev/null
fi

WORK="$(mktemp -d)"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

start=$(date +%s)
echo "fixture: 10,000 episodes for 'bulk', a dead-on-arrival job for 'ghost'"
"$VENV/bin/python" scripts/ui_fixture.py "$WORK/fixture.jsonl"
for user_file in "$WORK"/fixture.jsonl.*; do
  "$BIN" import --format reflector "$user_file" --data-dir "$WORK/data" --embedder hash 2>&1 | grep -v ' INFO ' || true
done

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
ADMIN_KEY="ui-admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
USER_KEY="ui-user-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export REFLECTOR_API_KEYS="$ADMIN_KEY:admin,$USER_KEY:user=$SAMPLE"
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --embedder hash >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
unset REFLECTOR_API_KEYS
for _ in $(seq 100); do curl -fsS "$URL/api/reflection/health" >/dev/null 2>&1 && break; sleep 0.2; done
if ! kill -0 "$SERVER_PID" 2>/dev/null || ! curl -fsS "$URL/api/reflection/health" >/dev/null; then
  echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1
fi

echo "importing LoCoMo $SAMPLE from $LOCOMO"
REFLECTOR_API_KEY="$ADMIN_KEY" "$BIN" import --format locomo "$LOCOMO" --samples "$SAMPLE" --server "$URL" --wait >/dev/null
echo "a turn holding markup, for the text-only check"
curl -fsS -X POST "$URL/api/interactions" -H "authorization: Bearer $ADMIN_KEY" -H 'content-type: application/json' \
  -d '{"user_id":"markup","session_id":"s1","interaction_id":"markup-1","user_message":"<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\"> I moved to <b>Lisbon</b>.","assistant_response":"<i>noted</i>","timestamp":"2024-05-01T10:00:00Z"}' >/dev/null

echo "two rules of one topic for $SAMPLE (the newer supersedes the older: the rules page shows both)"
for statement in "Answer in short sentences." "Answer in full paragraphs with examples."; do
  curl -fsS -X POST "$URL/api/memory/procedural/$SAMPLE" -H "authorization: Bearer $ADMIN_KEY" -H 'content-type: application/json' \
    -d "{\"statement\":\"$statement\",\"kind\":\"instruction\",\"topic\":\"answer length\"}" >/dev/null
  sleep 0.01
done

echo "waiting for reflection to finish (the markup turn's episode, the dead jobs)"
for _ in $(seq 300); do
  curl -fsS -H "authorization: Bearer $ADMIN_KEY" "$URL/api/reflection/queue-status" \
    | "$VENV/bin/python" -c 'import json, sys; q = json.load(sys.stdin)["queue"]; sys.exit(0 if q["waiting"] == 0 and q["leased"] == 0 and q["dead"] >= 2 else 1)' \
    && break
  sleep 0.1
done
curl -fsS -H "authorization: Bearer $ADMIN_KEY" "$URL/api/reflection/queue-status" \
  | "$VENV/bin/python" -c 'import json, sys; q = json.load(sys.stdin)["queue"]; sys.exit(0 if q["waiting"] == 0 and q["leased"] == 0 and q["dead"] >= 2 else 1)' \
  || { echo "reflection did not finish in 30 s" >&2; exit 1; }

echo "pytest scripts/ui_test.py against $URL"
REFLECTOR_UI_URL="$URL" REFLECTOR_UI_ADMIN_KEY="$ADMIN_KEY" REFLECTOR_UI_USER_KEY="$USER_KEY" REFLECTOR_UI_USER="$SAMPLE" \
REFLECTOR_UI_CHROMIUM="$CHROMIUM" REFLECTOR_UI_AXE="$AXE" \
  "$VENV/bin/pytest" -p no:cacheprovider -q -s scripts/ui_test.py "$@"
echo "dashboard in the browser: passed in $(( $(date +%s) - start )) s"
