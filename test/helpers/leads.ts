/** Small helpers for driving leads in workflow tests. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LeadEvent, LeadStart, LeadState } from '../../src/domain/lead.js';
import { eventSignal, stateQuery } from '../../workflows/defs.js';
import type { leadWorkflow } from '../../workflows/lead.js';
import { workflowIdFor } from '../../src/domain/lead.js';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'histories');

export async function startLead(
  client: Client,
  taskQueue: string,
  input: LeadStart,
  options: Parameters<typeof leadWorkflow>[1] = {},
) {
  return client.workflow.start<typeof leadWorkflow>('leadWorkflow', {
    taskQueue,
    workflowId: workflowIdFor(input.leadId),
    args: [input, options],
  });
}

let seq = 0;
export function ev(leadId: string, type: string, extra: Partial<LeadEvent> = {}): LeadEvent {
  return { leadId, eventId: `${leadId}-${type}-${++seq}`, type, ...extra };
}

export async function signal(handle: WorkflowHandle, ...events: LeadEvent[]) {
  for (const e of events) await handle.signal(eventSignal, e);
}

/** Polls the `state` query until `predicate` holds (queries do not skip time; the worker works in real time). */
export async function waitForState(
  handle: WorkflowHandle,
  predicate: (s: LeadState) => boolean,
  timeoutMs = 20_000,
): Promise<LeadState> {
  const until = Date.now() + timeoutMs;
  let last: LeadState | undefined;
  for (;;) {
    try {
      last = await handle.query(stateQuery);
      if (predicate(last)) return last;
    } catch (err) {
      if (!`${err} ${(err as { cause?: unknown }).cause}`.includes('starting')) throw err;
    }
    if (Date.now() > until)
      throw new Error(
        `state never matched; last: ${JSON.stringify(last && { stage: last.stage, score: last.score, owner: last.owner, eventsProcessed: last.eventsProcessed, transitions: last.transitions.map((t) => `${t.from}->${t.to}: ${t.reason}`) })}`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}

const { History } = proto.temporal.api.history.v1;

/** With RECORD_HISTORIES=1, writes the run's history to test/fixtures/histories/<name>.binpb (protobuf) for the replay test. */
export async function recordHistory(client: Client, handle: WorkflowHandle, name: string, runId?: string) {
  if (!process.env.RECORD_HISTORIES) return;
  const h = runId ? client.workflow.getHandle(handle.workflowId, runId) : handle;
  const history = await h.fetchHistory();
  mkdirSync(dirname(join(FIXTURES, `${name}.binpb`)), { recursive: true });
  writeFileSync(join(FIXTURES, `${name}.binpb`), History.encode(History.fromObject(history)).finish());
}

/** The recorded histories, decoded. */
export function recordedHistories() {
  return (readdirSync(FIXTURES, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.binpb'))
    .sort()
    .map((f) => ({
      workflowId: f.replace(/\.binpb$/, ''),
      history: History.decode(readFileSync(join(FIXTURES, f))),
    }));
}
