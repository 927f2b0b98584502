// Where the things under test are: the repository, the `rotor` binary and
// the Rust example, built by scripts/test.sh's node step (or by hand:
// `cargo build -p rotor && cargo build -p rotor-fs --features tokio --example tokio_agents`).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repoRoot, process.env.CARGO_TARGET_DIR) : path.join(repoRoot, 'target');

function built(relative, what) {
  const file = path.join(targetDir, 'debug', relative);
  if (!existsSync(file)) throw new Error(`${file} is missing: ${what}`);
  return file;
}

export const rotorBin = () => process.env.ROTOR_BIN ?? built('rotor', 'run `cargo build -p rotor`');
export const tokioAgentsBin = () => built(path.join('examples', 'tokio_agents'),
  'run `cargo build -p rotor-fs --features tokio --example tokio_agents`');
