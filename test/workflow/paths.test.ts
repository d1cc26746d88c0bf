/**
 * Every path of the stage diagram (CONTRACT.md §Stages) on the time-skipping server with a real
 * worker, real activities and a real SMTP server: months of a lead's life in seconds.
 * With RECORD_HISTORIES=1 each path's history is written to test/fixtures/histories/ for replay.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import proto from '@temporalio/proto';

const EventType = proto.temporal.api.enums.v1.EventType;
import { useStack } from '../helpers/stack.js';
import { skipTime } from '../helpers/temporal.js';
import { ev, recordHistory, signal, startLead, waitForState } from '../helpers/leads.js';
import { eventSignal, profileSignal, salesOutcomeUpdate, stateQuery } from '../../workflows/defs.js';
import type { LeadState } from '../../src/domain/lead.js';

const h = useStack({ server: 'time-skipping', worker: true });

const vp = (leadId: string, extra: object = {}) => ({
  leadId,
  email: `${leadId}@buyer.example`,
  firstName: 'Vera',
  country: 'US',
  seniority: 'vp',
  companySize: 500,
  ...extra,
});
async function waitForHistoryToSettle(handle: { fetchHistory(): Promise<{ events?: unknown[] | null }> }) {
  let last = -1;
  for (;;) {
    const n = (await handle.fetchHistory()).events!.length;
    if (n === last) return n;
    last = n;
    await new Promise((r) => setTimeout(r, 300));
  }
}
/**
 * A lead in a closed stage: its run is still running (never completes), with no timer pending,
 * and the ledger holds its stage and state.
 */
async function assertSleeping(
  handle: { describe(): Promise<{ status: { name: string } }>; fetchHistory(): Promise<{ events?: unknown[] | null }> },
  leadId: string,
  stage: string,
) {
  await waitForHistoryToSettle(handle);
  assert.equal((await handle.describe()).status.name, 'RUNNING', 'the run does not complete');
  const events = (await handle.fetchHistory()).events as { eventType?: number | null; timerId?: string }[];
  const started = events.filter((e) => e.eventType === EventType.EVENT_TYPE_TIMER_STARTED).length;
  const ended = events.filter(
    (e) => e.eventType === EventType.EVENT_TYPE_TIMER_FIRED || e.eventType === EventType.EVENT_TYPE_TIMER_CANCELED,
  ).length;
  assert.equal(started, ended, 'no timer is pending: it sleeps until its next event');
  const row = await h.ledger.lead(leadId);
  assert.equal(row?.stage, stage, 'the ledger has its stage');
  assert.equal((row?.state as LeadState).stage, stage);
}

const mailTo = (to: string) => h.smtp.messages.filter((m) => m.to.includes(to));
const stages = (s: LeadState) => s.transitions.map((t) => t.to);

describe('lead workflow stage paths', () => {
  test('lead -> mql -> sql by score, accepted -> opportunity -> won -> customer; the run sleeps there, its state in the ledger', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('path-won', { campaign: 'spring-webinar' }));
      await h.smtp.waitFor(() => mailTo('path-won@buyer.example').length === 1);
      assert.equal(
        mailTo('path-won@buyer.example')[0]!.headers.get('x-nurture-track'),
        'welcome',
        'welcome mail sent at once',
      );
      // fit 35 (vp 20 + size 15); two downloads make 55 >= mql 40.
      await signal(handle, ev('path-won', 'content_download'), ev('path-won', 'webinar_attended'));
      let s = await waitForState(handle, (x) => x.stage === 'mql');
      assert.equal(s.score.fit, 35);
      assert.equal(s.score.engagement, 25);
      assert.ok(s.becameMqlAt);
      await signal(handle, ev('path-won', 'pricing_page_view'), ev('path-won', 'webinar_attended'));
      s = await waitForState(handle, (x) => x.stage === 'sql' && x.owner !== undefined);
      assert.ok(s.score.total >= 75);
      assert.ok(s.slaDeadline);
      assert.ok(['ana@sales.example', 'ben@sales.example'].includes(s.owner!));
      await h.smtp.waitFor(() => mailTo(s.owner!).some((m) => m.headers.get('x-lead-handoff') === '1'));
      s = await handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'accepted', rep: s.owner }] });
      assert.equal(s.stage, 'opportunity');
      s = await handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'won', note: 'annual plan' }] });
      assert.equal(s.stage, 'customer');
      await assertSleeping(handle, 'path-won', 'customer');
      assert.deepEqual(stages(s), ['mql', 'sql', 'opportunity', 'customer']);
      assert.match(s.transitions[0]!.reason, /score \d+ >= mql 40/);
      await recordHistory(h.client, handle, 'issue-10/won');
    });
  });

  test('a hand-raiser goes straight to sql; the owner gets a handoff mail; round robin balances owners across leads', async () => {
    await h.run(async () => {
      const a = await startLead(h.client, h.taskQueue, vp('hr-a'));
      const b = await startLead(h.client, h.taskQueue, vp('hr-b'));
      await signal(a, ev('hr-a', 'demo_request'));
      const sa = await waitForState(a, (x) => x.owner !== undefined);
      await signal(b, ev('hr-b', 'demo_request'));
      const sb = await waitForState(b, (x) => x.owner !== undefined);
      assert.equal(sa.stage, 'sql');
      assert.deepEqual(stages(sa), ['mql', 'sql']);
      assert.match(sa.transitions[1]!.reason, /hand-raiser: demo_request/);
      assert.notEqual(sa.owner, sb.owner, 'two leads of one rule go to different owners');
      const mails = await h.smtp.waitFor(() => mailTo(sa.owner!).some((m) => m.headers.get('x-lead-id') === 'hr-a'));
      const handoff = mails.find(
        (m) => m.headers.get('x-lead-id') === 'hr-a' && m.headers.get('x-lead-handoff') === '1',
      )!;
      assert.match(handoff.subject, /New sales-ready lead/);
      assert.match(handoff.text, /Accept: http:\/\/links\.test\/l\/sales\?t=/);
      assert.match(handoff.text, /hand-raiser: demo_request/);
      await recordHistory(h.client, a, 'issue-10/hand-raiser');
    });
  });

  test('sales rejects as not_ready: recycled with engagement reset, then the recycle track mails after 7 days', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('rej-nr'));
      await signal(handle, ev('rej-nr', 'demo_request'));
      await waitForState(handle, (x) => x.owner !== undefined);
      const s = await handle.executeUpdate(salesOutcomeUpdate, {
        args: [{ outcome: 'rejected', reason: 'not_ready', note: 'budget next year' }],
      });
      assert.equal(s.stage, 'recycled');
      assert.equal(s.score.engagement, 0);
      assert.equal(s.recycleCount, 1);
      assert.equal(s.owner, undefined);
      assert.match(s.transitions.at(-1)!.reason, /sales rejected \(not_ready\).*budget next year/);
      assert.equal(s.nurture.track, 'recycle');
      await skipTime(h.env, '7d');
      await waitForState(handle, (x) => x.nurture.step === 1);
      await h.smtp.waitFor(() =>
        mailTo('rej-nr@buyer.example').some((m) => m.headers.get('x-nurture-track') === 'recycle'),
      );
      await recordHistory(h.client, handle, 'issue-10/rejected-not-ready');
    });
  });

  test('sales rejects as bad_fit: disqualified, and the run sleeps', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('rej-bf'));
      await signal(handle, ev('rej-bf', 'demo_request'));
      await waitForState(handle, (x) => x.owner !== undefined);
      const s = await handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'rejected', reason: 'bad_fit' }] });
      assert.equal(s.stage, 'disqualified');
      await assertSleeping(handle, 'rej-bf', 'disqualified');
      await recordHistory(h.client, handle, 'issue-10/rejected-bad-fit');
    });
  });

  test('lost opportunity is recycled', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('lost'));
      await signal(handle, ev('lost', 'demo_request'));
      await waitForState(handle, (x) => x.owner !== undefined);
      await handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'accepted' }] });
      const s = await handle.executeUpdate(salesOutcomeUpdate, {
        args: [{ outcome: 'lost', reason: 'went with a competitor' }],
      });
      assert.equal(s.stage, 'recycled');
      assert.deepEqual(stages(s), ['mql', 'sql', 'opportunity', 'recycled']);
      await recordHistory(h.client, handle, 'issue-10/lost');
    });
  });

  test('an mql with no engagement for mqlStaleAfter is recycled', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('stale'));
      await signal(handle, ev('stale', 'content_download'), ev('stale', 'content_download'));
      await waitForState(handle, (x) => x.stage === 'mql');
      await skipTime(h.env, '29d');
      assert.equal((await handle.query(stateQuery)).stage, 'mql');
      await skipTime(h.env, '2d');
      const s = await waitForState(handle, (x) => x.stage === 'recycled');
      assert.match(s.transitions.at(-1)!.reason, /no engagement for 30d as mql/);
      await recordHistory(h.client, handle, 'issue-10/mql-stale');
    });
  });

  test('an unanswered SLA escalates to the next owner once, then recycles the lead', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('sla'));
      await signal(handle, ev('sla', 'demo_request'));
      const first = await waitForState(handle, (x) => x.owner !== undefined);
      await skipTime(h.env, '49h');
      const escalated = await waitForState(handle, (x) => x.escalations === 1);
      assert.notEqual(escalated.owner, first.owner);
      assert.match(escalated.transitions.at(-1)!.reason, /SLA expired; escalated from .* to /);
      await h.smtp.waitFor(() =>
        mailTo(escalated.owner!).some((m) => m.headers.get('x-lead-id') === 'sla' && /\[Escalated\]/.test(m.subject)),
      );
      await skipTime(h.env, '49h');
      const s = await waitForState(handle, (x) => x.stage === 'recycled');
      assert.match(s.transitions.at(-1)!.reason, /SLA of 2d expired after 1 escalation/);
      await recordHistory(h.client, handle, 'issue-10/sla-expired');
    });
  });

  test('a disqualifying profile change disqualifies from any open stage; the run sleeps', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('dq'));
      await signal(handle, ev('dq', 'content_download'), ev('dq', 'content_download'));
      await waitForState(handle, (x) => x.stage === 'mql');
      await handle.signal(profileSignal, { country: 'BR' });
      const s = await waitForState(handle, (x) => x.stage === 'disqualified');
      assert.match(s.transitions.at(-1)!.reason, /disqualify rule: country not in/);
      await assertSleeping(handle, 'dq', 'disqualified');
      await recordHistory(h.client, handle, 'issue-10/disqualified-rule');
    });
  });

  test('no engagement for dormantAfter: dormant, the run sleeps; a new event brings the lead back as recycled with its history', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('dorm', { seniority: 'staff', companySize: 20 }));
      await signal(handle, ev('dorm', 'email_open'));
      await waitForState(handle, (x) => x.eventsProcessed === 1);
      await skipTime(h.env, '181d');
      await waitForState(handle, (x) => x.stage === 'dormant');
      await assertSleeping(handle, 'dorm', 'dormant');
      await h.client.workflow.signalWithStart('leadWorkflow', {
        workflowId: 'lead-dorm',
        taskQueue: h.taskQueue,
        args: [{ leadId: 'dorm' }, {}],
        signal: eventSignal,
        signalArgs: [ev('dorm', 'content_download')],
      });
      const again = h.client.workflow.getHandle('lead-dorm');
      const s = await waitForState(again, (x) => x.stage === 'recycled');
      assert.equal(s.eventsProcessed, 2, 'the new run goes on from the last one');
      assert.equal(s.profile.email, 'dorm@buyer.example');
      assert.deepEqual(stages(s), ['dormant', 'recycled']);
      assert.match(s.transitions.at(-1)!.reason, /re-engaged \(content_download\) after dormancy/);
      await recordHistory(h.client, handle, 'issue-10/dormant');
    });
  });

  test('a customer who engages again stays a customer; an unsubscribed lead stays unsubscribed', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('cust'));
      await signal(handle, ev('cust', 'unsubscribe'), ev('cust', 'demo_request'));
      await waitForState(handle, (x) => x.owner !== undefined);
      await handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'accepted' }] });
      await handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'won' }] });
      await assertSleeping(handle, 'cust', 'customer');
      await h.client.workflow.signalWithStart('leadWorkflow', {
        workflowId: 'lead-cust',
        taskQueue: h.taskQueue,
        args: [{ leadId: 'cust' }, {}],
        signal: eventSignal,
        signalArgs: [ev('cust', 'email_open')],
      });
      const s = await waitForState(h.client.workflow.getHandle('lead-cust'), (x) => x.eventsProcessed === 3);
      assert.equal(s.stage, 'customer');
      assert.equal(s.consent, 'unsubscribed');
      await recordHistory(h.client, handle, 'issue-10/customer-engages');
    });
  });

  test('unsubscribe stops nurture mail at once; scoring goes on', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('unsub'));
      await waitForState(handle, (x) => x.nurture.step === 1);
      await signal(handle, ev('unsub', 'unsubscribe'), ev('unsub', 'content_download'));
      const s = await waitForState(handle, (x) => x.eventsProcessed === 2);
      assert.equal(s.consent, 'unsubscribed');
      assert.equal(s.score.engagement, 10);
      await skipTime(h.env, '10d');
      assert.equal(mailTo('unsub@buyer.example').length, 1, 'only the welcome mail, sent before the unsubscribe');
      await recordHistory(h.client, handle, 'issue-10/unsubscribed');
    });
  });
});

describe('bad input and idempotency', () => {
  test('malformed signals and unknown event types are refused without touching state; duplicates count once', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('bad'));
      const before = await waitForState(handle, (x) => x.nurture.step === 1);
      await handle.signal(eventSignal, { leadId: 'bad', type: 'content_download' } as never); // no eventId
      await handle.signal(eventSignal, { leadId: 'bad', eventId: 'x1', type: 'teleport' });
      await handle.signal(eventSignal, { leadId: 'other', eventId: 'x2', type: 'content_download' });
      await handle.signal(eventSignal, {
        leadId: 'bad',
        eventId: 'x3',
        type: 'content_download',
        occurredAt: 'yesterday',
      });
      await handle.signal(profileSignal, { companySize: 'huge' } as never);
      await handle.signal(profileSignal, { country: 'usa' });
      const dup = ev('bad', 'content_download');
      await signal(handle, dup, dup, dup);
      const s = await waitForState(handle, (x) => x.eventsProcessed >= 1);
      await new Promise((r) => setTimeout(r, 300));
      const after = await handle.query(stateQuery);
      assert.equal(after.eventsProcessed, 1, 'only the valid event counted, once');
      assert.equal(after.score.engagement, 10);
      assert.deepEqual(after.profile, before.profile);
      assert.equal(s.stage, 'mql', 'fit 35 + 10 crosses mql 40 once');
    });
  });

  test('the salesOutcome validator rejects bad payloads and wrong stages; nothing enters history', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('upd'));
      await h.smtp.waitFor(() => mailTo('upd@buyer.example').length === 1);
      await waitForHistoryToSettle(handle);
      const historyBefore = (await handle.fetchHistory()).events!.length;
      await assert.rejects(
        handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'accepted' }] }),
        (err: unknown) =>
          err instanceof WorkflowUpdateFailedError &&
          /needs stage sql, but the lead is in lead/.test(String(err.cause?.message)),
      );
      await assert.rejects(
        handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'rejected', reason: 'meh' } as never] }),
        (err: unknown) => err instanceof WorkflowUpdateFailedError && /reason/.test(String(err.cause?.message)),
      );
      await assert.rejects(
        handle.executeUpdate(salesOutcomeUpdate, { args: [{ outcome: 'promoted' } as never] }),
        WorkflowUpdateFailedError,
      );
      // The real server keeps rejected updates out of history entirely (speculative workflow tasks);
      // the time-skipping server records the empty workflow tasks, but no update is ever accepted.
      const events = (await handle.fetchHistory()).events!.slice(historyBefore);
      const names = events.map((e) => EventType[e.eventType!]);
      assert.ok(
        names.every((n) => /WORKFLOW_TASK_(SCHEDULED|STARTED|COMPLETED)/.test(n!)),
        names.join(', '),
      );
      assert.equal((await handle.query(stateQuery)).stage, 'lead');
    });
  });

  test('a lead started with invalid input fails fast with the field named', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, { leadId: 'bad input!', email: 'nope' } as never);
      await assert.rejects(handle.result(), (err: Error) =>
        /leadId.*must be 1-128|email/.test(String((err as { cause?: Error }).cause?.message)),
      );
    });
  });

  test('late events are scored at their own occurredAt (decayed); a per-day cap holds', async () => {
    await h.run(async () => {
      const handle = await startLead(h.client, h.taskQueue, vp('late', { seniority: 'staff', companySize: 10 }));
      const first = await waitForState(handle, (x) => x.nurture.step === 1);
      const now = Date.parse(first.createdAt); // workflow time: earlier tests skipped it months ahead
      const thirtyDaysAgo = new Date(now - 30 * 86_400_000).toISOString();
      await signal(handle, ev('late', 'webinar_attended', { occurredAt: thirtyDaysAgo }));
      for (let i = 0; i < 5; i++) await signal(handle, ev('late', 'email_open'));
      const s = await waitForState(handle, (x) => x.eventsProcessed === 6);
      // 15 points half-decayed (~7.5) + 3 capped opens.
      assert.ok(
        Math.abs(s.score.engagement - 10.5) <= 1,
        `engagement ${s.score.engagement}: ${JSON.stringify(s.scoreLog)}`,
      );
      const opens = s.scoreLog.filter((l) => l.type === 'email_open');
      assert.deepEqual(
        opens.map((l) => l.points),
        [1, 1, 1, 0, 0],
        'the 4th and 5th open of the day add nothing',
      );
    });
  });
});
