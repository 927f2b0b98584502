// Child processes of the multi-process tests: node workers, `rotor token`
// processes and the Rust tokio example, started together and read back.
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { rotorBin, tokioAgentsBin } from './paths.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function collect(child, what) {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ what, code, stdout, stderr }));
  });
}

/** A node worker (agent-worker.mjs) with `agents`, ready and waiting for go. */
export async function nodeWorker(stateDir, profile, agents, env = {}) {
  const child = spawn(process.execPath, [path.join(here, 'agent-worker.mjs'), stateDir, profile, ...agents],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines = readline.createInterface({ input: child.stdout });
  const results = [];
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const ready = new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker exited ${code} before ready: ${stderr}`)));
    lines.on('line', (line) => {
      if (line === 'ready') resolve();
      else results.push(JSON.parse(line));
    });
  });
  const done = new Promise((resolve) => {
    child.once('close', (code, signal) => resolve({ code: code ?? signal, stderr }));
  });
  await ready;
  return {
    go() { child.stdin.end('go\n'); },
    /** kill -9: no destructor, no unlock; the OS drops its flocks. */
    kill() { child.kill('SIGKILL'); },
    async finish() {
      const { code, stderr: err } = await done;
      return { what: `node worker ${agents[0]}..`, code, stderr: err, results };
    },
  };
}

/** The Rust example: `tasks` AsyncRotor tasks over `agents`, waiting for go. */
export function tokioAgents(stateDir, provider, profile, tasks, agents) {
  const child = spawn(tokioAgentsBin(), ['--wait-for-go', stateDir, provider, profile, String(tasks), ...agents],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  const done = collect(child, 'tokio_agents');
  return {
    go() { child.stdin.end('go\n'); },
    async finish() {
      const run = await done;
      run.results = run.stdout.trim().split('\n').filter(Boolean).map((line) => {
        const r = JSON.parse(line);
        return r.error ? { agent: r.agent, error: { message: r.error } }
          : { agent: r.agent, accessToken: r.access_token, outcome: r.outcome };
      });
      return run;
    },
  };
}

/** One `rotor token --json` process, started now. */
export function rotorToken(stateDir, agent, profile, extra = []) {
  const child = spawn(rotorBin(), ['token', '--json', '--state-dir', stateDir, '--agent', agent,
    '--profile', profile, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ROTOR_FAILPOINT: '' } });
  return collect(child, `rotor token ${agent}`).then((run) => {
    let json = null;
    try { json = JSON.parse(run.stdout.trim()); } catch { /* reported below */ }
    run.results = json?.access_token
      ? [{ agent, accessToken: json.access_token, outcome: json.outcome }]
      : [{ agent, error: json?.error ?? { message: run.stderr } }];
    return run;
  });
}
