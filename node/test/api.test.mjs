// The package's shape: what index.d.ts declares is what index.js exports;
// login, token, logout and status round-trip through one state directory
// that the `rotor` CLI reads the same way; a promise comes back at once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { rotorBin } from './support/paths.mjs';
import { startTokenServer } from './support/token-server.mjs';

const require = createRequire(import.meta.url);
const rotorModule = require('../index.js');
const { Rotor, ERROR_CODES } = rotorModule;
const PROFILE = 'acme:default';

test('index.d.ts declares exactly what index.js exports, methods and error codes included', async () => {
  const dts = await readFile(new URL('../index.d.ts', import.meta.url), 'utf8');
  const declared = [...dts.matchAll(/^export declare (?:class|const|function) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(rotorModule).sort());
  const classBody = dts.slice(dts.indexOf('export declare class Rotor '));
  const methods = [...classBody.matchAll(/^ {2}(?:static )?(\w+)\(/gm)].map((m) => m[1]).sort();
  const runtime = [...Object.getOwnPropertyNames(Rotor.prototype).filter((n) => n !== 'constructor'),
    ...Object.getOwnPropertyNames(Rotor).filter((n) => typeof Rotor[n] === 'function')].sort();
  assert.deepEqual(methods, runtime);
  const union = dts.slice(dts.indexOf('export type RotorErrorCode'), dts.indexOf(';', dts.indexOf('export type RotorErrorCode')));
  const codes = [...union.matchAll(/'(\w+)'/g)].map((m) => m[1]).sort();
  assert.deepEqual(codes, [...ERROR_CODES].sort());
});

test('login, token (cached, then refreshed), status and logout round-trip; the CLI reads the same store (G2, G11)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rotor-node-'));
  const server = await startTokenServer();
  t.after(async () => { await server.close(); await rm(dir, { recursive: true, force: true }); });
  const stateDir = path.join(dir, 'state');
  const rotor = await Rotor.open(stateDir, { refreshMarginMs: 60_000 });
  assert.equal(rotor.stateDir, stateDir);
  const generation = await rotor.login({
    profile: PROFILE, provider: 'acme', accessToken: 'at-0', refreshToken: 'rt-0', expiresInS: 3600,
    tokenUrl: server.url, clientId: 'rotor-test', clientSecret: 's3cret',
  });
  assert.equal(generation, 1);

  const pending = rotor.token({ profile: PROFILE });
  assert.ok(pending instanceof Promise);
  const cached = await pending;
  assert.equal(cached.accessToken, 'at-0');
  assert.equal(cached.outcome, 'cached');
  assert.equal(cached.generation, 1);
  assert.ok(cached.expiresAtMs > Date.now() + 3_500_000);
  assert.equal(server.stats.received, 0);

  // Inside the refresh margin: this call refreshes, once.
  await rotor.login({
    profile: PROFILE, provider: 'acme', accessToken: 'at-0', refreshToken: 'rt-0', expiresInS: 30,
    tokenUrl: server.url, clientId: 'rotor-test', clientSecret: 's3cret',
  });
  const refreshed = await rotor.token({ agent: 'main', profile: PROFILE, provider: 'acme' });
  assert.equal(refreshed.outcome, 'refreshed');
  assert.equal(refreshed.accessToken, 'at-1');
  assert.equal(server.exchanges.length, 1);

  // The CLI sees the rotation the addon stored.
  const cli = spawnSync(rotorBin(), ['token', '--json', '--state-dir', stateDir, '--profile', PROFILE]);
  assert.equal(cli.status, 0, String(cli.stderr));
  const printed = JSON.parse(cli.stdout);
  assert.equal(printed.access_token, 'at-1');
  assert.equal(printed.generation, refreshed.generation);

  const status = await rotor.status();
  const entry = status.stores[0].profiles[PROFILE];
  assert.equal(entry.generation, refreshed.generation);
  assert.ok(!JSON.stringify(status).includes('at-1'), 'status shows fingerprints, never tokens');

  await rotor.logout({ profile: PROFILE });
  await assert.rejects(rotor.token({ profile: PROFILE, provider: 'acme' }), { code: 'logged_out' });
  assert.equal(server.exchanges.length, 1);
});
