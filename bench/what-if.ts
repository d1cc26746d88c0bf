/**
 * What what-if costs: `npx tsx bench/what-if.ts [--leads 50000] [--events 6]`.
 *
 * Fills a fresh real PostgreSQL server (test/helpers/postgres.ts) with N of the bench's leads
 * (bench/workload.ts), each lived through the pure model exactly as its workflow's loop would
 * (events applied, the rules acting, an owner picked) and written by the workflow's own ledger
 * journal; then runs what-if over all of them (`leadctl what-if`'s code: histories read in pages,
 * replayed under the lead's config and a candidate) and prints the seconds it took, the agreement
 * of the self-check and the moves. Prints one JSON on stdout and writes it to bench/results/.
 */
import { Command } from 'commander';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { validateConfig } from '../src/config-file.js';
import { advance, applyEvent, newLead } from '../src/domain/lifecycle.js';
import type { LeadStart } from '../src/domain/lead.js';
import { ROOT } from '../src/env.js';
import { storeConfig } from '../src/ledger/configs.js';
import { openDatabase } from '../src/ledger/database.js';
import { histories } from '../src/ledger/histories.js';
import { LeadLedger } from '../src/ledger/ledger.js';
import { WhatIfRun } from '../src/learn/what-if.js';
import { storedForm } from '../src/running-config.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { testConfig } from '../test/helpers/temporal.js';
import { LedgerJournal } from '../workflows/lead/ledger-journal.js';
import { makeEvents, makeLeads, runPool } from './workload.js';

const o = new Command()
  .option('--leads <n>', 'leads', (v) => Number(v), 50_000)
  .option('--events <n>', 'events per lead', (v) => Number(v), 6)
  .parse()
  .opts<{ leads: number; events: number }>();

const dir = mkdtempSync(join(os.tmpdir(), 'bench-what-if-'));
const pg = await startPostgres();
const db = await openDatabase({ url: pg.url });
try {
  const ledger = new LeadLedger(db.pool);
  const running = testConfig();
  const raw = running.raw as { scoring: { thresholds: object } };
  const candidate = validateConfig(
    { ...raw, scoring: { ...raw.scoring, thresholds: { mql: 30, sql: 60, minFit: 5 } } },
    'candidate',
    ROOT,
  );
  await storeConfig(db.pool, storedForm(running));
  const leads = makeLeads(o.leads, 'wi-', 1);
  const events = makeEvents(leads, o.events, 1, 'e');
  const byLead = new Map<string, typeof events>();
  for (const e of events) byLead.set(e.leadId, [...(byLead.get(e.leadId) ?? []), e]);
  const t0 = Date.now() - 7 * 86_400_000;

  const fill = performance.now();
  const { errors } = await runPool(
    leads,
    16,
    async (lead, i) => {
      const cfg = running.config;
      const created = t0 + i * 10;
      const start = { leadId: lead.leadId, email: lead.email, ...lead.profile, campaign: lead.campaign } as LeadStart;
      let core = newLead(start, cfg, running.version, created);
      const journal = new LedgerJournal(`bench-${i}`);
      journal.started(start, true, created);
      let at = created;
      for (const [k, ev] of (byLead.get(lead.leadId) ?? []).entries()) {
        at = created + k * 60_000;
        core = applyEvent(core, { ...ev, occurredAt: at }, cfg, at);
        journal.event(ev, at, at, core.scoreLog.at(-1));
        const step = advance(core, cfg, at, Number.NEGATIVE_INFINITY);
        core = step.core;
        const pick = step.effects.find((e) => e.kind === 'assignOwner');
        if (pick && pick.kind === 'assignOwner')
          core = advance({ ...core, owner: pick.owners[0] }, cfg, at, Number.NEGATIVE_INFINITY).core;
      }
      await ledger.record(journal.batch(core, cfg, at));
    },
    { what: 'fill' },
  );
  if (errors) throw new Error(`${errors} writes failed`);
  const fillSeconds = (performance.now() - fill) / 1000;

  const started = performance.now();
  let readMs = 0;
  const run = new WhatIfRun(
    (v) => (v === running.version ? running.config : undefined),
    { config: candidate.config, version: candidate.version },
    Date.now(),
  );
  for (let after: string | undefined = ''; after !== undefined;) {
    const r0 = performance.now();
    const page = await histories(db.pool, { after, limit: 2000 });
    readMs += performance.now() - r0;
    run.add(page);
    after = page.next;
  }
  const r = run.result();
  const seconds = (performance.now() - started) / 1000;
  const result = {
    leads: r.leads,
    events: events.length,
    fillSeconds: Math.round(fillSeconds * 10) / 10,
    whatIfSeconds: Math.round(seconds * 100) / 100,
    readSeconds: Math.round(readMs / 10) / 100,
    agreement: r.agreement,
    disagreements: r.disagreements.length,
    moved: r.moved.length,
    before: r.before,
    after: r.after,
    cpus: os.cpus().length,
  };
  console.log(JSON.stringify(result));
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(ROOT, 'bench', 'results', `what-if-${stamp}.json`), JSON.stringify(result, null, 2));
} finally {
  await db.close();
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
}
