/**
 * applyImported, what the `history` signal does to a lead: an imported history moves a lead
 * forward along the funnel at its own dates and never back, so a second import (even by a run
 * that resumed from the ledger and no longer remembers the importId) adds nothing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfigFile } from '../../src/config-file.js';
import { applyImported } from '../../src/domain/imported.js';
import { leadStartSchema } from '../../src/domain/lead.js';
import { type LeadCore, newLead, transition } from '../../src/domain/lifecycle.js';
import { ROOT } from '../../src/env.js';

const config = loadConfigFile(join(ROOT, 'config', 'default.yaml')).config;
const NOW = Date.parse('2026-12-01T12:00:00Z');
const fresh = () =>
  newLead(
    leadStartSchema.parse({ leadId: 'l1', email: 'l1@import.invalid', consent: { email: false } }),
    config,
    'v1',
    NOW,
  );
const path = (c: LeadCore) =>
  c.transitions.map((t) => `${t.from}>${t.to}@${new Date(t.at).toISOString().slice(0, 10)}:${t.reason}`);
const mql = { importId: 'import:lead:1', stage: 'mql' as const, becameMqlAt: '2018-02-01T00:00:00.000Z' };

describe('applyImported: a history', () => {
  it('takes a new lead to its stage at its date and moves its creation back', () => {
    const r = applyImported(fresh(), mql, config, NOW);
    assert.equal(r.problem, undefined);
    assert.deepEqual(path(r.core), ['lead>mql@2018-02-01:imported']);
    assert.equal(r.core.stage, 'mql');
    assert.equal(r.core.becameMqlAt, Date.parse('2018-02-01'));
    assert.equal(r.core.createdAt, Date.parse('2018-02-01'));
  });

  it('applied twice is applied once, also after the lead moved on (recycled by staleness)', () => {
    const once = applyImported(fresh(), mql, config, NOW).core;
    assert.deepEqual(applyImported(once, { ...mql, importId: 'other' }, config, NOW).core, once);
    const recycled = transition(once, 'recycled', 'no engagement for 30d as mql', NOW, config);
    assert.deepEqual(applyImported(recycled, mql, config, NOW + 1000).core, recycled);
  });

  it('never takes a lead back: a customer or a disqualified lead stays, a later stage skips the earlier ones', () => {
    const customer = applyImported(
      fresh(),
      {
        importId: 'c',
        stage: 'customer',
        becameMqlAt: '2018-02-01T00:00:00.000Z',
        becameCustomerAt: '2018-03-01T00:00:00.000Z',
      },
      config,
      NOW,
    ).core;
    assert.deepEqual(path(customer), ['lead>mql@2018-02-01:imported', 'mql>customer@2018-03-01:imported']);
    assert.deepEqual(
      applyImported(customer, { ...mql, becameMqlAt: '2017-01-01T00:00:00.000Z' }, config, NOW).core,
      customer,
    );
    const dq = transition(fresh(), 'disqualified', 'disqualify rule', NOW, config);
    assert.deepEqual(applyImported(dq, mql, config, NOW).core, dq);
    const sql = transition(fresh(), 'sql', 'hand-raiser', NOW, config);
    const won = applyImported(
      sql,
      {
        importId: 'w',
        stage: 'customer',
        becameMqlAt: '2018-02-01T00:00:00.000Z',
        becameCustomerAt: '2018-03-01T00:00:00.000Z',
      },
      config,
      NOW,
    ).core;
    assert.deepEqual(path(won).slice(1), ['sql>customer@2018-03-01:imported']);
  });

  it('reports a history it cannot apply and leaves the lead alone', () => {
    const lead = fresh();
    const r = applyImported(
      lead,
      { importId: 'x', stage: 'mql', becameMqlAt: '2018-02-01T00:00:00.000Z', becameSqlAt: '2018-01-01T00:00:00.000Z' },
      config,
      NOW,
    );
    assert.match(r.problem!, /becameSqlAt is before becameMqlAt/);
    assert.equal(r.core, lead);
  });
});

describe('applyImported: an outcome', () => {
  const atMql = () => applyImported(fresh(), mql, config, NOW).core;

  it('won on an mql is mql -> customer at its date, recorded as imported with its note and rep', () => {
    const r = applyImported(
      atMql(),
      { importId: 'o', outcome: 'won', occurredAt: '2018-02-26T19:58:00.000Z', note: 'pet shop', rep: 'sr-1' },
      config,
      NOW,
    );
    assert.deepEqual(path(r.core).at(-1), 'mql>customer@2018-02-26:imported');
    assert.deepEqual(r.outcome, {
      outcome: 'won',
      at: Date.parse('2018-02-26T19:58:00Z'),
      note: 'pet shop',
      rep: 'sr-1',
    });
  });

  it('dated before the MQL date is not applied', () => {
    const lead = atMql();
    const r = applyImported(
      lead,
      { importId: 'o', outcome: 'won', occurredAt: '2018-01-31T23:59:00.000Z' },
      config,
      NOW,
    );
    assert.equal(r.core, lead);
    assert.equal(r.outcome, undefined);
    assert.match(
      r.problem!,
      /^outcome won is dated 2018-01-31T23:59:00.000Z, before the lead's MQL date 2018-02-01T00:00:00.000Z$/,
    );
  });
});
