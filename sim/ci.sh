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
# Regression seeds: fresh-seed findings since fixed (sim/README.md, Findings).
"$ROTOR" replay --seed 0x102f0f1 --processes 2 --agents 2 --backend advisory \
  --faults pause,lost-fsync,torn-write,clock-jump,not-sent,timeout \
  --actors usage,relogin,edit --requests 3 >/dev/null
"$ROTOR" replay --seed 0xa6f608bc380cafa6 --processes 2 --agents 2 --backend advisory \
  --faults crash,pause,torn-write --actors usage,logout --requests 3 >/dev/null
# Outcome-oracle findings fixed in the kernel (a login level with a fenced
# rotation a sub-agent store held alone).
"$ROTOR" replay --seed 0x39b8 --processes 2 --agents 3 --backend advisory \
  --faults crash,pause,disk-full,lost-fsync,clock-jump,server-error,timeout \
  --actors foreign-login,foreign-logout --requests 1 >/dev/null
"$ROTOR" replay --seed 0x3ba06bc7 --processes 2 --agents 2 --backend advisory \
  --faults pause,write-error,not-sent,timeout --actors relogin,foreign-login --requests 3 >/dev/null
"$ROTOR" replay --seed 0x3b9ad7dc --processes 2 --agents 2 --backend advisory \
  --faults crash,pause,disk-full,clock-jump,server-error,timeout,lost-response \
  --actors usage,relogin --requests 3 >/dev/null
# An oracle excuse since added (a fence whose clearing ran out of store-lock
# wait stays in doubt).
"$ROTOR" replay --seed 0x6aec912f1f1ad6db --processes 3 --agents 2 --backend advisory \
  --faults pause,torn-write,not-sent,server-error --actors usage,logout --requests 2 >/dev/null
# A reuse refusal with a newer login or rotation whose access token expired
# meanwhile (a pause, a clock jump): step 9 refreshes the successor.
"$ROTOR" replay --seed 0x4e1a --processes 3 --agents 3 --backend advisory \
  --faults pause,lost-response --actors foreign-login,foreign-logout --requests 1 >/dev/null
"$ROTOR" replay --seed 0xb58f4d2a199d95e --processes 3 --agents 3 --backend advisory \
  --faults crash,pause,timeout,lost-response --actors usage,foreign-login --requests 1 \
  --fault-mask 0x1 >/dev/null
"$ROTOR" replay --seed 0x3a87398ed5460de8 --processes 2 --agents 2 --backend advisory \
  --faults lost-fsync,torn-write,clock-jump,not-sent,server-error --actors usage,edit,foreign-login \
  --requests 3 >/dev/null
# A re-login into main with the other account rebinds main's agents (G3).
"$ROTOR" replay --seed 0x413484ce2c5fd989 --processes 2 --agents 2 --backend advisory \
  --faults crash,pause,disk-full,torn-write,clock-jump,timeout,lost-response --actors usage,relogin,edit \
  --requests 3 >/dev/null
# A login or logout whose write failed after the provider revoked families
# for it: nothing better is stored anywhere (the oracle's excuse).
"$ROTOR" replay --seed 0x413484ce2961e6ff --processes 3 --agents 2 --backend advisory \
  --faults pause,write-error,torn-write,clock-jump,not-sent,timeout --actors relogin,foreign-logout \
  --requests 2 >/dev/null
"$ROTOR" replay --seed 0x413484ce297e0bd4 --processes 2 --agents 3 --backend advisory \
  --faults crash,write-error,disk-full,lost-fsync,torn-write,clock-jump --actors foreign-logout \
  --requests 3 >/dev/null
# A store-lock holder that stalled and crashed at the instant the wait ran out.
"$ROTOR" replay --seed 0x4b135482a1e8284a --processes 2 --agents 3 --backend advisory \
  --faults crash,pause,write-error,lost-fsync,server-error --actors usage,relogin,edit,foreign-login \
  --requests 2 >/dev/null
# A sub-agent holding a login that main lost to a crash (lost fsync), main
# the family it replaced at a lower generation: no live token for it (G5,
# G11; the oracle's excuse).
"$ROTOR" replay --seed 0x85ce410e4e7a6160 --processes 2 --agents 3 --backend advisory \
  --faults crash,lost-fsync,torn-write,not-sent,server-error,lost-response --actors relogin,logout \
  --requests 3 >/dev/null
# A grace retry refused as reused kept main's record (its fence, settled)
# of the first presentation's rotation, which a sub-agent whose mirror
# failed held alone: a later login installs past it (kernel fix, G2/G11).
"$ROTOR" replay --seed 0x2c793827497ad4a0 --processes 2 --agents 3 --backend advisory \
  --faults write-error,disk-full,lost-fsync,torn-write,clock-jump,lost-response --actors relogin \
  --requests 3 >/dev/null
# A store-lock holder that stalled for the whole wait, crashed 13 ms before
# it ran out, and left the lock to another writer (the oracle's excuse).
"$ROTOR" replay --seed 0x5e653d7de5f934 --processes 3 --agents 2 --backend advisory \
  --faults crash,pause,disk-full,clock-jump,not-sent,server-error --actors usage,edit \
  --requests 3 >/dev/null
# A family the provider revoked for a reuse a crash-dropped lost-fsync fence
# excused: every agent ends on it, and nothing better exists (liveness, G2).
"$ROTOR" replay --seed 0xfd8d11c648409522 --processes 2 --agents 3 --backend advisory \
  --faults crash,pause,write-error,lost-fsync,torn-write,clock-jump,timeout --actors usage,logout \
  --requests 1 >/dev/null
# A sub-agent whose token lived in main alone (its commit failed) follows a
# torn main refilled with the other account's family (G3: nothing stored
# names its account any more).
"$ROTOR" replay --seed 0xfd8d11c64859b5db --processes 2 --agents 2 --backend advisory \
  --faults pause,write-error,disk-full,lost-fsync,torn-write,not-sent,server-error,timeout --actors usage \
  --requests 2 >/dev/null
# A logout, then a login over its tombstone, then a logout whose write
# failed: the login's family, revoked, is the best the world has (the
# liveness excuse; the world's logout flag is the last stored write's).
"$ROTOR" replay --seed 0xfd8d11c64847baa5 --processes 2 --agents 2 --backend advisory \
  --faults crash,pause,write-error,disk-full,lost-fsync,clock-jump,not-sent,server-error \
  --actors usage,relogin,logout,foreign-login,foreign-logout --requests 2 >/dev/null
# A successor found after a reuse (another program's login, expired by a
# jumped clock) is a new presentation with its own retry budget (G2).
"$ROTOR" replay --seed 0x81c2fd1e8c55a891 --processes 2 --agents 1 --backend advisory \
  --faults write-error,disk-full,clock-jump,not-sent,server-error --actors usage,foreign-login \
  --requests 3 >/dev/null
# A mirror that a crash's revert of main (lost fsync) undid after it landed
# was still made before the release (G1 order check's excuse).
"$ROTOR" replay --seed 0x81c2fd1e8c42cd56 --processes 3 --agents 2 --backend advisory \
  --faults crash,pause,lost-fsync,torn-write,clock-jump,lost-response --actors usage,relogin \
  --requests 1 >/dev/null
echo "regression seeds: no violation"
# Exhaustive exploration (sim/src/explore): every reachable state of four
# small worlds, faults included; a violation prints its shortest path, writes
# it as a trace file and prints both commands that replay it
# (`rotor replay <file>`, `rotor replay --exhaustive <world> --path ...`).
# With --shipped-host every store read and write of every reachable state is
# also made by the shipped fs store code, and every wait for a held refresh
# lock is asked of the shipped FsRefreshLock; both must agree (G4, G5, G8).
# It changes no transition, so these runs are the plain exploration too.
for world in crash-faults single-flight identity relogin fenced-lease; do
  "$ROTOR" check --exhaustive "$world" --shipped-host --trace-dir "$TRACE_DIR"
done
# The lease backend: its limit (a double presentation after a lease expired
# under a live holder) is reported apart as an expected finding and does not
# fail; anything else, the outcome oracle's verdicts included, fails.
# About 2 s.
"$ROTOR" check --seeds 20000 --backend lease --trace-dir "$TRACE_DIR"
# The fenced lease (the PostgreSQL backend's rule: a fence is written only
# while the lock is still held): the same stalls, and nothing is excused; a
# double presentation here fails. About 1 s.
"$ROTOR" check --seeds 20000 --backend fenced-lease --trace-dir "$TRACE_DIR"
# The shipped fs host's store and refresh-lock code as the simulator's twins
# (sim/src/world/twin.rs, twin_lock.rs): every store read and write of these
# worlds is made again by rotor_fs::StoreFile over a simulated disk, and the
# shipped FsRefreshLock is held as the lock model says; both must agree
# with the models (G4, G5, G8, G10). About 15 s.
"$ROTOR" check --seeds 50000 --shipped-host --trace-dir "$TRACE_DIR"
"$ROTOR" check --seeds 10000 --shipped-host --actors usage,foreign-login,foreign-logout \
  --trace-dir "$TRACE_DIR"
# Fresh seeds for at most two minutes (the start seed is printed). A failure
# here is a new finding: it prints the shrunk trace and the exact replay
# command, but does not fail CI by itself (a fresh seed differs per run, so
# blocking on it would make CI nondeterministic); add the seed to the fixed
# list once it is understood. Set SIM_FRESH_BLOCKING=1 to make it block.
if ! "$ROTOR" check --fresh --seeds 100000000 --max-seconds 120 --trace-dir "$TRACE_DIR"; then
  echo "rotor check: fresh seeds found failures (replay commands above)"
  if [ "${SIM_FRESH_BLOCKING:-0}" = "1" ]; then exit 1; fi
fi
