/**
 * Erasure and export (issue 13 part 5; GDPR articles 17 and 15) on a real Temporal dev server that
 * keeps its state in a sqlite file with secure_delete (as `npm start` runs it), a real worker with a
 * webhook endpoint, the Fastify API and a real SMTP capture: a lead with events, mail and webhook
 * deliveries is exported, then erased over HTTP; afterwards Temporal has no run of it, no ledger
 * table has a row containing its address or id, the server's database file does not contain the
 * address, the address is still suppressed (by its salted hash) under a new lead id, reads are 410,
 * a late event creates nothing, a new LeadInput with consent creates a new lead. leadctl erase and
 * export against the same stack; bad input and scopes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import { ROOT } from '../../src/env.js';
import { workflowIdFor } from '../../src/domain/lead.js';
import { leadctl } from '../helpers/leadctl.js';
import { useStack } from '../helpers/stack.js';
import { testConfig } from '../helpers/temporal.js';
import { startWebhookReceiver, testSecret, type WebhookReceiver, testEndpoint } from '../helpers/webhook-receiver.js';
import { address, eventually, header, mailableLead, mailsFor, mailsTo, uid, waitState } from '../api/fixture.js';

const CONFIG = join(ROOT, 'config', 'default.yaml');
const DIR = mkdtempSync(join(tmpdir(), 'erasure-'));
const DB_FILE = join(DIR, 'temporal.db');
const SECRET = testSecret('erasure');
let crm: WebhookReceiver;
before(async () => {
  crm = await startWebhookReceiver(SECRET);
});

const s = useStack({
  api: true,
  serverArgs: ['--db-filename', DB_FILE, '--sqlite-pragma', 'secure_delete=true'],
  worker: {
    get loaded() {
      return testConfig({
        webhooks: [testEndpoint('crm', crm.url, SECRET)],
      });
    },
  },
});

after(async () => {
  await crm?.close();
  rmSync(DIR, { recursive: true, force: true });
});

/** The dev server's database file and its journals, as bytes. */
function serverFiles(): Buffer {
  const parts = [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-journal`].filter(existsSync).map((f) => readFileSync(f));
  return Buffer.concat(parts);
}

/** Every table of the ledger whose rows, as text, contain `needle` (case-insensitive). */
async function ledgerTablesContaining(needle: string): Promise<string[]> {
  const tables = await s.ledger.pool.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
  );
  const hits: string[] = [];
  for (const { table_name: t } of tables.rows) {
    const r = await s.ledger.pool.query(
      `SELECT count(*)::int AS n FROM "${t}" x WHERE strpos(lower(x::text), lower($1)) > 0`,
      [needle],
    );
    if (r.rows[0].n > 0) hits.push(t);
  }
  return hits;
}

async function runsOf(workflowId: string): Promise<string[]> {
  const runs: string[] = [];
  for await (const w of s.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(w.runId);
  return runs;
}

/** A hot lead (MQL at once: a webhook delivery) with a welcome mail and a few events. */
async function richLead(leadId: string, email: string) {
  const r = await s.call('POST', '/v1/leads', {
    body: { ...mailableLead(leadId, email), seniority: 'vp', companySize: 800, jobTitle: 'VP Marketing' },
  });
  assert.equal(r.status, 201, r.body);
  const ev = await s.call('POST', '/v1/events', {
    body: [
      { leadId, eventId: uid('e'), type: 'pricing_page_view' },
      { leadId, eventId: uid('e'), type: 'content_download', asset: 'whitepaper' },
    ],
  });
  assert.equal(ev.status, 202, ev.body);
  await waitState(s, leadId, (st) => st.eventsProcessed >= 2 && st.stage === 'mql', 'events applied, mql');
  await eventually(`${leadId}: welcome mail sent and recorded`, async () => {
    const mail = mailsFor(s.smtp, leadId).find((m) => header(m, 'x-nurture-track') === 'welcome');
    const rows = await s.ledger.pool.query("SELECT 1 FROM mails WHERE lead_id = $1 AND status = 'sent'", [leadId]);
    return mail && rows.rowCount ? mail : undefined;
  });
  await eventually(
    `${leadId}: webhook delivered`,
    async () => {
      const r = await s.ledger.pool.query(
        "SELECT 1 FROM webhook_deliveries WHERE lead_id = $1 AND status = 'delivered'",
        [leadId],
      );
      return (r.rowCount ?? 0) > 0;
    },
    30_000,
  );
}

describe('erasure and export', () => {
  it('exports everything, then erases the lead from Temporal, the ledger and the server file; the address stays suppressed', async () => {
    const leadId = uid('gdpr');
    const email = address('erase-me');
    await richLead(leadId, email);

    const exp = await s.call('GET', `/v1/leads/${leadId}/export`);
    assert.equal(exp.status, 200, exp.body);
    const x = exp.json;
    assert.equal(x.leadId, leadId);
    assert.equal(x.state.profile.email, email);
    assert.equal(x.ledger.lead.leadId, leadId);
    assert.ok(x.ledger.events.length >= 2, 'events');
    assert.ok(
      x.ledger.transitions.some((t: { toStage: string }) => t.toStage === 'mql'),
      'transitions',
    );
    assert.ok(
      x.ledger.mails.some((m: { recipient: string }) => m.recipient === email),
      'mails',
    );
    assert.ok(x.ledger.webhookDeliveries.length > 0, 'webhook deliveries');
    assert.ok(x.ledger.webhookAttempts.length > 0, 'webhook attempts');
    const runs = x.temporal.runs as { workflowId: string; status: string }[];
    assert.ok(
      runs.some((r) => r.workflowId === workflowIdFor(leadId) && r.status === 'RUNNING'),
      exp.body,
    );
    assert.ok(
      runs.some((r) => r.workflowId === `webhooks-crm-${leadId}`),
      'webhook delivery workflow',
    );
    assert.ok(serverFiles().includes(leadId), 'the test reads the dev server database file the lead is in');

    // Erasure needs the admin scope; read may export only.
    const api = buildApi({
      service: s.service,
      links: s.links,
      tokens: ['read:reader-token-0123456789', 'ingest:ingest-token-0123456789'],
      rateLimit: null,
      writeRateLimit: null,
      healthCheck: async () => true,
    });
    try {
      for (const token of ['reader-token-0123456789', 'ingest-token-0123456789']) {
        const r = await api.inject({
          method: 'DELETE',
          url: `/v1/leads/${leadId}`,
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(r.statusCode, 403, r.body);
      }
      const read = await api.inject({
        method: 'GET',
        url: `/v1/leads/${leadId}/export`,
        headers: { authorization: 'Bearer reader-token-0123456789' },
      });
      assert.equal(read.statusCode, 200, read.body);
    } finally {
      await api.close();
    }

    const erased = await s.call('DELETE', `/v1/leads/${leadId}`);
    assert.equal(erased.status, 200, erased.body);
    assert.equal(erased.json.erased, true);
    assert.equal(erased.json.alreadyErased, false);
    assert.ok(erased.json.runsDeleted >= 2, erased.body);
    assert.ok(erased.json.rowsDeleted > 0, erased.body);

    // Temporal: no run of the lead's workflow or its webhook delivery workflow, in visibility or by id.
    await eventually('no run left in Temporal', async () => {
      const left = [...(await runsOf(workflowIdFor(leadId))), ...(await runsOf(`webhooks-crm-${leadId}`))];
      return left.length === 0;
    });
    await assert.rejects(s.client.workflow.getHandle(workflowIdFor(leadId)).describe(), /not found/i);
    // The ledger: no table holds the address or the id anywhere.
    assert.deepEqual(await ledgerTablesContaining(email), [], 'the address in the ledger');
    assert.deepEqual(await ledgerTablesContaining(leadId), [], 'the lead id in the ledger');
    // The dev server's file: nothing of the address (payloads are encrypted, and deleted rows overwritten).
    await eventually('the address not in the server file', async () => !serverFiles().includes(email));

    // Reads: 410 naming the lead.
    for (const url of [`/v1/leads/${leadId}`, `/v1/leads/${leadId}/export`, `/v1/leads/${leadId}/timeline`]) {
      const r = await s.call('GET', url);
      assert.equal(r.status, 410, `${url}: ${r.body}`);
      assert.equal(r.json.error.code, 'erased');
      assert.ok(
        r.json.error.issues.some((i: { path: string }) => i.path === 'leadId'),
        r.body,
      );
    }
    // Erasing again: done, nothing more to do.
    const again = await s.call('DELETE', `/v1/leads/${leadId}`);
    assert.equal(again.status, 200, again.body);
    assert.equal(again.json.alreadyErased, true);
    assert.equal(again.json.runsDeleted, 0);

    // A late event, an import-like upsert without consent, an old link: nothing created.
    const late = await s.call('POST', '/v1/events', { body: { leadId, eventId: uid('late'), type: 'demo_request' } });
    assert.equal(late.status, 410, late.body);
    assert.equal(late.json.error.code, 'erased');
    const { consent: _c, ...withoutConsent } = mailableLead(leadId, email);
    const noConsent = await s.call('POST', '/v1/leads', { body: withoutConsent });
    assert.equal(noConsent.status, 410, noConsent.body);
    const click = await s.app.inject({
      method: 'GET',
      url: s.links
        .url('click', leadId, Date.now(), { m: 'x', u: 'http://links.test/welcome' })
        .replace('http://links.test', ''),
    });
    assert.ok(click.statusCode < 500, `old link: ${click.statusCode} ${click.body}`);
    const unsubscribe = await s.app.inject({
      method: 'POST',
      url: s.links.url('unsubscribe', leadId, Date.now(), { m: 'x' }).replace('http://links.test', ''),
      payload: 'List-Unsubscribe=One-Click',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(unsubscribe.statusCode, 200, `old unsubscribe link: ${unsubscribe.body}`);
    assert.deepEqual(await runsOf(workflowIdFor(leadId)), [], 'no workflow started by a late event or an old link');
    assert.deepEqual(await ledgerTablesContaining(leadId), [], 'nothing recorded by a late event');

    // The address stays suppressed, by its hash only, under a new lead id.
    const entry = await s.ledger.suppression(email.toUpperCase());
    assert.equal(entry?.reason, 'erased');
    assert.match(entry!.address, /^hmac-sha256:[0-9a-f]{64}$/);
    const mailedBefore = mailsTo(s.smtp, email).length;
    const other = uid('gdpr-new');
    const created = await s.call('POST', '/v1/leads', { body: mailableLead(other, email) });
    assert.equal(created.status, 201, created.body);
    await waitState(s, other, (st) => st.consent === 'bounced', 'suppressed send taken as a refusal');
    assert.equal(mailsTo(s.smtp, email).length, mailedBefore, 'no mail to the erased address');

    // A new LeadInput with consent under the erased id: a new lead.
    const fresh = await s.call('POST', '/v1/leads', { body: mailableLead(leadId, address('fresh')) });
    assert.equal(fresh.status, 201, fresh.body);
    assert.equal(fresh.json.created, true);
    const st = await waitState(s, leadId, (v) => v.leadId === leadId, 'the new lead');
    assert.equal(st.eventsProcessed, 0, 'nothing of the erased lead');

    // An admin may take the address off the list by the address: the hashed entry goes.
    const removed = await s.call('DELETE', `/v1/suppressions/${encodeURIComponent(email)}`);
    assert.equal(removed.status, 200, removed.body);
    assert.equal(await s.ledger.suppression(email), undefined);
  });

  it('bad input: 400 naming the field; an unknown lead: 404', async () => {
    for (const [method, url] of [
      ['DELETE', '/v1/leads/bad%20id'],
      ['GET', '/v1/leads/bad%20id/export'],
    ] as const) {
      const r = await s.call(method, url);
      assert.equal(r.status, 400, `${method} ${url}: ${r.body}`);
      assert.ok(
        r.json.error.issues.some((i: { path: string }) => i.path === 'leadId'),
        r.body,
      );
    }
    const unknown = uid('nobody');
    assert.equal((await s.call('DELETE', `/v1/leads/${unknown}`)).status, 404);
    assert.equal((await s.call('GET', `/v1/leads/${unknown}/export`)).status, 404);
  });

  it('leadctl export prints the JSON; leadctl erase erases; bad or missing ids exit 2', async () => {
    const leadId = uid('ctl');
    const email = address('ctl-erase');
    const r = await s.call('POST', '/v1/leads', { body: mailableLead(leadId, email) });
    assert.equal(r.status, 201, r.body);
    await waitState(s, leadId, (st) => st.leadId === leadId, 'created');
    await eventually('recorded in the ledger', async () => (await s.ledger.lead(leadId)) !== undefined);

    const exp = await leadctl(s, CONFIG, 'export', leadId);
    assert.equal(exp.code, 0, exp.stderr);
    const x = JSON.parse(exp.stdout);
    assert.equal(x.leadId, leadId);
    assert.equal(x.ledger.lead.leadId, leadId);
    assert.ok(x.temporal.runs.length >= 1);

    const erase = await leadctl(s, CONFIG, '--json', 'erase', leadId);
    assert.equal(erase.code, 0, erase.stderr);
    assert.equal(JSON.parse(erase.stdout).erased, true);
    assert.deepEqual(await ledgerTablesContaining(email), []);
    const again = await leadctl(s, CONFIG, 'erase', leadId);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already erased/);
    const gone = await leadctl(s, CONFIG, 'export', leadId);
    assert.equal(gone.code, 2, gone.stderr);
    assert.match(gone.stderr, /erased/);
    // A late event through leadctl: refused, nothing started.
    const late = await leadctl(s, CONFIG, 'event', leadId, 'demo_request', '--email', email);
    assert.equal(late.code, 2, late.stderr);
    assert.match(late.stderr, /erased/);
    await eventually('no run of the erased lead', async () => (await runsOf(workflowIdFor(leadId))).length === 0);
    await assert.rejects(s.client.workflow.getHandle(workflowIdFor(leadId)).describe(), /not found/i);

    for (const cmd of ['erase', 'export']) {
      const missing = await leadctl(s, CONFIG, cmd);
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(missing.stderr, /missing required argument 'leadId'/);
      assert.match(missing.stderr, /Usage: leadctl/);
      const bad = await leadctl(s, CONFIG, cmd, 'bad id');
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /leadId/);
      const unknown = await leadctl(s, CONFIG, cmd, uid('nobody'));
      assert.equal(unknown.code, 2, unknown.stderr);
      assert.match(unknown.stderr, /not found/);
    }
  });
});
