#!/usr/bin/env bash
# The simulator's CI sweep: a fixed list of seeds, each run twice (trace
# hashes compared), with every protocol branch and fault kind required; then
# fresh seeds for a bounded time. Any failure prints the shrunk trace, the
# exact `rotor replay` command, and leaves the trace JSON in $TRACE_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
TRACE_DIR="${TRACE_DIR:-target/sim-traces}"
mkdir -p "$TRACE_DIR"
cargo build --release --bin rotor
ROTOR=target/release/rotor
if [ -n "${CARGO_TARGET_DIR:-}" ]; then ROTOR="$CARGO_TARGET_DIR/release/rotor"; fi
# Fixed seeds 0..100000 (the default swarm), twice each, coverage required.
"$ROTOR" check --seeds 100000 --twice --require-coverage --trace-dir "$TRACE_DIR"
# The lease backend: its limit is an expected finding, anything else fails.
"$ROTOR" check --seeds 20000 --backend lease --trace-dir "$TRACE_DIR"
# Fresh seeds for at most two minutes (the start seed is printed). One kernel
# finding still open (sim/README.md, "Open findings") shows up about once per
# 200,000 fresh seeds, so this step reports without blocking until it is
# fixed; set SIM_FRESH_BLOCKING=1 to make it block.
if ! "$ROTOR" check --fresh --seeds 100000000 --max-seconds 120 --trace-dir "$TRACE_DIR"; then
  echo "rotor check: fresh seeds found failures (replay commands above)"
  if [ "${SIM_FRESH_BLOCKING:-0}" = "1" ]; then exit 1; fi
fi
