#!/usr/bin/env bash
# Write a store fixture with a given `reflector` binary: the stores that binary writes, and
# what that binary reads back from them, so that a later binary is held to open and read
# them the same (tests/store_fixtures.rs).
#
# Usage: scripts/store-fixture.sh BINARY NAME [PG15_URL]
#   BINARY    the reflector binary of the commit the fixture stands for (the commit before a
#             migration, or the start of a restructuring)
#   NAME      fixture folder under tests/fixtures/stores/ (by convention the commit's hash)
#   PG15_URL  a PostgreSQL 15 server without pgvector (scripts/pg.sh start prints one);
#             omitted: the PostgreSQL half is not written
#
# For each store, the binary serves on loopback with the hash embedder, imports
# examples/conversation.json (user demo-ana), makes one edit of each kind (an added episode,
# fact and rule, an updated fact, a deleted episode: so edits and tombstones are stored), and
# stops; then `BINARY export` reads the user back. Written:
#   sqlite.db            the SQLite file (checkpointed, without -wal/-shm)
#   sqlite.export.jsonl  what BINARY exports from it
#   pg15.sql             `pg_dump --inserts --no-owner --no-privileges` of the PostgreSQL database
#   pg15.export.jsonl    what BINARY exports from it
set -euo pipefail
BIN=$(realpath "$1")
NAME=$2
PG15_URL=${3:-}
cd "$(dirname "$0")/.."
OUT=tests/fixtures/stores/$NAME
mkdir -p "$OUT"
USER_ID=demo-ana
export REFLECTOR_EMBEDDER=hash REFLECTOR_LOG=warn

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One store: serve, import, edit, stop. Arguments: the data directory; DATABASE_URL may be set.
write_store() {
    local dir=$1 port api pid id
    port=$(free_port)
    api="http://127.0.0.1:$port"
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" &
    pid=$!
    for _ in $(seq 100); do curl -sf "$api/api/reflection/health" >/dev/null 2>&1 && break; sleep 0.1; done
    "$BIN" import examples/conversation.json --server "$api" --wait >/dev/null
    post() { curl -sf "$api$1" -H 'content-type: application/json' -d "$2"; }
    post "/api/memory/episodic/$USER_ID" '{"text": "Ana keeps a spare key under the blue flowerpot.", "tags": ["home"], "importance": 0.8}' >/dev/null
    id=$(post "/api/memory/semantic/$USER_ID" '{"subject": "Ana", "predicate": "WORKS_AT", "object": "Acme", "valid_at": "2024-01-01T00:00:00Z"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    curl -sf -X PATCH "$api/api/memory/semantic/$USER_ID/$id" -H 'content-type: application/json' \
        -d '{"object": "Globex", "fact": "Ana works at Globex."}' >/dev/null
    post "/api/memory/procedural/$USER_ID" '{"statement": "Answer in French.", "kind": "instruction", "topic": "language"}' >/dev/null
    id=$(curl -sf "$api/api/memory/episodic/$USER_ID?limit=1" | python3 -c 'import json,sys; v=json.load(sys.stdin); print((v.get("items") or v.get("episodes") or v)[0]["id"])')
    curl -sf -X DELETE "$api/api/memory/episodic/$USER_ID/$id" >/dev/null
    kill -TERM "$pid"
    wait "$pid" || true
}

TMP=$(mktemp -d /tmp/reflector-fixture.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

echo "== SQLite store written by $BIN" >&2
write_store "$TMP/sqlite"
python3 - "$TMP/sqlite/reflector.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.execute("PRAGMA journal_mode=DELETE")
c.close()
EOF
cp "$TMP/sqlite/reflector.db" "$OUT/sqlite.db"
"$BIN" export --user "$USER_ID" --data-dir "$TMP/sqlite" >"$OUT/sqlite.export.jsonl"

if [ -n "$PG15_URL" ]; then
    echo "== PostgreSQL 15 store written by $BIN" >&2
    DB=fixture_$(date +%s)
    psql -q "$PG15_URL" -c "CREATE DATABASE $DB"
    URL="${PG15_URL%/*}/$DB"
    DATABASE_URL="$URL" REFLECTOR_PGVECTOR=off write_store "$TMP/pg"
    pg_dump --inserts --no-owner --no-privileges "$URL" >"$OUT/pg15.sql"
    DATABASE_URL="$URL" REFLECTOR_PGVECTOR=off "$BIN" export --user "$USER_ID" --data-dir "$TMP/pg" >"$OUT/pg15.export.jsonl"
    psql -q "$PG15_URL" -c "DROP DATABASE $DB"
fi
ls -l "$OUT" >&2
