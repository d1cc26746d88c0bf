/**
 * Segment-compatible ingest (src/api/routes/segment.ts) on a real Temporal dev server, worker, ledger
 * and the API listening on loopback: driven by Segment's own Node client (@segment/analytics-node,
 * pointed at the engine with `host`) and by RudderStack-shaped batches, then the lead's state and
 * ledger timeline are read back. Bad input at every entry point: a 4xx naming the field for a body
 * or a single call, per-message problems in a batch's 200, never a 5xx.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { Analytics } from '@segment/analytics-node';
import { buildApi } from '../../src/api/server.js';
import { testConfig } from '../helpers/temporal.js';
import { useStack } from '../helpers/stack.js';
import { eventually, TOKEN, uid, waitState } from './fixture.js';

const WRITE_KEY = 'seg-write-key-0123456789';
process.env.SEGMENT_WRITE_KEYS = `other-key, ${WRITE_KEY}`;

const config = testConfig({
  segment: {
    events: { 'Whitepaper Downloaded': 'content_download', 'Demo Requested': 'demo_request' },
    traits: { role: 'seniority' },
  },
});

let base = '';
const s = useStack({ worker: { loaded: config }, api: true }, async (stack) => {
  await stack.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(stack.app.server.address() as AddressInfo).port}`;
});

const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
async function post(path: string, body: unknown, o: { key?: string | null; raw?: string; type?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': o.type ?? 'application/json' };
  if (o.key !== null) headers.authorization = basic(o.key ?? WRITE_KEY);
  const r = await fetch(`${base}${path}`, { method: 'POST', headers, body: o.raw ?? JSON.stringify(body) });
  const text = await r.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, body: text, headers: r.headers };
}

/** The ledger's events of a lead, once it has `n` of them. */
const ledgerEvents = (leadId: string, n: number) =>
  eventually(`${leadId}: ${n} events in the ledger`, async () => {
    const t = await s.service.timeline(leadId).catch(() => undefined);
    const events = (t?.entries ?? []).filter((e) => e.kind === 'event');
    return events.length >= n ? events : undefined;
  });

const analytics = (path?: string) => {
  const a = new Analytics({ writeKey: WRITE_KEY, host: base, ...(path ? { path } : {}), flushAt: 1, maxRetries: 0 });
  const errors: unknown[] = [];
  a.on('error', (e) => errors.push(e));
  return { a, errors };
};

describe('Segment ingest with @segment/analytics-node', () => {
  it('identify, track and group create the lead, map traits, UTM and event names, and count an event once', async () => {
    const userId = uid('seg-user');
    const { a, errors } = analytics('/v1/segment/v1/batch');
    const timestamp = new Date(Date.now() - 3_600_000);
    a.identify({
      userId,
      traits: {
        email: `${userId}@example.com`,
        firstName: 'Grace',
        last_name: 'Hopper',
        title: 'VP Engineering',
        company: { name: 'Navy' },
        address: { country: 'de', city: 'Berlin' },
        role: 'vp',
        favoriteColor: 'blue',
        preferences: { deep: true },
      },
      context: { campaign: { name: 'spring-webinar', source: 'google', medium: 'cpc' } },
    });
    // Each flush is a request of its own, and they may overlap: the lead exists before the group call.
    await a.closeAndFlush();
    await waitState(s, userId, () => true, 'identified');
    const { a: b, errors: later } = analytics('/v1/segment/v1/batch');
    const messageId = uid('msg');
    b.track({ userId, event: 'Whitepaper Downloaded', messageId, timestamp, properties: { asset: 'guide.pdf' } });
    b.group({ userId, groupId: 'g1', traits: { name: 'Navy Ltd', employees: 900, industry: 'Defense' } });
    await b.closeAndFlush();
    assert.deepEqual([...errors, ...later], []);

    const st = await waitState(
      s,
      userId,
      (x) => x.eventsProcessed >= 1 && x.profile.companySize === 900,
      'identified, tracked, grouped',
    );
    assert.equal(st.profile.email, `${userId}@example.com`);
    assert.equal(st.profile.firstName, 'Grace');
    assert.equal(st.profile.lastName, 'Hopper');
    assert.equal(st.profile.jobTitle, 'VP Engineering');
    assert.equal(st.profile.company, 'Navy Ltd', 'group traits after identify');
    assert.equal(st.profile.industry, 'Defense');
    assert.equal(st.profile.country, 'DE');
    assert.equal(st.profile.seniority, 'vp', 'the config trait map');
    assert.equal(st.profile.favoriteColor, 'blue', 'an unknown scalar trait is kept');
    assert.equal(st.profile.preferences, undefined, 'an object trait is dropped');
    assert.equal(st.campaign, 'spring-webinar');
    const [ev] = await ledgerEvents(userId, 1);
    assert.ok(ev?.kind === 'event');
    assert.equal(ev.eventId, messageId);
    assert.equal(ev.type, 'content_download');
    assert.equal(Date.parse(ev.occurredAt), timestamp.getTime());

    // Redelivery of the same messageId (a sender's retry): counted once.
    const again = {
      batch: [{ type: 'track', userId, event: 'Whitepaper Downloaded', messageId, timestamp: timestamp.toISOString() }],
    };
    const r = await post('/v1/segment/v1/batch', again);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.applied, 1);
    const probe = uid('probe');
    await post('/v1/segment/track', { userId, event: 'Whitepaper Downloaded', messageId: probe });
    const after = await waitState(s, userId, (x) => x.scoreLog.some((l) => l.eventId === probe), 'probe handled');
    assert.equal(after.scoreLog.filter((l) => l.eventId === messageId).length, 1, 'the redelivered event counted once');
    assert.equal(after.eventsProcessed, 2);
  });

  it('works on the short path /v1/segment/batch too', async () => {
    const userId = uid('seg-default');
    // analytics-node joins `path` to `host` with new URL(path, host): a path in `host` is dropped.
    const a = new Analytics({ writeKey: WRITE_KEY, host: base, path: '/v1/segment/batch', flushAt: 1, maxRetries: 0 });
    a.identify({ userId, traits: { email: `${userId}@example.com`, employees: '250' } });
    await a.closeAndFlush();
    const st = await waitState(s, userId, () => true, 'created');
    assert.equal(st.profile.companySize, 250);
  });

  it('refuses a bad or missing write key with 401 and WWW-Authenticate, and accepts an API token', async () => {
    const userId = uid('seg-nokey');
    const body = { userId, traits: { email: `${userId}@example.com` } };
    for (const key of ['wrong-key', '', null]) {
      const r = await post('/v1/segment/identify', body, { key });
      assert.equal(r.status, 401, r.body);
      assert.equal(r.json.error.code, 'unauthorized');
      assert.match(String(r.headers.get('www-authenticate')), /^Basic/);
    }
    // Segment's client with a wrong key: the batch fails (a 401 it does not retry), nothing is created.
    const errors: { code?: string }[] = [];
    const bad = new Analytics({
      writeKey: 'not-the-key',
      host: base,
      path: '/v1/segment/v1/batch',
      flushAt: 1,
      maxRetries: 0,
    });
    bad.on('error', (e) => errors.push(e as { code?: string }));
    bad.identify(body);
    await bad.closeAndFlush();
    assert.deepEqual(
      errors.map((e) => e.code),
      ['delivery_failure'],
    );
    assert.equal((await s.call('GET', `/v1/leads/${userId}`)).status, 404, 'nothing created');
    // An API token (admin or ingest) works as the write key, Basic or Bearer.
    assert.equal((await post('/v1/segment/identify', body, { key: TOKEN })).status, 200);
    await waitState(s, userId, () => true, 'created with the token');
    const bearer = await fetch(`${base}/v1/segment/track`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ userId, event: 'Nope' }),
    });
    assert.equal(bearer.status, 200);
  });

  it('takes an ingest token as the write key, not a read or sales one (token scopes), rate-limited per key', async () => {
    const app = buildApi({
      service: s.service,
      tokens: ['read:read-token', 'ingest:ingest-token', 'sales:sales-token'],
      links: s.links,
      healthCheck: async () => true,
      rateLimit: { max: 1, windowMs: 60_000 },
    });
    try {
      const userId = uid('seg-scope');
      const call = (key: string) =>
        app.inject({
          method: 'POST',
          url: '/v1/segment/v1/identify',
          headers: { authorization: basic(key), 'content-type': 'application/json' },
          payload: JSON.stringify({ userId, traits: { email: `${userId}@example.com` } }),
        });
      for (const key of ['read-token', 'sales-token']) assert.equal((await call(key)).statusCode, 401, key);
      const ok = await call('ingest-token');
      assert.equal(ok.statusCode, 200, ok.body);
      assert.equal(ok.json().applied, 1);
      await waitState(s, userId, () => true, 'created with the ingest token');
      // The request rate limit, per key: the ingest token has used its one.
      const limited = await call('ingest-token');
      assert.equal(limited.statusCode, 429, limited.body);
      assert.ok(limited.headers['retry-after'], 'Retry-After');
      assert.equal((await call('read-token')).statusCode, 401, 'a bad key is refused before it is counted');
    } finally {
      await app.close();
    }
  });
});

describe('Segment ingest, RudderStack-shaped and bad input', () => {
  it('takes a RudderStack batch: an anonymous track creates a lead, a later identify merges it into the user', async () => {
    const anonymousId = uid('anon');
    const userId = uid('rs-user');
    // The sender's clock runs two hours fast: originalTimestamp and the batch's sentAt are both on it.
    const skew = 2 * 3_600_000;
    const sentAt = new Date(Date.now() + skew).toISOString();
    const happened = Date.now() - 60_000;
    const track = {
      type: 'track',
      event: 'Whitepaper Downloaded',
      anonymousId,
      messageId: uid('rs-msg'),
      channel: 'web',
      rudderId: 'b1b2c3',
      originalTimestamp: new Date(happened + skew).toISOString(),
      properties: { asset: 'pricing.pdf' },
      context: {
        traits: { industry: 'Retail' },
        campaign: { name: 'retail-q3', source: 'newsletter', medium: 'email' },
        library: { name: 'rudder-analytics-node', version: '2.0.0' },
      },
      integrations: { All: true },
    };
    const r1 = await post('/v1/segment/v1/batch', { batch: [track], sentAt });
    assert.equal(r1.status, 200, r1.body);
    assert.deepEqual([r1.json.applied, r1.json.problems], [1, []]);
    const anon = await waitState(s, anonymousId, (x) => x.eventsProcessed === 1, 'anonymous lead');
    assert.equal(anon.profile.industry, 'Retail');
    assert.equal(anon.campaign, 'retail-q3');
    const [anonEvent] = await ledgerEvents(anonymousId, 1);
    assert.ok(anonEvent?.kind === 'event');
    const off = Math.abs(Date.parse(anonEvent.occurredAt) - happened);
    assert.ok(off < 5000, `occurredAt corrected for the sender's clock: ${anonEvent.occurredAt} is ${off} ms off`);

    const identify = {
      type: 'identify',
      userId,
      anonymousId,
      messageId: uid('rs-id'),
      context: { traits: { email: `${userId}@example.com`, firstName: 'Lin', company: 'Shop' } },
      sentAt,
    };
    const r2 = await post('/v1/segment/v1/batch', { batch: [identify], sentAt });
    assert.equal(r2.status, 200, r2.body);
    const user = await waitState(s, userId, (x) => x.eventsProcessed === 1, 'merged');
    assert.equal(user.profile.firstName, 'Lin');
    assert.equal(user.profile.company, 'Shop');
    const [ev] = await ledgerEvents(userId, 1);
    assert.ok(ev?.kind === 'event');
    assert.equal(ev.eventId, track.messageId);
    // The same identify again: the merged event still counts once.
    assert.equal((await post('/v1/segment/v1/batch', { batch: [identify], sentAt })).status, 200);
    await post('/v1/segment/track', { userId, event: 'Whitepaper Downloaded', messageId: 'probe-' + userId });
    const after = await waitState(s, userId, (x) => x.eventsProcessed >= 2, 'probe');
    assert.equal(after.eventsProcessed, 2);
  });

  it('counts and ignores unknown event names and page calls with a 200', async () => {
    const userId = uid('seg-unknown');
    const single = await post('/v1/segment/track', { userId, event: 'Some Other Thing', messageId: uid('m') });
    assert.equal(single.status, 200, single.body);
    assert.equal(single.json.ignored, 1);
    assert.equal(single.json.applied, 0);
    const r = await post('/v1/segment/batch', {
      batch: [
        { type: 'track', userId, event: 'Nope' },
        { type: 'page', userId, name: 'Home' },
      ],
    });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual([r.json.ignored, r.json.applied, r.json.problems], [2, 0, []]);
    assert.equal((await s.call('GET', `/v1/leads/${userId}`)).status, 404, 'nothing created');
  });

  it('reports bad messages of a batch per item with a 200 and applies the rest', async () => {
    const good = uid('seg-good');
    const noEmail = uid('seg-noemail');
    const r = await post('/v1/segment/v1/batch', {
      batch: [
        { type: 'track', event: 'Whitepaper Downloaded', messageId: uid('m') },
        { type: 'track', userId: good, event: 'Whitepaper Downloaded', timestamp: '2999-01-01T00:00:00Z' },
        { type: 'identify', userId: good, traits: { email: 'not an address' } },
        { type: 'identify', userId: 'bad id with spaces', traits: { email: 'x@example.com' } },
        { type: 'identify', userId: good, traits: { email: `${good}@example.com`, employees: -5 } },
        { type: 'launch', userId: good },
        'not an object',
        { type: 'identify', userId: good, traits: { email: `${good}@example.com` } },
        { type: 'identify', userId: noEmail, traits: { firstName: 'Nobody' } },
      ],
    });
    assert.equal(r.status, 200, r.body);
    const paths = r.json.problems.map((p: { path: string }) => p.path);
    for (const path of [
      'batch.0.userId',
      'batch.1.timestamp',
      'batch.2.traits.email',
      'batch.3.userId',
      'batch.4.traits.employees',
      'batch.5.type',
      'batch.6.type',
    ])
      assert.ok(paths.includes(path), `${path} in ${r.body}`);
    assert.equal(r.json.applied, 1);
    assert.equal(r.json.skipped, 1, 'identify without email of an unknown lead');
    const st = await waitState(s, good, () => true, 'the good identify applied');
    assert.equal(st.profile.companySize, undefined);
    assert.equal(st.eventsProcessed, 0, 'the far-future track was not sent');
    assert.equal((await s.call('GET', `/v1/leads/${noEmail}`)).status, 404);
  });

  it('refuses a bad body or a bad single call with a 4xx naming the field', async () => {
    const notJson = await post('/v1/segment/batch', undefined, { raw: '{"batch": [' });
    assert.equal(notJson.status, 400, notJson.body);
    assert.equal(notJson.json.error.code, 'malformed_json');
    const array = await post('/v1/segment/identify', [{ userId: 'x' }]);
    assert.equal(array.status, 400, array.body);
    assert.equal(array.json.error.issues[0].path, '(root)');
    const notArray = await post('/v1/segment/v1/batch', { batch: { type: 'track' } });
    assert.equal(notArray.status, 400, notArray.body);
    assert.equal(notArray.json.error.issues[0].path, 'batch');
    const big = Array.from({ length: 501 }, (_, i) => ({ type: 'track', userId: `u${i}`, event: 'Nope' }));
    const tooMany = await post('/v1/segment/v1/batch', { batch: big });
    assert.equal(tooMany.status, 413, tooMany.body);
    assert.equal(tooMany.json.error.code, 'too_many_events');
    // Past the API's body limit (1 MiB): refused before it is parsed.
    const padding = 'x'.repeat(3000);
    const heavy = Array.from({ length: 400 }, (_, i) => ({
      type: 'track',
      userId: `h${i}`,
      event: 'Nope',
      properties: { padding },
    }));
    const tooLarge = await post('/v1/segment/v1/batch', { batch: heavy });
    assert.equal(tooLarge.status, 413, tooLarge.body);
    assert.equal(tooLarge.json.error.code, 'body_too_large');
    const future = await post('/v1/segment/track', {
      userId: uid('future'),
      event: 'Whitepaper Downloaded',
      timestamp: '2999-01-01T00:00:00Z',
    });
    assert.equal(future.status, 400, future.body);
    assert.equal(future.json.error.issues[0].path, 'timestamp');
    const text = await post('/v1/segment/track', undefined, { raw: 'hello', type: 'text/plain' });
    assert.equal(text.status, 415, text.body);
    const noIds = await post('/v1/segment/track', { event: 'Whitepaper Downloaded' });
    assert.equal(noIds.status, 400, noIds.body);
    assert.equal(noIds.json.error.issues[0].path, 'userId');
    const badTrait = await post('/v1/segment/identify', { userId: uid('bt'), traits: { email: 'nope' } });
    assert.equal(badTrait.status, 400, badTrait.body);
    assert.equal(badTrait.json.error.issues[0].path, 'traits.email');
  });
});
