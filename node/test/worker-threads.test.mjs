// Agents in worker_threads: each thread opens its own Rotor (its own
// in-process single-flight); the flock on the profile's lock file excludes
// them from each other as it excludes processes. 4 threads x 8 agents and
// the main thread's own agents on an expired credential: one grant, one
// token (G1, G2); terminating the threads leaves the main thread working.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { startTokenServer } from './support/token-server.mjs';

const require = createRequire(import.meta.url);
const { Rotor } = require('../index.js');
const PROFILE = 'acme:default';

// The thread's code: open the directory, ask from every agent at once.
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { Rotor } = require(workerData.index);
(async () => {
  const rotor = await Rotor.open(workerData.stateDir);
  parentPort.postMessage(await Promise.all(workerData.agents.map(
    (agent) => rotor.token({ agent, profile: workerData.profile }).then(
      (t) => ({ agent, accessToken: t.accessToken, outcome: t.outcome }),
      (e) => ({ agent, error: e.code + ': ' + e.message })))));
})();
`;

test('4 worker threads x 8 agents and the main thread: one grant, one token (G1, G2)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rotor-node-'));
  const server = await startTokenServer();
  server.setDelayMs(100);
  t.after(async () => { await server.close(); await rm(dir, { recursive: true, force: true }); });
  const stateDir = path.join(dir, 'state');
  const rotor = await Rotor.open(stateDir);
  await rotor.login({
    profile: PROFILE, provider: 'acme', accessToken: 'at-0', refreshToken: 'rt-0', expiresAtMs: 1,
    tokenUrl: server.url, clientId: 'rotor-test', clientSecret: 's3cret',
  });
  const index = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'index.js');
  const threads = [0, 1, 2, 3].map((w) => new Worker(THREAD, {
    eval: true,
    workerData: { index, stateDir, profile: PROFILE, agents: Array.from({ length: 8 }, (_, a) => `t${w}-a${a}`) },
  }));
  const fromThreads = threads.map((thread) => new Promise((resolve, reject) => {
    thread.once('message', resolve);
    thread.once('error', reject);
  }));
  const here = ['main', 'here-a'].map((agent) => rotor.token({ agent, profile: PROFILE })
    .then((tok) => [{ agent, accessToken: tok.accessToken, outcome: tok.outcome }]));
  const results = (await Promise.all([...fromThreads, ...here])).flat();
  await Promise.all(threads.map((thread) => thread.terminate()));

  assert.equal(results.length, 34);
  assert.deepEqual(results.filter((r) => r.error), [], 'some agents failed');
  assert.equal(new Set(results.map((r) => r.accessToken)).size, 1, 'G2: more than one token');
  assert.equal(results.filter((r) => r.outcome === 'refreshed').length, 1, 'G2: refreshed more than once');
  assert.equal(server.exchanges.length, 1, 'G2: one grant');
  assert.equal(server.stats.invalidGrants, 0, 'G1');
  assert.deepEqual(server.presentedTwice(), [], 'G1');
  assert.equal((await rotor.token({ profile: PROFILE })).outcome, 'cached', 'the main thread after terminate()');
});
