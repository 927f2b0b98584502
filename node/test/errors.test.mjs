// Failures reach JavaScript as RotorError objects (instances of Error)
// with a stable `code` per kind (the kinds `rotor token --json` reports),
// the exit code `rotor token` would use, and a message that names the
// profile and never carries a secret (G10). Where both can meet the same
// failure, `rotor token --json` on the same state directory must report the
// same kind and exit code (the addon keeps its own copy of the CLI's table).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'node:test';
import { rotorBin } from './support/paths.mjs';
import { startTokenServer } from './support/token-server.mjs';

const require = createRequire(import.meta.url);
const { Rotor, RotorError, ERROR_CODES } = require('../index.js');
const PROFILE = 'acme:default';
const SECRETS = ['at-0', 'rt-0', 's3cret-client'];

async function setup(t, { expired = true, policy } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rotor-node-'));
  const server = await startTokenServer();
  t.after(async () => { await server.close(); await rm(dir, { recursive: true, force: true }); });
  const stateDir = path.join(dir, 'state');
  const rotor = await Rotor.open(stateDir, policy);
  await rotor.login({
    profile: PROFILE, provider: 'acme', accessToken: 'at-0', refreshToken: 'rt-0',
    expiresAtMs: expired ? 1 : Date.now() + 3_600_000,
    tokenUrl: server.url, clientId: 'rotor-test', clientSecret: 's3cret-client',
  });
  return { dir, stateDir, server, rotor };
}

/** `promise` rejects with a RotorError of `code` naming `profile`, no secret. */
async function rejectsWith(promise, code, exitCode, profile = PROFILE) {
  const error = await promise.then(
    (value) => assert.fail(`expected ${code}, got ${JSON.stringify(value)}`),
    (e) => e,
  );
  assert.ok(error instanceof RotorError && error instanceof Error, `not a RotorError: ${error}`);
  assert.equal(error.code, code, error.message);
  assert.equal(error.exitCode, exitCode, error.message);
  assert.ok(ERROR_CODES.includes(error.code));
  if (profile) assert.ok(error.message.includes(profile), `G10: the message does not name ${profile}: ${error.message}`);
  for (const secret of SECRETS) {
    assert.ok(!error.message.includes(secret), `a secret in the message: ${error.message}`);
  }
  return error;
}

/** `rotor token --json` on the same state reports the same kind and exit code. */
function agreesWithCli(error, stateDir, args) {
  const run = spawnSync(rotorBin(), ['token', '--json', '--state-dir', stateDir, ...args]);
  const printed = JSON.parse(String(run.stdout)).error;
  assert.deepEqual({ code: error.code, exitCode: error.exitCode }, { code: printed.kind, exitCode: run.status },
    'the addon and `rotor token` name this failure differently');
}

test('no credential: no_credential (3), naming the profile', async (t) => {
  const { rotor, stateDir } = await setup(t);
  await rejectsWith(rotor.token({ profile: 'other:profile' }), 'no_credential', 3, 'other:profile');
  const error = await rejectsWith(rotor.token({ profile: 'other:profile', provider: 'acme' }), 'no_credential', 3, 'other:profile');
  agreesWithCli(error, stateDir, ['--profile', 'other:profile', '--provider', 'acme']);
});

test('a refused id: invalid_id (2) (G9)', async (t) => {
  const { rotor, stateDir } = await setup(t);
  const error = await rejectsWith(rotor.token({ agent: '../escape', profile: PROFILE }), 'invalid_id', 2);
  assert.match(error.message, /escape/);
  agreesWithCli(error, stateDir, ['--agent', '../escape', '--profile', PROFILE]);
  await rejectsWith(rotor.token({ profile: 'bad\nprofile', provider: 'acme' }), 'invalid_id', 2, null);
  await rejectsWith(rotor.token({ profile: PROFILE, provider: '' }), 'invalid_id', 2);
});

test('unknown outcome: in_doubt (5), then needs_reauth (4) instead of presenting the token again (G7)', async (t) => {
  const { rotor, server, stateDir } = await setup(t);
  server.setMode('error500');
  await rejectsWith(rotor.token({ profile: PROFILE }), 'in_doubt', 5);
  assert.equal(server.stats.received, 1);
  server.setMode('normal');
  const error = await rejectsWith(rotor.token({ profile: PROFILE }), 'needs_reauth', 4);
  agreesWithCli(error, stateDir, ['--profile', PROFILE]);
  assert.equal(server.stats.received, 1, 'G7: the fenced token was presented again');
  assert.deepEqual(server.presentedTwice(), [], 'G1');
});

test('a refused refresh token: needs_reauth (4), and it sticks', async (t) => {
  const { rotor, server } = await setup(t);
  // Someone else spent rt-0: the server refuses it (and revokes the family).
  await fetch(server.url, { method: 'POST', body: 'grant_type=refresh_token&refresh_token=rt-0' });
  await rejectsWith(rotor.token({ profile: PROFILE }), 'needs_reauth', 4);
  await rejectsWith(rotor.token({ profile: PROFILE }), 'needs_reauth', 4);
  assert.equal(server.stats.received, 2, 'a marked family was presented again');
});

test('logged out: logged_out (3) (G11)', async (t) => {
  const { rotor, stateDir } = await setup(t, { expired: false });
  const generation = await rotor.logout({ profile: PROFILE });
  assert.equal(generation, 2);
  const error = await rejectsWith(rotor.token({ profile: PROFILE, provider: 'acme' }), 'logged_out', 3);
  agreesWithCli(error, stateDir, ['--profile', PROFILE, '--provider', 'acme']);
});

test('the refresh lock held by another process: lock_timeout (8), naming the profile', async (t) => {
  const policy = { callDeadlineMs: 100, storeLockWaitMs: 50, lockWaitMs: 600 };
  const { rotor, stateDir, server } = await setup(t, { policy });
  // login took the refresh lock once, so its (never deleted) file exists.
  const lockDir = path.join(stateDir, 'locks', 'oauth-refresh');
  const [lockFile] = await readdir(lockDir);
  // flock(1) holds the lock while its shell sleeps; both are killed as a
  // process group at the end.
  const flock = spawn('flock', ['-x', path.join(lockDir, lockFile), '-c', 'echo held; sleep 30'],
    { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  t.after(() => { process.kill(-flock.pid, 'SIGKILL'); flock.stdout.destroy(); });
  await new Promise((resolve) => { readline.createInterface({ input: flock.stdout }).once('line', resolve); });
  const started = Date.now();
  const error = await rejectsWith(rotor.token({ profile: PROFILE }), 'lock_timeout', 8);
  assert.ok(Date.now() - started >= 550, 'G8: gave up before the lock wait budget');
  agreesWithCli(error, stateDir, ['--profile', PROFILE, '--lock-wait-ms', '600', '--call-deadline-ms', '100',
    '--store-lock-wait-ms', '50']);
  assert.equal(server.stats.received, 0, 'G8: presented without the lock');
});

test('a corrupt store: store_corrupt (9)', async (t) => {
  const { rotor } = await setup(t);
  const [store] = (await rotor.status()).stores;
  const corrupt = '{"version": 1, "profiles": {"acme:default": ';
  await writeFile(store.path, corrupt);
  const error = await rejectsWith(rotor.token({ profile: PROFILE, provider: 'acme' }), 'store_corrupt', 9);
  await writeFile(store.path, corrupt);
  agreesWithCli(error, rotor.stateDir, ['--profile', PROFILE, '--provider', 'acme']);
  const [main] = (await rotor.status()).stores;
  assert.ok(main.missing || main.error || main.profiles, 'status still answers');
});

test('an unsafe state directory: store_unsafe (9) from Rotor.open (G9)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rotor-node-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o777);
  await rejectsWith(Rotor.open(dir), 'store_unsafe', 9, null);
});

test('bad arguments and policies: usage (2)', async (t) => {
  const { rotor, dir } = await setup(t);
  await rejectsWith(Rotor.open(path.join(dir, 'x'), { callDeadlineMs: 0 }), 'usage', 2, null);
  await rejectsWith(Rotor.open(path.join(dir, 'x'), { lockWaitMs: 10 }), 'usage', 2, null);
  const typo = await rejectsWith(Rotor.open(path.join(dir, 'x'), { lockWait: 1000 }), 'usage', 2, null);
  assert.match(typo.message, /unknown policy key "lockWait"/);
  await rejectsWith(Rotor.open(path.join(dir, 'x'), { lockWaitMs: -1 }), 'usage', 2, null);
  await rejectsWith(rotor.token({}), 'usage', 2, null);
  await rejectsWith(rotor.token(), 'usage', 2, null);
  await rejectsWith(rotor.login({ profile: 'p:q', provider: 'acme', accessToken: 'a', refreshToken: 'r', expiresInS: 60 }),
    'usage', 2, 'p:q');
  assert.throws(() => new Rotor({}), TypeError);
});
