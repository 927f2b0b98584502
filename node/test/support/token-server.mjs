// A strict loopback OAuth token endpoint for the node tests (the JS twin of
// tests/common's TokenServer): refresh tokens rotate on every use, a
// consumed one presented again gets 400 invalid_grant and revokes the whole
// family (like Auth0, Okta, oidc-provider), and every presentation is
// recorded so a test can check G1 (each refresh token presented once).
import http from 'node:http';

export async function startTokenServer({ initial = 'rt-0', ttlS = 3600 } = {}) {
  const valid = new Set([initial]);
  const presented = new Map();
  const exchanges = []; // [presented refresh token, new access token]
  const stats = { received: 0, invalidGrants: 0, answered: 0 };
  let next = 0;
  let delayMs = 0;
  // 'normal' | 'error500' (an empty 500: an unknown outcome for the client)
  let mode = 'normal';
  let held = null; // a promise that holds every answer until released

  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', async () => {
      stats.received += 1;
      const form = new URLSearchParams(body);
      const refresh = form.get('refresh_token') ?? '';
      presented.set(refresh, (presented.get(refresh) ?? 0) + 1);
      let status;
      let answer;
      if (mode === 'error500') {
        status = 500;
        answer = '';
      } else if (form.get('grant_type') !== 'refresh_token') {
        status = 400;
        answer = JSON.stringify({ error: 'unsupported_grant_type' });
      } else if (valid.delete(refresh)) {
        next += 1;
        const access = `at-${next}`;
        const newRefresh = `rt-${next}`;
        valid.add(newRefresh);
        exchanges.push([refresh, access]);
        status = 200;
        answer = JSON.stringify({
          access_token: access, refresh_token: newRefresh, expires_in: ttlS, token_type: 'Bearer',
        });
      } else {
        valid.clear(); // reuse: the family is revoked
        stats.invalidGrants += 1;
        status = 400;
        answer = JSON.stringify({ error: 'invalid_grant', error_description: 'refresh token already used' });
      }
      if (delayMs > 0) await new Promise((resolve) => { setTimeout(resolve, delayMs); });
      if (held) await held.promise;
      stats.answered += 1;
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      res.end(answer);
    });
  });
  await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/token`,
    stats,
    exchanges,
    presented,
    setDelayMs(ms) { delayMs = ms; },
    setMode(m) { mode = m; },
    /** Holds every answer (after rotating) until `release()`. */
    hold() {
      let release;
      const promise = new Promise((resolve) => { release = resolve; });
      held = { promise, release };
    },
    release() {
      if (held) held.release();
      held = null;
    },
    /** G1: no refresh token was presented more than once. */
    presentedTwice() {
      return [...presented].filter(([, count]) => count > 1).map(([token]) => token);
    },
    close() {
      return new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); });
    },
  };
}
