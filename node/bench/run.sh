#!/usr/bin/env bash
# Benchmarks of the Node package (BENCHMARKS.md, "Node.js and async Rust"):
# release builds of the addon, the CLI and the Rust example, then
# node/bench/run.mjs. Reports only; fails only on a correctness check.
#   bash node/bench/run.sh            # the full run (a few minutes)
#   bash node/bench/run.sh --quick    # a smoke run
set -euo pipefail
cd "$(dirname "$0")/../.."
bash node/build.sh --release
cargo build --release -p rotor --bin rotor
cargo build --release -p rotor-fs --features tokio --example fresh_calls
exec node node/bench/run.mjs "$@"
