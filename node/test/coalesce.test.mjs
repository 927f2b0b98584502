// Many agents, one expired credential, the real OAuth server
// (tests/oidc/server.mjs: oidc-provider, strict rotation): every agent gets
// the same new token from one refresh grant, and no consumed refresh token
// is ever presented again (no invalid_grant, the grant stays alive).
//   G1: each refresh token is presented at most once.
//   G2: everyone converges on the one rotation.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startOidc } from './support/oidc.mjs';
import { nodeWorker, rotorToken, tokioAgents } from './support/processes.mjs';

const require = createRequire(import.meta.url);
const { Rotor } = require('../index.js');
const PROFILE = 'oidc:default';

async function fixture(t) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rotor-node-'));
  const oidc = await startOidc();
  t.after(async () => { await oidc.close(); await rm(dir, { recursive: true, force: true }); });
  const stateDir = path.join(dir, 'state');
  const rotor = await Rotor.open(stateDir);
  // The shared credential is already expired: the first caller must refresh.
  await rotor.login(oidc.login(PROFILE));
  return { oidc, rotor, stateDir };
}

/** Every result has a token, the same one; exactly one refreshed. */
function assertOneRotation(results, label) {
  const failed = results.filter((r) => r.error);
  assert.deepEqual(failed, [], `${label}: some agents failed`);
  const tokens = new Set(results.map((r) => r.accessToken));
  assert.equal(tokens.size, 1, `G2: ${label}: agents got ${tokens.size} different tokens`);
  assert.ok(!tokens.has('initial-access'), `G2: ${label}: an agent got the expired token`);
  const refreshed = results.filter((r) => r.outcome === 'refreshed' || r.outcome === 'Refreshed');
  assert.equal(refreshed.length, 1, `G2: ${label}: ${refreshed.length} agents refreshed`);
}

async function assertGrants(oidc, grants, label) {
  const seen = await oidc.state();
  assert.equal(seen.refresh_success, grants, `G2: ${label}: ${JSON.stringify(seen)}`);
  assert.equal(seen.invalid_grant, 0, `G1: ${label}: a consumed token was presented: ${JSON.stringify(seen)}`);
  assert.equal(seen.family_alive, true, `G1: ${label}: the grant was revoked: ${JSON.stringify(seen)}`);
}

test('50 agents in one Node process: one refresh grant, one token (G1, G2)', async (t) => {
  const { oidc, rotor, stateDir } = await fixture(t);
  const agents = ['main', ...Array.from({ length: 49 }, (_, i) => `agent-${i + 1}`)];
  const results = await Promise.all(agents.map(async (agent) => {
    const token = await rotor.token({ agent, profile: PROFILE });
    return { agent, ...token };
  }));
  assertOneRotation(results, '50 agents');
  await assertGrants(oidc, 1, '50 agents');
  // Every store agrees, and no fence or lock is left behind.
  const status = await rotor.status();
  assert.equal(status.stores.length, 50);
  for (const store of status.stores) {
    assert.equal(store.profiles[PROFILE].in_doubt_fences.length, 0, `G7: fence left in ${store.agent}`);
  }
  assert.ok(status.refresh_locks.every((lock) => !lock.held), 'G8: a refresh lock is still held');
  // A second Rotor on the same directory sees the same token, from its store.
  const again = await (await Rotor.open(stateDir)).token({ agent: 'agent-7', profile: PROFILE });
  assert.equal(again.accessToken, results[0].accessToken, 'G2');
  assert.equal(again.outcome, 'cached');
});

test('8 Node processes x 8 agents at once: one refresh grant, one token (G1, G2)', async (t) => {
  const { oidc, stateDir } = await fixture(t);
  const workers = await Promise.all(Array.from({ length: 8 }, (_, p) => nodeWorker(stateDir, PROFILE,
    Array.from({ length: 8 }, (_, a) => (p === 0 && a === 0 ? 'main' : `p${p}-a${a}`)))));
  for (const worker of workers) worker.go();
  const runs = await Promise.all(workers.map((w) => w.finish()));
  for (const run of runs) assert.equal(run.code, 0, `${run.what} exited ${run.code}: ${run.stderr}`);
  const results = runs.flatMap((run) => run.results);
  assert.equal(results.length, 64);
  assertOneRotation(results, '8 x 8');
  await assertGrants(oidc, 1, '8 x 8');
});

/**
 * Expires `profile` in every store of the directory (nothing else runs at
 * that moment): each store file is rewritten whole, 0600, by a rename.
 */
async function forceExpiry(rotor, profile) {
  for (const store of (await rotor.status()).stores) {
    const doc = JSON.parse(await readFile(store.path, 'utf8'));
    if (!doc.profiles?.[profile]) continue;
    doc.profiles[profile].expires_at_ms = 1;
    await writeFile(`${store.path}.test-tmp`, JSON.stringify(doc), { mode: 0o600 });
    await rename(`${store.path}.test-tmp`, store.path);
  }
}

test('interop on one state dir: Node processes, rotor token processes and a tokio program at once, three rotations (G1, G2)', async (t) => {
  const { oidc, rotor, stateDir } = await fixture(t);
  const seen = new Set();
  for (let round = 1; round <= 3; round += 1) {
    if (round > 1) await forceExpiry(rotor, PROFILE);
    const workers = await Promise.all([0, 1, 2].map((p) => nodeWorker(stateDir, PROFILE,
      ['main', `node${p}-a`, `node${p}-b`, `node${p}-c`])));
    const tokio = tokioAgents(stateDir, 'oidc', PROFILE, 32, ['main', 'tokio-a', 'tokio-b']);
    // Let the tokio program open its directory before the start signal.
    await new Promise((resolve) => { setTimeout(resolve, 200); });
    for (const worker of workers) worker.go();
    tokio.go();
    const cli = ['main', 'cli-a', 'cli-b', 'main'].map((agent) => rotorToken(stateDir, agent, PROFILE));
    // And this process's own Rotor, at the same time.
    const own = ['main', 'here-a'].map(async (agent) => ({ what: 'this process', code: 0,
      results: [{ agent, ...(await rotor.token({ agent, profile: PROFILE })) }] }));
    const runs = await Promise.all([...workers.map((w) => w.finish()), tokio.finish(), ...cli, ...own]);
    for (const run of runs) assert.equal(run.code, 0, `round ${round}: ${run.what} exited ${run.code}: ${run.stderr}`);
    const results = runs.flatMap((run) => run.results);
    assert.equal(results.length, 3 * 4 + 32 + 4 + 2);
    assertOneRotation(results, `interop round ${round}`);
    assert.ok(!seen.has(results[0].accessToken), `G2: round ${round} handed out an earlier round's token`);
    seen.add(results[0].accessToken);
    await assertGrants(oidc, round, `interop round ${round}`);
  }
});
