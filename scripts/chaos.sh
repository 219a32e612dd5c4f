#!/usr/bin/env bash
# Chaos test of the RabbitMQ deployment: `reflector api` and `reflector worker` as separate
# processes on one data directory, turns posted through the API while the worker is
# SIGKILLed three times and the broker is stopped for 20 seconds and started again; then the
# worker gets a SIGTERM (it must stop taking work, finish or return what it holds, and exit).
#
#   scripts/chaos.sh [--turns N] [--users U] [--duration S] [--embedder hash|minilm]
#
# Defaults: 10,000 turns from 100 users, posted evenly over 60 s (the disruptions happen
# while turns arrive: kills at 8 s, 16 s and 50 s, the broker down from 24 s to 44 s, the
# SIGTERM at 56 s; with --duration the times scale), the MiniLM embedder: reflection is
# then slower than the arrivals, so the worker always holds jobs when it is killed
# (--embedder hash keeps up instead, and is much quicker). Needs the model
# (`reflector model fetch`), a built binary (REFLECTOR_BIN, default
# $CARGO_TARGET_DIR/release/reflector), a local RabbitMQ controlled by rabbitmqctl
# (RABBITMQ_URL, default amqp://guest:guest@127.0.0.1:5672/%2f), python3.
#
# Checks, after the queue drained (or --drain-timeout passed): every accepted turn's job
# completed with all three tiers (`lost` counts those that did not), none dead, no duplicate
# episode (two for one turn), fact (the same relation twice from one job) or rule (the same
# statement twice for a user), every API request answered 2xx, the SIGTERMed worker gone
# within its 30 s grace with exit status 0 (a graceful stop, not killed by the signal). The last line printed is one
# JSON object; the exit code is 1 when any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

TURNS=10000
USERS=100
DURATION=60
EMBEDDER=minilm
DRAIN_TIMEOUT=900
while [ $# -gt 0 ]; do
  case "$1" in
    --turns) TURNS="$2"; shift 2 ;;
    --users) USERS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --embedder) EMBEDDER="$2"; shift 2 ;;
    --drain-timeout) DRAIN_TIMEOUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

BIN="${REFLECTOR_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/memory-reflector/target}/release/reflector}"
[ -x "$BIN" ] || { echo "no reflector binary at $BIN (cargo build --release, or set REFLECTOR_BIN)" >&2; exit 2; }
command -v rabbitmqctl >/dev/null || { echo "rabbitmqctl not found: the chaos test stops and starts a local broker" >&2; exit 2; }
export RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
rabbitmqctl await_startup >/dev/null 2>&1 || { echo "the local RabbitMQ is not running" >&2; exit 2; }

WORK="$(mktemp -d /tmp/reflector-chaos.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
# Names of our own, so a run never sees another run's (or another test's) messages.
export REFLECTOR_AMQP_EXCHANGE=chaos_reflection_exchange
export REFLECTOR_AMQP_QUEUE=chaos_reflection_queue
export REFLECTOR_AMQP_DLQ=chaos_reflection_dlq
export REFLECTOR_EMBEDDER="$EMBEDDER" REFLECTOR_DATA_DIR="$WORK/data" REFLECTOR_LOG="${REFLECTOR_LOG:-warn}"
for q in "$REFLECTOR_AMQP_QUEUE" "$REFLECTOR_AMQP_QUEUE.priority" "$REFLECTOR_AMQP_DLQ"; do
  rabbitmqctl delete_queue "$q" >/dev/null 2>&1 || true
done

API_PID=""; WORKER_PID=""; LOAD_PID=""
cleanup() {
  for p in $LOAD_PID $WORKER_PID $API_PID; do kill "$p" 2>/dev/null || true; done
  rabbitmqctl start_app >/dev/null 2>&1 || true
}
trap cleanup EXIT

start_worker() {
  "$BIN" worker >>"$WORK/worker.log" 2>&1 &
  WORKER_PID=$!
}
log() { echo "[chaos +$(( $(date +%s) - T0 ))s] $*" >&2; }

"$BIN" api --listen "127.0.0.1:$PORT" >"$WORK/api.log" 2>&1 &
API_PID=$!
for _ in $(seq 100); do curl -sf "$BASE/api/reflection/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$BASE/api/reflection/health" >/dev/null || { echo "the API did not start; see $WORK/api.log" >&2; cat "$WORK/api.log" >&2; exit 1; }
start_worker
T0=$(date +%s)
RATE=$(python3 -c "print($TURNS / $DURATION)")
python3 scripts/chaos_load.py --base "$BASE" --turns "$TURNS" --users "$USERS" --rate "$RATE" \
  --progress "$WORK/progress" --out "$WORK/load.json" &
LOAD_PID=$!

at() { # wait until second $1 of the run
  while [ $(( $(date +%s) - T0 )) -lt "$1" ]; do sleep 0.2; done
}
kill_worker() {
  log "SIGKILL worker $WORKER_PID (turns answered: $(cat "$WORK/progress" 2>/dev/null || echo 0))"
  kill -9 "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null || true
  sleep 1; start_worker
}
scale() { python3 -c "print(max(1, round($1 * $DURATION / 60)))"; }
at "$(scale 8)";  kill_worker
at "$(scale 16)"; kill_worker
at "$(scale 24)"; log "broker stop_app (20 s)"; rabbitmqctl stop_app >/dev/null
sleep 20;         log "broker start_app"; rabbitmqctl start_app >/dev/null
at "$(scale 50)"; kill_worker
RESTARTED=$(date +%s)
at "$(scale 56)"
# Give the new worker time to load the model and take deliveries first.
while [ $(( $(date +%s) - RESTARTED )) -lt 5 ]; do sleep 0.2; done
log "SIGTERM worker $WORKER_PID"
TERM_T0=$(date +%s%N); kill -TERM "$WORKER_PID"
SIGTERM_RC=0; wait "$WORKER_PID" 2>/dev/null || SIGTERM_RC=$?
SIGTERM_EXIT_MS=$(( ($(date +%s%N) - TERM_T0) / 1000000 ))
log "worker exited with status $SIGTERM_RC ${SIGTERM_EXIT_MS} ms after SIGTERM"; start_worker
wait "$LOAD_PID"; LOAD_PID=""
log "all turns posted; waiting for the queue to drain"

# Drain: until every accepted turn's job is completed or dead, or the timeout.
python3 - "$WORK" "$DRAIN_TIMEOUT" <<'EOF'
import json, sqlite3, sys, time
work, timeout = sys.argv[1], float(sys.argv[2])
ids = list(json.load(open(f"{work}/load.json"))["accepted"].values())
# Autocommit: each poll reads a fresh snapshot (an open transaction would pin the first).
db = sqlite3.connect(f"file:{work}/data/reflector.db?mode=ro", uri=True, isolation_level=None)
deadline = time.time() + timeout
while True:
    db.execute("CREATE TEMP TABLE IF NOT EXISTS want(job_id TEXT PRIMARY KEY)")
    db.execute("DELETE FROM want")
    db.executemany("INSERT OR IGNORE INTO want VALUES (?)", [(i,) for i in ids])
    open_ = db.execute("SELECT count(*) FROM want LEFT JOIN jobs USING (job_id) WHERE jobs.state IS NULL OR jobs.state NOT IN ('completed','dead')").fetchone()[0]
    if open_ == 0 or time.time() > deadline:
        print(f"drain: {open_} jobs still open", file=sys.stderr)
        break
    time.sleep(1)
EOF
T_END=$(date +%s)
kill -TERM "$WORKER_PID" "$API_PID" 2>/dev/null || true
wait "$WORKER_PID" 2>/dev/null || true; wait "$API_PID" 2>/dev/null || true
WORKER_PID=""; API_PID=""

python3 - "$WORK" "$TURNS" "$USERS" "$(( T_END - T0 ))" "$SIGTERM_EXIT_MS" "$EMBEDDER" "$SIGTERM_RC" <<'EOF'
import json, sqlite3, sys
work, turns, users, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sigterm_ms, embedder, sigterm_rc = int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
load = json.load(open(f"{work}/load.json"))
db = sqlite3.connect(f"{work}/data/reflector.db", isolation_level=None)
db.execute("CREATE TEMP TABLE want(interaction_id TEXT PRIMARY KEY, job_id TEXT)")
db.executemany("INSERT INTO want VALUES (?, ?)", list(load["accepted"].items()))
q = lambda sql: db.execute(sql).fetchone()[0]
completed = q("""SELECT count(*) FROM want JOIN jobs USING (job_id) WHERE jobs.state = 'completed'
                 AND (SELECT count(*) FROM job_tiers t WHERE t.job_id = jobs.job_id AND t.status = 'completed') = 3""")
dead = q("SELECT count(*) FROM want JOIN jobs USING (job_id) WHERE jobs.state = 'dead'")
stored = q("SELECT count(*) FROM want JOIN turns ON turns.id = want.interaction_id AND turns.job_id = want.job_id")
lost = len(load["accepted"]) - completed - dead
dup_episodes = q("SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM episodes GROUP BY user_id, evidence) WHERE n > 1") \
             + q("SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM episodes GROUP BY job_id) WHERE n > 1")
dup_facts = q("SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM relations GROUP BY user_id, subject_id, predicate, object_id, job_id) WHERE n > 1")
dup_rules = q("SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM rules GROUP BY user_id, topic, statement) WHERE n > 1")
redelivered = q("SELECT count(*) FROM want JOIN jobs USING (job_id) WHERE jobs.attempts > 1")
counts = {"episodes": q("SELECT count(*) FROM episodes"), "facts": q("SELECT count(*) FROM relations"),
          "rules": q("SELECT count(*) FROM rules"), "users": q("SELECT count(DISTINCT user_id) FROM turns")}
res = {
    "turns": turns, "users": users, "accepted": len(load["accepted"]), "turns_stored": stored,
    "completed": completed, "lost": lost,
    "duplicates": dup_episodes + dup_facts + dup_rules,
    "duplicate_detail": {"episodes": dup_episodes, "facts": dup_facts, "rules": dup_rules},
    "dead": dead, "non_2xx": load["non_2xx"], "memory": counts,
    "redelivered_jobs": redelivered, "sigterm_exit_ms": sigterm_ms, "sigterm_exit_status": sigterm_rc, "embedder": embedder,
    "post_s": round(load["elapsed_s"], 1), "total_s": secs,
}
ok = (res["non_2xx"] == 0 and res["accepted"] == turns and stored == turns and completed == turns
      and lost == 0 and dead == 0 and res["duplicates"] == 0 and sigterm_ms < 30000 and sigterm_rc == 0)
res["ok"] = ok
if load["failures"]:
    print("first failures:", json.dumps(load["failures"][:5]), file=sys.stderr)
print(json.dumps(res))
sys.exit(0 if ok else 1)
EOF
