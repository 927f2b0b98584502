// Node benchmarks (not timed tests): the per-call cost of a fresh-token
// call from Node in-process next to the `rotor token` CLI per process and
// the Rust library, and storms of N Node processes beside N `rotor token`
// processes on one expired credential (one grant per storm is checked, as
// is one token for everyone: G1, G2). Needs the release builds that
// node/bench/run.sh makes.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { nodeWorker } from '../test/support/processes.mjs';
import { repoRoot } from '../test/support/paths.mjs';
import { startTokenServer } from '../test/support/token-server.mjs';

const require = createRequire(import.meta.url);
const { Rotor } = require('../index.js');
const quick = process.argv.includes('--quick');
const PROFILE = 'acme:default';
const release = (p) => path.join(repoRoot, 'target', 'release', p);
const rotorBin = release('rotor');
const LATENCY_MS = 50;

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}
const median = (xs) => quantile([...xs].sort((a, b) => a - b), 0.5);
const p90 = (xs) => quantile([...xs].sort((a, b) => a - b), 0.9);
const fmt = (x, digits = 1) => x.toFixed(digits);

async function freshDir(server, expired) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rotor-bench-'));
  const stateDir = path.join(dir, 'state');
  const rotor = await Rotor.open(stateDir);
  await rotor.login({
    profile: PROFILE, provider: 'acme', accessToken: 'at-0', refreshToken: 'rt-0',
    expiresAtMs: expired ? 1 : Date.now() + 3_600_000,
    tokenUrl: server.url, clientId: 'bench', clientSecret: 'bench-secret',
  });
  return { dir, stateDir, rotor };
}

async function freshTokenCost() {
  const server = await startTokenServer();
  const { dir, stateDir, rotor } = await freshDir(server, false);
  const calls = quick ? 200 : 5000;
  const rows = [];
  for (let i = 0; i < 200; i += 1) await rotor.token({ profile: PROFILE, provider: 'acme' });
  let start = process.hrtime.bigint();
  for (let i = 0; i < calls; i += 1) {
    const token = await rotor.token({ profile: PROFILE, provider: 'acme' });
    if (token.outcome !== 'cached') throw new Error(`not cached: ${token.outcome}`);
  }
  rows.push(['Node, in-process, one call at a time (`await rotor.token`)',
    Number(process.hrtime.bigint() - start) / 1e3 / calls]);
  start = process.hrtime.bigint();
  const inFlight = 8;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    for (let i = 0; i < calls / inFlight; i += 1) await rotor.token({ profile: PROFILE, provider: 'acme' });
  }));
  rows.push([`Node, in-process, ${inFlight} calls in flight (per call, throughput)`,
    Number(process.hrtime.bigint() - start) / 1e3 / calls]);
  start = process.hrtime.bigint();
  for (let i = 0; i < calls; i += 1) await rotor.token({ profile: PROFILE });
  rows.push(['Node, in-process, provider looked up (`{ profile }` only)',
    Number(process.hrtime.bigint() - start) / 1e3 / calls]);
  const rust = spawnSync(release(path.join('examples', 'fresh_calls')), [stateDir, 'acme', PROFILE, String(calls)]);
  if (rust.status !== 0) throw new Error(`fresh_calls: ${rust.stderr}`);
  const { blocking_us: blockingUs, async_us: asyncUs } = JSON.parse(rust.stdout);
  rows.push(['Rust library, `Rotor::token` (blocking)', blockingUs]);
  rows.push(['Rust library, `AsyncRotor::token` (spawn_blocking)', asyncUs]);
  const cliCalls = quick ? 20 : 300;
  start = process.hrtime.bigint();
  for (let i = 0; i < cliCalls; i += 1) {
    const cli = spawnSync(rotorBin, ['token', '--json', '--state-dir', stateDir, '--profile', PROFILE, '--provider', 'acme']);
    if (cli.status !== 0 || JSON.parse(cli.stdout).outcome !== 'cached') throw new Error(`rotor token: ${cli.stderr}`);
  }
  rows.push(['`rotor token` CLI, one process per call (spawned from Node)',
    Number(process.hrtime.bigint() - start) / 1e3 / cliCalls]);
  if (server.stats.received !== 0) throw new Error('a fresh-token call reached the endpoint');
  await server.close();
  await rm(dir, { recursive: true, force: true });
  console.log(`\n### Fresh-token call (${calls} calls; CLI ${cliCalls})\n`);
  console.log('| caller | µs per call |');
  console.log('| --- | --- |');
  for (const [what, us] of rows) console.log(`| ${what} | ${fmt(us)} |`);
}

function cliProcess(stateDir) {
  const child = spawn(rotorBin, ['token', '--json', '--state-dir', stateDir, '--profile', PROFILE],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  return new Promise((resolve) => {
    child.once('close', (code) => {
      let json = {};
      try { json = JSON.parse(out); } catch { /* checked below */ }
      resolve({ code, results: [{ accessToken: json.access_token, outcome: json.outcome }] });
    });
  });
}

/** One storm: `nodes` Node processes and `clis` CLI processes at once. */
async function storm(nodes, clis) {
  const server = await startTokenServer();
  server.setDelayMs(LATENCY_MS);
  const { dir, stateDir } = await freshDir(server, true);
  const workers = await Promise.all(Array.from({ length: nodes }, () => nodeWorker(stateDir, PROFILE, ['main'])));
  const start = process.hrtime.bigint();
  for (const worker of workers) worker.go();
  const runs = await Promise.all([...workers.map((w) => w.finish()), ...Array.from({ length: clis }, () => cliProcess(stateDir))]);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const results = runs.flatMap((run) => run.results);
  const tokens = new Set(results.map((r) => r.accessToken));
  const ok = runs.every((run) => run.code === 0) && tokens.size === 1 && !tokens.has(undefined)
    && server.exchanges.length === 1 && server.stats.invalidGrants === 0 && server.presentedTwice().length === 0;
  if (!ok) {
    throw new Error(`storm ${nodes}+${clis}: G1/G2 check failed: ${server.exchanges.length} grants, `
      + `${tokens.size} tokens, codes ${runs.map((r) => r.code)}`);
  }
  await server.close();
  await rm(dir, { recursive: true, force: true });
  return ms;
}

async function convergence() {
  const ns = quick ? [2] : [8, 32];
  const runs = quick ? 1 : 7;
  console.log(`\n### Storms: N processes, one expired credential, ${LATENCY_MS} ms endpoint (${runs} runs each, interleaved)\n`);
  console.log('| N | kind | median ms | p90 ms | grants per storm |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const n of ns) {
    const kinds = { [`${n} Node`]: [n, 0], [`${n} rotor token`]: [0, n], [`${n} Node + ${n} rotor token`]: [n, n] };
    const times = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
    for (let r = 0; r < runs; r += 1) {
      for (const [kind, [nodes, clis]] of Object.entries(kinds)) times[kind].push(await storm(nodes, clis));
    }
    for (const kind of Object.keys(kinds)) {
      console.log(`| ${n} | ${kind} | ${fmt(median(times[kind]))} | ${fmt(p90(times[kind]))} | 1 |`);
    }
  }
}

console.log(`node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
// `--only=fresh` or `--only=storms` runs one half.
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
if (only !== 'storms') await freshTokenCost();
if (only !== 'fresh') await convergence();
