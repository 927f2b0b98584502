// A tiny RFC 6749 §6 token endpoint over real TLS, for tests/https_endpoint.rs.
// Node's built-in `https` only (no npm packages).
//
//   node server.mjs CERT.pem KEY.pem INITIAL_REFRESH_TOKEN
//
// POST /token answers the refresh_token grant with strict rotation: each
// refresh token is valid once and every success issues a new one; a reused
// token gets 400 invalid_grant and revokes the family. A second, plain-HTTP
// listener answers GET /state with the counters (so the test needs no TLS
// client of its own). Prints one JSON line {"port", "state_port"} when ready.
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";

const [cert, key, initial] = process.argv.slice(2);
const valid = new Set([initial]);
const state = {
  received: 0, // requests that reached the handler (TLS completed)
  presented: {}, // refresh token -> times presented
  exchanges: 0,
  invalid_grants: 0,
  tls_handshakes: 0, // completed TLS handshakes
  tls_client_errors: [], // failed handshakes, as node saw them
};
let next = 0;

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    Connection: "close",
  });
  res.end(text);
}

const server = https.createServer(
  { cert: readFileSync(cert), key: readFileSync(key) },
  (req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      state.received += 1;
      if (req.method !== "POST" || req.url !== "/token") {
        return answer(res, 404, { error: "not_found" });
      }
      const form = new URLSearchParams(body);
      const refresh = form.get("refresh_token") ?? "";
      state.presented[refresh] = (state.presented[refresh] ?? 0) + 1;
      if (form.get("grant_type") !== "refresh_token") {
        return answer(res, 400, { error: "unsupported_grant_type" });
      }
      if (!valid.delete(refresh)) {
        valid.clear();
        state.invalid_grants += 1;
        return answer(res, 400, {
          error: "invalid_grant",
          error_description: "refresh token already used",
        });
      }
      next += 1;
      valid.add(`rt-${next}`);
      state.exchanges += 1;
      answer(res, 200, {
        access_token: `at-${next}`,
        refresh_token: `rt-${next}`,
        expires_in: 3600,
        token_type: "Bearer",
      });
    });
  },
);
server.on("secureConnection", () => (state.tls_handshakes += 1));
server.on("tlsClientError", (error) => {
  state.tls_client_errors.push(String(error.code ?? error.message));
});

const stateServer = http.createServer((req, res) => answer(res, 200, state));

server.listen(0, "127.0.0.1", () => {
  stateServer.listen(0, "127.0.0.1", () => {
    process.stdout.write(
      JSON.stringify({
        port: server.address().port,
        state_port: stateServer.address().port,
      }) + "\n",
    );
  });
});
// Exit with the test: stdin closes when the test process drops the child.
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
