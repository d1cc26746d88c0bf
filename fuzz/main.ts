/**
 * `npm run fuzz [-- --requests 5000 --seed N]`: hostile requests over every route of a real stack
 * (dev server, worker, API); prints the answers by status, exits 0 only with no 5xx, no state
 * change and /healthz up. Writes fuzz/results/<time>.json.
 */
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUZZ_DEFAULTS, printFuzz, runFuzz } from './run.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive whole number: ${v}`);
  return n;
};
const a = new Command('fuzz')
  .option('--requests <n>', 'hostile requests', int, FUZZ_DEFAULTS.requests)
  .option('--seed <n>', 'fast-check seed', int, FUZZ_DEFAULTS.seed)
  .option('--concurrency <n>', 'requests in flight', int, FUZZ_DEFAULTS.concurrency)
  .option('--out <file>', 'results file (default fuzz/results/<time>.json)')
  .parse()
  .opts();
const res = await runFuzz({ requests: a.requests, seed: a.seed, concurrency: a.concurrency });
printFuzz(res);
const out =
  a.out ?? join(fileURLToPath(new URL('./results/', import.meta.url)), `${res.startedAt.replace(/[:.]/g, '-')}.json`);
mkdirSync(join(out, '..'), { recursive: true });
writeFileSync(out, JSON.stringify(res, null, 2));
console.log(`results: ${out}`);
process.exit(res.ok ? 0 : 1);
