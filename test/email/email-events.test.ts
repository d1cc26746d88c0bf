/**
 * Email provider events in (issue 13 part 3) on a real Temporal dev server, a real worker, the
 * Fastify API and a real SMTP capture: a lead gets its welcome mail, then the provider reports a hard
 * bounce or a complaint (generic JSON or Postmark's webhook): the lead's consent becomes bounced, the
 * address is suppressed, a new lead with the address gets no mail; a redelivery counts once; a soft
 * bounce changes nothing; unknown Message-IDs are counted, not refused; bad input is a 400 naming
 * the field; tokens: none 401, read 403, ingest (Bearer or Basic password) accepted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import type { TimelineEntry } from '../../src/ledger/ledger.js';
import { useStack } from '../helpers/stack.js';
import {
  eventually,
  header,
  mailsFor,
  type Res,
  settle,
  TOKEN,
  uid,
  waitState,
  address,
  mailableLead,
  mailsTo,
} from '../api/fixture.js';

const s = useStack({ api: true });

const mailTo = (email: string) => mailsTo(s.smtp, email);

/** A lead that got its welcome mail; its Message-ID as sent. */
async function mailedLead(prefix: string): Promise<{ leadId: string; email: string; messageId: string }> {
  const leadId = uid(prefix);
  const email = address(prefix);
  const r = await s.call('POST', '/v1/leads', { body: mailableLead(leadId, email) });
  assert.equal(r.status, 201, r.body);
  const welcome = await eventually('welcome mail', async () =>
    mailsFor(s.smtp, leadId).find((m) => header(m, 'x-nurture-track') === 'welcome'),
  );
  const messageId = header(welcome, 'message-id')!;
  assert.match(messageId, /^<nurture\..+@.+>$/);
  // The ledger knows the lead's address once its state is recorded.
  await eventually('the lead in the ledger', async () => (await s.ledger.lead(leadId)) !== undefined);
  return { leadId, email, messageId };
}

/** A new lead with the address gets no nurture mail: its welcome step is recorded as suppressed. */
async function assertNoMailFor(email: string) {
  const before = mailTo(email).length;
  const leadId = uid('again');
  const r = await s.call('POST', '/v1/leads', { body: mailableLead(leadId, email.toUpperCase()) });
  assert.equal(r.status, 201, r.body);
  await waitState(s, leadId, (x) => x.consent === 'bounced', 'suppressed send taken as a refusal');
  const t = await eventually('the welcome step recorded', async () => {
    const tl = await s.call('GET', `/v1/leads/${leadId}/timeline`);
    const m = ((tl.json?.entries ?? []) as TimelineEntry[]).filter((e) => e.kind === 'mail');
    return m.length ? m : undefined;
  });
  assert.equal(t[0]!.kind === 'mail' && t[0]!.status, 'suppressed');
  assert.deepEqual(mailsFor(s.smtp, leadId), []);
  assert.equal(mailTo(email).length, before, 'no more mail to the address');
}

function assertBad(r: Res, status: number, path?: string) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.equal(typeof r.json?.error?.code, 'string', r.body);
  if (path) {
    const paths = (r.json.error.issues ?? []).map((i: { path: string }) => i.path);
    assert.ok(paths.includes(path), `issues name ${path}: ${r.body}`);
  }
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const postmark = (body: unknown, token = TOKEN) =>
  s.call('POST', '/v1/email-events/postmark', {
    body,
    token: null,
    headers: { authorization: basic('postmark', token) },
  });

/** Postmark's documented Bounce webhook example (postmarkapp.com/developer/webhooks/bounce-webhook). */
const postmarkBounce = (email: string, messageId: string, id: number, type = 'HardBounce') => ({
  RecordType: 'Bounce',
  MessageStream: 'outbound',
  ID: id,
  Type: type,
  TypeCode: type === 'HardBounce' ? 1 : 4096,
  Name: type === 'HardBounce' ? 'Hard bounce' : 'Soft bounce',
  Tag: 'Test',
  MessageID: messageId,
  Metadata: { a_key: 'a_value', b_key: 'b_value' },
  ServerID: 23,
  Description: 'The server was unable to deliver your message (ex: unknown user, mailbox not found).',
  Details: 'Test bounce details',
  Email: email,
  From: 'sender@example.com',
  BouncedAt: '2019-11-05T16:33:54.9070259Z',
  DumpAvailable: true,
  Inactive: true,
  CanActivate: true,
  Subject: 'Test subject',
  Content: '<Full dump of bounce>',
});
/** Postmark's documented SpamComplaint webhook example. */
const postmarkComplaint = (email: string, messageId: string, id: number) => ({
  RecordType: 'SpamComplaint',
  MessageStream: 'outbound',
  ID: id,
  Type: 'SpamComplaint',
  TypeCode: 512,
  Name: 'Spam complaint',
  Tag: 'Test',
  MessageID: messageId,
  Metadata: { a_key: 'a_value', b_key: 'b_value' },
  ServerID: 23,
  Description: '',
  Details: 'Test spam complaint details',
  Email: email,
  From: 'sender@example.com',
  BouncedAt: '2019-11-05T16:33:54.9070259Z',
  DumpAvailable: true,
  Inactive: true,
  CanActivate: false,
  Subject: 'Test subject',
  Content: '<Abuse report dump>',
});

describe('POST /v1/email-events (generic)', () => {
  it('a hard bounce by Message-ID bounces the lead, suppresses the address; a redelivery counts once', async () => {
    const { leadId, email, messageId } = await mailedLead('hb');
    const ev = { type: 'bounce', bounceType: 'hard', messageId: messageId.slice(1, -1), id: uid('prov') };
    const r = await s.call('POST', '/v1/email-events', { body: ev });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json, { received: 1, applied: 1, unknown: 0 });
    await waitState(s, leadId, (x) => x.consent === 'bounced', 'bounced');
    const entry = await s.ledger.suppression(email);
    assert.deepEqual(entry && [entry.reason, entry.leadId], ['hard_bounce', leadId]);

    const again = await s.call('POST', '/v1/email-events', { body: [ev] });
    assert.deepEqual(again.json, { received: 1, applied: 1, unknown: 0 });
    await settle(s, leadId);
    const events = (await s.call('GET', `/v1/leads/${leadId}/timeline`)).json.entries as TimelineEntry[];
    assert.equal(events.filter((e) => e.kind === 'event' && e.type === 'hard_bounce').length, 1, 'counted once');
    await assertNoMailFor(email);
  });

  it('a complaint by address suppresses it (reason complaint) and stops the lead', async () => {
    const { leadId, email } = await mailedLead('cmp');
    const r = await s.call('POST', '/v1/email-events', { body: { type: 'complaint', email: email.toUpperCase() } });
    assert.deepEqual(r.json, { received: 1, applied: 1, unknown: 0 });
    await waitState(s, leadId, (x) => x.consent === 'bounced', 'stopped');
    const entry = await s.ledger.suppression(email);
    assert.deepEqual(entry && [entry.reason, entry.leadId], ['complaint', leadId]);
  });

  it('a soft bounce and a delivery change nothing', async () => {
    const { leadId, email, messageId } = await mailedLead('soft');
    const r = await s.call('POST', '/v1/email-events', {
      body: [
        { type: 'bounce', bounceType: 'soft', messageId, occurredAt: new Date().toISOString() },
        { type: 'delivered', email },
      ],
    });
    assert.deepEqual(r.json, { received: 2, applied: 0, unknown: 0 });
    const st = await settle(s, leadId);
    assert.equal(st.consent, 'subscribed');
    assert.equal(await s.ledger.isSuppressed(email), false);
  });

  it('an unknown Message-ID or address is a 200 counted as unknown', async () => {
    const r = await s.call('POST', '/v1/email-events', {
      body: [
        { type: 'bounce', messageId: `<nurture.${uid('nobody')}@acme.example>` },
        { type: 'complaint', email: address('stranger') },
      ],
    });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json, { received: 2, applied: 0, unknown: 2 });
    assert.equal(await s.ledger.isSuppressed(address('stranger')), false);
  });

  it('bad input is a 400 naming the field, and nothing of the request is applied', async () => {
    const { leadId, email } = await mailedLead('bad');
    const call = (body: unknown) => s.call('POST', '/v1/email-events', { body });
    assertBad(await call({ type: 'opened', email }), 400, 'type');
    assertBad(await call({ type: 'bounce', bounceType: 'permanent', email }), 400, 'bounceType');
    assertBad(await call({ type: 'bounce' }), 400, 'email');
    assertBad(await call({ type: 'bounce', email: 'not-an-address' }), 400, 'email');
    assertBad(await call({ type: 'bounce', email, occurredAt: 'yesterday' }), 400, 'occurredAt');
    assertBad(
      await call([
        { type: 'complaint', email },
        { type: 'nope', email },
      ]),
      400,
      '1.type',
    );
    assertBad(await call('just text'), 400);
    const many = Array.from({ length: 501 }, () => ({ type: 'delivered', email }));
    assertBad(await call(many), 413);
    const st = await settle(s, leadId);
    assert.equal(st.consent, 'subscribed', 'the good complaint of the bad array was not applied');
    assert.equal(await s.ledger.isSuppressed(email), false);
  });
});

describe('POST /v1/email-events/postmark', () => {
  it("Postmark's HardBounce webhook bounces the lead and suppresses the address; a redelivery counts once", async () => {
    const { leadId, email } = await mailedLead('pm-hb');
    const id = Math.floor(Math.random() * 1e9);
    // Postmark's MessageID is its own id, not the engine's header: the lead is found by Email.
    const body = postmarkBounce(email.toUpperCase(), '883953f4-6105-42a2-a16a-77a8eac79483', id);
    const r = await postmark(body);
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json, { received: 1, applied: 1, unknown: 0 });
    await waitState(s, leadId, (x) => x.consent === 'bounced', 'bounced');
    assert.equal((await s.ledger.suppression(email))?.reason, 'hard_bounce');
    assert.equal((await postmark(body)).status, 200);
    await settle(s, leadId);
    const events = (await s.call('GET', `/v1/leads/${leadId}/timeline`)).json.entries as TimelineEntry[];
    assert.equal(events.filter((e) => e.kind === 'event' && e.type === 'hard_bounce').length, 1, 'counted once');
    await assertNoMailFor(email);
  });

  it("Postmark's SpamComplaint webhook suppresses the address; a SoftBounce changes nothing", async () => {
    const soft = await mailedLead('pm-soft');
    const r1 = await postmark(postmarkBounce(soft.email, soft.messageId, 1, 'SoftBounce'));
    assert.deepEqual(r1.json, { received: 1, applied: 0, unknown: 0 });
    assert.equal((await settle(s, soft.leadId)).consent, 'subscribed');
    assert.equal(await s.ledger.isSuppressed(soft.email), false);

    const { leadId, email, messageId } = await mailedLead('pm-spam');
    // Bearer works too.
    const r = await s.call('POST', '/v1/email-events/postmark', { body: postmarkComplaint(email, messageId, 2) });
    assert.deepEqual(r.json, { received: 1, applied: 1, unknown: 0 });
    await waitState(s, leadId, (x) => x.consent === 'bounced', 'stopped');
    assert.equal((await s.ledger.suppression(email))?.reason, 'complaint');
  });

  it('an unknown MessageID is counted; a record that is not Postmark is a 400 naming the field', async () => {
    const r = await postmark(postmarkBounce(address('pm-none'), 'b7bc2f4a-e38e-4336-af7d-e6c392c2f817', 3));
    assert.deepEqual(r.json, { received: 1, applied: 0, unknown: 1 });
    assertBad(await postmark({ RecordType: 'Opened', MessageID: 'x' }), 400, 'RecordType');
    const open = await postmark({ RecordType: 'Open', MessageID: 'x', Recipient: address('pm-open') });
    assert.deepEqual(open.json, { received: 1, applied: 0, unknown: 0 }, 'other Postmark records are not retried');
    assertBad(await postmark({ RecordType: 'Bounce', Type: 'HardBounce' }), 400, 'Email');
    assertBad(await postmark({ ...postmarkBounce(address('pm'), 'x', 4), BouncedAt: 'soon' }), 400, 'BouncedAt');
  });
});

describe('email event tokens', () => {
  it('no token is a 401, a read token a 403, an ingest token (Bearer or Basic password) accepted', async () => {
    const scoped = buildApi({
      service: s.service,
      links: s.links,
      tokens: ['ingest:ingest-token-0123', 'read:read-token-0123', TOKEN],
      healthCheck: async () => true,
    });
    try {
      const body = JSON.stringify({ type: 'delivered', email: address('tok') });
      const call = (url: string, authorization?: string) =>
        scoped.inject({
          method: 'POST',
          url,
          headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
          payload: url.endsWith('postmark') ? JSON.stringify(postmarkBounce(address('tok'), 'x', 5)) : body,
        });
      for (const url of ['/v1/email-events', '/v1/email-events/postmark']) {
        assert.equal((await call(url)).statusCode, 401, `${url} without a token`);
        assert.equal((await call(url, basic('postmark', 'wrong-token'))).statusCode, 401);
        const read = await call(url, 'Bearer read-token-0123');
        assert.equal(read.statusCode, 403, read.body);
        assert.equal(read.json().error.code, 'insufficient_scope');
        assert.equal((await call(url, basic('postmark', 'read-token-0123'))).statusCode, 403);
        assert.equal((await call(url, 'Bearer ingest-token-0123')).statusCode, 200);
        assert.equal((await call(url, basic('postmark', 'ingest-token-0123'))).statusCode, 200);
        assert.equal((await call(url, basic('', TOKEN))).statusCode, 200, 'admin as the Basic password');
      }
    } finally {
      await scoped.close();
    }
  });
});
