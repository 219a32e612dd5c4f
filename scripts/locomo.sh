#!/usr/bin/env bash
# LoCoMo recall figures for one `reflector` binary, reproducibly: every turn is stored first
# (API only, one request at a time, so the turns arrive in the file's order), then one worker
# reflects the jobs in queue order, then `eval` asks every question, and the shared scorer
# prints the figures. With several workers, or turns arriving while jobs run, the graph and
# the episodes' context depend on timing, and two runs of the same binary differ by about
# 0.002 in recall@5.
#
# Usage: scripts/locomo.sh [BINARY] [OUTDIR] [DATA]
#   BINARY  default target/release/reflector (CARGO_TARGET_DIR respected)
#   OUTDIR  default ./locomo-out: R.jsonl (the scorer's input), score.txt, logs
#   DATA    default ../shared/data/locomo-dev.json
# Takes about 4 minutes on 2 cores with MiniLM (the model must be fetched: reflector model fetch).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/reflector}")
OUT=${2:-locomo-out}
DATA=$(realpath "${3:-../shared/data/locomo-dev.json}")
SCORER=$(dirname "$DATA")/../tools/locomo_score.py
mkdir -p "$OUT"
D=$(mktemp -d /tmp/reflector-locomo.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$D"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/api/reflection/health" >/dev/null 2>&1 && return; sleep 0.2; done; echo "server did not start" >&2; exit 1; }

P=$(port)
REFLECTOR_LOG=warn "$BIN" api --listen "127.0.0.1:$P" --data-dir "$D" >"$OUT/api.log" 2>&1 &
PID=$!
up "$P"
"$BIN" import --format locomo "$DATA" --server "http://127.0.0.1:$P" --concurrency 1 >"$OUT/import.log" 2>&1
kill "$PID"; wait "$PID" || true

P=$(port)
REFLECTOR_LOG=warn "$BIN" serve --workers 1 --listen "127.0.0.1:$P" --data-dir "$D" >"$OUT/serve.log" 2>&1 &
PID=$!
up "$P"
# Posting again adds nothing (the turns are stored) and --wait blocks until every job is done.
"$BIN" import --format locomo "$DATA" --server "http://127.0.0.1:$P" --concurrency 1 --wait >>"$OUT/import.log" 2>&1
"$BIN" eval locomo "$DATA" --server "http://127.0.0.1:$P" --out "$OUT/R.jsonl" >"$OUT/eval.log" 2>&1
kill "$PID"; wait "$PID" || true
PID=
python3 "$SCORER" "$DATA" "$OUT/R.jsonl" | tee "$OUT/score.txt"
