/**
 * The fault run of issue 9 (`npm run chaos`): leads and events through the HTTP API at a steady
 * write rate, reads and sales outcomes meanwhile, while the worker is SIGKILLed again and again,
 * the Temporal dev server is stopped and restarted, the SMTP server is down for a while and the
 * API is killed once. Then a bounded settle, and the invariants, each as a figure: events lost,
 * leads wedged, mails twice, handoffs missing (the run fails on any of them or a replay failure),
 * and, reported: uncertain sends, 5xx answers, recovery times.
 */
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { readFileSync } from 'node:fs';
import { sendLedgerCounts, sqlSendLedger } from '../activities/ledger.js';
import { dataConverterFromEnv } from '../src/codec.js';
import { bundleWorkflows } from '../src/worker.js';
import { WORKFLOW_TYPE } from '../workflows/defs.js';
import { rng } from '../bench/workload.js';
import { Http, newTally, type Tally } from './http.js';
import { type ChaosStack, startChaosStack } from './stack.js';
import { workflowIdFor } from '../src/domain/lead.js';

export interface ChaosOptions {
  leads: number;
  events: number;
  /** Writes per second (lead creations, events, sales outcomes). */
  rate: number;
  /** GET /v1/leads/:id per second during the load (each read of a lead whose worker lost it is a chance for the issue's wedge). */
  reads: number;
  kills: number;
  smtpDownMs: number;
  temporalRestart: boolean;
  apiKill: boolean;
  seed: number;
  /** Longest wait for the system to settle after the load. */
  settleMs: number;
  /** A workflow task still failing after this long (on two looks this far apart) is a wedged lead. */
  wedgedWindowMs: number;
  cacheSize?: number;
  log?: (s: string) => void;
}

export const CHAOS_DEFAULTS: ChaosOptions = {
  leads: 200,
  events: 2500,
  rate: 16,
  reads: 8,
  kills: 10,
  smtpDownMs: 60_000,
  temporalRestart: true,
  apiKill: true,
  seed: 1,
  settleMs: 300_000,
  wedgedWindowMs: 10_000,
};

export interface Recovery {
  fault: string;
  apiMs?: number;
  flowMs?: number;
}

export interface ChaosResult {
  options: Omit<ChaosOptions, 'log'>;
  startedAt: string;
  durationS: number;
  leads: number;
  eventsSent: number;
  eventsAccepted: number;
  eventsUnconfirmed: number;
  eventsLost: number;
  lostByLead: Record<string, { accepted: number; counted: number }>;
  overcounted: number;
  leadsWedged: number;
  wedged: { leadId: string; why: string }[];
  mailsReceived: number;
  mailsTwice: number;
  twice: string[];
  /** Handoffs received twice as designed: resent (same Message-ID) after an uncertain send, and recorded so. */
  handoffsResent: string[];
  handoffsExpected: number;
  handoffsMissing: number;
  missing: { leadId: string; owner?: string; why: string }[];
  uncertainSends: { stateNotes: number; ledgerIntents: number; workerLog: number };
  fiveXx: number;
  /** 5xx answers other than 503: during a fault the API says "try again" (503, Retry-After), never 500. */
  internalErrors: number;
  fiveXxByRoute: Record<string, number>;
  requestsByStatus: Record<string, number>;
  salesOutcomes: Record<string, number>;
  recoveries: Recovery[];
  historiesReplayed: number;
  replayFailures: number;
  replayErrors: { workflowId: string; error: string }[];
  settled: boolean;
  ok: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Event types of config/default.yaml, weighted; hand-raisers and unsubscribes are rare on purpose. */
const EVENT_MIX: [string, number][] = [
  ['page_view', 20],
  ['email_open', 14],
  ['email_click', 10],
  ['content_download', 10],
  ['webinar_registered', 5],
  ['webinar_attended', 8],
  ['pricing_page_view', 8],
  ['form_submit', 6],
  ['newsletter_signup', 3],
  ['ad_click', 4],
  ['social_engagement', 3],
  ['trial_signup', 3],
  ['careers_page_view', 2],
  ['demo_request', 2],
  ['contact_sales', 1],
  ['unsubscribe', 2],
];

function pick<T>(r: () => number, items: [T, number][]): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  for (const [v, w] of items) if ((x -= w) < 0) return v;
  return items[items.length - 1]![0];
}

function profileFor(r: () => number, i: number) {
  const kind = pick(r, [
    ['strong', 5],
    ['medium', 3],
    ['weak', 1],
    ['disqualified', 1],
  ] as [string, number][]);
  const country =
    kind === 'disqualified'
      ? 'BR'
      : pick(r, [
          ['US', 5],
          ['CA', 1],
          ['GB', 2],
          ['DE', 2],
        ] as [string, number][]);
  return {
    email: `lead${i}@corp${i % 37}.example`,
    firstName: `Lead${i}`,
    company: `Corp ${i % 37}`,
    country,
    ...(kind === 'strong'
      ? {
          seniority: 'director',
          jobTitle: 'Director of Marketing',
          companySize: 800,
          industry: 'software',
          department: 'marketing',
        }
      : {}),
    ...(kind === 'medium' ? { seniority: 'manager', companySize: 250, industry: 'saas' } : {}),
    ...(kind === 'weak' ? { jobTitle: 'Marketing intern', companySize: 5 } : {}),
  };
}

/** The rate limiter of the load: one write slot every 1000/rate ms. */
function pacer(rate: number) {
  let next = Date.now();
  return async () => {
    const now = Date.now();
    next = Math.max(next + 1000 / rate, now);
    if (next - now > 0) await sleep(next - now);
  };
}

export async function runChaos(opts: Partial<ChaosOptions> = {}): Promise<ChaosResult> {
  const o: ChaosOptions = { ...CHAOS_DEFAULTS, ...opts };
  const log = o.log ?? ((s: string) => process.stdout.write(`[chaos] ${s}\n`));
  const started = Date.now();
  const r = rng(o.seed);
  const stack = await startChaosStack({ log, cacheSize: o.cacheSize });
  try {
    await stack.startWorker();
    await stack.startApi();
    log(`stack up in ${((Date.now() - started) / 1000).toFixed(1)} s (${stack.dir})`);
    const tally = newTally();
    const http = new Http(stack.apiUrl, stack.token, tally);
    const write = pacer(o.rate);
    const ATTEMPTS = 8; // bounded: a write that still fails is counted as not accepted

    // ---- the workload -------------------------------------------------------------------------
    const prefix = `c${o.seed}`;
    const leadIds = Array.from({ length: o.leads }, (_, i) => `${prefix}-${i}`);
    const profiles = new Map(leadIds.map((id, i) => [id, profileFor(r, i)]));
    // About one lead in ten is not created by POST /v1/leads: its first event carries the email.
    const createdByEvent = new Set(leadIds.filter(() => r() < 0.1));
    const accepted = new Map<string, Set<string>>(); // leadId -> accepted eventIds
    const unconfirmed = new Map<string, Set<string>>(); // sent, never answered 202
    const created = new Set<string>();
    const sqlSeen = new Set<string>();
    const outcomes: Record<string, number> = {};
    const probe = `${prefix}-probe`;
    let eventsSent = 0;
    let evSeq = 0;

    const sendEvents = async (
      events: { leadId: string; eventId: string; type: string; email?: string; profile?: object }[],
    ) => {
      await write();
      eventsSent += events.length;
      const a = await http.request('/v1/events', {
        body: events.length === 1 ? events[0] : events,
        attempts: ATTEMPTS,
      });
      for (const ev of events) {
        if (a?.status !== 202 && accepted.get(ev.leadId)?.has(ev.eventId)) continue; // a redelivery of an accepted event
        const target = a?.status === 202 ? accepted : unconfirmed;
        if (!target.has(ev.leadId)) target.set(ev.leadId, new Set());
        target.get(ev.leadId)!.add(ev.eventId);
        if (a?.status === 202) {
          unconfirmed.get(ev.leadId)?.delete(ev.eventId);
          created.add(ev.leadId);
        }
      }
      return a;
    };
    const createLead = async (leadId: string) => {
      await write();
      const a = await http.request('/v1/leads', {
        body: { leadId, ...profiles.get(leadId), campaign: 'spring-webinar', channel: 'webinar' },
        attempts: ATTEMPTS,
      });
      if (a && (a.status === 200 || a.status === 201)) created.add(leadId);
    };

    let loadDone = false;
    const readLoop = Promise.all(
      Array.from({ length: Math.max(1, Math.round(o.reads / 4)) }, async () => {
        while (!loadDone) {
          const id = leadIds[Math.floor(Math.random() * leadIds.length)]!;
          if (created.has(id)) {
            const a = await http.request(`/v1/leads/${encodeURIComponent(id)}`, { timeoutMs: 15_000 });
            if (a?.status === 200 && a.body?.stage === 'sql') sqlSeen.add(id);
          }
          await sleep(250);
        }
      }),
    );
    const salesLoop = (async () => {
      const done = new Set<string>();
      while (!loadDone) {
        for (const id of sqlSeen) {
          if (done.has(id)) continue;
          done.add(id);
          const body =
            r() < 0.6
              ? { outcome: 'accepted', rep: 'chaos' }
              : { outcome: 'rejected', reason: 'not_ready', rep: 'chaos' };
          await write();
          const a = await http.request(`/v1/leads/${encodeURIComponent(id)}/sales-outcome`, {
            body,
            attempts: ATTEMPTS,
          });
          const k = `${body.outcome}:${a?.status ?? 'none'}`;
          outcomes[k] = (outcomes[k] ?? 0) + 1;
        }
        await sleep(2_000);
      }
    })();

    // ---- the faults ---------------------------------------------------------------------------
    const recoveries: Recovery[] = [];
    let probeSeq = 0;
    /** After a fault: time until the API answers a write, and until an event is counted. */
    const measureRecovery = async (fault: string, since: number) => {
      const rec: Recovery = { fault };
      const until = Date.now() + 120_000;
      const eventId = `${probe}-${++probeSeq}`;
      eventsSent++;
      while (Date.now() < until) {
        const a = await http.request('/v1/events', {
          body: { leadId: probe, eventId, type: 'page_view' },
          timeoutMs: 10_000,
        });
        if (a?.status === 202) {
          if (!accepted.has(probe)) accepted.set(probe, new Set());
          accepted.get(probe)!.add(eventId);
          rec.apiMs = Date.now() - since;
          break;
        }
        await sleep(250);
      }
      while (rec.apiMs !== undefined && Date.now() < until) {
        const a = await http.request(`/v1/leads/${probe}`, { timeoutMs: 10_000 });
        if (a?.status === 200 && a.body.eventsProcessed >= accepted.get(probe)!.size) {
          rec.flowMs = Date.now() - since;
          break;
        }
        await sleep(250);
      }
      recoveries.push(rec);
      log(`after ${fault}: API answers in ${rec.apiMs ?? '—'} ms, events flow in ${rec.flowMs ?? '—'} ms`);
    };

    const loadS = (o.leads + o.events) / o.rate;
    const plan: { at: number; name: string }[] = [];
    for (let k = 0; k < o.kills; k++)
      plan.push({ at: loadS * ((k + 0.5) / o.kills) * (0.9 + 0.2 * r()), name: 'worker-kill' });
    if (o.temporalRestart) plan.push({ at: loadS * 0.35, name: 'temporal-restart' });
    if (o.smtpDownMs > 0) plan.push({ at: loadS * 0.5, name: 'smtp-down' });
    if (o.apiKill) plan.push({ at: loadS * 0.7, name: 'api-kill' });
    plan.sort((a, b) => a.at - b.at);
    const loadStart = Date.now();
    let smtpBack: Promise<void> = Promise.resolve();
    const faults = (async () => {
      for (const f of plan) {
        const wait = loadStart + f.at * 1000 - Date.now();
        if (wait > 0) await sleep(wait);
        if (f.name === 'worker-kill') {
          log(`SIGKILL worker ${stack.worker?.pid}`);
          await stack.killWorker();
          await sleep(500 + r() * 2_500);
          await stack.startWorker();
          await measureRecovery('worker-kill', Date.now());
        } else if (f.name === 'temporal-restart') {
          log('stopping the Temporal dev server');
          await stack.stopTemporal();
          await sleep(3_000);
          await stack.startTemporal();
          log('Temporal dev server back');
          await measureRecovery('temporal-restart', Date.now());
        } else if (f.name === 'smtp-down') {
          log(`SMTP server down for ${o.smtpDownMs / 1000} s`);
          await stack.smtp.stop();
          smtpBack = sleep(o.smtpDownMs).then(async () => {
            await stack.smtp.start();
            log('SMTP server back');
          });
        } else if (f.name === 'api-kill') {
          log(`SIGKILL API ${stack.api?.pid}`);
          await stack.killApi();
          await sleep(1_000);
          await stack.startApi();
          await measureRecovery('api-kill', Date.now());
        }
      }
      await smtpBack;
    })();

    // ---- the load -----------------------------------------------------------------------------
    await http.request('/v1/leads', {
      body: { leadId: probe, email: 'probe@corp.example', country: 'US' },
      attempts: ATTEMPTS,
    });
    created.add(probe);
    for (const id of leadIds) if (!createdByEvent.has(id)) await createLead(id);
    const sent: { leadId: string; eventId: string; type: string }[] = [];
    for (let n = 0; n < o.events;) {
      const leadId = leadIds[Math.floor(r() * leadIds.length)]!;
      // One event in thirty is a redelivery of an earlier one (same eventId): it must count once.
      if (sent.length && r() < 1 / 30) {
        const again = sent[Math.floor(r() * sent.length)]!;
        await sendEvents([again]);
        n++;
        continue;
      }
      const batch = r() < 0.15 ? 2 + Math.floor(r() * 4) : 1;
      const events = Array.from({ length: Math.min(batch, o.events - n) }, () => {
        const first = !created.has(leadId) && createdByEvent.has(leadId);
        const ev = {
          leadId,
          eventId: `${prefix}-e${++evSeq}`,
          type: pick(r, EVENT_MIX),
          ...(first ? { email: profiles.get(leadId)!.email, profile: { country: profiles.get(leadId)!.country } } : {}),
        };
        sent.push({ leadId, eventId: ev.eventId, type: ev.type });
        return ev;
      });
      await sendEvents(events);
      n += events.length;
    }
    await faults;
    loadDone = true;
    await Promise.all([readLoop, salesLoop]);
    log(
      `load done in ${((Date.now() - loadStart) / 1000).toFixed(0)} s: ${eventsSent} events sent; settling (at most ${o.settleMs / 1000} s)`,
    );

    // ---- settle -------------------------------------------------------------------------------
    const all = [probe, ...leadIds].filter((id) => created.has(id) || accepted.has(id) || unconfirmed.has(id));
    const settleUntil = Date.now() + o.settleMs;
    let settled = false;
    let states = new Map<string, any>();
    while (Date.now() < settleUntil) {
      states = await readStates(http, all);
      const busy = await busyLeads(stack, all);
      const behind = all.filter((id) => (states.get(id)?.eventsProcessed ?? -1) < (accepted.get(id)?.size ?? 0));
      if (!busy.length && !behind.length) {
        settled = true;
        break;
      }
      log(`settling: ${behind.length} leads behind, ${busy.length} with pending work`);
      await sleep(3_000);
    }

    // ---- figures ------------------------------------------------------------------------------
    const result = await figures(stack, http, tally, o, {
      all,
      states,
      accepted,
      unconfirmed,
      outcomes,
      recoveries,
      eventsSent,
      settled,
    });
    result.startedAt = new Date(started).toISOString();
    result.durationS = Math.round((Date.now() - started) / 1000);
    return result;
  } finally {
    await stack.close();
  }
}

async function readStates(http: Http, ids: string[]): Promise<Map<string, any>> {
  const out = new Map<string, any>();
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        const a = await http.request(`/v1/leads/${encodeURIComponent(id)}`, { timeoutMs: 20_000 });
        out.set(id, a?.status === 200 ? a.body : { httpStatus: a?.status ?? 'none' });
      }
    }),
  );
  return out;
}

interface Described {
  leadId: string;
  taskAttempt: number;
  pendingActivities: number;
  reportedProblems: boolean;
  status?: number;
}

async function describeAll(stack: ChaosStack, ids: string[]): Promise<Described[]> {
  const out: Described[] = [];
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        try {
          const d = await stack.temporal.connection.workflowService.describeWorkflowExecution({
            namespace: 'default',
            execution: { workflowId: workflowIdFor(id) },
          });
          out.push({
            leadId: id,
            taskAttempt: d.pendingWorkflowTask?.attempt ?? 0,
            pendingActivities: d.pendingActivities?.length ?? 0,
            reportedProblems:
              'TemporalReportedProblems' in (d.workflowExecutionInfo?.searchAttributes?.indexedFields ?? {}),
            status: d.workflowExecutionInfo?.status ?? undefined,
          });
        } catch {
          out.push({ leadId: id, taskAttempt: 0, pendingActivities: 0, reportedProblems: false });
        }
      }
    }),
  );
  return out;
}

async function busyLeads(stack: ChaosStack, ids: string[]): Promise<string[]> {
  return (await describeAll(stack, ids))
    .filter((d) => d.taskAttempt > 0 || d.pendingActivities > 0)
    .map((d) => d.leadId);
}

async function figures(
  stack: ChaosStack,
  http: Http,
  tally: Tally,
  o: ChaosOptions,
  w: {
    all: string[];
    states: Map<string, any>;
    accepted: Map<string, Set<string>>;
    unconfirmed: Map<string, Set<string>>;
    outcomes: Record<string, number>;
    recoveries: Recovery[];
    eventsSent: number;
    settled: boolean;
  },
): Promise<ChaosResult> {
  const { all, states, accepted, unconfirmed } = w;
  // Lost: per lead, accepted distinct eventIds the lead never counted. Events whose request never
  // got its 202 may have gone in all the same; they can hide a loss, so they are reported apart.
  let eventsLost = 0;
  let overcounted = 0;
  const lostByLead: ChaosResult['lostByLead'] = {};
  for (const id of all) {
    const a = accepted.get(id)?.size ?? 0;
    const u = unconfirmed.get(id)?.size ?? 0;
    const c = states.get(id)?.eventsProcessed;
    if (typeof c !== 'number') {
      if (a) {
        eventsLost += a;
        lostByLead[id] = { accepted: a, counted: -1 };
      }
      continue;
    }
    if (c < a) {
      eventsLost += a - c;
      lostByLead[id] = { accepted: a, counted: c };
    }
    if (c > a + u) overcounted += c - a - u;
  }

  // Wedged: a workflow task that keeps failing (attempt > 1 on two looks apart), a problem
  // Temporal reports, or a GET that still answers 5xx, or says its task is failing, after the
  // window as it did at the settle (a task retried once after the last worker kill is not wedged:
  // it recovers by itself, which the second look shows).
  const first = await describeAll(stack, all);
  await new Promise((r) => setTimeout(r, o.wedgedWindowMs));
  const second = new Map((await describeAll(stack, all)).map((d) => [d.leadId, d]));
  const troubled = (st: any) =>
    (typeof st?.httpStatus === 'number' && st.httpStatus >= 500) || st?.workflowTask?.failing === true;
  const again = await readStates(
    http,
    all.filter((id) => troubled(states.get(id))),
  );
  const wedged: ChaosResult['wedged'] = [];
  for (const d of first) {
    const why: string[] = [];
    const d2 = second.get(d.leadId);
    if (d.taskAttempt > 1 && (d2?.taskAttempt ?? 0) > 1) why.push(`workflow task attempt ${d2!.taskAttempt}`);
    if (d.reportedProblems || d2?.reportedProblems) why.push('TemporalReportedProblems set');
    const st = again.get(d.leadId);
    if (typeof st?.httpStatus === 'number' && st.httpStatus >= 500) why.push(`GET answers ${st.httpStatus}`);
    if (st?.workflowTask?.failing)
      why.push(`GET reports a failing workflow task (attempt ${st.workflowTask.attempts})`);
    if (why.length) wedged.push({ leadId: d.leadId, why: why.join('; ') });
  }

  // Mail twice, by Message-ID. Nurture mail to a person is at most once: any copy is a failure.
  // Handoff mail to an owner is at least once (issue 9 item 2): an uncertain send is resent with
  // the same Message-ID, so a copy is expected, but only as a recorded resend; an unrecorded copy
  // is a failure too.
  const byId = new Map<string, { n: number; handoff: boolean }>();
  for (const m of stack.smtp.received)
    byId.set(m.messageId, { n: (byId.get(m.messageId)?.n ?? 0) + 1, handoff: m.handoff });
  const sendLedger = sqlSendLedger(stack.database.pool);
  const twice: string[] = [];
  const handoffsResent: string[] = [];
  for (const [id, { n, handoff }] of byId) {
    if (n < 2) continue;
    if (handoff && (await sendLedger.state(id)).resent) handoffsResent.push(id);
    else twice.push(id);
  }
  let handoffsExpected = 0;
  const missing: ChaosResult['missing'] = [];
  for (const id of all) {
    const st = states.get(id);
    if (!st?.transitions) continue;
    const episodes = st.transitions.filter((t: { to: string }) => t.to === 'sql').length;
    if (!episodes) continue;
    handoffsExpected += episodes;
    const handoffs = stack.smtp.received.filter((m) => m.handoff && m.leadId === id);
    const distinct = new Set(handoffs.map((m) => m.messageId)).size;
    if (distinct < episodes)
      missing.push({ leadId: id, owner: st.owner, why: `${episodes} handoff episode(s), ${distinct} handoff mail(s)` });
    // In sql the owner is the one the lead was handed to (after an acceptance it is the rep).
    else if (st.owner && st.stage === 'sql' && !handoffs.some((m) => m.to.includes(st.owner))) {
      missing.push({ leadId: id, owner: st.owner, why: `no handoff mail to the owner ${st.owner}` });
    }
  }

  // Uncertain sends: the leads' own reports (the last 20 log entries each), bare intents and
  // uncertain rows in the send ledger (a resent handoff keeps its mark), worker log lines.
  let stateNotes = 0;
  for (const st of states.values())
    stateNotes += (st?.scoreLog ?? []).filter((e: { note?: string }) => /uncertain/i.test(e.note ?? '')).length;
  const ledger = await sendLedgerCounts(stack.database.pool);
  const ledgerIntents = ledger.uncertain + ledger.intent + ledger.resent;
  let workerLog = 0;
  for (const f of stack.workerLogs) {
    try {
      workerLog += readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => /delivery uncertain|died while sending/i.test(l)).length;
    } catch {
      // no log
    }
  }

  const fiveXxByRoute: Record<string, number> = {};
  for (const e of tally.fiveXx) {
    const route = `${e.method} ${e.path.replace(/\/v1\/leads\/[^/]+/, '/v1/leads/:id')} ${e.status}${e.code ? ` ${e.code}` : ''}`;
    fiveXxByRoute[route] = (fiveXxByRoute[route] ?? 0) + 1;
  }

  const replay = await replayAll(stack);
  const eventsAccepted = [...accepted.values()].reduce((s, x) => s + x.size, 0);
  const eventsUnconfirmed = [...unconfirmed.values()].reduce((s, x) => s + x.size, 0);
  const { log: _log, ...options } = o;
  const result: ChaosResult = {
    options,
    startedAt: '',
    durationS: 0,
    leads: all.length,
    eventsSent: w.eventsSent,
    eventsAccepted,
    eventsUnconfirmed,
    eventsLost,
    lostByLead,
    overcounted,
    leadsWedged: wedged.length,
    wedged,
    mailsReceived: stack.smtp.received.length,
    mailsTwice: twice.length,
    twice,
    handoffsResent,
    handoffsExpected,
    handoffsMissing: missing.length,
    missing,
    uncertainSends: { stateNotes, ledgerIntents, workerLog },
    fiveXx: tally.fiveXx.length,
    internalErrors: tally.fiveXx.filter((e) => e.status !== 503).length,
    fiveXxByRoute,
    requestsByStatus: tally.byStatus,
    salesOutcomes: w.outcomes,
    recoveries: w.recoveries,
    historiesReplayed: replay.count,
    replayFailures: replay.errors.length,
    replayErrors: replay.errors,
    settled: w.settled,
    ok: false,
  };
  result.ok =
    eventsLost === 0 &&
    wedged.length === 0 &&
    twice.length === 0 &&
    missing.length === 0 &&
    replay.errors.length === 0 &&
    replay.count > 0 &&
    result.internalErrors === 0;
  return result;
}

let runtimeInstalled = false;

/** Replays every run of every lead (continued-as-new runs included) with the worker's bundle. */
export async function replayAll(
  stack: ChaosStack,
): Promise<{ count: number; errors: { workflowId: string; error: string }[] }> {
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR') });
    } catch {
      // already installed by the host process (a test file): keep its logger
    }
  }
  const client = stack.temporal.client;
  // Listed raw: the client here has no codec, and a run's memo may be encrypted.
  const runs: { workflowId: string; runId: string }[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: 'default',
      query: `WorkflowType = '${WORKFLOW_TYPE}'`,
      pageSize: 500,
      nextPageToken,
    });
    for (const e of page.executions ?? [])
      runs.push({ workflowId: e.execution!.workflowId!, runId: e.execution!.runId! });
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  // Payloads are encrypted (CONTRACT.md §Security): replay decodes with the run's own keys.
  const dataConverter = dataConverterFromEnv(stack.env);
  const workflowBundle = await bundleWorkflows();
  async function* histories() {
    for (const run of runs)
      yield {
        workflowId: run.workflowId,
        history: await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory(),
      };
  }
  const errors: { workflowId: string; error: string }[] = [];
  let count = 0;
  for await (const res of Worker.runReplayHistories({ workflowBundle, dataConverter }, histories())) {
    count++;
    if (res.error)
      errors.push({
        workflowId: res.workflowId,
        error: (res.error instanceof Error ? res.error.message : String(res.error)).slice(0, 300),
      });
  }
  return { count, errors };
}

export function printResult(res: ChaosResult, out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): void {
  const row = (k: string, v: unknown) => out(`  ${k.padEnd(22)} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  out(
    `chaos run, seed ${res.options.seed}: ${res.durationS} s${res.settled ? '' : ' (did NOT settle within the bound)'}`,
  );
  row('leads', res.leads);
  row('events sent', res.eventsSent);
  row('events accepted', res.eventsAccepted);
  row('events unconfirmed', res.eventsUnconfirmed);
  row('events lost', res.eventsLost);
  if (res.overcounted) row('events overcounted', res.overcounted);
  row('leads wedged', res.leadsWedged);
  for (const w of res.wedged.slice(0, 10)) out(`    ${w.leadId}: ${w.why}`);
  row('mails received', res.mailsReceived);
  row('mails twice', res.mailsTwice);
  for (const t of res.twice.slice(0, 10)) out(`    ${t}`);
  row('handoffs resent', `${res.handoffsResent.length} (at least once: same Message-ID, recorded as resent)`);
  row('handoffs expected', res.handoffsExpected);
  row('handoffs missing', res.handoffsMissing);
  for (const m of res.missing.slice(0, 10)) out(`    ${m.leadId}: ${m.why}`);
  row('uncertain sends', res.uncertainSends);
  row('5xx answers', res.fiveXx);
  row('5xx other than 503', res.internalErrors);
  for (const [k, v] of Object.entries(res.fiveXxByRoute)) out(`    ${v} × ${k}`);
  row('requests by status', res.requestsByStatus);
  row('sales outcomes', res.salesOutcomes);
  for (const rec of res.recoveries)
    out(`  recovery ${rec.fault.padEnd(17)} API ${rec.apiMs ?? '—'} ms, events flow ${rec.flowMs ?? '—'} ms`);
  row('histories replayed', res.historiesReplayed);
  row('replay failures', res.replayFailures);
  for (const e of res.replayErrors.slice(0, 10)) out(`    ${e.workflowId}: ${e.error}`);
  out(res.ok ? 'PASS: 0 lost, 0 wedged, 0 twice, 0 handoffs missing, every history replays, no 500' : 'FAIL');
}
