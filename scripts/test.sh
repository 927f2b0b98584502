#!/usr/bin/env bash
# rotor's whole test suite: the one command README.md names and CI runs.
#
#   1. every crate's unit, integration and doc tests (debug), end-to-end
#      tests against real processes and a real OAuth server included; then
#      the Node package's tests (node/test.sh: builds the addon, runs
#      `node --test`);
#   2-3. the loom models (exhaustive, `--cfg loom`, own target directory) and
#      the shuttle models (randomized and PCT schedules): scripts/test-models.sh;
#   4. every benchmark once, as a test (so the benchmarks cannot rot);
#   5. a simulator sweep: a fixed list of seeds plus fresh ones, each CI seed
#      run twice and its trace hash compared;
#   6. the explorer's symmetry soundness check on the larger worlds (every
#      broken host of docs/bugs.md found alike with and without symmetry
#      reduction; release, about 2 minutes).
#
# Prints one closing line `rotor: N passed, N failed` and exits non-zero when
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed_steps=()

run() {
  local name=$1; shift
  echo "==> $name: $*"
  if ! "$@" 2>&1 | tee -a "$log"; then
    failed_steps+=("$name")
  fi
}

# The OAuth end-to-end test needs oidc-provider (npm); install it once.
if [ -f tests/oidc/package.json ] && [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  run npm-install npm ci --prefix tests/oidc --no-audit --no-fund
fi

# The PostgreSQL tests need a server on 127.0.0.1:5432 unless ROTOR_PG_URL
# names one (and tests/pg_restart.rs the server binaries, to run a cluster of
# its own): scripts/ensure-postgres.sh makes sure (0 s when one answers).
if [ -z "${ROTOR_PG_URL:-}" ]; then
  run postgres bash scripts/ensure-postgres.sh
fi

run workspace cargo test --workspace
run node bash node/test.sh
run models bash scripts/test-models.sh
run benches cargo bench --workspace -- --test
run sim-sweep bash sim/ci.sh
run explorer-symmetry cargo test --release -p rotor-sim --test explore_bugs -- --ignored

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | grep -v '^0 ' | awk '{s+=$1} END {print s+0}')
# node's test runner (the node step) closes with `# pass N` and `# fail N`.
passed=$((passed + $(grep -E '^# pass [0-9]+$' "$log" | awk '{s+=$3} END {print s+0}')))
failed=$((failed + $(grep -E '^# fail [0-9]+$' "$log" | awk '{s+=$3} END {print s+0}')))
if [ ${#failed_steps[@]} -gt 0 ] && [ "$failed" -eq 0 ]; then
  failed=${#failed_steps[@]}
fi
if [ ${#failed_steps[@]} -gt 0 ]; then
  echo "failed steps: ${failed_steps[*]}"
fi
echo "rotor: $passed passed, $failed failed"
[ ${#failed_steps[@]} -eq 0 ]
