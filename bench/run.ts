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
 */
import { openDatabase } from '../src/ledger/database.js';
import { LeadLedger } from '../src/ledger/ledger.js';
import type { Client } from '@temporalio/client';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LeadService } from '../src/lead-service.js';
import { loadConfigFile } from '../src/config-file.js';
import type { LeadEvent, LeadState, Stage } from '../src/domain/lead.js';
import { ROOT } from '../src/env.js';
import { startSmtp, type Captured, type SmtpCapture } from '../test/helpers/smtp.js';
import { baselineCountQuery, type baselineWorkflow } from '../workflows/baseline.js';
import { eventSignal } from '../workflows/defs.js';
import { Cleanups, cpuSeconds, interrupted, hwmBytes, mb, RssSampler, sqliteBytes } from './proc.js';
import { type DevServer, startDevServer, startWorkerChild, TASK_QUEUE, type WorkerChild } from './stack.js';
import {
  BenchTimeout,
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
import { workflowIdFor } from '../src/domain/lead.js';

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

// ---- the stack every mode runs on ------------------------------------------------------------

interface Stack {
  dir: string;
  server: DevServer;
  smtp: SmtpCapture;
  worker: WorkerChild;
  workerRss: RssSampler;
  serverRss: RssSampler;
  client: Client;
  service: LeadService;
  mail: MailWatch;
  log: (s: string) => void;
  /** Rejects if the worker child dies: every phase races against it. */
  workerDied: Promise<never>;
}

/** Records when mail arrives; handoff mail is indexed by lead id. `retain: false` keeps only counts. */
class MailWatch {
  total = 0;
  handoffs = 0;
  private handoffAt = new Map<string, number>();
  private waiters = new Map<string, (t: number) => void>();
  constructor(smtp: SmtpCapture, retain: boolean) {
    const messages = smtp.messages;
    messages.push = (...items: Captured[]) => {
      const t = performance.now();
      for (const m of items) this.record(m, t);
      return retain ? Array.prototype.push.apply(messages, items) : messages.length;
    };
  }
  private record(m: Captured, t: number) {
    this.total++;
    if (m.headers.get('x-lead-handoff') !== '1') return;
    this.handoffs++;
    const leadId = String(m.headers.get('x-lead-id') ?? '');
    if (!this.handoffAt.has(leadId)) this.handoffAt.set(leadId, t);
    this.waiters.get(leadId)?.(t);
    this.waiters.delete(leadId);
  }
  /** performance.now() of the first handoff mail for the lead after `since`, or undefined on timeout. */
  handoff(leadId: string, since: number, timeoutMs: number): Promise<number | undefined> {
    const seen = this.handoffAt.get(leadId);
    if (seen !== undefined && seen >= since) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(leadId);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(leadId, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  }
}

async function withStack<T>(
  o: { quiet?: boolean; retainMail: boolean; cacheSize?: number },
  fn: (s: Stack) => Promise<T>,
): Promise<T> {
  const cleanups = new Cleanups();
  const log = (s: string) => {
    if (!o.quiet) process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  };
  const dir = mkdtempSync(join(os.tmpdir(), 'lead-bench-'));
  cleanups.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  try {
    const smtp = await startSmtp();
    cleanups.add('smtp capture', () => smtp.close());
    const mail = new MailWatch(smtp, o.retainMail);
    log(`temp dir ${dir}; SMTP capture ${smtp.url}`);
    const server = await startDevServer(dir, cleanups, log);
    log('dev server up; starting the worker child (bundles the workflows)…');
    const worker = await startWorkerChild({
      dir,
      address: server.address,
      smtpUrl: smtp.url,
      cleanups,
      cacheSize: o.cacheSize,
    });
    log(
      `worker child pid ${worker.pid} ready (config ${worker.configVersion}; cache ${process.env.WORKER_MAX_CACHED_WORKFLOWS ?? o.cacheSize ?? 'default'} workflows)`,
    );
    const workerRss = new RssSampler(worker.pid);
    const serverRss = new RssSampler(server.pid);
    cleanups.add('samplers', () => {
      workerRss.stop();
      serverRss.stop();
    });
    const workerDied = worker.exited.then((code): never => {
      throw new Error(`the worker child exited (code ${code}) in the middle of the bench; see its log above`);
    });
    workerDied.catch(() => undefined);
    // Reads as the API reads: the ledger the worker writes.
    const ledgerDb = await openDatabase({ url: worker.databaseUrl, migrate: false });
    cleanups.add('ledger pool', () => ledgerDb.close());
    const service = new LeadService(
      server.client,
      TASK_QUEUE,
      loadConfigFile(join(ROOT, 'config', 'default.yaml')).config,
      new LeadLedger(ledgerDb.pool),
    );
    return await fn({
      dir,
      server,
      smtp,
      worker,
      workerRss,
      serverRss,
      client: server.client,
      service,
      mail,
      log,
      workerDied,
    });
  } finally {
    await cleanups.runAll();
  }
}

const race = <T>(s: Stack, p: Promise<T>) => Promise.race([p, s.workerDied]);

/** gRPC codes worth another try: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE. */
const RETRYABLE = new Set([4, 8, 14]);
async function withRetry<T>(fn: () => Promise<T>, counters: { retries: number }, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: number }).code ?? (err as { cause?: { code?: number } }).cause?.code;
      if (i >= attempts || code === undefined || !RETRYABLE.has(code)) throw err;
      counters.retries++;
      await sleep(200 * i);
    }
  }
}

// ---- measurements ---------------------------------------------------------------------------

interface CpuMark {
  worker: number;
  server: number;
  t: number;
}
const cpuMark = (s: Stack): CpuMark => ({
  worker: cpuSeconds(s.worker.pid) ?? 0,
  server: cpuSeconds(s.server.pid) ?? 0,
  t: performance.now(),
});
const cpuSince = (s: Stack, m: CpuMark) => {
  const now = cpuMark(s);
  return {
    worker: round(now.worker - m.worker, 2),
    server: round(now.server - m.server, 2),
    seconds: round((now.t - m.t) / 1000, 2),
  };
};
const round = (x: number, digits = 1) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

interface HistoryCost {
  workflows: number;
  eventsProcessed: number;
  historyEvents: number;
  workflowTasks: number;
  historyEventsPerEvent: number;
  workflowTasksPerEvent: number;
  /** History events of each type per processed event, largest first. */
  byType: Record<string, number>;
}

/** Reads the histories of `ids` and relates them to the events each one processed. */
async function historyCost(client: Client, ids: { workflowId: string; processed: number }[]): Promise<HistoryCost> {
  let historyEvents = 0;
  let workflowTasks = 0;
  let eventsProcessed = 0;
  const types = new Map<string, number>();
  await runPool(
    ids,
    8,
    async ({ workflowId, processed }) => {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      for (const e of history.events ?? []) {
        const type = eventTypeName(e as Record<string, unknown>);
        types.set(type, (types.get(type) ?? 0) + 1);
        if (type === 'WorkflowTaskCompleted') workflowTasks++;
        historyEvents++;
      }
      eventsProcessed += processed;
    },
    { what: 'reading histories', maxErrors: 0 },
  );
  const per = (x: number) => (eventsProcessed ? round(x / eventsProcessed, 2) : NaN);
  return {
    workflows: ids.length,
    eventsProcessed,
    historyEvents,
    workflowTasks,
    historyEventsPerEvent: per(historyEvents),
    workflowTasksPerEvent: per(workflowTasks),
    byType: Object.fromEntries([...types].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, per(v)])),
  };
}

/** `workflowTaskCompletedEventAttributes` -> `WorkflowTaskCompleted`: the one attributes field a history event has set. */
function eventTypeName(e: Record<string, unknown>): string {
  for (const [k, v] of Object.entries(e)) {
    if (v != null && k.endsWith('EventAttributes')) return k[0]!.toUpperCase() + k.slice(1, -'EventAttributes'.length);
  }
  return `type${String(e.eventType)}`;
}

function sample<T>(xs: T[], n: number, r: () => number): T[] {
  const copy = [...xs];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, n);
}

function machine() {
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

function writeResults(dir: string, results: object): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${stamp()}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

// ---- the default bench ----------------------------------------------------------------------

interface SendPhase {
  events: number;
  sendSeconds: number;
  eventsPerSecond: number;
  endToEndSeconds: number;
  endToEndEventsPerSecond: number;
  retries: number;
  cpu: { worker: number; server: number; seconds: number };
  workerPeakRssMb: number;
}

/**
 * Sends `events` with bounded concurrency (a lead's events in order), then polls every workflow
 * until it shows all of its events processed.
 */
async function sendPhase(
  s: Stack,
  what: string,
  events: LeadEvent[],
  o: BenchOptions,
  deadline: Deadline,
  send: (ev: LeadEvent) => Promise<void>,
  processed: (leadId: string) => Promise<number>,
): Promise<SendPhase> {
  const counters = { retries: 0 };
  s.workerRss.resetPeak();
  const mark = cpuMark(s);
  const t0 = performance.now();
  let lastLog = t0;
  await race(
    s,
    runPool(events, o.concurrency, (ev) => withRetry(() => send(ev), counters), {
      key: (ev) => ev.leadId,
      deadline,
      what: `the ${what} send phase`,
      maxErrors: 0,
      onDone: (n) => {
        if (performance.now() - lastLog > 5_000) {
          lastLog = performance.now();
          s.log(`${what}: ${n}/${events.length} sent, ${Math.round(n / ((lastLog - t0) / 1000))}/s`);
        }
      },
    }),
  );
  const t1 = performance.now();
  const sendSeconds = (t1 - t0) / 1000;
  s.log(
    `${what}: ${events.length} signals accepted in ${sendSeconds.toFixed(1)} s (${Math.round(events.length / sendSeconds)}/s); waiting until every workflow processed them…`,
  );

  const expected = new Map<string, number>();
  for (const ev of events) expected.set(ev.leadId, (expected.get(ev.leadId) ?? 0) + 1);
  // Leads in the order their last event was sent: the earliest are the likeliest done.
  let pending = [...expected.keys()];
  while (pending.length) {
    deadline.check(`the ${what} drain (${pending.length} workflows still behind)`);
    const behind: string[] = [];
    await race(
      s,
      runPool(
        pending,
        16,
        async (id) => {
          const n = await withRetry(() => processed(id), counters);
          if (n < expected.get(id)!) behind.push(id);
        },
        { what: `polling ${what} workflows`, maxErrors: 0 },
      ),
    );
    pending = pending.filter((id) => behind.includes(id));
    if (pending.length) await sleep(100);
  }
  const t2 = performance.now();
  const endToEndSeconds = (t2 - t0) / 1000;
  const cpu = cpuSince(s, mark);
  s.log(
    `${what}: all processed ${endToEndSeconds.toFixed(1)} s after the first send (${Math.round(events.length / endToEndSeconds)}/s end to end); worker CPU ${cpu.worker} s, server CPU ${cpu.server} s`,
  );
  return {
    events: events.length,
    sendSeconds: round(sendSeconds, 2),
    eventsPerSecond: round(events.length / sendSeconds),
    endToEndSeconds: round(endToEndSeconds, 2),
    endToEndEventsPerSecond: round(events.length / endToEndSeconds),
    retries: counters.retries,
    cpu,
    workerPeakRssMb: mb(s.workerRss.resetPeak()),
  };
}

interface LatencyPhase {
  targetRate: number;
  achievedRate: number;
  seconds: number;
  events: number;
  /** Scheduled sends skipped because `concurrency` calls were already in flight. */
  skipped: number;
  latencyMs: Percentiles;
  latencyTimeouts: number;
  handoffLatencyMs: Percentiles;
  handoffMissing: number;
  cpu: { worker: number; server: number; seconds: number };
}

/**
 * Open-loop load at `rate` events/s for `seconds`. Some sends are probes: a probe lead gets no
 * other traffic, so after its signal resolves the state query's eventsProcessed is known to reach
 * one more; it is polled every `pollMs`. Handoff probes send demo_request to leads not yet in
 * sales and wait for the owner's mail at the SMTP capture.
 */
async function latencyPhase(
  s: Stack,
  o: BenchOptions,
  deadline: Deadline,
  rate: number,
  leads: LeadPlan[],
  states: Map<string, LeadState>,
  tag: string,
): Promise<LatencyPhase> {
  const r = rng(o.seed ^ 0x1234567);
  const open = (st?: LeadState) => st !== undefined && !['customer', 'disqualified', 'dormant'].includes(st.stage);
  const live = sample(
    leads.filter((l) => open(states.get(l.leadId))),
    leads.length,
    r,
  );
  const probeLeads = live.slice(0, Math.min(20, Math.max(1, Math.floor(live.length / 2))));
  const rest = live.slice(probeLeads.length);
  const preSales: Stage[] = ['lead', 'mql', 'recycled'];
  const handoffLeads = rest.filter((l) => preSales.includes(states.get(l.leadId)!.stage)).slice(0, o.handoffSamples);
  // The background load leaves the handoff probes alone: its own demo requests would hand them
  // to sales before their probe, and the probe would wait for a second handoff that never comes.
  const probed = new Set(handoffLeads);
  const background = rest.filter((l) => !probed.has(l));
  const expected = new Map(live.map((l) => [l.leadId, states.get(l.leadId)!.eventsProcessed]));
  const freeProbes = [...probeLeads];
  const counters = { retries: 0 };

  const latencies: number[] = [];
  let latencyTimeouts = 0;
  const handoffLatencies: number[] = [];
  let handoffMissing = 0;
  const inflight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  let seq = 0;
  const eventFor = (lead: LeadPlan): LeadEvent => engagementEvent(r, lead, `${tag}-lat-${seq++}`);

  const probe = async (lead: LeadPlan) => {
    try {
      const exp = expected.get(lead.leadId)! + 1;
      expected.set(lead.leadId, exp);
      await withRetry(() => s.service.sendEvent(eventFor(lead)), counters);
      const t0 = performance.now();
      for (;;) {
        const st = await s.service.getState(lead.leadId);
        if (st.eventsProcessed >= exp) {
          latencies.push(performance.now() - t0);
          break;
        }
        if (performance.now() - t0 > 30_000) {
          latencyTimeouts++;
          break;
        }
        await sleep(o.pollMs);
      }
    } finally {
      freeProbes.push(lead);
    }
  };
  const handoff = async (lead: LeadPlan) => {
    const ev: LeadEvent = {
      leadId: lead.leadId,
      eventId: `${tag}-demo-${seq++}`,
      type: 'demo_request',
      channel: 'website',
      asset: 'demo-form',
    };
    // Timed from the send: under load the mail can arrive before the signal call has returned.
    const t0 = performance.now();
    await withRetry(() => s.service.sendEvent(ev), counters);
    const at = await s.mail.handoff(lead.leadId, t0, 60_000);
    if (at === undefined) handoffMissing++;
    else handoffLatencies.push(Math.max(0, at - t0));
  };

  const probeEvery = Math.max(1, Math.round(rate / 25));
  const handoffDue = handoffLeads.map((l, i) => ({
    lead: l,
    at: ((i + 0.5) / handoffLeads.length) * o.latencySeconds * 1000,
  }));
  let skipped = 0;
  let sent = 0;
  const mark = cpuMark(s);
  const t0 = performance.now();
  const end = t0 + o.latencySeconds * 1000;
  for (let slot = 0; ;) {
    const now = performance.now();
    if (now >= end || deadline.passed) break;
    const due = Math.floor(((now - t0) / 1000) * rate);
    while (slot < due) {
      slot++;
      if (inflight.size >= o.concurrency) {
        skipped++;
        continue;
      }
      sent++;
      const nextHandoff = handoffDue[0];
      if (nextHandoff && now - t0 >= nextHandoff.at) {
        handoffDue.shift();
        track(handoff(nextHandoff.lead));
      } else if (slot % probeEvery === 0 && freeProbes.length && probeLeads.length - freeProbes.length < o.samplers) {
        track(probe(freeProbes.shift()!));
      } else if (background.length) {
        const lead = background[Math.floor(r() * background.length)]!;
        track(withRetry(() => s.service.sendEvent(eventFor(lead)), counters).catch(() => undefined));
      } else {
        sent--;
      }
    }
    await race(s, sleep(2));
  }
  const seconds = (performance.now() - t0) / 1000;
  s.log(
    `latency phase: ${sent} events in ${seconds.toFixed(1)} s; waiting for ${inflight.size} probes and handoff mails…`,
  );
  await race(s, Promise.all([...inflight]));
  return {
    targetRate: round(rate),
    achievedRate: round(sent / seconds),
    seconds: round(seconds, 2),
    events: sent,
    skipped,
    latencyMs: percentiles(latencies),
    latencyTimeouts,
    handoffLatencyMs: percentiles(handoffLatencies),
    handoffMissing,
    cpu: cpuSince(s, mark),
  };
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

function table(r: BenchResults, lat: LatencyPhase): string {
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

// ---- scale mode ------------------------------------------------------------------------------

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
