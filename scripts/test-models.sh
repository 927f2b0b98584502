#!/usr/bin/env bash
# rotor's model checkers alone, with their wall times (scripts/test.sh, the
# README's test command, runs the same two steps among everything else).
#
#   1. loom: every interleaving of the small configurations within a
#      preemption bound of 3; needs `--cfg loom`, so it builds in its own
#      target directory (target/loom, or $ROTOR_LOOM_TARGET_DIR) and never
#      invalidates the normal build.
#   2. shuttle: PCT (depth 2 and 3) and random schedules of the larger ones.
#
# Among them, the identity gate's models (loom_identity, shuttle_identity)
# and a broken gate for every row of SPEC §5 (loom_gate_broken,
# shuttle_gate_broken, each expected to fail with G3 or G2).
#
# Each model prints what it explored (loom: interleavings; shuttle:
# iterations per second and its seed). A failure prints the command that
# replays it. Extra arguments go to both test binaries (e.g. `--nocapture`).
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
step() {
  local name=$1; shift
  local started=$SECONDS
  echo "==> $name: $*"
  "$@" || status=1
  echo "==> $name: $((SECONDS - started)) s"
}

step loom env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="${ROTOR_LOOM_TARGET_DIR:-target/loom}" \
  cargo test -p rotor-model --release --tests -- "$@"
step shuttle cargo test -p rotor-model --features shuttle --release --tests -- "$@"
exit $status
