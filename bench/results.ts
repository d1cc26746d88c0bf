/**
 * What the bench reports: the machine it ran on, the results JSON written to
 * bench/results/<UTC timestamp>.json, the default mode's result shape and its stdout table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { LatencyPhase } from './latency-phase.js';
import { round } from './measure.js';
import { mb } from './proc.js';
import type { SendPhase } from './send-phase.js';
import type { Percentiles } from './workload.js';

export function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: cpus.length,
    totalMemMb: Math.round(os.totalmem() / 1024 / 1024),
    loadAverage: os.loadavg().map((x) => round(x, 2)),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
  };
}

const stamp = () =>
  new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

export function writeResults(dir: string, results: object): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${stamp()}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

export interface BenchResults {
  mode: 'default';
  startedAt: string;
  finishedAt: string;
  leads: number;
  eventsPerLead: number;
  events: number;
  concurrency: number;
  eventsPerSecond: number;
  baselineEventsPerSecond: number;
  ratio: number;
  endToEnd: { eventsPerSecond: number; baselineEventsPerSecond: number; ratio: number };
  latencyMs: Percentiles;
  handoffLatencyMs: Percentiles;
  historyEventsPerEvent: number;
  workflowTasksPerEvent: number;
  workerPeakRssMb: number;
  workerCpuSeconds: number;
  dbBytesPerLead: number;
  [k: string]: unknown;
}

export function table(r: BenchResults, lat: LatencyPhase): string {
  const m = r.machine as ReturnType<typeof machine>;
  const b = r.phases as { baseline: SendPhase; engine: SendPhase };
  const row = (label: string, engine: string | number, baseline: string | number = '', ratio: string | number = '') =>
    `${label.padEnd(30)}${String(engine).padStart(14)}${String(baseline).padStart(14)}${String(ratio).padStart(9)}`;
  const ms = (p: Percentiles) =>
    p.samples ? `p50 ${p.p50} ms · p95 ${p.p95} ms · p99 ${p.p99} ms (${p.samples} samples)` : 'n/a (no samples)';
  return [
    '',
    `lead nurture bench: ${r.leads} leads × ${r.eventsPerLead} events, ${r.concurrency} in flight · ${m.cpuCount} × ${m.cpuModel}, ${Math.round(m.totalMemMb / 1024)} GB, ${m.node} · load average ${(r.machine as { loadAverageAtStart: number[] }).loadAverageAtStart.join(' ')} at start`,
    row('', 'engine', 'baseline', 'ratio'),
    row('signals accepted / s', r.eventsPerSecond, r.baselineEventsPerSecond, r.ratio),
    row('end-to-end events / s', r.endToEnd.eventsPerSecond, r.endToEnd.baselineEventsPerSecond, r.endToEnd.ratio),
    row(
      'send / until processed (s)',
      `${round(b.engine.sendSeconds)} / ${round(b.engine.endToEndSeconds)}`,
      `${round(b.baseline.sendSeconds)} / ${round(b.baseline.endToEndSeconds)}`,
    ),
    row(
      'history events / event',
      r.historyEventsPerEvent,
      r.baselineHistoryEventsPerEvent as number,
      round(r.historyEventsPerEvent / (r.baselineHistoryEventsPerEvent as number), 2),
    ),
    row(
      'workflow tasks / event',
      r.workflowTasksPerEvent,
      r.baselineWorkflowTasksPerEvent as number,
      round(r.workflowTasksPerEvent / (r.baselineWorkflowTasksPerEvent as number), 2),
    ),
    row(
      'worker CPU ms / event',
      (r.workerCpuMsPerEvent as { engine: number }).engine,
      (r.workerCpuMsPerEvent as { baseline: number }).baseline,
    ),
    row(
      'server CPU ms / event',
      (r.serverCpuMsPerEvent as { engine: number }).engine,
      (r.serverCpuMsPerEvent as { baseline: number }).baseline,
    ),
    '',
    `latency at half load (${lat.achievedRate}/s of ${lat.targetRate}/s target, ${lat.seconds} s):`,
    `  event → state          ${ms(r.latencyMs)}${lat.latencyTimeouts ? `, ${lat.latencyTimeouts} timed out` : ''}`,
    `  event → handoff mail   ${ms(r.handoffLatencyMs)}${lat.handoffMissing ? `, ${lat.handoffMissing} never arrived` : ''}`,
    '',
    `worker: peak RSS ${r.workerPeakRssMb} MB (at ready ${r.workerRssAtReadyMb} MB, lifetime high-water ${r.workerVmHwmMb} MB incl. bundling), CPU ${r.workerCpuSeconds} s for the engine load`,
    `server: peak RSS ${r.serverPeakRssMb} MB; SQLite ${mb(r.dbBytes as number)} MB (db + wal) = ${r.dbBytesPerLead} bytes per lead (baseline workflows and the empty db's ${mb(r.dbBytesAtStart as number)} MB included); growth per workflow: engine ${(r.dbGrowthBytesPerWorkflow as { engine: number }).engine} B, baseline ${(r.dbGrowthBytesPerWorkflow as { baseline: number }).baseline} B`,
    `stages after the load: ${Object.entries(r.stagesAfterLoad as Record<string, number>)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )}; mail: ${(r.mails as { total: number }).total} (${(r.mails as { handoffs: number }).handoffs} handoffs)`,
    `history events per event by type: ${Object.entries(r.historyEventTypesPerEvent as Record<string, number>)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
  ].join('\n');
}
