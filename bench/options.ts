/**
 * What the default bench (`npm run bench`) can be told, and its defaults: the CLI's flags map onto
 * these (bench/run.ts), and the send and latency phases read them.
 */
import { join } from 'node:path';
import { ROOT } from '../src/env.js';

export interface BenchOptions {
  leads: number;
  events: number;
  concurrency: number;
  latencySeconds: number;
  maxMinutes: number;
  seed: number;
  resultsDir: string;
  /** Lead (and baseline) workflows whose histories are read for the per-event cost. */
  historySample: number;
  handoffSamples: number;
  /** Concurrent event-to-state probes in the latency phase (each polls the state query). */
  samplers: number;
  pollMs: number;
  /** Progress lines on stderr (the table always goes to stdout). */
  quiet?: boolean;
  /** Print the table on stdout (default true). */
  table?: boolean;
}

export const DEFAULTS: BenchOptions = {
  leads: 1000,
  events: 10,
  concurrency: 64,
  latencySeconds: 20,
  maxMinutes: 10,
  seed: 20260505,
  resultsDir: join(ROOT, 'bench', 'results'),
  historySample: 50,
  handoffSamples: 20,
  samplers: 2,
  pollMs: 4,
};
