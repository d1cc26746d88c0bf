/**
 * A lead ledger that goes away and comes back (CONTRACT.md "The lead ledger"), on a real
 * PostgreSQL server (test/helpers/postgres.ts) taken down with `pg_ctl stop -m fast` and started
 * again on the same port and data, under a real Temporal dev server, worker and API:
 * - the API's ledger reads (state, search, funnel, timeline) answer 503 `ledger_unavailable` with
 *   Retry-After, never 500, and 200 again once it is back, with nothing restarted;
 * - events sent meanwhile are accepted (202) and, once it is back, every one is in lead_events
 *   exactly once and the lead's recorded state is current (the recordLead local activity retries).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LeadState } from '../../src/domain/lead.js';
import { useStack } from '../helpers/stack.js';
import { eventually, type Res, uid } from './fixture.js';

// A stack on a PostgreSQL server of its own; the teardown brings it back if a test failed while it was down.
const s = useStack({ ledger: 'postgres', api: true });

const call = (method: string, url: string, body?: unknown): Promise<Res> =>
  s.call(method, url, body === undefined ? {} : { body });

const lead = (leadId: string) => ({
  leadId,
  email: `${leadId.toLowerCase().replace(/[^a-z0-9]/g, '')}@example.com`,
  country: 'US',
  seniority: 'vp',
});

/** The lead's state as the ledger holds it, once `pred` holds (the database being up). */
async function recorded(
  leadId: string,
  pred: (s: LeadState) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<LeadState> {
  return eventually(
    `${leadId}: ${what}`,
    async () => {
      const row = await s.ledger.lead(leadId);
      const st = row?.state as LeadState | undefined;
      return st && pred(st) ? st : undefined;
    },
    timeoutMs,
  );
}

/** Each of the lead's event ids in lead_events, with how many rows it has. */
async function eventRows(leadId: string): Promise<Map<string, number>> {
  const r = await s.database.pool.query(
    'SELECT event_id, count(*)::int AS n FROM lead_events WHERE lead_id = $1 GROUP BY event_id',
    [leadId],
  );
  return new Map(r.rows.map((x) => [x.event_id as string, x.n as number]));
}

describe('a ledger database that goes away and comes back', () => {
  it('answers its reads 503 ledger_unavailable with Retry-After while it is down, and 200 again once it is back', async () => {
    const leadId = uid('reads');
    assert.equal((await call('POST', '/v1/leads', lead(leadId))).status, 201);
    const events = ['content_download', 'webinar_attended'].map((type) => ({ leadId, eventId: uid('e'), type }));
    assert.equal((await call('POST', '/v1/events', events)).status, 202);
    await recorded(leadId, (s) => s.eventsProcessed === 2, 'both events recorded');
    const reads = [
      `/v1/leads/${leadId}`,
      '/v1/leads?stage=mql',
      '/v1/funnel?by=campaign',
      `/v1/leads/${leadId}/timeline`,
    ];
    for (const url of reads) assert.equal((await call('GET', url)).status, 200, url);

    await s.postgres.pause();
    try {
      for (const url of reads) {
        const t0 = Date.now();
        const r = await call('GET', url);
        assert.equal(r.status, 503, `${url}: ${r.status} ${r.body}`);
        assert.equal(r.json?.error?.code, 'ledger_unavailable', r.body);
        assert.ok(Number(r.headers['retry-after']) > 0, `${url}: Retry-After ${r.headers['retry-after']}`);
        assert.ok(Date.now() - t0 < 10_000, `${url} answered in ${Date.now() - t0} ms`);
      }
      // Bad input is still a 400 (checked before the database), not a 503.
      assert.equal((await call('GET', '/v1/funnel?by=country')).status, 400);
      assert.equal((await call('GET', '/v1/leads?pageToken=garbage')).status, 400);
    } finally {
      await s.postgres.resume();
    }
    // The same API process, the same pool: it reconnects on its next query.
    for (const url of reads) {
      const r = await eventually(
        `${url} answers again`,
        async () => {
          const x = await call('GET', url);
          assert.notEqual(x.status, 500, `${url}: ${x.body}`);
          return x.status === 200 ? x : undefined;
        },
        30_000,
      );
      assert.equal(r.status, 200);
    }
    const st = await call('GET', `/v1/leads/${leadId}`);
    assert.equal(st.json.eventsProcessed, 2);
  });

  it('accepts events while it is down and, once it is back, has every one of them once and the lead current', async () => {
    // A lead that exists, and one that the outage's events create.
    const known = uid('known');
    const fresh = uid('fresh');
    assert.equal((await call('POST', '/v1/leads', lead(known))).status, 201);
    const before = [{ leadId: known, eventId: uid('e'), type: 'email_open' }];
    assert.equal((await call('POST', '/v1/events', before)).status, 202);
    await recorded(known, (s) => s.eventsProcessed === 1, 'the first event recorded');

    await s.postgres.pause();
    const during: {
      leadId: string;
      eventId: string;
      type: string;
      email?: string;
      profile?: Record<string, unknown>;
    }[] = [];
    try {
      // Several batches, some time apart, so that several workflow activations wait on the database.
      for (let batch = 0; batch < 3; batch++) {
        const events = [
          { leadId: known, eventId: uid('e'), type: 'email_open' },
          { leadId: known, eventId: uid('e'), type: 'careers_page_view' },
          { leadId: known, eventId: uid('e'), type: 'content_download' },
        ];
        // The same event twice (a client's retry) counts once.
        const r = await call('POST', '/v1/events', [...events, events[0]!]);
        assert.equal(r.status, 202, r.body);
        assert.equal(r.json.accepted, 4);
        during.push(...events);
        await sleep(700);
      }
      const created = {
        leadId: fresh,
        eventId: uid('e'),
        type: 'content_download',
        email: `${fresh}@example.com`,
        profile: { country: 'US' },
      };
      assert.equal((await call('POST', '/v1/events', created)).status, 202);
      during.push(created);
      // Long enough for the recording to have failed and been retried a few times.
      await sleep(3000);
      const r = await call('GET', `/v1/leads/${known}`);
      assert.equal(r.status, 503, r.body);
      assert.equal(r.json.error.code, 'ledger_unavailable');
    } finally {
      await s.postgres.resume();
    }

    const knownIds = [...before, ...during.filter((e) => e.leadId === known)].map((e) => e.eventId);
    const st = await recorded(
      known,
      (s) => s.eventsProcessed === knownIds.length,
      `all ${knownIds.length} events recorded`,
    );
    const rows = await eventRows(known);
    assert.deepEqual([...rows.keys()].sort(), [...knownIds].sort(), 'every event is in lead_events');
    assert.ok(
      [...rows.values()].every((n) => n === 1),
      'each exactly once',
    );
    // The recorded state is the lead's current one: eventsProcessed counted each once (above), and
    // every event that scored is in its score log once.
    const logged = st.scoreLog.filter((l) => l.eventId).map((l) => l.eventId!);
    assert.equal(new Set(logged).size, logged.length, JSON.stringify(logged));
    assert.ok(
      logged.every((id) => knownIds.includes(id)),
      JSON.stringify(logged),
    );
    const api = await eventually(
      'the API reads it',
      async () => {
        const x = await call('GET', `/v1/leads/${known}`);
        return x.status === 200 ? x : undefined;
      },
      30_000,
    );
    assert.equal(api.json.eventsProcessed, knownIds.length);
    assert.equal(api.json.score.total, st.score.total);
    // The timeline has each of them once too.
    const timeline = await call('GET', `/v1/leads/${known}/timeline?limit=1000`);
    assert.equal(timeline.status, 200, timeline.body);
    const listed = timeline.json.entries
      .filter((e: { kind: string }) => e.kind === 'event')
      .map((e: { eventId: string }) => e.eventId);
    assert.deepEqual([...listed].sort(), [...knownIds].sort());

    // The lead the outage's event created is there with its event.
    await recorded(fresh, (s) => s.eventsProcessed === 1, 'the new lead recorded');
    assert.deepEqual([...(await eventRows(fresh)).entries()], [[during.at(-1)!.eventId, 1]]);
    const found = await call('GET', `/v1/leads?limit=1000`);
    assert.ok(
      found.json.leads.some((l: { leadId: string }) => l.leadId === fresh),
      'the search finds it',
    );
  });
});
