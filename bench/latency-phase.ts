/**
 * The bench's latency phase: open-loop load at half the engine's end-to-end throughput, with
 * event-to-state probes (polling the state query) and event-to-handoff-mail probes (demo_request,
 * timed to the owner's mail at the SMTP capture).
 */
import type { LeadEvent, LeadState, Stage } from '../src/domain/lead.js';
import { race, type Stack, withRetry } from './harness.js';
import { cpuMark, cpuSince, round, sample } from './measure.js';
import type { BenchOptions } from './options.js';
import {
  type Deadline,
  engagementEvent,
  type LeadPlan,
  percentiles,
  type Percentiles,
  rng,
  sleep,
} from './workload.js';

export interface LatencyPhase {
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
export async function latencyPhase(
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
