#!/usr/bin/env bash
# The phrasing corpus (tests/phrasing/): stores each hand-written conversation through the API
# with MiniLM, prints the accuracy for each kind on the untuned fifth and on the rest, and fails
# when a kind falls under its floor (FLOORS in tests/phrasing.rs).
#   scripts/phrasing.sh                       # the table
#   PHRASING_SHOW=tuning scripts/phrasing.sh  # and every wrong case of the tuning part
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memory-reflector/target}"
"$CARGO_TARGET_DIR/release/reflector" model fetch >/dev/null 2>&1 || cargo run --release --locked -q -- model fetch
exec cargo test --release --locked --test phrasing -- --nocapture
