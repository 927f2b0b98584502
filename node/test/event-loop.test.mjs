// A call that waits for the refresh lock never blocks Node: while a
// `rotor token` process holds the lock (its answer held by the server),
// timers keep firing and node's own thread-pool I/O (fs) keeps working,
// even with more waiting agents than libuv has pool threads. When the
// holder finishes, every waiter adopts its rotation (G2) and nothing is
// presented twice (G1, G8: no waiter steals the held lock).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { rotorToken } from './support/processes.mjs';
import { startTokenServer } from './support/token-server.mjs';

const require = createRequire(import.meta.url);
const { Rotor } = require('../index.js');
const PROFILE = 'acme:default';
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

test('the event loop and fs keep running while 16 agents wait for a lock another process holds (G1, G2, G8)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rotor-node-'));
  const server = await startTokenServer();
  t.after(async () => { server.release(); await server.close(); await rm(dir, { recursive: true, force: true }); });
  const stateDir = path.join(dir, 'state');
  const rotor = await Rotor.open(stateDir);
  await rotor.login({
    profile: PROFILE, provider: 'acme', accessToken: 'at-0', refreshToken: 'rt-0', expiresAtMs: 1,
    tokenUrl: server.url, clientId: 'rotor-test', clientSecret: 's3cret',
  });

  // Another process takes the lock and presents rt-0; the server rotates
  // and holds its answer.
  server.hold();
  const holder = rotorToken(stateDir, 'main', PROFILE);
  while (server.stats.received === 0) await sleep(5);
  const status = await rotor.status();
  assert.ok(status.refresh_locks.some((lock) => lock.held), 'the holder has the lock');

  let ticks = 0;
  const ticker = setInterval(() => { ticks += 1; }, 10);
  const waiters = Array.from({ length: 16 }, (_, i) => rotor.token({ agent: i === 0 ? 'main' : `w${i}`, profile: PROFILE }));
  const started = Date.now();
  // Node's own thread-pool work completes while the waiters wait.
  for (let i = 0; i < 8; i += 1) await readFile(path.join(stateDir, 'agents', 'main', 'auth-profiles.json'));
  const fsDoneMs = Date.now() - started;
  await sleep(500);
  const ticksWhileWaiting = ticks;
  const waitedMs = Date.now() - started;
  assert.equal(server.stats.received, 1, 'G1/G8: a waiter presented while the lock was held');
  server.release();
  const results = await Promise.all(waiters);
  clearInterval(ticker);
  const held = await holder;

  // A 10 ms timer fires about waitedMs / 10 times on a free loop (at least
  // half of that on a loaded machine); a blocked loop fires it once or never.
  assert.ok(ticksWhileWaiting * 20 >= waitedMs,
    `the event loop was blocked: ${ticksWhileWaiting} ticks of 10 ms in ${waitedMs} ms`);
  // Blocked behind the waiters, the reads would end only after the release
  // below (which comes after them): they would never finish in time.
  assert.ok(fsDoneMs < 2000, `fs reads waited ${fsDoneMs} ms behind the lock waiters`);
  assert.equal(held.code, 0, held.stderr);
  assert.equal(held.results[0].outcome, 'refreshed');
  for (const token of results) {
    assert.equal(token.accessToken, held.results[0].accessToken, 'G2: a waiter got another token');
    assert.notEqual(token.outcome, 'refreshed', 'G2: a waiter refreshed again');
  }
  assert.equal(server.exchanges.length, 1, 'G2: one grant');
  assert.deepEqual(server.presentedTwice(), [], 'G1');
  assert.equal(server.stats.invalidGrants, 0, 'G1');
});
