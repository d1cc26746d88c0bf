/**
 * A worker SIGKILLed while a webhook is in flight (issue 13 part 2: "a retry after a worker crash
 * repeats the same id, so receivers dedupe"). The receiver holds the lead's first delivery
 * unanswered, the worker is killed, another starts: the delivery comes again with the same
 * webhook-id and the same body, then every later change of the lead follows, in order, each
 * accepted once, and the ledger's delivery log says delivered.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebhookLog } from '../../src/ledger/webhooks.js';
import { testLedgerDatabase } from '../helpers/ledger.js';
import { ev, signal, startLead } from '../helpers/leads.js';
import { useStack } from '../helpers/stack.js';
import { killWorkerProcess } from '../helpers/worker-process.js';
import {
  startWebhookReceiver,
  testSecret,
  type Received,
  type WebhookReceiver,
  testEndpoint,
} from '../helpers/webhook-receiver.js';

const SECRET = testSecret('crash');
let rx: WebhookReceiver;
before(async () => {
  rx = await startWebhookReceiver(SECRET);
});
const h = useStack({});
after(async () => {
  await rx?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, get: () => T | Promise<T>, ok: (v: T) => boolean, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: never happened (last: ${JSON.stringify(v)})`);
    await sleep(100);
  }
}

test('a worker killed mid-delivery: the retry carries the same webhook-id and body, and every later change follows in order', async () => {
  const taskQueue = 'webhooks-crash';
  const db = await testLedgerDatabase('embedded');
  const log = new WebhookLog(db.pool);
  const leadId = 'wh-crash';
  // The receiver keeps the lead's first delivery unanswered (the worker waits on its reply); the rest it takes.
  const held: Omit<Received, 'status'>[] = [];
  rx.answer = (r) => {
    if (r.json?.data?.leadId !== leadId || held.length > 0) return 200;
    held.push(r);
    return new Promise<number>(() => undefined);
  };
  const env = {
    WORKER_CONFIG: JSON.stringify({
      webhooks: [testEndpoint('crm', rx.url, SECRET)],
    }),
  };
  const first = await h.workerProcess(taskQueue, db, { env });
  const handle = await startLead(h.client, taskQueue, {
    leadId,
    email: 'wh-crash@buyer.example',
    firstName: 'Noor',
    company: 'Globex',
    country: 'US',
    seniority: 'director',
    companySize: 300,
  });
  // A hand-raiser: the stage change and the hand-off go out; the first is held.
  await signal(handle, ev(leadId, 'demo_request'));
  await until(
    'the first delivery reached the receiver',
    () => held.length,
    (n) => n === 1,
  );
  // One more change while the first is in flight: it queues behind it (in order per lead).
  await signal(handle, ev(leadId, 'unsubscribe'));
  await until(
    'the consent change is in the outbox',
    async () => (await log.list({ leadId })).map((d) => d.eventType),
    (types) => types.includes('lead.consent_changed'),
  );
  await killWorkerProcess(first);
  assert.equal(rx.accepted().filter((r) => r.json?.data?.leadId === leadId).length, 0, 'nothing was accepted yet');
  await h.workerProcess(taskQueue, db, { env });

  // The killed attempt times out (the activity's 30 s start-to-close), then the new worker retries it.
  // (the log lists newest first)
  const deliveries = await until(
    'every delivery is delivered',
    () => log.list({ leadId }),
    (ds) => ds.length >= 2 && ds.every((d) => d.status === 'delivered'),
    120_000,
  );
  const accepted = rx.accepted().filter((r) => r.json?.data?.leadId === leadId);
  assert.deepEqual(
    accepted.map((r) => r.id),
    deliveries.map((d) => d.webhookId).reverse(),
    'each change accepted once, in the order of the outbox',
  );
  const [retried] = accepted;
  assert.equal(retried!.id, held[0]!.id, 'the retry after the crash carries the held webhook-id');
  assert.equal(retried!.body, held[0]!.body, 'and the same body');
  assert.ok(retried!.verified && held[0]!.verified, 'both signed for the receiver');
  assert.deepEqual(
    new Set(deliveries.map((d) => d.eventType)),
    new Set(['lead.stage_changed', 'lead.handed_off', 'lead.consent_changed']),
  );
});
