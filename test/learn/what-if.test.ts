/**
 * What-if and rollout on real servers (issue 12 parts 4 and 5): a mixed run of the bench's leads
 * (events, profile changes, hand-raisers, sales outcomes, SLA expiries and escalations on short
 * timeouts), then `leadctl what-if` must reproduce every live lead (agreement 100 %); `leadctl
 * rollout` makes a candidate the running config, every lead is re-scored from its recorded events
 * with a `rescored` transition, and what-if still reproduces every lead across the switch.
 * With RECORD_HISTORIES=1 a lead that lived through the rollout is recorded for the replay test.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ROOT } from '../../src/env.js';
import { workflowIdFor } from '../../src/domain/lead.js';
import { makeEvents, makeLeads, runPool } from '../../bench/workload.js';
import { leadctl } from '../helpers/leadctl.js';
import { recordHistory } from '../helpers/leads.js';
import { useStack } from '../helpers/stack.js';
import { testConfig } from '../helpers/temporal.js';

const dir = mkdtempSync(join(tmpdir(), 'what-if-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const FAST = { mqlStaleAfter: '20s', salesAcceptWithin: '4s', salesEscalations: 1, dormantAfter: '40s' };
const running = testConfig({ timeouts: FAST });
const scoring = (running.raw as { scoring: Record<string, unknown> }).scoring;
/** The candidate: two models, enterprise leads need more, behaviour is worth more elsewhere. */
const candidateRaw = {
  ...(running.raw as Record<string, unknown>),
  email: { ...(running.raw as { email: object }).email, templates: join(ROOT, 'templates') },
  scoring: {
    models: [
      {
        id: 'enterprise',
        when: { field: 'companySize', min: 1000 },
        thresholds: { mql: 60, sql: 95, minFit: 10 },
        fit: [
          { field: 'seniority', in: ['c_level', 'vp'], points: 30 },
          { field: 'companySize', min: 5000, points: 10 },
        ],
        disqualify: scoring.disqualify,
        behavior: scoring.behavior,
        decay: scoring.decay,
      },
      {
        id: 'smb',
        thresholds: { mql: 25, sql: 60, minFit: 0 },
        fit: [{ field: 'seniority', in: ['director', 'manager'], points: 15 }],
        disqualify: scoring.disqualify,
        behavior: { ...(scoring.behavior as object), email_open: { points: 3, maxPerDay: 3 } },
        decay: scoring.decay,
      },
    ],
  },
};
const candidateFile = join(dir, 'candidate.yaml');
writeFileSync(candidateFile, stringify(candidateRaw));
const runningFile = join(dir, 'running.yaml');
writeFileSync(
  runningFile,
  stringify({
    ...(running.raw as object),
    email: { ...(running.raw as { email: object }).email, templates: join(ROOT, 'templates') },
  }),
);

const s = useStack({ worker: { loaded: running } });

async function whatIf(config: string) {
  const r = await leadctl(s, config, 'what-if', '--json');
  assert.equal(r.code, 0, r.stderr);
  return { ...JSON.parse(r.stdout), ms: r.ms };
}

/** Changes whenever any lead's ledger row is written (each write raises its version). */
const LEDGER_MARK = 'SELECT sum(version)::text AS v, max(updated_at)::text AS at, count(*)::int AS n FROM leads';

/**
 * A what-if and the ledger's stage counts at the same moment. Timers keep firing on these short
 * timeouts (an SLA expiry recycles a lead whenever it is due), so the counts are compared only when
 * no lead's row changed while the what-if ran; otherwise it runs again.
 */
async function whatIfBesideLedger(config: string) {
  const mark = async () => JSON.stringify((await s.ledger.pool.query(LEDGER_MARK)).rows[0]);
  for (let tries = 1; ; tries++) {
    const before = await mark();
    const r = await whatIf(config);
    const stages = await s.ledger.stageCounts();
    if ((await mark()) === before) return { r, stages };
    if (tries === 5) throw new Error('the ledger changed during each of 5 what-ifs');
  }
}

/** Waits until no lead's ledger row changed for `quietMs` (the run has settled). */
async function settle(quietMs = 2500, timeoutMs = 90_000) {
  const until = Date.now() + timeoutMs;
  let last = '';
  let since = Date.now();
  while (Date.now() < until) {
    const r = await s.ledger.pool.query(LEDGER_MARK);
    const now = JSON.stringify(r.rows[0]);
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= quietMs) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('the run never settled');
}

async function waitFor(leadId: string, ok: (st: Awaited<ReturnType<typeof s.state>>) => boolean) {
  for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((res) => setTimeout(res, 50)))
    if (ok(await s.state(leadId))) return;
  throw new Error(`${leadId} never got there: ${JSON.stringify(await s.state(leadId))}`);
}

describe('what-if and rollout after a mixed run', { timeout: 300_000 }, () => {
  const leads = makeLeads(40, 'wi-', 12, 0.2);

  it('what-if reproduces every live lead (100 %) and tries a candidate', async () => {
    await s.run(async () => {
      // Every lead's events, interleaved; the first creates the lead with its profile.
      const sent = await runPool(makeEvents(leads, 6, 12, 'a'), 8, (ev) => s.service.sendEvent(ev), {
        key: (ev) => ev.leadId,
        what: 'events',
      });
      assert.equal(sent.errors, 0, String(sent.firstError));
      await settle();
      // Profile changes, then sales: accept, reject, won and lost on leads in sales.
      for (const l of leads.slice(0, 8))
        await s.service.upsertLead({ leadId: l.leadId, email: l.email, seniority: 'vp', companySize: 6000 });
      // Four open leads raise their hand (straight to sql), then sales decides within the 4 s SLA.
      const open = (await Promise.all(leads.map((l) => s.state(l.leadId)))).filter((x) =>
        ['lead', 'mql', 'recycled'].includes(x.stage),
      );
      assert.ok(open.length >= 4, `${open.length} open leads`);
      const inSql = open.slice(0, 4);
      for (const l of inSql)
        await s.service.sendEvent({ leadId: l.leadId, eventId: `demo-${l.leadId}`, type: 'demo_request' });
      for (const l of inSql) await waitFor(l.leadId, (x) => x.stage === 'sql' && x.owner !== undefined);
      await s.service.salesOutcome(inSql[0]!.leadId, { outcome: 'accepted', rep: 'ana@sales.example' });
      await s.service.salesOutcome(inSql[0]!.leadId, { outcome: 'won' });
      await s.service.salesOutcome(inSql[1]!.leadId, { outcome: 'accepted' });
      await s.service.salesOutcome(inSql[1]!.leadId, { outcome: 'lost', reason: 'budget' });
      await s.service.salesOutcome(inSql[2]!.leadId, { outcome: 'rejected', reason: 'not_ready' });
      await s.service.salesOutcome(inSql[3]!.leadId, { outcome: 'rejected', reason: 'bad_fit' });
      // The rest of sql waits out the SLA: escalated after 4 s, recycled after 8 s.
      await new Promise((res) => setTimeout(res, 9000));
      await runPool(makeEvents(leads, 3, 13, 'b'), 8, (ev) => s.service.sendEvent(ev), {
        key: (ev) => ev.leadId,
        what: 'events',
      });
      await settle();
    });
    const transitions = await s.ledger.pool.query('SELECT reason FROM lead_transitions');
    const reasons = transitions.rows.map((r) => r.reason as string);
    assert.ok(
      reasons.some((r) => r.startsWith('SLA expired; escalated')),
      'an SLA escalation happened',
    );
    assert.ok(
      reasons.some((r) => r.startsWith('sales SLA')),
      'an SLA expiry recycled a lead',
    );

    const { r, stages } = await whatIfBesideLedger(candidateFile);
    assert.equal(r.leads, leads.length);
    assert.deepEqual(r.disagreements, []);
    assert.equal(r.agreement, 1);
    for (const [stage, n] of Object.entries(r.before)) assert.equal(n, stages[stage] ?? 0, stage);
    assert.equal(
      Object.values(r.after as Record<string, number>).reduce((a, b) => a + b, 0),
      leads.length,
    );
    assert.ok(r.moved.length > 0, 'the candidate moves some leads');
    for (const m of r.moved) assert.ok(leads.some((l) => l.leadId === m.leadId) && m.from !== m.to);
    // Under its own config, nobody moves.
    const same = await whatIf(runningFile);
    assert.equal(same.agreement, 1);
    assert.deepEqual(same.moved, []);
  });

  it('rollout re-scores every lead from its events, and what-if still reproduces them all', async () => {
    // Events keep coming while the rollout reaches the leads: none is lost or counted twice.
    const known = new Set(Object.keys((running.raw as { scoring: { behavior: object } }).scoring.behavior));
    const atStart = new Map((await Promise.all(leads.map((l) => s.state(l.leadId)))).map((x) => [x.leadId, x]));
    const during = makeEvents(leads, 3, 14, 'c');
    const rolling = leadctl(s, candidateFile, 'rollout', '--wait', '60', '--json');
    const sent = await runPool(during, 8, (ev) => s.service.sendEvent(ev), { key: (ev) => ev.leadId, what: 'events' });
    assert.equal(sent.errors, 0, String(sent.firstError));
    const rolled = await rolling;
    assert.equal(rolled.code, 0, rolled.stderr);
    const out = JSON.parse(rolled.stdout);
    assert.equal(out.switched, leads.length, rolled.stdout);
    await settle();
    for (const l of leads) {
      const counted = during.filter((e) => e.leadId === l.leadId && known.has(e.type)).length;
      const now = await s.state(l.leadId);
      assert.equal(now.eventsProcessed, atStart.get(l.leadId)!.eventsProcessed + counted, l.leadId);
    }
    for (const l of leads.slice(0, 10)) {
      const st = await s.state(l.leadId);
      assert.equal(st.configVersion, out.version);
      assert.ok(['enterprise', 'smb'].includes(st.score.model), st.score.model);
      const t = st.transitions.find((x) => x.reason.startsWith(`rescored under config ${out.version}`));
      assert.ok(t, JSON.stringify(st.transitions));
      assert.equal(t.from, t.to);
    }
    // An event after the rollout scores under the new config (smb: email_open is 3 points).
    const smb = (await Promise.all(leads.map((l) => s.state(l.leadId)))).find(
      (x) => x.score.model === 'smb' && x.consent === 'subscribed' && x.stage !== 'disqualified',
    )!;
    const before = smb.score.engagement;
    await s.service.sendEvent({ leadId: smb.leadId, eventId: 'after-rollout-1', type: 'content_download' });
    await settle();
    const afterEv = await s.state(smb.leadId);
    assert.ok(afterEv.score.engagement >= before + 9, `${before} -> ${afterEv.score.engagement}`);

    // The funnel by model: each lead's model now, with MQL-to-SQL and MQL-to-customer rates.
    const funnel = await s.ledger.funnel({ by: 'model' });
    assert.ok(funnel.groups.length > 0);
    for (const g of funnel.groups) {
      assert.ok(['enterprise', 'smb'].includes(g.key), g.key);
      assert.ok(g.mqlToSqlRate === null || (g.mqlToSqlRate >= 0 && g.mqlToSqlRate <= 1));
    }
    assert.equal(
      funnel.groups.reduce((n, g) => n + g.mqls, 0),
      funnel.total.mqls,
    );

    const r = await whatIf(candidateFile);
    assert.deepEqual(r.disagreements, []);
    assert.equal(r.agreement, 1);
    // (who moves now is the candidate from each lead's start against a life that began under the old config)
    assert.equal(r.leads, leads.length);
    await recordHistory(s.client, s.client.workflow.getHandle(workflowIdFor(smb.leadId)), 'issue-12/rollout');
  });

  it('rollout and what-if refuse an invalid candidate with every problem and its path, changing nothing', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      stringify({
        ...candidateRaw,
        scoring: { models: [{ ...candidateRaw.scoring.models[1], id: 'Bad Id', when: { field: 'x', in: [] } }] },
      }),
    );
    const versions = await s.ledger.pool.query('SELECT count(*)::int AS n FROM configs');
    for (const cmd of ['rollout', 'what-if']) {
      const r = await leadctl(s, bad, cmd);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /scoring\.models\.0\.id/);
      assert.match(r.stderr, /scoring\.models\.0\.when/);
    }
    const again = await s.ledger.pool.query('SELECT count(*)::int AS n FROM configs');
    assert.equal(again.rows[0].n, versions.rows[0].n);
  });
});
