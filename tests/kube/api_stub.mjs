// A stand-in Kubernetes API server over real TLS, for tests/cli_formats.rs:
// kubectl sends the bearer token of an exec credential plugin only over
// https. Node's built-in modules only (no npm packages).
//
//   node api_stub.mjs CERT.pem KEY.pem EXPECTED_TOKEN_FILE
//
// Every request is recorded (path, Authorization header). It is answered 200
// with {"rotor":"welcome"} when its Authorization is `Bearer <token>`, the
// token being the contents of EXPECTED_TOKEN_FILE at that moment (the test
// rewrites it), else 401 with a Kubernetes Status. A second, plain-HTTP
// listener answers GET /seen with the record. Prints one JSON line
// {"port", "state_port"} when ready; exits when its stdin closes.
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";

const [cert, key, expectedFile] = process.argv.slice(2);
const seen = [];

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

const server = https.createServer(
  { cert: readFileSync(cert), key: readFileSync(key) },
  (req, res) => {
    const authorization = req.headers.authorization ?? null;
    seen.push({ path: req.url, authorization });
    const expected = `Bearer ${readFileSync(expectedFile, "utf8").trim()}`;
    if (authorization === expected) {
      return answer(res, 200, { rotor: "welcome" });
    }
    answer(res, 401, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: "Unauthorized",
      reason: "Unauthorized",
      code: 401,
    });
  },
);

const stateServer = http.createServer((req, res) => answer(res, 200, seen));

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
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
