/**
 * `npm run chaos [-- --leads 200 --events 2500 --rate 16 --kills 10 --smtp-down 60s --seed N]`:
 * the fault run of issue 9 on its own loopback stack; prints each figure, writes
 * chaos/results/<time>.json, exits 0 only when nothing was lost, wedged, mailed twice or left
 * without its handoff, and every history replays.
 */
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../src/domain/duration.js';
import { CHAOS_DEFAULTS, printResult, runChaos } from './run.js';

const d = CHAOS_DEFAULTS;
const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a whole number: ${v}`);
  return n;
};
const program = new Command('chaos')
  .option('--leads <n>', 'leads', int, d.leads)
  .option('--events <n>', 'events through POST /v1/events', int, d.events)
  .option('--rate <n>', 'writes per second', int, d.rate)
  .option('--reads <n>', 'GET /v1/leads/:id per second during the load', int, d.reads)
  .option('--kills <n>', 'worker SIGKILLs during the load', int, d.kills)
  .option('--smtp-down <duration>', 'how long the SMTP server is down (0s: never)', '60s')
  .option('--no-temporal-restart', 'do not stop and restart the Temporal dev server')
  .option('--no-api-kill', 'do not kill the API')
  .option('--seed <n>', 'workload seed', int, d.seed)
  .option('--settle <duration>', 'longest wait for the system to settle after the load', '300s')
  .option('--cache <n>', "the worker's sticky cache (WORKER_MAX_CACHED_WORKFLOWS; default the production 50)", int)
  .option('--out <file>', 'results file (default chaos/results/<time>.json)')
  .parse();
const a = program.opts();
const duration = (flag: string, v: string) => {
  const ms = v === '0' ? 0 : parseDuration(v);
  if (ms === undefined) throw new Error(`${flag}: not a duration (500ms, 2s, 15m): ${v}`);
  return ms;
};

const res = await runChaos({
  leads: a.leads,
  events: a.events,
  rate: a.rate,
  reads: a.reads,
  kills: a.kills,
  smtpDownMs: duration('--smtp-down', a.smtpDown),
  seed: a.seed,
  temporalRestart: a.temporalRestart,
  apiKill: a.apiKill,
  settleMs: duration('--settle', a.settle),
  cacheSize: a.cache,
});
printResult(res);
const out =
  a.out ?? join(fileURLToPath(new URL('./results/', import.meta.url)), `${res.startedAt.replace(/[:.]/g, '-')}.json`);
mkdirSync(join(out, '..'), { recursive: true });
writeFileSync(out, JSON.stringify(res, null, 2));
console.log(`results: ${out}`);
process.exit(res.ok ? 0 : 1);
