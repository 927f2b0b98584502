#!/usr/bin/env bash
# Builds the addon with cargo (no download beyond crates.io) and copies it
# next to index.js as rotor.<platform>-<arch>.node, the name index.js loads.
#   bash node/build.sh            # debug build (what the tests use)
#   bash node/build.sh --release  # release build
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
if [ "${1:-}" = "--release" ]; then
  profile=release
  cargo build --release -p rotor-node
else
  cargo build -p rotor-node
fi
target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
name=$(node -p '`rotor.${process.platform}-${process.arch}.node`')
case "$(uname -s)" in
  Darwin) lib=librotor_node.dylib ;;
  *) lib=librotor_node.so ;;
esac
# Copy to a temporary name, then rename: a node process loading the addon
# never sees a half-written file.
cp "$target_dir/$profile/$lib" "node/$name.tmp"
mv -f "node/$name.tmp" "node/$name"
echo "node/$name ($profile)"
