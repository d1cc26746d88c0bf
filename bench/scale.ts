/**
 * `npm run bench -- --scale`: creates live, sleeping leads in steps (1k, 10k, 50k by default) and
 * after each step reports worker RSS and V8 heap, server RSS, DB bytes per lead, the per-event
 * history cost and event-to-state latency on a sample; the JSON is rewritten after every step.
 */
import cliProgress from 'cli-progress';
import { join } from 'node:path';
import { workflowIdFor } from '../src/domain/lead.js';
import { ROOT } from '../src/env.js';
import { race, withRetry, withStack } from './harness.js';
import { historyCost } from './history-cost.js';
import { cpuMark, cpuSince, round, sample } from './measure.js';
import { mb, sqliteBytes } from './proc.js';
import { machine, writeResults } from './results.js';
import {
  Deadline,
  engagementEvent,
  makeEvents,
  makeLeads,
  type LeadPlan,
  percentiles,
  type Percentiles,
  rng,
  runPool,
  sleep,
} from './workload.js';

// ---- scale mode ------------------------------------------------------------------------------

export interface ScaleOptions {
  steps: number[];
  concurrency: number;
  stepMinutes: number;
  seed: number;
  resultsDir: string;
  sample: number;
  pollMs: number;
  quiet?: boolean;
}

export const SCALE_DEFAULTS: ScaleOptions = {
  steps: [1000, 10_000, 50_000],
  concurrency: 32,
  stepMinutes: 15,
  seed: 20260505,
  resultsDir: join(ROOT, 'bench', 'results'),
  sample: 20,
  pollMs: 4,
};

export interface ScaleStep {
  target: number;
  created: number;
  liveLeads: number;
  completed: boolean;
  note?: string;
  creationSeconds: number;
  creationsPerSecond: number;
  errors: number;
  retries: number;
  workerRssMb: number;
  workerPeakRssMb: number;
  /** The worker's V8 heap: live objects and what V8 holds for them (the rest of its RSS is native). */
  workerHeapUsedMb: number;
  workerHeapTotalMb: number;
  serverRssMb: number;
  dbBytes: number;
  dbBytesPerLead: number;
  historyEventsPerEvent: number;
  workflowTasksPerEvent: number;
  latencyMs: Percentiles;
  cpu: { worker: number; server: number; seconds: number };
}

export async function runScale(partial: Partial<ScaleOptions> = {}): Promise<{ results: object; file: string }> {
  const o: ScaleOptions = { ...SCALE_DEFAULTS, ...partial };
  const startedAt = new Date().toISOString();
  const tag = `s${Date.now().toString(36)}`;
  return withStack({ quiet: o.quiet, retainMail: false }, async (s) => {
    const steps: ScaleStep[] = [];
    const all: LeadPlan[] = [];
    const r = rng(o.seed ^ 0x7f4a7c15);
    const write = () =>
      writeResults(o.resultsDir, {
        mode: 'scale',
        startedAt,
        finishedAt: new Date().toISOString(),
        scale: { steps, options: o },
        machine: machine(),
      });
    let file = '';
    for (const [i, target] of o.steps.entries()) {
      const toCreate = Math.max(0, target - all.length);
      const leads = makeLeads(toCreate, `${tag}-${i}-`, o.seed + i, 0);
      const events = makeEvents(leads, 1, o.seed + i, `${tag}-${i}`);
      const counters = { retries: 0 };
      const bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          etaBuffer: 200,
          fps: 4,
          format: `step ${i + 1}/${o.steps.length} → ${target} live leads |{bar}| {value}/{total} | {rate}/s | {duration_formatted} | eta {eta_formatted} | errors {errors}`,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(toCreate, 0, { rate: 0, errors: 0 });
      const stepDeadline = new Deadline(o.stepMinutes);
      const mark = cpuMark(s);
      s.workerRss.resetPeak();
      const t0 = performance.now();
      let created = 0;
      let errors = 0;
      let note: string | undefined;
      let completed = true;
      try {
        await race(
          s,
          runPool(
            events,
            o.concurrency,
            async (ev) => {
              await withRetry(() => s.service.sendEvent(ev), counters);
              created++;
            },
            {
              deadline: stepDeadline,
              what: `scale step ${i + 1} (${target} leads)`,
              maxErrors: Math.max(100, Math.floor(toCreate * 0.05)),
              onDone: (n) =>
                bar.update(n, { rate: Math.round(created / ((performance.now() - t0) / 1000)), errors: n - created }),
            },
          ),
        );
      } catch (err) {
        completed = false;
        note = err instanceof Error ? err.message : String(err);
      }
      errors = events.length - created;
      bar.stop();
      const creationSeconds = (performance.now() - t0) / 1000;
      all.push(...leads.filter((_, j) => j < created + errors));
      s.log(
        `step ${i + 1}: ${created}/${toCreate} created in ${creationSeconds.toFixed(1)} s${completed ? '' : ` — stopped: ${note}`}`,
      );

      // Let the worker catch up with the starts, bounded, then measure.
      const newest = leads.slice(Math.max(0, created - 20), created);
      const settleUntil = performance.now() + 120_000;
      for (const l of newest) {
        while (performance.now() < settleUntil) {
          const st = await s.service.getState(l.leadId).catch(() => undefined);
          if (st && st.eventsProcessed >= 1) break;
          await sleep(200);
        }
      }
      const liveLeads = await s.client.workflow
        .count(`WorkflowType = 'leadWorkflow' AND ExecutionStatus = 'Running'`)
        .then((c) => c.count)
        .catch(() => NaN);
      const probes = sample(all, Math.min(o.sample, all.length), r);
      const states = await Promise.all(probes.map((l) => s.service.getState(l.leadId).catch(() => undefined)));
      const cost = await historyCost(
        s.client,
        probes.flatMap((l, j) =>
          states[j] ? [{ workflowId: workflowIdFor(l.leadId), processed: states[j]!.eventsProcessed }] : [],
        ),
      ).catch(() => undefined);
      const latencies: number[] = [];
      for (const [j, l] of probes.entries()) {
        const before = states[j]?.eventsProcessed;
        if (before === undefined) continue;
        try {
          await s.service.sendEvent(engagementEvent(r, l, `${tag}-probe-${i}-${j}`));
          const p0 = performance.now();
          for (;;) {
            const st = await s.service.getState(l.leadId);
            if (st.eventsProcessed > before) {
              latencies.push(performance.now() - p0);
              break;
            }
            if (performance.now() - p0 > 30_000) break;
            await sleep(o.pollMs);
          }
        } catch {
          // a probe that fails is left out
        }
      }
      const db = sqliteBytes(s.server.dbPath);
      const heap = await s.worker.memory();
      const step: ScaleStep = {
        target,
        created: all.length,
        liveLeads,
        completed,
        ...(note ? { note } : {}),
        creationSeconds: round(creationSeconds, 1),
        creationsPerSecond: round(created / creationSeconds),
        errors,
        retries: counters.retries,
        workerRssMb: mb(s.workerRss.sample()),
        workerPeakRssMb: mb(s.workerRss.resetPeak()),
        workerHeapUsedMb: heap ? mb(heap.heapUsed) : NaN,
        workerHeapTotalMb: heap ? mb(heap.heapTotal) : NaN,
        serverRssMb: mb(s.serverRss.sample()),
        dbBytes: db.total,
        dbBytesPerLead: all.length ? Math.round(db.total / all.length) : 0,
        historyEventsPerEvent: cost?.historyEventsPerEvent ?? NaN,
        workflowTasksPerEvent: cost?.workflowTasksPerEvent ?? NaN,
        latencyMs: percentiles(latencies),
        cpu: cpuSince(s, mark),
      };
      steps.push(step);
      process.stdout.write(`${scaleRow(step)}\n`);
      file = write();
      if (!completed) break;
    }
    process.stdout.write(`results: ${file}\n`);
    return { results: { mode: 'scale', scale: { steps } }, file };
  });
}

function scaleRow(s: ScaleStep): string {
  return [
    `${s.created} leads (${s.liveLeads} running)${s.completed ? '' : ' [INCOMPLETE]'}:`,
    `created at ${s.creationsPerSecond}/s`,
    `worker RSS ${s.workerRssMb} MB (peak ${s.workerPeakRssMb}; V8 heap ${s.workerHeapUsedMb} used of ${s.workerHeapTotalMb})`,
    `server RSS ${s.serverRssMb} MB`,
    `DB ${s.dbBytesPerLead} B/lead`,
    `${s.historyEventsPerEvent} history events/event, ${s.workflowTasksPerEvent} WFT/event`,
    `event→state p50 ${s.latencyMs.p50} ms p99 ${s.latencyMs.p99} ms`,
  ].join(' · ');
}
