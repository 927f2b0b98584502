// Test-only OAuth server for tests/oidc_e2e.rs: oidc-provider 8.8.1 on
// 127.0.0.1 with refresh-token rotation on, one confidential client, and an
// initial grant + refresh token minted through the provider's own Grant and
// RefreshToken models (in-memory adapter).
//
// Usage: node server.mjs  → prints one JSON line on stdout:
//   {"port", "token_url", "client_id", "client_secret", "refresh_token", "grant_id"}
// Test routes (not OAuth):
//   GET /test/state → {"refresh_success", "invalid_grant", "errors", "family_alive"}
//   POST /test/quit → exits
// The server also exits when its stdin closes (the test process ended).
import http from 'node:http';
import Provider from 'oidc-provider';

const CLIENT_ID = 'rotor-e2e';
const CLIENT_SECRET = 'rotor-e2e-secret-value';
const ACCOUNT = 'user-1';

const counts = { refresh_success: 0, invalid_grant: 0, errors: [] };
let provider;
let grantId;

const server = http.createServer(async (req, res) => {
  if (req.url === '/test/state') {
    const grant = await provider.Grant.find(grantId);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ...counts, family_alive: Boolean(grant) }));
    return;
  }
  if (req.url === '/test/quit') {
    res.end('bye');
    process.exit(0);
  }
  provider.callback()(req, res);
});

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    rotateRefreshToken: true,
    scopes: ['openid', 'offline_access'],
    ttl: { AccessToken: 3600, RefreshToken: 86400, Grant: 86400, Session: 86400 },
    features: { devInteractions: { enabled: false } },
    async findAccount(ctx, id) {
      return { accountId: id, async claims() { return { sub: id }; } };
    },
  });
  provider.on('grant.success', (ctx) => {
    if (ctx.oidc.params?.grant_type === 'refresh_token') counts.refresh_success += 1;
  });
  provider.on('grant.error', (ctx, error) => {
    if (error.error === 'invalid_grant') counts.invalid_grant += 1;
    counts.errors.push(`${error.error}: ${error.error_description ?? ''}`);
  });

  const client = await provider.Client.find(CLIENT_ID);
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CLIENT_ID });
  grant.addOIDCScope('openid offline_access');
  grantId = await grant.save();
  const refreshToken = new provider.RefreshToken({
    accountId: ACCOUNT,
    client,
    grantId,
    scope: 'openid offline_access',
    gty: 'authorization_code',
    iiat: Math.floor(Date.now() / 1000),
  });
  const value = await refreshToken.save();
  process.stdout.write(`${JSON.stringify({
    port,
    token_url: `${issuer}/token`,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    refresh_token: value,
    grant_id: grantId,
  })}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
