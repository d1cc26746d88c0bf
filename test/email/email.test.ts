/**
 * Nurture and handoff mail through nodemailer to a real SMTP server on loopback, driven by real
 * lead workflows on the time-skipping server: headers, recipients, rendered content, bounces,
 * an SMTP outage, send windows and frequency caps.
 *
 * Leads are left running at the end of each test, never terminated: terminating a run with a mail
 * activity in flight leaks the test server's time-skipping lock, and every later skip then takes
 * real time (see skipTime). Each test reads only its own lead's mail.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { useStack } from '../helpers/stack.js';
import { type Harness, skipTime, TEST_LINK_SECRET, testConfig } from '../helpers/temporal.js';
import { ev, signal, startLead, waitForState } from '../helpers/leads.js';
import { LinkSigner } from '../../src/links.js';
import { salesOutcomeUpdate, stateQuery } from '../../workflows/defs.js';

const stack = useStack({ server: 'time-skipping' });

/** A worker with the test config and `overrides`, closed with the stack. */
const withHarness = (overrides: Parameters<typeof testConfig>[0] = {}) =>
  stack.startWorker({ loaded: testConfig(overrides) });
const to = (addr: string) => stack.smtp.messages.filter((m) => m.to.includes(addr));
const lead = (leadId: string, extra: object = {}) => ({
  leadId,
  email: `${leadId}@buyer.example`,
  firstName: 'Noor',
  company: 'Globex',
  country: 'US',
  seniority: 'director',
  companySize: 300,
  ...extra,
});
const signer = new LinkSigner(TEST_LINK_SECRET, 'http://links.test');

describe('nurture and handoff mail', () => {
  let h: Harness;
  before(async () => {
    h = await withHarness();
  });

  test('a nurture mail carries the contract headers, a signed one-click unsubscribe and rendered content', async () => {
    await startLead(h.client, h.taskQueue, lead('hdr'));
    const [mail] = await stack.smtp
      .waitFor(() => to('hdr@buyer.example').length === 1)
      .then(() => to('hdr@buyer.example'));
    assert.equal(mail!.headers.get('x-lead-id'), 'hdr');
    assert.equal(mail!.headers.get('x-nurture-track'), 'welcome');
    assert.equal(mail!.headers.get('x-nurture-step'), '1');
    assert.equal(mail!.header('List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
    const unsub = /^<(http:\/\/links\.test\/l\/unsubscribe\?t=([^>]+))>$/.exec(mail!.header('List-Unsubscribe') ?? '')!;
    assert.ok(unsub, 'List-Unsubscribe holds a signed https link');
    const verified = signer.verify(decodeURIComponent(unsub[2]!), 'unsubscribe', Date.now());
    assert.ok(verified.ok && verified.payload.l === 'hdr');
    assert.equal(mail!.messageId, '<nurture.hdr.welcome.1.0@acme.example>', 'deterministic per lead, track and step');
    assert.equal(mail!.subject, 'Welcome to Acme, Noor');
    assert.match(mail!.text, /teams like Globex/);
    assert.match(
      mail!.html,
      /<a href="http:\/\/links\.test\/l\/click\?t(=|&#x3D;)/,
      'click links are HTML-escaped in the HTML part',
    );
    assert.deepEqual(
      mail!.raw.from?.value.map((a) => [a.name, a.address]),
      [['Acme', 'marketing@acme.example']],
    );
  });

  test('the lead leaves the welcome track for the mql track; sql gets no nurture; the handoff goes to the routed owner', async () => {
    const handle = await startLead(h.client, h.taskQueue, lead('tracks'));
    await stack.smtp.waitFor(() => to('tracks@buyer.example').length === 1);
    await signal(handle, ev('tracks', 'content_download'));
    await waitForState(handle, (s) => s.stage === 'mql' && s.nurture.track === 'mql');
    await skipTime(stack.env, '1d');
    await stack.smtp.waitFor(() => to('tracks@buyer.example').some((m) => m.headers.get('x-nurture-track') === 'mql'));
    await signal(handle, ev('tracks', 'demo_request'));
    const s = await waitForState(handle, (x) => x.stage === 'sql' && x.owner !== undefined);
    const handoff = (
      await stack.smtp.waitFor(() => to(s.owner!).some((m) => m.headers.get('x-lead-id') === 'tracks'))
    ).find((m) => m.headers.get('x-lead-id') === 'tracks' && m.to.includes(s.owner!))!;
    assert.equal(handoff.headers.get('x-lead-handoff'), '1');
    assert.match(handoff.text, /Score: \d+ \(fit 35, engagement \d+\)/);
    assert.match(handoff.html, /tracks@buyer\.example/);
    assert.match(handoff.html, /demo request \+30<\/li>/, 'recent engagement is listed');
    assert.match(handoff.text, /Last engagement: demo request \+30, less than a minute ago/);
    assert.match(handoff.text, /Accept or reject by \w+day \d+ \w+ \d{4} at \d\d:\d\d UTC \(\d+ (hours?|days?) /);
    assert.doesNotMatch(handoff.text, /\d{4}-\d\d-\d\dT/, 'no ISO timestamps in the text');
    const accept = /Accept: (\S+)/.exec(handoff.text)![1]!;
    const token = new URL(accept).searchParams.get('t')!;
    const verified = signer.verify(token, 'sales', Date.now());
    assert.ok(verified.ok && verified.payload.l === 'tracks');
    assert.equal(s.nurture.track, undefined, 'sql has no nurture track');
    const before = to('tracks@buyer.example').length;
    await handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'accepted' }] });
    await skipTime(stack.env, '10d');
    assert.equal(to('tracks@buyer.example').length, before, 'no nurture mail once handed to sales');
    assert.equal((await handle.query(stateQuery)).nurture.track, undefined);
  });

  test('a 5xx on the recipient is a hard bounce: consent bounced, no more nurture, scoring goes on', async () => {
    stack.smtp.refuse.add('bounce@buyer.example');
    const handle = await startLead(h.client, h.taskQueue, lead('bounce'));
    const s = await waitForState(handle, (x) => x.consent === 'bounced');
    assert.equal(to('bounce@buyer.example').length, 0);
    assert.ok(s.scoreLog.some((l) => l.type === 'hard_bounce'));
    await signal(handle, ev('bounce', 'webinar_attended'));
    await waitForState(handle, (x) => x.score.engagement === 15);
    await skipTime(stack.env, '4d');
    assert.equal(to('bounce@buyer.example').length, 0);
  });

  test('an SMTP outage is retried with backoff: the mail goes out once when the server is back', async () => {
    stack.smtp.down = true;
    try {
      const handle = await startLead(h.client, h.taskQueue, lead('outage'));
      await waitForState(handle, (x) => x.nurture.step === 1);
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(to('outage@buyer.example').length, 0);
      stack.smtp.down = false;
      await skipTime(stack.env, '10m');
      await stack.smtp.waitFor(() => to('outage@buyer.example').length === 1);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(to('outage@buyer.example').length, 1);
    } finally {
      stack.smtp.down = false;
    }
  });
});

describe('send windows and frequency caps', () => {
  test("a step due outside the send window waits for the next window in the lead's time zone", async () => {
    // A window on one weekday only: two days from now (UTC, in the server's skipped-ahead time), all day.
    const day = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][
      new Date((await stack.env.currentTimeMs()) + 2 * 86_400_000).getUTCDay()
    ]!;
    const h = await withHarness({
      email: {
        from: 'Acme <marketing@acme.example>',
        templates: 'templates/',
        defaultTimezone: 'UTC',
        sendWindow: { days: [day], from: '00:00', to: '23:59' },
      },
    });
    const handle = await startLead(h.client, h.taskQueue, lead('window', { timezone: 'UTC' }));
    const s = await waitForState(handle, (x) => x.nurture.nextStepAt !== undefined);
    const due = Date.parse(s.nurture.nextStepAt!);
    assert.equal(new Date(due).getUTCHours(), 0, 'deferred to the start of the window');
    assert.ok(due - Date.parse(s.createdAt) > 86_400_000);
    await skipTime(stack.env, '1d');
    assert.equal(to('window@buyer.example').length, 0);
    await skipTime(stack.env, '2d');
    await stack.smtp.waitFor(() => to('window@buyer.example').length === 1);
  });

  test('the frequency cap defers, never drops, a step', async () => {
    const h = await withHarness({
      nurture: {
        tracks: [
          {
            id: 'burst',
            for: ['lead'],
            steps: [
              { after: '0s', template: 'welcome' },
              { after: '1h', template: 'guide' },
              { after: '1h', template: 'case-study' },
            ],
          },
        ],
      },
      email: {
        from: 'Acme <marketing@acme.example>',
        templates: 'templates/',
        defaultTimezone: 'UTC',
        frequencyCap: { perDay: 1, perWeek: 3 },
      },
    });
    const handle = await startLead(h.client, h.taskQueue, lead('capped'));
    await stack.smtp.waitFor(() => to('capped@buyer.example').length === 1);
    await skipTime(stack.env, '2h');
    assert.equal(to('capped@buyer.example').length, 1, 'the second step waits for the daily cap');
    const s = await handle.query(stateQuery);
    assert.ok(Date.parse(s.nurture.nextStepAt!) - Date.parse(s.createdAt) >= 86_400_000 - 1000);
    await skipTime(stack.env, '1d');
    await stack.smtp.waitFor(() => to('capped@buyer.example').length === 2);
    await skipTime(stack.env, '1d');
    await stack.smtp.waitFor(() => to('capped@buyer.example').length === 3);
    assert.deepEqual(
      to('capped@buyer.example').map((m) => m.headers.get('x-nurture-step')),
      ['1', '2', '3'],
    );
  });
});
