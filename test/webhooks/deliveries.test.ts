/**
 * The webhook delivery log as ops read it: `leadctl webhooks deliveries` (a child process, as users
 * run it) and `GET /v1/webhooks/deliveries`, on a real Temporal dev server, a real worker and real
 * receivers on loopback (one answering 200, one answering 500): statuses, attempts and the last
 * error, the lead, endpoint, status and limit filters, and bad filters refused naming the field
 * (exit code 2, a 400).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import { ROOT } from '../../src/env.js';
import { WebhookLog } from '../../src/ledger/webhooks.js';
import type { DeliveryView } from '../../src/webhooks/deliveries.js';
import { address, eventually, mailableLead, uid, waitState } from '../api/fixture.js';
import { leadctl } from '../helpers/leadctl.js';
import { useStack } from '../helpers/stack.js';
import { testConfig } from '../helpers/temporal.js';
import { startWebhookReceiver, testSecret, type WebhookReceiver, testEndpoint } from '../helpers/webhook-receiver.js';

const OK_SECRET = testSecret('log-ok');
const DOWN_SECRET = testSecret('log-down');
const CONFIG = join(ROOT, 'config', 'default.yaml');
let ok: WebhookReceiver;
let down: WebhookReceiver;
before(async () => {
  ok = await startWebhookReceiver(OK_SECRET);
  down = await startWebhookReceiver(DOWN_SECRET);
  down.answer = () => 500;
});

const s = useStack({
  api: true,
  worker: {
    get loaded() {
      return testConfig({
        webhooks: [
          testEndpoint('ok', ok.url, OK_SECRET, ['lead.stage_changed', 'lead.handed_off']),
          testEndpoint('down', down.url, DOWN_SECRET, ['lead.stage_changed']),
        ],
      });
    },
  },
});

after(async () => {
  await ok?.close();
  await down?.close();
});

const cli = (...args: string[]) => leadctl(s, CONFIG, ...args);
async function run(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `leadctl ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}
const cliDeliveries = async (...args: string[]): Promise<DeliveryView[]> =>
  JSON.parse(await run('webhooks', 'deliveries', ...args, '--json')).deliveries;
async function apiDeliveries(query: string): Promise<DeliveryView[]> {
  const r = await s.call('GET', `/v1/webhooks/deliveries?${query}`);
  assert.equal(r.status, 200, r.body);
  return r.json.deliveries;
}

let leadId: string;

describe('the webhook delivery log', () => {
  before(async () => {
    leadId = uid('log');
    const r = await s.call('POST', '/v1/leads', {
      body: { ...mailableLead(leadId, address('log')), seniority: 'vp', companySize: 800, jobTitle: 'VP Marketing' },
    });
    assert.equal(r.status, 201, r.body);
    await s.service.sendEvents({ leadId, eventId: uid('e'), type: 'demo_request' });
    await waitState(s, leadId, (st) => st.stage === 'sql' && st.owner !== undefined, 'handed off');
    // mql, sql and the handoff to `ok`; `down` refuses its first change (mql) again and again.
    await eventually('ok got all three', async () => (ok.accepted().length >= 3 ? true : undefined), 30_000);
    await eventually(
      'down was tried twice and logged',
      async () => {
        const [first] = await new WebhookLog(s.ledger.pool)
          .list({ leadId, endpointId: 'down', limit: 1000 })
          .then((x) => x.slice(-1));
        return first && first.attempts >= 2 ? true : undefined;
      },
      30_000,
    );
  });

  it('leadctl lists the deliveries with their statuses, attempts and the last error', async () => {
    const all = await cliDeliveries('--lead', leadId);
    const okRows = all.filter((d) => d.endpointId === 'ok');
    assert.deepEqual(
      okRows.map((d) => [d.eventType, d.status, d.attempts, d.lastStatus]).reverse(),
      [
        ['lead.stage_changed', 'delivered', 1, 200],
        ['lead.stage_changed', 'delivered', 1, 200],
        ['lead.handed_off', 'delivered', 1, 200],
      ],
      'newest first',
    );
    for (const d of okRows) {
      assert.match(d.webhookId, /^msg_/);
      assert.equal(d.leadId, leadId);
      assert.ok(d.deliveredAt && d.createdAt <= d.deliveredAt, JSON.stringify(d));
      assert.equal((d as unknown as Record<string, unknown>).payload, undefined, 'no body (profile) in the log');
    }
    assert.deepEqual(
      okRows.map((d) => d.webhookId).sort(),
      ok
        .accepted()
        .filter((r) => r.json.data.leadId === leadId)
        .map((r) => r.id)
        .sort(),
      'the ids the receiver saw',
    );
    const downRows = all.filter((d) => d.endpointId === 'down');
    assert.equal(downRows.length, 2, JSON.stringify(downRows));
    const [second, first] = downRows;
    assert.equal(first!.status, 'pending');
    assert.ok(first!.attempts >= 2, JSON.stringify(first));
    assert.equal(first!.lastStatus, 500);
    assert.match(first!.lastError!, /^HTTP 500/);
    assert.ok(first!.attemptLog.length >= 2 && first!.attemptLog.every((a) => a.statusCode === 500));
    assert.equal(first!.deliveredAt, undefined);
    assert.deepEqual([second!.status, second!.attempts], ['pending', 0], 'waits for the one before it');

    const text = await run('webhooks', 'deliveries', '--lead', leadId);
    const lines = text.trim().split('\n');
    assert.match(lines[0]!, /^WEBHOOK ID\s+ENDPOINT\s+LEAD\s+EVENT\s+STATUS\s+ATTEMPTS\s+LAST\s+CREATED\s+DELIVERED$/);
    assert.equal(lines.at(-1), '5 deliveries');
    const row = lines.find((l) => l.startsWith(first!.webhookId) && l.includes(' down '));
    assert.ok(row, text);
    assert.match(row, /lead\.stage_changed\s+pending\s+\d+\s+HTTP 500/);
    assert.ok(
      lines.some((l) => /\bok\b.*lead\.handed_off\s+delivered\s+1\s+HTTP 200/.test(l)),
      text,
    );
  });

  it('filters by endpoint, status and limit, in leadctl and the API alike', async () => {
    const log = new WebhookLog(s.ledger.pool);
    const pendingCli = await cliDeliveries('--lead', leadId, '--status', 'pending');
    assert.deepEqual(
      pendingCli.map((d) => d.endpointId),
      ['down', 'down'],
    );
    assert.deepEqual(await apiDeliveries(`lead=${leadId}&status=pending`), pendingCli);
    const okCli = await cliDeliveries('--lead', leadId, '--endpoint', 'ok');
    assert.equal(okCli.length, 3);
    assert.deepEqual(
      (await apiDeliveries(`lead=${leadId}&endpoint=ok`)).map((d) => d.webhookId),
      okCli.map((d) => d.webhookId),
    );
    const one = await cliDeliveries('--lead', leadId, '--limit', '1');
    assert.equal(one.length, 1);
    assert.equal((await apiDeliveries(`lead=${leadId}&limit=1`)).length, 1);
    assert.equal((await cliDeliveries('--lead', uid('nobody'))).length, 0, 'another lead has none');

    // A delivery given up on (its 3 days over) is `failed`; several statuses at once.
    const [, first] = pendingCli;
    await log.markFailed('down', first!.webhookId, 'given up in the test');
    const failed = await cliDeliveries('--lead', leadId, '--status', 'failed');
    assert.deepEqual(
      failed.map((d) => [d.webhookId, d.status, d.lastError]),
      [[first!.webhookId, 'failed', 'given up in the test']],
    );
    const both = await cliDeliveries('--lead', leadId, '--status', 'failed,delivered');
    assert.deepEqual(both.map((d) => d.status).sort(), ['delivered', 'delivered', 'delivered', 'failed']);
    assert.deepEqual(await cliDeliveries('--lead', leadId, '--status', 'failed', '--status', 'delivered'), both);
    assert.deepEqual(await apiDeliveries(`lead=${leadId}&status=failed&status=delivered`), both);
    assert.deepEqual(await apiDeliveries(`lead=${leadId}&status=failed,delivered`), both);
  });

  it('the route needs a read (or admin) token, as the other ledger reads', async () => {
    const scoped = buildApi({
      service: s.service,
      links: s.links,
      tokens: ['ingest:ingest-token-0123', 'sales:sales-token-0123', 'read:read-token-0123', 'admin:admin-token-0123'],
      healthCheck: async () => true,
    });
    try {
      const call = (token?: string) =>
        scoped.inject({
          method: 'GET',
          url: `/v1/webhooks/deliveries?lead=${leadId}`,
          headers: token ? { authorization: `Bearer ${token}` } : {},
        });
      for (const token of ['read-token-0123', 'admin-token-0123']) {
        const r = await call(token);
        assert.equal(r.statusCode, 200, `${token}: ${r.body}`);
        assert.equal(r.json().deliveries.length, 5);
      }
      for (const token of ['ingest-token-0123', 'sales-token-0123']) {
        const r = await call(token);
        assert.equal(r.statusCode, 403, `${token}: ${r.body}`);
        assert.equal(r.json().error.code, 'insufficient_scope');
      }
      assert.equal((await call()).statusCode, 401);
      const doc = (await scoped.inject({ method: 'GET', url: '/openapi.json' })).json();
      assert.deepEqual(doc.paths['/v1/webhooks/deliveries'].get.security, [{ bearer: ['read'] }]);
    } finally {
      await scoped.close();
    }
  });

  it('refuses an unknown status or a bad limit naming the field: exit code 2, a 400', async () => {
    for (const [args, field] of [
      [['--status', 'sent'], 'status'],
      [['--status', 'pending,nope'], 'status'],
      [['--limit', '-1'], 'limit'],
      [['--limit', '0'], 'limit'],
      [['--limit', 'ten'], 'limit'],
      [['--lead', 'not a lead id'], 'lead'],
    ] as const) {
      const r = await cli('webhooks', 'deliveries', ...args, '--json');
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
      const err = JSON.parse(r.stderr).error;
      assert.equal(err.code, 'invalid_input');
      assert.ok(
        err.issues.some((i: { path: string }) => i.path === field),
        `${args.join(' ')} names ${field}: ${r.stderr}`,
      );
    }
    const human = await cli('webhooks', 'deliveries', '--status', 'sent');
    assert.equal(human.code, 2);
    assert.match(human.stderr, /status: "sent": must be pending, delivered, failed/);

    for (const [query, field] of [
      ['status=sent', 'status'],
      ['status=pending&status=nope', 'status'],
      ['limit=-1', 'limit'],
      ['limit=5000', 'limit'],
      ['endpoint=Not%20An%20Id', 'endpoint'],
      ['color=red', ''],
    ] as const) {
      const r = await s.call('GET', `/v1/webhooks/deliveries?${query}`);
      assert.equal(r.status, 400, `${query}: ${r.body}`);
      assert.equal(r.json.error.code, 'invalid_input');
      if (field)
        assert.ok(
          r.json.error.issues.some((i: { path: string }) => i.path === field),
          `${query} names ${field}: ${r.body}`,
        );
      else assert.match(r.json.error.message, /color/);
    }
    const anonymous = await s.call('GET', '/v1/webhooks/deliveries', { token: null });
    assert.equal(anonymous.status, 401);
  });
});
