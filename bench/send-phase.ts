/**
 * The bench's send phase (run once for the baseline workflow, once for the engine): signals sent
 * with bounded concurrency, then every workflow polled until it has processed all of its events;
 * signals accepted per second, end-to-end events per second, CPU and peak worker RSS.
 */
import type { LeadEvent } from '../src/domain/lead.js';
import { race, type Stack, withRetry } from './harness.js';
import { cpuMark, cpuSince, round } from './measure.js';
import type { BenchOptions } from './options.js';
import { mb } from './proc.js';
import { type Deadline, runPool, sleep } from './workload.js';

export interface SendPhase {
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
export async function sendPhase(
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
