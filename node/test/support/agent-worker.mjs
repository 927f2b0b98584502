// One Node process of the multi-process tests: opens the state directory,
// waits for a line on stdin (so that every process starts together), then
// asks for `profile`'s token from every agent at once, all through one
// shared Rotor, and prints one JSON line per agent.
//   node agent-worker.mjs <state dir> <profile> <agent>...
import readline from 'node:readline';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Rotor } = require('../../index.js');

const [stateDir, profile, ...agents] = process.argv.slice(2);
const rotor = await Rotor.open(stateDir);
process.stdout.write('ready\n');
await new Promise((resolve) => { readline.createInterface({ input: process.stdin }).once('line', resolve); });
const results = await Promise.all(agents.map(async (agent) => {
  try {
    const token = await rotor.token({ agent, profile });
    return { agent, accessToken: token.accessToken, outcome: token.outcome };
  } catch (error) {
    return { agent, error: { code: error.code, message: error.message } };
  }
}));
for (const result of results) process.stdout.write(`${JSON.stringify(result)}\n`);
