/**
 * A lead is never forgotten (CONTRACT.md §Stages, issue 10 item 1), on the real dev server and on
 * both ledger backends: a customer, a disqualified lead and an unsubscribed dormant lead, each
 * with its workflow deleted as retention deletes a closed run (`temporal workflow delete`), keep
 * their stage and consent; their next event continues from there (no mail to the unsubscribed
 * one), and search and the funnel still find and count all three.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { LeadService } from '../../src/lead-service.js';
import type { LeadState } from '../../src/domain/lead.js';
import { temporalBinaries } from '../../src/env.js';
import { BACKENDS } from '../helpers/ledger.js';
import { type StackWorker, useStack } from '../helpers/stack.js';
import { testConfig } from '../helpers/temporal.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Dormant after 3 s without engagement, so a lead gets there within the test.
const loaded = testConfig({
  timeouts: { mqlStaleAfter: '30d', salesAcceptWithin: '48h', salesEscalations: 1, dormantAfter: '3s' },
});

const stack = useStack();

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  let last: unknown;
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`${what} did not happen${last ? `: ${String(last)}` : ''}`);
}

for (const backend of BACKENDS) {
  describe(`a lead is never forgotten (${backend} ledger)`, () => {
    let h: StackWorker;
    let svc: LeadService;
    const id = (name: string) => `nf-${backend}-${name}`;
    const state = (leadId: string, pred: (s: LeadState) => boolean, what: string) =>
      until(`${leadId}: ${what}`, async () => {
        const s = await svc.getState(leadId);
        return pred(s) ? s : undefined;
      });
    before(async () => {
      h = await stack.startWorker({ loaded, taskQueue: `never-forget-${backend}`, ledger: backend });
      svc = h.service;
    });
    after(() => h?.close());

    it('a customer, a disqualified lead and an unsubscribed dormant lead survive the deletion of their workflows', async () => {
      const vp = (leadId: string, extra: object = {}) => ({
        leadId,
        email: `${leadId}@buyer.example`,
        firstName: 'Vera',
        country: 'US',
        seniority: 'vp',
        companySize: 500,
        ...extra,
      });
      const [customer, disqualified, dormant] = [id('customer'), id('dq'), id('dormant')];

      await svc.upsertLead(vp(customer, { campaign: 'spring-webinar' }));
      await svc.sendEvents({ leadId: customer, eventId: 'demo-1', type: 'demo_request' });
      await state(customer, (s) => s.stage === 'sql' && s.owner !== undefined, 'in sql with an owner');
      await svc.salesOutcome(customer, { outcome: 'accepted' });
      assert.equal((await svc.salesOutcome(customer, { outcome: 'won' })).stage, 'customer');

      await svc.upsertLead(vp(disqualified));
      await svc.patchProfile(disqualified, { country: 'BR' });
      await state(disqualified, (s) => s.stage === 'disqualified', 'disqualified');

      await svc.upsertLead(vp(dormant, { seniority: 'staff', companySize: 10 }));
      await svc.sendEvents({ leadId: dormant, eventId: 'unsub-1', type: 'unsubscribe' });
      await state(dormant, (s) => s.stage === 'dormant' && s.consent === 'unsubscribed', 'dormant and unsubscribed');
      const mailsToDormant = () => stack.smtp.messages.filter((m) => m.to.includes(`${dormant}@buyer.example`)).length;
      const mailedBefore = mailsToDormant();

      // What retention does to a closed run, done by hand with the Temporal CLI.
      for (const leadId of [customer, disqualified, dormant]) {
        execFileSync(
          temporalBinaries().cli,
          [
            'workflow',
            'delete',
            '--yes',
            '--workflow-id',
            `lead-${leadId}`,
            '--address',
            stack.env.address,
            '--namespace',
            'default',
          ],
          { stdio: 'pipe' },
        );
      }
      for (const leadId of [customer, disqualified, dormant]) {
        await until(`lead-${leadId} deleted`, async () => {
          try {
            await h.client.workflow.getHandle(`lead-${leadId}`).describe();
            return undefined;
          } catch (err) {
            return /not found/i.test(String(err)) ? true : undefined;
          }
        });
      }

      // Reads, search and the funnel still know all three, from the ledger.
      assert.equal((await svc.getState(customer)).stage, 'customer');
      assert.equal((await svc.getState(disqualified)).stage, 'disqualified');
      const kept = await svc.getState(dormant);
      assert.deepEqual([kept.stage, kept.consent], ['dormant', 'unsubscribed']);
      const found = async (stage: string) => (await h.ledger.search({ stage, limit: 1000 })).leads.map((l) => l.leadId);
      assert.ok((await found('customer')).includes(customer));
      assert.ok((await found('disqualified')).includes(disqualified));
      assert.ok((await found('dormant')).includes(dormant));
      const funnel = await h.ledger.funnel({ by: 'campaign' }, loaded.config.campaigns);
      assert.ok(
        funnel.stages.customer >= 1 && funnel.stages.disqualified >= 1 && funnel.stages.dormant >= 1,
        JSON.stringify(funnel.stages),
      );
      assert.ok(
        (funnel.groups.find((g) => g.key === 'spring-webinar')?.customers ?? 0) >= 1,
        'the customer still counts for its campaign',
      );

      // Created again (a CRM re-sending it): not new, it resumes from the ledger.
      assert.deepEqual(await svc.upsertLead(vp(disqualified, { country: 'BR', jobTitle: 'Buyer' })), {
        created: false,
        leadId: disqualified,
      });
      await state(disqualified, (s) => s.profile.jobTitle === 'Buyer', 'the profile change applied');
      assert.equal((await svc.getState(disqualified)).stage, 'disqualified');

      // The next event, to a workflow that no longer exists: a new run, continuing from the ledger.
      for (const leadId of [customer, disqualified, dormant])
        await svc.sendEvents({ leadId, eventId: `after-delete-${leadId}`, type: 'content_download' });
      const c = await state(customer, (s) => s.eventsProcessed === 2, 'the event after the delete applied');
      assert.equal(c.stage, 'customer', 'a customer who engages again stays a customer');
      assert.deepEqual(
        c.transitions.map((t) => t.to),
        ['mql', 'sql', 'opportunity', 'customer'],
        'with its transitions',
      );
      const d = await state(disqualified, (s) => s.eventsProcessed === 1, 'the event after the delete applied');
      assert.equal(d.stage, 'disqualified');
      const r = await state(dormant, (s) => s.eventsProcessed === 2, 'the event after the delete applied');
      assert.equal(r.consent, 'unsubscribed', 'still unsubscribed');
      assert.deepEqual(
        r.transitions.map((t) => `${t.from}>${t.to}`).slice(0, 2),
        ['lead>dormant', 'dormant>recycled'],
        'a dormant lead that engages comes back as recycled',
      );
      // Re-sent ids are still counted once: the new run remembers them from the ledger.
      await svc.sendEvents({ leadId: customer, eventId: 'demo-1', type: 'demo_request' });
      await svc.sendEvents({ leadId: customer, eventId: 'tick', type: 'email_open' });
      assert.equal(
        (await state(customer, (s) => s.eventsProcessed >= 3, 'the tick applied')).eventsProcessed,
        3,
        'demo-1, seen before the delete, is not counted again',
      );

      await sleep(2_000);
      assert.equal(mailsToDormant(), mailedBefore, 'no mail to the unsubscribed lead after it came back');
      const events = await h.database.pool.query('SELECT count(*)::int AS n FROM lead_events WHERE lead_id = $1', [
        customer,
      ]);
      assert.equal(events.rows[0].n, 3, 'each event once in the ledger');
    });
  });
}
