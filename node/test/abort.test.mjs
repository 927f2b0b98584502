// An AbortSignal stops the waiting, never the call: the promise rejects at
// once with the signal's reason, while the refresh it started keeps the
// lock until the endpoint answers (G8: nobody presents that token
// meanwhile, G1) and stores the rotation, which the next caller adopts
// (G2). Node's answer to Rust's dropped future (tests/tokio_async.rs).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startTokenServer } from './support/token-server.mjs';

const require = createRequire(import.meta.url);
const { Rotor } = require('../index.js');
const PROFILE = 'acme:default';
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

test('an aborted token call rejects at once; its refresh finishes, keeps the lock meanwhile, and is adopted (G1, G2, G8)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rotor-node-'));
  const server = await startTokenServer();
  t.after(async () => { server.release(); await server.close(); await rm(dir, { recursive: true, force: true }); });
  const rotor = await Rotor.open(path.join(dir, 'state'));
  await rotor.login({
    profile: PROFILE, provider: 'acme', accessToken: 'at-0', refreshToken: 'rt-0', expiresAtMs: 1,
    tokenUrl: server.url, clientId: 'rotor-test', clientSecret: 's3cret',
  });

  // Aborted before the call: nothing starts.
  await assert.rejects(rotor.token({ profile: PROFILE, signal: AbortSignal.abort() }), { name: 'AbortError' });
  await sleep(50);
  assert.equal(server.stats.received, 0, 'an aborted-before call reached the server');

  server.hold();
  const controller = new AbortController();
  const call = rotor.token({ profile: PROFILE, signal: controller.signal });
  while (server.stats.received === 0) await sleep(5);
  const started = Date.now();
  controller.abort();
  await assert.rejects(call, { name: 'AbortError' });
  assert.ok(Date.now() - started < 1000, 'the abort did not end the wait');
  const status = await rotor.status();
  assert.ok(status.refresh_locks.some((lock) => lock.held), 'G8: the lock was freed while the call is in flight');
  // Another caller waits for that lock instead of presenting rt-0 again.
  const next = rotor.token({ profile: PROFILE });
  await sleep(100);
  assert.equal(server.stats.received, 1, 'G1: presented again while the aborted call was in flight');
  server.release();
  const token = await next;
  assert.equal(token.accessToken, server.exchanges[0][1], 'G2: the aborted call\'s rotation was lost');
  assert.ok(['adopted-peer', 'cached'].includes(token.outcome), token.outcome);
  assert.equal(server.exchanges.length, 1, 'G2: one grant');
  assert.deepEqual(server.presentedTwice(), [], 'G1');
  assert.ok((await rotor.status()).refresh_locks.every((lock) => !lock.held), 'G8: the lock stays held');

  await assert.rejects(rotor.token({ profile: PROFILE, signal: 'nope' }), { code: 'usage' });
});
