#!/usr/bin/env bash
# The Node package's tests (scripts/test.sh runs this as its `node` step):
# builds the addon (debug), the `rotor` binary and the tokio example that
# the interop test starts beside node processes, then runs node's own test
# runner on node/test/*.test.mjs. TAP output: ends with `# pass N`/`# fail N`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash node/build.sh
cargo build -p rotor --bin rotor
cargo build -p rotor-fs --features tokio --example tokio_agents
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  npm ci --prefix tests/oidc --no-audit --no-fund
fi
exec node --test --test-reporter=tap node/test/*.test.mjs
