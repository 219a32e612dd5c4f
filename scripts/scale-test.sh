#!/usr/bin/env bash
# Horizontal scale on one RabbitMQ and one PostgreSQL: 2 `reflector api` and 3
# `reflector worker` processes on loopback; 50 users x 20 turns sent concurrently (the
# original's memory-pressure scenario) plus 100 turns of one user (`solo`) sent all at once,
# over both API processes. Turns are real dialogue (LoCoMo, ../shared/data/locomo-dev.json).
#
#   scripts/scale-test.sh [--users 50] [--turns 20] [--solo 100] [--embedder hash|minilm]
#
# Needs: a built binary (REFLECTOR_BIN, default $CARGO_TARGET_DIR/release/reflector), a
# running RabbitMQ (RABBITMQ_URL, default amqp://guest:guest@127.0.0.1:5672/%2f), a running
# PostgreSQL (DATABASE_URL, default the pgvector server of scripts/pg.sh:
# postgres://postgres@127.0.0.1:55433/postgres), psql and python3. Each run uses a schema
# and queues of its own.
#
# Checks, once every accepted job finished: every job completed (`lost` = accepted jobs not
# completed), no duplicate episode (per job), entity (per user and name), fact (per user,
# subject, predicate, object, valid_at), rule (per user, topic, statement) or turn;
# `cross_user_rows` = rows whose user differs from the user of the turn or entity they hang
# on; and the solo user's graph equals the graph of the same 100 turns processed one at a
# time by a single embedded (SQLite) process, compared as sets of (subject, predicate,
# object, valid_at, invalid_at) by canonical names. The last line printed is one JSON
# object; the exit code is 1 when any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=50
TURNS=20
SOLO=100
EMBEDDER=hash
# The LoCoMo file (not in the repository: see ../shared/data/README.md for its license): next to
# the work tree, or where this machine keeps it (CI runs on a clone elsewhere).
DATA="${LOCOMO:-}"
if [ -z "$DATA" ]; then
  for d in ../shared/data/locomo-dev.json /work/shared/data/locomo-dev.json; do
    [ -f "$d" ] && { DATA="$d"; break; }
  done
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --turns) TURNS="$2"; shift 2 ;;
    --solo) SOLO="$2"; shift 2 ;;
    --embedder) EMBEDDER="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

BIN="${REFLECTOR_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/memory-reflector/target}/release/reflector}"
[ -x "$BIN" ] || { echo "no reflector binary at $BIN (cargo build --release, or set REFLECTOR_BIN)" >&2; exit 2; }
[ -f "$DATA" ] || { echo "no LoCoMo file (../shared/data/locomo-dev.json or /work/shared/data/locomo-dev.json; set LOCOMO)" >&2; exit 2; }
export RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:55433/postgres}"
psql "$DATABASE_URL" -qAtc "SELECT 1" >/dev/null || { echo "PostgreSQL is not reachable at DATABASE_URL (scripts/pg.sh start)" >&2; exit 2; }

RUN="scale_$(date +%s)_$$"
WORK="$(mktemp -d /tmp/reflector-scale.XXXXXX)"
export REFLECTOR_DATABASE_SCHEMA="$RUN"
export REFLECTOR_AMQP_EXCHANGE="${RUN}_exchange" REFLECTOR_AMQP_QUEUE="${RUN}_queue" REFLECTOR_AMQP_DLQ="${RUN}_dlq"
export REFLECTOR_EMBEDDER="$EMBEDDER" REFLECTOR_LOG="${REFLECTOR_LOG:-warn}" REFLECTOR_EMBED_THREADS=1
# Each process holds few connections: 5 processes on one server.
export REFLECTOR_DATABASE_MAX_CONNECTIONS=8

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if command -v rabbitmqctl >/dev/null 2>&1; then
    for q in "$REFLECTOR_AMQP_QUEUE" "$REFLECTOR_AMQP_QUEUE.priority" "$REFLECTOR_AMQP_DLQ"; do
      rabbitmqctl delete_queue "$q" >/dev/null 2>&1 || true
    done
  fi
}
trap cleanup EXIT

wait_health() {
  for _ in $(seq 300); do curl -sf "$1/api/reflection/health" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "no health from $1" >&2; return 1
}

# The migration runs once, before the processes start (they would also race for it safely).
"$BIN" migrate >/dev/null
APIS=()
for i in 1 2; do
  P="$(port)"
  "$BIN" api --listen "127.0.0.1:$P" --data-dir "$WORK/api$i" >"$WORK/api$i.log" 2>&1 &
  PIDS+=($!)
  APIS+=("http://127.0.0.1:$P")
done
for i in 1 2 3; do
  REFLECTOR_WORKERS=2 "$BIN" worker --data-dir "$WORK/worker$i" >"$WORK/worker$i.log" 2>&1 &
  PIDS+=($!)
done
for a in "${APIS[@]}"; do wait_health "$a"; done

START=$(date +%s)
python3 scripts/scale_load.py send --apis "$(IFS=,; echo "${APIS[*]}")" --data "$DATA" \
  --users "$USERS" --turns "$TURNS" --solo "$SOLO" --out "$WORK/sent.json"
ACCEPTED=$(python3 -c "import json; print(sum(len(v) for v in json.load(open('$WORK/sent.json'))['accepted'].values()))")
NON2XX=$(python3 -c "import json; print(json.load(open('$WORK/sent.json'))['non_2xx'])")

q() { psql "$DATABASE_URL" -qAt -c "SET search_path TO $RUN, public" -c "$1" | tail -1; }
for _ in $(seq 1200); do
  DONE=$(q "SELECT count(*) FROM jobs WHERE state IN ('completed', 'dead')")
  [ "$DONE" -ge "$ACCEPTED" ] && break
  sleep 0.5
done
DRAIN_S=$(( $(date +%s) - START ))

JOBS=$(q "SELECT count(*) FROM jobs")
COMPLETED=$(q "SELECT count(*) FROM jobs WHERE state = 'completed'
               AND (SELECT count(*) FROM job_tiers t WHERE t.job_id = jobs.job_id AND t.status = 'completed') = 3")
DEAD=$(q "SELECT count(*) FROM jobs WHERE state = 'dead'")
DUPLICATES=$(q "SELECT (SELECT count(*) FROM (SELECT job_id FROM episodes GROUP BY job_id HAVING count(*) > 1) a)
                     + (SELECT count(*) FROM (SELECT user_id, norm_name FROM entities GROUP BY 1, 2 HAVING count(*) > 1) b)
                     + (SELECT count(*) FROM (SELECT user_id, lower(name) FROM entities GROUP BY 1, 2 HAVING count(*) > 1) b2)
                     + (SELECT count(*) FROM (SELECT user_id, subject_id, predicate, object_id, valid_ms FROM relations
                                              GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1) c)
                     + (SELECT count(*) FROM (SELECT user_id, topic, statement FROM rules GROUP BY 1, 2, 3 HAVING count(*) > 1) d)
                     + (SELECT count(*) FROM (SELECT user_id, session_id, user_message, ts_ms FROM turns
                                              GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) e)")
CROSS=$(q "SELECT (SELECT count(*) FROM episodes e JOIN turns t ON t.job_id = e.job_id WHERE t.user_id <> e.user_id)
                + (SELECT count(*) FROM turns t JOIN jobs j ON j.job_id = t.job_id WHERE j.user_id <> t.user_id)
                + (SELECT count(*) FROM relations r JOIN entities s ON s.id = r.subject_id WHERE s.user_id <> r.user_id)
                + (SELECT count(*) FROM relations r JOIN entities o ON o.id = r.object_id WHERE o.user_id <> r.user_id)
                + (SELECT count(*) FROM relations r JOIN jobs j ON j.job_id = r.job_id WHERE j.user_id <> r.user_id)
                + (SELECT count(*) FROM entity_aliases a JOIN entities e ON e.id = a.entity_id WHERE e.user_id <> a.user_id)")
# And through the API: each user's episodes are all from that user's own turns.
API_CROSS=$(python3 - "${APIS[0]}" "$WORK/sent.json" <<'EOF'
import json, sys, urllib.request
api, sent = sys.argv[1], json.load(open(sys.argv[2]))
bad = 0
for user in sent["accepted"]:
    mine = {f"{user}-{i}" for i in range(1000)}
    off = 0
    while True:
        v = json.load(urllib.request.urlopen(f"{api}/api/memory/episodic/{user}?limit=100&offset={off}"))
        eps = v.get("episodes", [])
        for e in eps:
            if e.get("user_id") != user:
                bad += 1
        if len(eps) < 100:
            break
        off += 100
print(bad)
EOF
)
python3 scripts/scale_load.py facts --api "${APIS[0]}" --user solo --out "$WORK/solo-concurrent.json"

# The sequential reference: one embedded process, one worker, one turn at a time.
P="$(port)"
env -u DATABASE_URL -u RABBITMQ_URL -u REFLECTOR_DATABASE_SCHEMA REFLECTOR_WORKERS=1 \
  "$BIN" serve --listen "127.0.0.1:$P" --data-dir "$WORK/sequential" >"$WORK/sequential.log" 2>&1 &
PIDS+=($!)
wait_health "http://127.0.0.1:$P"
python3 scripts/scale_load.py solo-seq --api "http://127.0.0.1:$P" --data "$DATA" --solo "$SOLO"
python3 scripts/scale_load.py facts --api "http://127.0.0.1:$P" --user solo --out "$WORK/solo-sequential.json"

python3 - "$WORK" "$ACCEPTED" "$JOBS" "$COMPLETED" "$DEAD" "$DUPLICATES" "$CROSS" "$API_CROSS" "$NON2XX" "$DRAIN_S" <<'EOF'
import json, sys
work, accepted, jobs, completed, dead, dups, cross, api_cross, non2xx, drain = sys.argv[1:]
a = {tuple(x) for x in json.load(open(f"{work}/solo-concurrent.json"))}
b = {tuple(x) for x in json.load(open(f"{work}/solo-sequential.json"))}
if a != b:
    print("solo graph: only concurrent:", sorted(a - b, key=str)[:10], file=sys.stderr)
    print("solo graph: only sequential:", sorted(b - a, key=str)[:10], file=sys.stderr)
accepted, jobs, completed = int(accepted), int(jobs), int(completed)
out = {
    "jobs": accepted,
    "job_rows": jobs,
    "completed": completed,
    "lost": accepted - completed,
    "dead": int(dead),
    "duplicates": int(dups),
    "cross_user_rows": int(cross) + int(api_cross),
    "graph_equal_to_sequential": a == b,
    "solo_facts": len(a),
    "non_2xx": int(non2xx),
    "drain_s": int(drain),
}
out["ok"] = (out["lost"] == 0 and out["dead"] == 0 and out["duplicates"] == 0
             and out["cross_user_rows"] == 0 and out["graph_equal_to_sequential"]
             and out["non_2xx"] == 0 and jobs == accepted and accepted > 0)
print(json.dumps(out))
sys.exit(0 if out["ok"] else 1)
EOF
