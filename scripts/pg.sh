#!/usr/bin/env bash
# Start the two PostgreSQL servers the test suite runs against, on loopback, each in a fresh
# data directory under $PG_ROOT (default /tmp/reflector-pg):
#   - Debian's PostgreSQL 15 (preinstalled; no pgvector): port $PG15_PORT (55432)
#   - PyPI's pgserver: PostgreSQL 16 with pgvector, in a venv under ~/.cache: port $PG16_PORT
#     (55433)
# Usage: scripts/pg.sh start   -> prints `export` lines for PG15_URL and PG16_URL
#        scripts/pg.sh stop
# Needs root (servers run as the `postgres` user, as PostgreSQL refuses to run as root).
# Fails, never skips, when a server cannot be started.
set -euo pipefail

PG_ROOT=${PG_ROOT:-/tmp/reflector-pg}
PG15_PORT=${PG15_PORT:-55432}
PG16_PORT=${PG16_PORT:-55433}
PG15_BIN=${PG15_BIN:-/usr/lib/postgresql/15/bin}
VENV=${PGSERVER_VENV:-$HOME/.cache/reflector-pg-venv}
PGSERVER_VERSION=0.1.4 # PostgreSQL 16.2 + pgvector 0.6.2

as_pg() { runuser -u postgres -- "$@"; }

start_one() { # bin dir, data dir, port
    local bin=$1 data=$2 port=$3
    if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null
    fi
    rm -rf "$data"
    mkdir -p "$data"
    chown postgres "$data"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$data.initdb.log" 2>&1 ||
        { cat "$data.initdb.log" >&2; exit 1; }
    # Durability off: test data only, and much faster commits on this disk.
    as_pg "$bin/pg_ctl" -D "$data" -l "$data.log" -w -t 60 \
        -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null || { cat "$data.log" >&2; exit 1; }
}

case "${1:-start}" in
start)
    id postgres >/dev/null 2>&1 || { echo "pg.sh: no postgres user (install postgresql)" >&2; exit 1; }
    [ -x "$PG15_BIN/initdb" ] || { echo "pg.sh: Debian PostgreSQL 15 not found at $PG15_BIN" >&2; exit 1; }
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pgserver" 2>/dev/null; then
        python3 -m venv "$VENV" >&2
        "$VENV/bin/pip" install -q "pgserver==$PGSERVER_VERSION" >&2
    fi
    PG16_BIN=$("$VENV/bin/python" -c "import pgserver, os; print(os.path.join(os.path.dirname(pgserver.__file__), 'pginstall', 'bin'))" 2>/dev/null)
    # The postgres user must be able to reach the binaries and the data directories.
    chmod o+rx "$HOME" "$HOME/.cache" 2>/dev/null || true
    mkdir -p "$PG_ROOT"
    chown postgres "$PG_ROOT"
    chmod 755 "$PG_ROOT"
    start_one "$PG15_BIN" "$PG_ROOT/pg15" "$PG15_PORT"
    start_one "$PG16_BIN" "$PG_ROOT/pg16" "$PG16_PORT"
    echo "export PG15_URL=postgres://postgres@127.0.0.1:$PG15_PORT/postgres"
    echo "export PG16_URL=postgres://postgres@127.0.0.1:$PG16_PORT/postgres"
    ;;
stop)
    for d in "$PG_ROOT/pg15" "$PG_ROOT/pg16"; do
        [ -d "$d" ] || continue
        bin=$PG15_BIN
        [ "$d" = "$PG_ROOT/pg16" ] && bin=$("$VENV/bin/python" -c "import pgserver, os; print(os.path.join(os.path.dirname(pgserver.__file__), 'pginstall', 'bin'))" 2>/dev/null)
        as_pg "$bin/pg_ctl" -D "$d" -m fast stop >/dev/null 2>&1 || true
    done
    ;;
*)
    echo "usage: scripts/pg.sh start|stop" >&2
    exit 2
    ;;
esac
