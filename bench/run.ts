/**
 * `npm run bench`: how fast the lead engine takes events on one machine, against the no-op
 * baseline workflow on the same server (issue 5).
 *
 * Everything is its own: a Temporal dev server from the CLI binary (SQLite + WAL in a temp
 * folder), an SMTP capture in this process, the worker in a child process (bench/worker-child.ts)
 * so its RSS and CPU seconds can be read from /proc. Phases:
 *   1. baseline: N baselineWorkflow instances, M `event` signals each, by signal-with-start;
 *   2. engine: N leads, M events each (the first creates the lead), same concurrency;
 *      for both, signals accepted per second of send time and end-to-end events per second
 *      (until every workflow shows all its events processed);
 *   3. history cost on a sample: history events and workflow tasks per processed event;
 *   4. latency at half the engine's end-to-end throughput: event-to-state and
 *      event-to-handoff-mail.
 * Figures go to stdout as a table and to bench/results/<UTC timestamp>.json.
 *
 * `npm run bench -- --scale`: creates live, sleeping leads in steps (1k, 10k, 50k by default) and
 * reports worker RSS, DB bytes per lead and the per-event cost after each step.
 *
 * This file holds runBench (the phases in order, and the results it assembles) and the CLI; each
 * concern is its own module: options.ts, harness.ts (the stack, retries), measure.ts,
 * send-phase.ts, history-cost.ts, latency-phase.ts, results.ts (JSON and table) and scale.ts.
 */
import type { LeadEvent, LeadState } from '../src/domain/lead.js';
import { Command, Option } from 'commander';
import os from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { baselineCountQuery, type baselineWorkflow } from '../workflows/baseline.js';
import { eventSignal } from '../workflows/defs.js';
import { race, withStack } from './harness.js';
import { historyCost } from './history-cost.js';
import { latencyPhase } from './latency-phase.js';
import { round, sample } from './measure.js';
import { type BenchOptions, DEFAULTS } from './options.js';
import { cpuSeconds, interrupted, hwmBytes, mb, sqliteBytes } from './proc.js';
import { type BenchResults, machine, table, writeResults } from './results.js';
import { runScale, SCALE_DEFAULTS } from './scale.js';
import { sendPhase } from './send-phase.js';
import { TASK_QUEUE } from './stack.js';
import { BenchTimeout, Deadline, makeEvents, makeLeads, rng } from './workload.js';
import { workflowIdFor } from '../src/domain/lead.js';

export { type BenchOptions, DEFAULTS } from './options.js';
export type { BenchResults } from './results.js';
export { runScale, type ScaleOptions, SCALE_DEFAULTS, type ScaleStep } from './scale.js';

// ---- the default bench ----------------------------------------------------------------------

export async function runBench(partial: Partial<BenchOptions> = {}): Promise<{ results: BenchResults; file: string }> {
  const o: BenchOptions = { ...DEFAULTS, ...partial };
  const deadline = new Deadline(o.maxMinutes);
  const startedAt = new Date().toISOString();
  const loadAtStart = os.loadavg().map((x) => round(x, 2));
  const tag = `b${Date.now().toString(36)}`;
  return withStack({ quiet: o.quiet, retainMail: false, cacheSize: o.leads }, async (s) => {
    const readyRss = s.workerRss.sample();
    const dbAtStart = sqliteBytes(s.server.dbPath).total;
    const startupCpu = cpuSeconds(s.worker.pid) ?? 0;
    const leads = makeLeads(o.leads, `${tag}-`, o.seed);
    const events = makeEvents(leads, o.events, o.seed, tag);
    s.service.validateEvents(events.slice(0, 500));
    s.log(
      `${o.leads} leads × ${o.events} events = ${events.length} per side, ${leads.filter((l) => l.handRaiser).length} hand-raisers, concurrency ${o.concurrency}`,
    );

    // 1. Baseline: the same signals (same payloads) to the no-op workflow.
    const baseId = (leadId: string) => `baseline-${leadId}`;
    const baseline = await sendPhase(
      s,
      'baseline',
      events,
      o,
      deadline,
      async (ev) => {
        await s.client.workflow.signalWithStart<typeof baselineWorkflow, [LeadEvent]>('baselineWorkflow', {
          taskQueue: TASK_QUEUE,
          workflowId: baseId(ev.leadId),
          args: [o.events],
          signal: eventSignal,
          signalArgs: [ev],
        });
      },
      async (leadId) => {
        const h = s.client.workflow.getHandle(baseId(leadId));
        // A completed baseline run has counted `expected` events; asking it would only make the worker replay it.
        const d = await h.describe();
        if (d.status.name === 'COMPLETED') return o.events;
        return h.query(baselineCountQuery);
      },
    );

    const dbAfterBaseline = sqliteBytes(s.server.dbPath).total;

    // 2. The engine.
    const states = new Map<string, LeadState>();
    const engine = await sendPhase(
      s,
      'engine',
      events,
      o,
      deadline,
      (ev) => s.service.sendEvent(ev),
      async (leadId) => {
        try {
          const st = await s.service.getState(leadId);
          states.set(leadId, st);
          return st.eventsProcessed;
        } catch (err) {
          if (String((err as Error).message).includes('starting')) return 0;
          throw err;
        }
      },
    );
    const stages: Record<string, number> = {};
    for (const st of states.values()) stages[st.stage] = (stages[st.stage] ?? 0) + 1;
    const mailsAfterLoad = { total: s.mail.total, handoffs: s.mail.handoffs };
    const dbAfterEngine = sqliteBytes(s.server.dbPath).total;

    // 3. History cost of a sample (all their events processed: the drain above saw to it).
    const r = rng(o.seed ^ 0x9e3779b9);
    const picked = sample(leads, Math.min(o.historySample, leads.length), r);
    const leadHistory = await race(
      s,
      historyCost(
        s.client,
        picked.map((l) => ({ workflowId: workflowIdFor(l.leadId), processed: states.get(l.leadId)!.eventsProcessed })),
      ),
    );
    const baseHistory = await race(
      s,
      historyCost(
        s.client,
        picked.map((l) => ({ workflowId: baseId(l.leadId), processed: o.events })),
      ),
    );
    s.log(
      `history: lead ${leadHistory.historyEventsPerEvent} events and ${leadHistory.workflowTasksPerEvent} workflow tasks per event; baseline ${baseHistory.historyEventsPerEvent} and ${baseHistory.workflowTasksPerEvent}`,
    );

    // 4. Latency at half the engine's sustainable (end-to-end) throughput.
    const rate = Math.max(1, engine.endToEndEventsPerSecond / 2);
    s.log(`latency phase: ${rate.toFixed(0)} events/s for ${o.latencySeconds} s`);
    const latency = await latencyPhase(s, o, deadline, rate, leads, states, tag);
    s.log(
      `event→state p50 ${latency.latencyMs.p50} ms, p95 ${latency.latencyMs.p95} ms, p99 ${latency.latencyMs.p99} ms (${latency.latencyMs.samples} probes); handoff mail p50 ${latency.handoffLatencyMs.p50} ms, p99 ${latency.handoffLatencyMs.p99} ms (${latency.handoffLatencyMs.samples})`,
    );

    const db = sqliteBytes(s.server.dbPath);
    const workerCpuTotal = cpuSeconds(s.worker.pid) ?? 0;
    const results: BenchResults = {
      mode: 'default',
      startedAt,
      finishedAt: new Date().toISOString(),
      leads: o.leads,
      eventsPerLead: o.events,
      events: events.length,
      concurrency: o.concurrency,
      eventsPerSecond: engine.eventsPerSecond,
      baselineEventsPerSecond: baseline.eventsPerSecond,
      ratio: round(engine.eventsPerSecond / baseline.eventsPerSecond, 3),
      endToEnd: {
        eventsPerSecond: engine.endToEndEventsPerSecond,
        baselineEventsPerSecond: baseline.endToEndEventsPerSecond,
        ratio: round(engine.endToEndEventsPerSecond / baseline.endToEndEventsPerSecond, 3),
      },
      latencyMs: latency.latencyMs,
      handoffLatencyMs: latency.handoffLatencyMs,
      historyEventsPerEvent: leadHistory.historyEventsPerEvent,
      workflowTasksPerEvent: leadHistory.workflowTasksPerEvent,
      baselineHistoryEventsPerEvent: baseHistory.historyEventsPerEvent,
      baselineWorkflowTasksPerEvent: baseHistory.workflowTasksPerEvent,
      historyEventTypesPerEvent: leadHistory.byType,
      baselineHistoryEventTypesPerEvent: baseHistory.byType,
      historySample: { lead: { ...leadHistory, byType: undefined }, baseline: { ...baseHistory, byType: undefined } },
      workerPeakRssMb: mb(s.workerRss.overallPeak),
      workerRssAtReadyMb: mb(readyRss),
      workerVmHwmMb: mb(hwmBytes(s.worker.pid) ?? 0),
      workerCpuSeconds: engine.cpu.worker,
      workerCpuSecondsByPhase: {
        startup: round(startupCpu, 2),
        baseline: baseline.cpu.worker,
        engine: engine.cpu.worker,
        latency: latency.cpu.worker,
        total: round(workerCpuTotal, 2),
      },
      workerCpuMsPerEvent: {
        engine: round((engine.cpu.worker * 1000) / engine.events, 3),
        baseline: round((baseline.cpu.worker * 1000) / baseline.events, 3),
      },
      serverCpuSecondsByPhase: {
        baseline: baseline.cpu.server,
        engine: engine.cpu.server,
        latency: latency.cpu.server,
      },
      serverCpuMsPerEvent: {
        engine: round((engine.cpu.server * 1000) / engine.events, 3),
        baseline: round((baseline.cpu.server * 1000) / baseline.events, 3),
      },
      serverPeakRssMb: mb(s.serverRss.overallPeak),
      dbBytes: db.total,
      dbFileBytes: db.db,
      dbWalBytes: db.wal,
      dbBytesPerLead: Math.round(db.total / o.leads),
      // SQLite + WAL growth per workflow during each send phase (the WAL is reused after checkpoints: a rough figure).
      dbGrowthBytesPerWorkflow: {
        baseline: Math.round((dbAfterBaseline - dbAtStart) / o.leads),
        engine: Math.round((dbAfterEngine - dbAfterBaseline) / o.leads),
      },
      dbBytesAtStart: dbAtStart,
      phases: { baseline, engine, latency: { ...latency } },
      stagesAfterLoad: stages,
      mailsAfterLoad,
      mails: { total: s.mail.total, handoffs: s.mail.handoffs },
      options: o,
      machine: { ...machine(), loadAverageAtStart: loadAtStart },
    };
    const file = writeResults(o.resultsDir, results);
    if (o.table !== false) process.stdout.write(table(results, latency) + `\nresults: ${file}\n`);
    return { results, file };
  });
}

// ---- CLI -------------------------------------------------------------------------------------

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`expected a positive number, got ${v}`);
  return n;
};

export async function main(argv = process.argv): Promise<void> {
  const program = new Command('bench')
    .description('Lead engine throughput and latency against the no-op baseline, on a dev server of its own')
    .option('--leads <n>', 'leads (and baseline workflows)', int, DEFAULTS.leads)
    .option('--events <m>', 'events per lead', int, DEFAULTS.events)
    .option('--concurrency <n>', 'signals in flight', int, DEFAULTS.concurrency)
    .option('--latency-seconds <s>', 'length of the half-load latency phase', int, DEFAULTS.latencySeconds)
    .option('--max-minutes <m>', 'abort past this wall-clock budget', int, DEFAULTS.maxMinutes)
    .option('--history-sample <n>', 'workflows whose histories are read', int, DEFAULTS.historySample)
    .option('--handoff-samples <n>', 'demo_request probes in the latency phase', int, DEFAULTS.handoffSamples)
    .option('--samplers <n>', 'concurrent event-to-state probes', int, DEFAULTS.samplers)
    .option('--seed <n>', 'workload seed', int, DEFAULTS.seed)
    .option('--results-dir <dir>', 'where the JSON goes', DEFAULTS.resultsDir)
    .option('--scale', 'scale mode: live sleeping leads in steps')
    .addOption(
      new Option('--scale-steps <list>', 'scale mode: total live leads after each step').default(
        SCALE_DEFAULTS.steps.join(','),
      ),
    )
    .option('--scale-concurrency <n>', 'scale mode: creations in flight', int, SCALE_DEFAULTS.concurrency)
    .option('--step-minutes <m>', 'scale mode: time budget per step', int, SCALE_DEFAULTS.stepMinutes)
    .option('--quiet', 'no progress lines on stderr');
  program.parse(argv);
  const a = program.opts();
  if (a.scale) {
    const steps = String(a.scaleSteps)
      .split(',')
      .map((x) => int(x.trim()));
    await runScale({
      steps,
      concurrency: a.scaleConcurrency,
      stepMinutes: a.stepMinutes,
      seed: a.seed,
      resultsDir: resolve(a.resultsDir),
      quiet: a.quiet,
    });
  } else {
    await runBench({
      leads: a.leads,
      events: a.events,
      concurrency: a.concurrency,
      latencySeconds: a.latencySeconds,
      maxMinutes: a.maxMinutes,
      historySample: a.historySample,
      handoffSamples: a.handoffSamples,
      samplers: a.samplers,
      seed: a.seed,
      resultsDir: resolve(a.resultsDir),
      quiet: a.quiet,
    });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().then(
    () => process.exit(0),
    (err) => {
      // Ctrl-C: the cleanup in flight exits with 130 once the children and temp files are gone.
      if (interrupted) return;
      process.stderr.write(
        `\n[bench] ${err instanceof BenchTimeout ? 'ABORTED: ' : 'failed: '}${err instanceof Error ? err.message : String(err)}\n`,
      );
      process.exit(err instanceof BenchTimeout ? 3 : 1);
    },
  );
}
