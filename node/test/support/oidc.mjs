// The repository's real OAuth server fixture (tests/oidc/server.mjs:
// oidc-provider with refresh-token rotation; a consumed refresh token
// presented again gets invalid_grant and revokes the grant), run as a child
// process exactly as tests/oidc_e2e.rs runs it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { repoRoot } from './paths.mjs';

export async function startOidc() {
  const dir = path.join(repoRoot, 'tests', 'oidc');
  if (!existsSync(path.join(dir, 'node_modules', 'oidc-provider', 'package.json'))) {
    throw new Error('the oidc-provider fixture is not installed: run `npm ci --prefix tests/oidc`'
      + ' (scripts/test.sh and .ci/run do)');
  }
  const child = spawn(process.execPath, ['server.mjs'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  // Its start-up warnings (development keys, in-memory adapter) are noise
  // here; anything else it says goes to the test's stderr.
  readline.createInterface({ input: child.stderr }).on('line', (line) => {
    if (!line.includes('oidc-provider WARNING')) process.stderr.write(`oidc fixture: ${line}\n`);
  });
  const lines = readline.createInterface({ input: child.stdout });
  const [line] = await Promise.race([
    new Promise((resolve) => { lines.once('line', (l) => resolve([l])); }),
    new Promise((_, reject) => { child.once('exit', (code) => reject(new Error(`oidc fixture exited ${code}`))); }),
  ]);
  const info = JSON.parse(line);
  return {
    info,
    /** { refresh_success, invalid_grant, errors, family_alive } */
    async state() {
      const res = await fetch(`http://127.0.0.1:${info.port}/test/state`);
      return res.json();
    },
    /** The login request for `profile` with the fixture's grant, already expired. */
    login(profile, agent = 'main') {
      return {
        agent,
        profile,
        provider: 'oidc',
        accessToken: 'initial-access',
        refreshToken: info.refresh_token,
        expiresAtMs: 1,
        tokenUrl: info.token_url,
        clientId: info.client_id,
        clientSecret: info.client_secret,
        authMethod: 'client_secret_basic',
      };
    },
    close() {
      child.stdin.end();
      return new Promise((resolve) => { if (child.exitCode !== null) resolve(); else child.once('exit', resolve); });
    },
  };
}
