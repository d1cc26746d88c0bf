#!/usr/bin/env node
// Runs every test file under test/ with Node's test runner through tsx: typecheck first, then the
// fast domain tests, then the Temporal ones. Extra arguments narrow the files (substring match).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts') && (!filters.length || filters.some((f) => p.includes(f)))) files.push(p);
  }
})('test');

if (!filters.length) {
  const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}
// reap.mjs: a file the runner times out takes the servers it started with it (see the file).
const reap = pathToFileURL(join(import.meta.dirname, '..', 'test', 'helpers', 'reap.mjs')).href;
const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', reap, '--test', '--test-concurrency=2', '--test-timeout=600000', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
