/**
 * Suppression by address (issue 13 part 4) on a real Temporal dev server, a real worker, the
 * Fastify API and a real SMTP capture: the nurture activity checks the list before every send, so
 * a suppressed address gets no mail under any lead id and in any case (the step is recorded as
 * `suppressed`); an unsubscribe or a hard bounce puts the address on the list; taking it off lets
 * mail flow again; the `/v1/suppressions` routes (admin scope, bad input a 400 naming the field, a
 * 404) and `leadctl suppress` against the stack's ledger.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import { ROOT } from '../../src/env.js';
import type { TimelineEntry } from '../../src/ledger/ledger.js';
import { type MailRef, sqlSendLedger } from '../../activities/ledger.js';
import { leadctl } from '../helpers/leadctl.js';
import { useStack } from '../helpers/stack.js';
import {
  eventually,
  header,
  mailLinks,
  mailsFor,
  type Res,
  TOKEN,
  uid,
  waitState,
  address,
  mailableLead,
  mailsTo,
} from '../api/fixture.js';

const s = useStack({ api: true });
const CONFIG = join(ROOT, 'config', 'default.yaml');

const mailTo = (email: string) => mailsTo(s.smtp, email);

async function createLead(leadId: string, email: string) {
  const r = await s.call('POST', '/v1/leads', { body: mailableLead(leadId, email) });
  assert.equal(r.status, 201, r.body);
}

/** The lead's mail entries in the ledger's timeline. */
async function mailEntries(leadId: string) {
  const r = await s.call('GET', `/v1/leads/${leadId}/timeline`);
  if (r.status !== 200) return [];
  return (r.json.entries as TimelineEntry[]).filter((e) => e.kind === 'mail');
}

/** The lead's welcome step ends as `suppressed`: consent bounced, the mail row says so, SMTP saw nothing. */
async function assertSuppressed(leadId: string, email: string, mailedBefore = 0) {
  const st = await waitState(s, leadId, (x) => x.consent === 'bounced', 'suppressed send taken as a refusal');
  assert.equal(st.stage, 'lead', 'consent is not a stage');
  const [welcome] = await eventually(`${leadId}: the welcome step recorded`, async () => {
    const m = await mailEntries(leadId);
    return m.length ? m : undefined;
  });
  assert.equal(welcome!.kind === 'mail' && welcome!.status, 'suppressed');
  assert.ok(welcome!.kind === 'mail' && welcome!.track === 'welcome' && welcome!.step === 1, JSON.stringify(welcome));
  assert.deepEqual(mailsFor(s.smtp, leadId), [], 'no mail for the lead');
  assert.equal(mailTo(email).length, mailedBefore, 'no more mail to the address');
}

function assertBad(r: Res, status: number, path?: string) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.equal(typeof r.json?.error?.code, 'string', r.body);
  if (path) {
    const paths = (r.json.error.issues ?? []).map((i: { path: string }) => i.path);
    assert.ok(paths.includes(path), `issues name ${path}: ${r.body}`);
  }
}

const oneClick = (url: string) =>
  s.app.inject({
    method: 'POST',
    url,
    payload: 'List-Unsubscribe=One-Click',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });

describe('suppression by address', () => {
  it('a suppressed address gets no nurture mail, under any lead id and in any case', async () => {
    const email = address('listed');
    const added = await s.call('POST', '/v1/suppressions', {
      body: { email: email.replace('buyer', 'BUYER').toUpperCase(), reason: 'asked by phone' },
    });
    assert.equal(added.status, 201, added.body);
    assert.equal(added.json.address, email, 'stored normalized');
    assert.equal(added.json.reason, 'asked by phone');
    const again = await s.call('POST', '/v1/suppressions', { body: { email } });
    assert.equal(again.status, 200, 'idempotent');
    assert.equal(again.json.reason, 'asked by phone', 'the first entry stays');

    const first = uid('sup-a');
    await createLead(first, email);
    await assertSuppressed(first, email);
    // A second lead, a re-import under another id with the address in another case, consent subscribed.
    const second = uid('sup-b');
    await createLead(second, email.toUpperCase());
    await assertSuppressed(second, email);
  });

  it('an unsubscribe via the signed link suppresses the address for a new lead id; removing it lets mail flow again', async () => {
    const email = address('unsub');
    const first = uid('unsub-a');
    await createLead(first, email);
    const welcome = await eventually('welcome mail', async () =>
      mailsFor(s.smtp, first).find((m) => header(m, 'x-nurture-track') === 'welcome'),
    );
    const r = await oneClick(mailLinks(welcome).listUnsubscribe!);
    assert.equal(r.statusCode, 200, r.body);
    const entry = await s.ledger.suppression(email);
    assert.deepEqual(entry && [entry.address, entry.reason, entry.leadId], [email, 'unsubscribed', first]);
    await waitState(s, first, (x) => x.consent === 'unsubscribed', 'unsubscribed');

    const second = uid('unsub-b');
    await createLead(second, email.replace('unsub', 'UNSUB'));
    await assertSuppressed(second, email, 1);

    const removed = await s.call('DELETE', `/v1/suppressions/${encodeURIComponent(email.toUpperCase())}`);
    assert.equal(removed.status, 200, removed.body);
    assert.deepEqual(removed.json, { address: email, removed: true });
    assertBad(await s.call('DELETE', `/v1/suppressions/${encodeURIComponent(email)}`), 404);

    const third = uid('unsub-c');
    await createLead(third, email);
    const mail = await eventually('mail flows again', async () => mailsFor(s.smtp, third)[0]);
    assert.equal(header(mail, 'x-nurture-track'), 'welcome');
    assert.equal((await s.state(third)).consent, 'subscribed');
    const [row] = await eventually('the sent row', async () => {
      const m = await mailEntries(third);
      return m.some((e) => e.kind === 'mail' && e.status === 'sent') ? m : undefined;
    });
    assert.equal(row!.kind === 'mail' && row!.status, 'sent');
    assert.equal(await s.ledger.isSuppressed(email), false, 'the second lead bounce did not put it back');
  });

  it('a hard bounce suppresses the address: a permanent SMTP refusal, and a hard_bounce event', async () => {
    const refused = address('refused');
    s.smtp.refuse.add(refused);
    const first = uid('bounce-a');
    await createLead(first, refused);
    await waitState(s, first, (x) => x.consent === 'bounced', 'bounced');
    const entry = await eventually('suppressed by the refusal', () => s.ledger.suppression(refused));
    assert.deepEqual([entry.reason, entry.leadId], ['hard_bounce', first]);
    const again = uid('bounce-b');
    await createLead(again, refused);
    await assertSuppressed(again, refused);
    const smtpRefusals = s.smtp.messages.filter((m) => m.to.includes(refused)).length;
    assert.equal(smtpRefusals, 0);

    const email = address('event');
    const second = uid('bounce-c');
    await createLead(second, email);
    await eventually('welcome mail', async () => mailsFor(s.smtp, second)[0]);
    const ev = { leadId: second, eventId: uid('hb'), type: 'hard_bounce' };
    assert.equal((await s.call('POST', '/v1/events', { body: ev })).status, 202);
    const byEvent = await eventually('suppressed by the event', () => s.ledger.suppression(email));
    assert.deepEqual([byEvent.reason, byEvent.leadId], ['hard_bounce', second]);
  });
});

describe('the send ledger and the list', () => {
  it('an unsubscribe event from the API suppresses the address once the lead applies it', async () => {
    const email = address('unsub-event');
    const leadId = uid('unsub-event');
    await createLead(leadId, email);
    await eventually('welcome mail', async () => mailsFor(s.smtp, leadId)[0]);
    assert.equal(await s.ledger.isSuppressed(email), false);
    const ev = { leadId, eventId: uid('unsub'), type: 'unsubscribe' };
    assert.equal((await s.call('POST', '/v1/events', { body: ev })).status, 202);
    // The ledger shows the lead unsubscribed only after its address is on the list.
    await waitState(s, leadId, (x) => x.consent === 'unsubscribed', 'unsubscribed');
    const entry = await s.ledger.suppression(email);
    assert.deepEqual(entry && [entry.reason, entry.leadId], ['unsubscribed', leadId]);
  });

  it('a suppressed row is taken over by a later send of the same Message-ID, and never over a sent one', async () => {
    const ledger = sqlSendLedger(s.database.pool);
    const mail: MailRef = { messageId: `<${uid('row')}@acme.example>`, leadId: uid('row'), kind: 'nurture' };
    const at = new Date().toISOString();
    await ledger.markSuppressed(mail, { at, reason: 'address suppressed (manual)' });
    assert.deepEqual(await ledger.state(mail.messageId), { state: 'suppressed' });
    assert.equal(await ledger.markIntent(mail), true, 'the address is off the list again: this send holds it');
    assert.equal(await ledger.markIntent(mail), false, 'a second attempt does not');
    await ledger.markSent(mail, { at });
    await ledger.markSuppressed(mail, { at, reason: 'late' });
    assert.deepEqual(await ledger.state(mail.messageId), { state: 'sent' }, 'a sent row stays sent');
  });
});

describe('the /v1/suppressions routes', () => {
  it('need an admin token: 401 without one, 403 for ingest, sales and read', async () => {
    const scoped = buildApi({
      service: s.service,
      links: s.links,
      tokens: ['ingest:ingest-token-0123', 'sales:sales-token-0123', 'read:read-token-0123', TOKEN],
      healthCheck: async () => true,
    });
    try {
      const call = (method: 'GET' | 'POST' | 'DELETE', url: string, token?: string) =>
        scoped.inject({
          method,
          url,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
          },
          ...(method === 'POST' ? { payload: JSON.stringify({ email: address('scope') }) } : {}),
        });
      const routes = [
        ['GET', '/v1/suppressions'],
        ['POST', '/v1/suppressions'],
        ['DELETE', `/v1/suppressions/${encodeURIComponent(address('scope'))}`],
      ] as const;
      for (const [method, url] of routes) {
        assert.equal((await call(method, url)).statusCode, 401, `${method} ${url} without a token`);
        for (const scope of ['ingest', 'sales', 'read']) {
          const r = await call(method, url, `${scope}-token-0123`);
          assert.equal(r.statusCode, 403, `${method} ${url} with ${scope}: ${r.body}`);
          assert.equal(r.json().error.code, 'insufficient_scope');
        }
      }
      assert.equal((await call('GET', '/v1/suppressions', TOKEN)).statusCode, 200);
    } finally {
      await scoped.close();
    }
  });

  it('refuse bad input with a 400 naming the field, and change nothing', async () => {
    const before = (await s.ledger.suppressions()).length;
    assertBad(await s.call('POST', '/v1/suppressions', { body: {} }), 400, 'email');
    assertBad(await s.call('POST', '/v1/suppressions', { body: { email: 'not-an-email' } }), 400, 'email');
    assertBad(
      await s.call('POST', '/v1/suppressions', { body: { email: `${'a'.repeat(320)}@x.example` } }),
      400,
      'email',
    );
    assertBad(await s.call('POST', '/v1/suppressions', { body: { email: 42 } }), 400, 'email');
    const ok = address('bad');
    assertBad(
      await s.call('POST', '/v1/suppressions', { body: { email: ok, reason: 'r'.repeat(201) } }),
      400,
      'reason',
    );
    assertBad(await s.call('POST', '/v1/suppressions', { body: { email: ok, reason: ' ' } }), 400, 'reason');
    assertBad(await s.call('POST', '/v1/suppressions', { body: { email: ok, extra: 1 } }), 400);
    assertBad(
      await s.call('POST', '/v1/suppressions', { payload: 'email=x', headers: { 'content-type': 'text/plain' } }),
      415,
    );
    assertBad(await s.call('DELETE', '/v1/suppressions/not-an-email'), 400, 'email');
    assertBad(await s.call('GET', '/v1/suppressions?limit=0'), 400, 'limit');
    assertBad(await s.call('GET', '/v1/suppressions?limit=many'), 400, 'limit');
    assertBad(await s.call('GET', '/v1/suppressions?pageToken=garbage'), 400, 'pageToken');
    assertBad(await s.call('GET', '/v1/suppressions?color=red'), 400);
    assert.equal((await s.ledger.suppressions()).length, before);
    assertBad(await s.call('DELETE', `/v1/suppressions/${encodeURIComponent(ok)}`), 404);
  });

  it('list in address order, in pages that together hold every entry once', async () => {
    const mine = [address('page-c'), address('page-a'), address('page-b')];
    for (const email of mine) assert.equal((await s.call('POST', '/v1/suppressions', { body: { email } })).status, 201);
    const seen: string[] = [];
    let token: string | null = null;
    for (let pages = 0; pages < 1000; pages++) {
      const r: Res = await s.call('GET', `/v1/suppressions?limit=2${token ? `&pageToken=${token}` : ''}`);
      assert.equal(r.status, 200, r.body);
      assert.ok(r.json.suppressions.length <= 2);
      seen.push(...r.json.suppressions.map((x: { address: string }) => x.address));
      token = r.json.nextPageToken;
      if (!token) break;
    }
    assert.deepEqual(seen, [...seen].sort(), 'address order');
    assert.equal(new Set(seen).size, seen.length, 'each once');
    for (const email of mine) assert.ok(seen.includes(email), email);
    assert.equal(seen.length, (await s.ledger.suppressions()).length);
  });
});

describe('leadctl suppress', () => {
  const cli = (...args: string[]) => leadctl(s, CONFIG, ...args);
  async function ok(...args: string[]) {
    const r = await cli(...args);
    assert.equal(r.code, 0, `leadctl ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  }

  it('add, list and remove against the ledger the workers check', async () => {
    const email = address('cli');
    const added = JSON.parse(await ok('suppress', 'add', email.toUpperCase(), '--reason', 'complaint', '--json'));
    assert.deepEqual([added.address, added.reason, added.added], [email, 'complaint', true]);
    assert.equal((await s.ledger.suppression(email))?.reason, 'complaint', 'in the stack ledger');
    const again = JSON.parse(await ok('suppress', 'add', email, '--json'));
    assert.deepEqual([again.reason, again.added], ['complaint', false]);
    assert.match(await ok('suppress', 'add', email), /already suppressed/);

    const list = JSON.parse(await ok('suppress', 'list', '--json'));
    assert.ok(
      list.suppressions.some(
        (x: { address: string; reason: string }) => x.address === email && x.reason === 'complaint',
      ),
    );
    assert.match(await ok('suppress', 'list'), new RegExp(`${email.replace(/[.+]/g, '\\$&')}\\s+complaint`));

    // The worker sees it: a lead with the address gets nothing.
    const leadId = uid('cli-lead');
    await createLead(leadId, email);
    await assertSuppressed(leadId, email);

    assert.deepEqual(JSON.parse(await ok('suppress', 'remove', email, '--json')), { address: email, removed: true });
    assert.equal(await s.ledger.isSuppressed(email), false);
    const gone = await cli('suppress', 'remove', email, '--json');
    assert.equal(gone.code, 2, gone.stderr);
    assert.equal(JSON.parse(gone.stderr).error.code, 'not_found');
  });

  it('refuses bad input with exit code 2 naming the field', async () => {
    for (const [args, field] of [
      [['suppress', 'add', 'not-an-email'], 'email'],
      [['suppress', 'add', address('cli-bad'), '--reason', ''], 'reason'],
      [['suppress', 'remove', 'nope'], 'email'],
      [['suppress', 'list', '--limit', '0'], 'limit'],
    ] as const) {
      const r = await cli(...args, '--json');
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
      const paths = (JSON.parse(r.stderr).error.issues ?? []).map((i: { path: string }) => i.path);
      assert.ok(paths.includes(field), `${args.join(' ')} names ${field}: ${r.stderr}`);
    }
    const human = await cli('suppress', 'add', 'not-an-email');
    assert.equal(human.code, 2);
    assert.match(human.stderr, /email: must be an email address/);
  });
});
