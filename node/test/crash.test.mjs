// A Node process that dies in the middle of a refresh (kill -9, or an
// abort at a failpoint of the fs host, which the addon shares with the CLI)
// leaves the refresh lock free (the OS drops its flock: G8), never gets its
// refresh token presented a second time (the in-doubt fence written before
// the call: G7, G1), and never loses a rotation it had stored (G2).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { nodeWorker } from './support/processes.mjs';
import { startTokenServer } from './support/token-server.mjs';

const require = createRequire(import.meta.url);
const { Rotor } = require('../index.js');
const PROFILE = 'acme:default';
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function setup(t) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rotor-node-'));
  const server = await startTokenServer();
  t.after(async () => { server.release(); await server.close(); await rm(dir, { recursive: true, force: true }); });
  const stateDir = path.join(dir, 'state');
  const rotor = await Rotor.open(stateDir);
  await rotor.login({
    profile: PROFILE, provider: 'acme', accessToken: 'at-0', refreshToken: 'rt-0', expiresAtMs: 1,
    tokenUrl: server.url, clientId: 'rotor-test', clientSecret: 's3cret',
  });
  return { server, rotor, stateDir };
}

const lockHeld = async (rotor) => (await rotor.status()).refresh_locks.some((lock) => lock.held);

test('kill -9 of a Node process while its refresh is at the server: lock free, token never presented again (G1, G7, G8)', async (t) => {
  const { server, rotor, stateDir } = await setup(t);
  server.hold();
  const worker = await nodeWorker(stateDir, PROFILE, ['main']);
  worker.go();
  while (server.stats.received === 0) await sleep(5);
  assert.ok(await lockHeld(rotor), 'the worker holds the lock while its call is in flight');
  worker.kill();
  const run = await worker.finish();
  assert.equal(run.code, 'SIGKILL');
  assert.equal(await lockHeld(rotor), false, 'G8: the dead process still holds the lock');
  server.release(); // the rotation the provider granted goes to a dead socket
  await assert.rejects(rotor.token({ profile: PROFILE }), { code: 'needs_reauth' });
  assert.equal(server.stats.received, 1, 'G7: the fenced refresh token was presented again');
  assert.deepEqual(server.presentedTwice(), [], 'G1');
});

test('an abort after the call and before the commit: the same, and nothing half-written (G6, G7)', async (t) => {
  const { server, rotor, stateDir } = await setup(t);
  const worker = await nodeWorker(stateDir, PROFILE, ['main'], { ROTOR_FAILPOINT: 'after-call:abort' });
  worker.go();
  const run = await worker.finish();
  assert.equal(run.code, 'SIGABRT', run.stderr);
  assert.equal(server.exchanges.length, 1);
  assert.equal(await lockHeld(rotor), false, 'G8');
  const [store] = (await rotor.status()).stores;
  assert.equal(store.error, undefined, `G6: the store does not parse: ${store.error}`);
  assert.equal(store.profiles[PROFILE].in_doubt_fences.length, 1, 'G7: the fence written before the call');
  await assert.rejects(rotor.token({ profile: PROFILE }), { code: 'needs_reauth' });
  assert.equal(server.stats.received, 1, 'G7');
});

test('an abort right after the commit: the rotation is kept and adopted, no second grant (G2)', async (t) => {
  const { server, rotor, stateDir } = await setup(t);
  const worker = await nodeWorker(stateDir, PROFILE, ['main'], { ROTOR_FAILPOINT: 'after-write:commit:abort' });
  worker.go();
  const run = await worker.finish();
  assert.equal(run.code, 'SIGABRT', run.stderr);
  assert.equal(await lockHeld(rotor), false, 'G8');
  const token = await rotor.token({ profile: PROFILE });
  assert.equal(token.accessToken, server.exchanges[0][1], 'G2: the stored rotation was lost');
  assert.equal(token.outcome, 'cached');
  assert.equal(server.exchanges.length, 1, 'G2: a second grant');
});
