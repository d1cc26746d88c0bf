/**
 * Key rotation through Temporal (dev server, real workers, real SMTP capture): a lead started
 * while PAYLOAD_KEYS was `k1` keeps working after the worker and the client move to `k2,k1`: the
 * new worker replays its history (decrypting with k1), new payloads are encrypted with k2, and a
 * codec without k1 names the key it lacks. Also: payloads sent by a client without the codec
 * (a plaintext history) are read by an encrypting worker.
 */
import { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { LeadService } from '../../src/lead-service.js';
import { dataConverter, EncryptionCodec, KEY_ID_METADATA, parsePayloadKeys } from '../../src/codec.js';
import type { LeadState } from '../../src/domain/lead.js';
import { LinkSigner } from '../../src/links.js';
import { createLeadWorker } from '../../src/worker.js';
import { useStack } from '../helpers/stack.js';
import { TEST_LINK_SECRET, testConfig, workflowBundle } from '../helpers/temporal.js';

const K1 = `k1:${Buffer.alloc(32, 11).toString('base64')}`;
const K2 = `k2:${Buffer.alloc(32, 22).toString('base64')}`;
const loaded = testConfig();
const taskQueue = `rotation-${process.pid}`;

const running: { worker: Worker; done: Promise<void>; close: () => void }[] = [];
// Registered before the stack's teardown, so it runs first: the workers stop before their server goes.
after(async () => {
  for (const w of running) await stop(w).catch(() => undefined);
});
const stack = useStack({ ledger: 'embedded' });

async function startWorker(keys: string) {
  const dc = dataConverter(parsePayloadKeys(keys));
  const client = new Client({
    connection: stack.env.connection,
    namespace: stack.env.namespace ?? 'default',
    dataConverter: dc,
  });
  const { worker, close } = await createLeadWorker({
    connection: stack.env.nativeConnection,
    client,
    dataConverter: dc,
    taskQueue,
    loaded,
    smtpUrl: stack.smtp.url,
    ledger: stack.ledger,
    links: new LinkSigner(TEST_LINK_SECRET, 'http://links.test'),
    workflowBundle: await workflowBundle(),
  });
  const w = { worker, close, done: worker.run() };
  running.push(w);
  return { ...w, service: new LeadService(client, taskQueue, loaded.config, stack.ledger) };
}

async function stop(w: { worker: Worker; done: Promise<void>; close: () => void }) {
  if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
  await w.done;
  w.close();
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The key id of every encrypted payload in the lead's history as Temporal stores it, by event type. */
async function keyIds(workflowId: string): Promise<{ type: string; keyId?: string; payload: any }[]> {
  const { history } = await stack.env.connection.workflowService.getWorkflowExecutionHistory({
    namespace: stack.env.namespace ?? 'default',
    execution: { workflowId },
  });
  const out: { type: string; keyId?: string; payload: any }[] = [];
  for (const e of history?.events ?? []) {
    for (const [k, attrs] of Object.entries(e)) {
      if (!k.endsWith('EventAttributes') || !attrs) continue;
      const input = (attrs as { input?: { payloads?: any[] } }).input?.payloads?.[0];
      if (input)
        out.push({
          type: k,
          keyId: input.metadata?.[KEY_ID_METADATA]
            ? Buffer.from(input.metadata[KEY_ID_METADATA]).toString()
            : undefined,
          payload: input,
        });
    }
  }
  return out;
}

describe('payload key rotation through Temporal', () => {
  it('a lead started under k1 goes on under k2,k1; new payloads use k2; a codec without k1 names it', async () => {
    const first = await startWorker(K1);
    await first.service.upsertLead({
      leadId: 'rot-1',
      email: 'rot-1@buyer.example',
      firstName: 'Ro',
      country: 'US',
      seniority: 'vp',
      companySize: 500,
    });
    await stack.smtp.waitFor((m) => m.some((x) => x.to.includes('rot-1@buyer.example')), 60_000);
    await eventually('the state under k1', () => first.service.getState('rot-1'));
    await stop(first);

    const second = await startWorker(`${K2},${K1}`);
    await second.service.sendEvents({ leadId: 'rot-1', eventId: 'rot-1-e1', type: 'webinar_attended' });
    const state: LeadState = await eventually('the event applied under k2,k1', async () => {
      const s = await second.service.getState('rot-1');
      return s.eventsProcessed >= 1 ? s : undefined;
    });
    assert.equal(state.leadId, 'rot-1');
    const ids = await keyIds('lead-rot-1');
    const started = ids.find((x) => x.type === 'workflowExecutionStartedEventAttributes');
    const signalled = ids.filter((x) => x.type === 'workflowExecutionSignaledEventAttributes').at(-1);
    assert.equal(started?.keyId, 'k1', 'the start input was encrypted with k1');
    assert.equal(signalled?.keyId, 'k2', 'the event after the rotation is encrypted with k2');
    // The new worker rebuilt the lead from its history (a fresh cache), decrypting k1 payloads: it served the state above.
    await assert.rejects(
      new EncryptionCodec(parsePayloadKeys(K2)).decode([started!.payload]),
      /needs key id "k1", which PAYLOAD_KEYS does not hold \(known: k2\)/,
    );
  });

  it('an encrypting worker reads a lead started by a client without the codec (plaintext payloads pass through)', async () => {
    if (!running.some((x) => x.worker.getState() === 'RUNNING')) await startWorker(K1); // else the k2,k1 worker above serves it
    const plainClient = new Client({ connection: stack.env.connection, namespace: stack.env.namespace ?? 'default' });
    await new LeadService(plainClient, taskQueue, loaded.config).upsertLead({
      leadId: 'rot-plain',
      email: 'rot-plain@buyer.example',
      country: 'US',
    });
    await stack.smtp.waitFor((m) => m.some((x) => x.to.includes('rot-plain@buyer.example')), 60_000);
    const ids = await keyIds('lead-rot-plain');
    assert.equal(
      ids.find((x) => x.type === 'workflowExecutionStartedEventAttributes')?.keyId,
      undefined,
      'the start input is plaintext',
    );
  });
});
