/**
 * What the ledger's reads cost: `npx tsx bench/ledger.ts [--leads 50000] [--postgres] [--runs 7]`.
 *
 * Fills a fresh embedded ledger (PGlite served on loopback, as `npm start` runs it) and, with
 * `--postgres`, a fresh real PostgreSQL server (test/helpers/postgres.ts) with N synthetic leads,
 * then times the funnel (no window, a 12-month window, and by each `by`) and search pages. The
 * leads are seeded, so two runs hold the same data:
 *   ~30% become MQL, ~30% of those SQL, half of those opportunity, a fifth of those customer
 *   (~10% of SQLs); 6 campaigns (and ~10% without one), 5 channels, 2 scoring models; created
 *   over 2 years; stage, owner, score and consent as a lead in that state would have them, and a
 *   LeadState-sized `state` JSON (~1.5 kB, what the row really carries).
 * Rows go in through multi-row INSERTs (unnest of one array per column, 2,000 leads a
 * statement), then ANALYZE (a live database has statistics; a fresh one does not yet).
 *
 * Every figure is taken twice: `analyzed`, straight after the fill, and `vacuumed`, after VACUUM
 * has marked the pages all-visible, so that index-only scans (the cohort index, stage counts)
 * skip the table. A real server's autovacuum gets there by itself; the embedded PGlite runs no
 * autovacuum (single-user PostgreSQL: no background workers), so it stays at `analyzed` unless
 * something runs VACUUM.
 *
 * Each timing is the median of `--runs` runs after one warm-up, in ms, measured in this process
 * through the pg driver, as the API would call it. `funnel.total` is the whole Funnel with no
 * window (stage counts, the cohort, which costed campaigns are in it); `funnel.stageCounts` is its
 * first part alone (a scan of every lead, whatever the window). Prints one JSON on stdout and
 * writes it to bench/results/ledger-<UTC timestamp>.json.
 */
import { Command } from 'commander';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { STAGES, type Stage } from '../src/domain/stages.js';
import { ROOT } from '../src/env.js';
import { type Database, openDatabase } from '../src/ledger/database.js';
import type { CampaignCosts, FunnelQuery } from '../src/ledger/funnel.js';
import { LeadLedger } from '../src/ledger/ledger.js';
import type { LeadSearch } from '../src/ledger/search.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { Cleanups } from './proc.js';
import { rng } from './workload.js';

const DAY = 86_400_000;
const START = Date.parse('2024-01-01T00:00:00.000Z');
const SPAN_DAYS = 730;
const CAMPAIGNS = ['spring-webinar', 'summer-ebook', 'trade-show', 'partner-referral', 'paid-search', 'newsletter'];
const CHANNELS = ['paid', 'organic', 'email', 'events', 'referral'];
const MODELS = ['smb', 'enterprise'];
const OWNERS = ['ana@sales.example', 'ben@sales.example', 'cho@sales.example', 'team@sales.example'];
/** The config's `campaigns`: five of the six have a cost. */
const COSTS: CampaignCosts = {
  'spring-webinar': { cost: 12_000 },
  'summer-ebook': { cost: 4_000 },
  'trade-show': { cost: 30_000 },
  'partner-referral': { cost: 6_000 },
  'paid-search': { cost: 25_000 },
};

interface Row {
  leadId: string;
  stage: Stage;
  consent: string;
  score: number;
  owner: string | null;
  campaign: string | null;
  channel: string;
  model: string;
  createdAt: Date;
  mql: Date | null;
  sql: Date | null;
  opp: Date | null;
  cust: Date | null;
  state: string;
}

export function makeRows(n: number, seed: number): Row[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const after = (d: Date, meanDays: number) =>
    new Date(d.getTime() + Math.max(0.01, -Math.log(1 - r()) * meanDays) * DAY);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const leadId = `bench-${String(i).padStart(7, '0')}`;
    const createdAt = new Date(START + r() * SPAN_DAYS * DAY);
    const campaign = r() < 0.1 ? null : pick(CAMPAIGNS);
    const transitions: { at: string; from: Stage; to: Stage; reason: string }[] = [];
    let stage = 'lead' as Stage;
    let mql: Date | null = null,
      sql: Date | null = null,
      opp: Date | null = null,
      cust: Date | null = null;
    const go = (to: Stage, at: Date, reason: string) => {
      transitions.push({ at: at.toISOString(), from: stage, to, reason });
      stage = to;
    };
    if (r() < 0.05) go('disqualified', after(createdAt, 2), 'disqualify rule country');
    else if (r() < 0.3) {
      mql = after(createdAt, 20);
      go('mql', mql, 'score 44 >= mql 40');
      if (r() < 0.3) {
        sql = after(mql, 9);
        go('sql', sql, 'score 78 >= sql 75');
        if (r() < 0.5) {
          opp = after(sql, 3);
          go('opportunity', opp, 'sales accepted');
          if (r() < 0.2) {
            cust = after(opp, 30);
            go('customer', cust, 'won');
          } else if (r() < 0.5) go('recycled', after(opp, 40), 'lost');
        } else if (r() < 0.4) go('recycled', after(sql, 2), 'sales rejected (not_ready)');
      } else if (r() < 0.4) go('recycled', after(mql, 30), 'no engagement for 30d');
    } else if (r() < 0.2) go('dormant', after(createdAt, 180), 'no engagement for 180d');
    const score =
      stage === 'lead' || stage === 'dormant'
        ? Math.floor(r() * 40)
        : stage === 'mql' || stage === 'recycled'
          ? 40 + Math.floor(r() * 35)
          : stage === 'disqualified'
            ? Math.floor(r() * 30)
            : 75 + Math.floor(r() * 45);
    const owner = sql ? pick(OWNERS) : null;
    const c = r();
    const consent = c < 0.9 ? 'subscribed' : c < 0.97 ? 'unsubscribed' : 'bounced';
    const state = {
      leadId,
      stage,
      score: { total: score, fit: Math.min(score, 35), engagement: Math.max(0, score - 35), model: pick(MODELS) },
      ...(owner ? { owner } : {}),
      profile: {
        email: `${leadId}@example.com`,
        firstName: 'Dana',
        lastName: 'Scully',
        company: `Company ${i % 997}`,
        jobTitle: 'Director of Operations',
        seniority: 'director',
        department: 'operations',
        industry: 'software',
        companySize: 50 + (i % 900),
        country: 'US',
      },
      consent,
      nurture: { track: stage === 'recycled' ? 'recycle' : 'welcome', step: i % 3 },
      createdAt: createdAt.toISOString(),
      lastEngagedAt: createdAt.toISOString(),
      ...(mql ? { becameMqlAt: mql.toISOString() } : {}),
      ...(sql ? { becameSqlAt: sql.toISOString() } : {}),
      recycleCount: stage === 'recycled' ? 1 : 0,
      eventsProcessed: 3 + (i % 20),
      transitions,
      ...(campaign ? { campaign } : {}),
      configVersion: 'c0ffee12',
      scoreLog: Array.from({ length: 4 }, (_, k) => ({
        at: createdAt.toISOString(),
        eventId: `${leadId}-e${k}`,
        type: 'content_download',
        points: 10,
      })),
      escalations: 0,
    };
    rows.push({
      leadId,
      stage,
      consent,
      score,
      owner,
      campaign,
      channel: pick(CHANNELS),
      model: state.score.model,
      createdAt,
      mql,
      sql,
      opp,
      cust,
      state: JSON.stringify(state),
    });
  }
  return rows;
}

export async function fill(db: Database, rows: Row[]): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += 2_000) {
    const b = rows.slice(i, i + 2_000);
    const col = <T>(f: (x: Row) => T) => b.map(f);
    await db.pool.query(
      `INSERT INTO leads (lead_id, stage, consent, score, owner, campaign, channel, model, created_at, became_mql_at, became_sql_at, became_opportunity_at, became_customer_at, state, version)
       SELECT *, 1 FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[],
                               $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::jsonb[])`,
      [
        col((x) => x.leadId),
        col((x) => x.stage),
        col((x) => x.consent),
        col((x) => x.score),
        col((x) => x.owner),
        col((x) => x.campaign),
        col((x) => x.channel),
        col((x) => x.model),
        col((x) => x.createdAt),
        col((x) => x.mql),
        col((x) => x.sql),
        col((x) => x.opp),
        col((x) => x.cust),
        col((x) => x.state),
      ],
    );
  }
  await db.pool.query('ANALYZE leads');
  return performance.now() - t0;
}

async function time(runs: number, fn: () => Promise<unknown>) {
  await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return Math.round(ms[Math.floor(ms.length / 2)]! * 10) / 10;
}

async function timings(ledger: LeadLedger, leads: number, runs: number) {
  const lastYear: FunnelQuery = { since: '2025-01-01T00:00:00.000Z', until: '2026-01-01T00:00:00.000Z' };
  const funnel: Record<string, number> = {
    total: await time(runs, () => ledger.funnel({}, COSTS)),
    stageCounts: await time(runs, () => ledger.stageCounts()),
    window12Months: await time(runs, () => ledger.funnel(lastYear, COSTS)),
  };
  for (const by of ['campaign', 'channel', 'month', 'model'] as const)
    funnel[`by_${by}`] = await time(runs, () => ledger.funnel({ by }, COSTS));
  funnel.window12Months_by_campaign = await time(runs, () => ledger.funnel({ ...lastYear, by: 'campaign' }, COSTS));

  const middle = await ledger.search({ limit: 1000 }).then(async (p) => {
    // a token half-way through every lead: what page 500 of 50 would start from
    let token = p.nextPageToken;
    for (let i = 1; i < Math.floor(leads / 2000) && token; i++)
      token = (await ledger.search({ limit: 1000, pageToken: token })).nextPageToken;
    return token;
  });
  const page = (q: LeadSearch) => () => ledger.search({ limit: 50, ...q });
  const search = {
    first: await time(runs, page({})),
    deep: await time(runs, page({ pageToken: middle })),
    stage_mql: await time(runs, page({ stage: 'mql' })),
    stage_customer: await time(runs, page({ stage: 'customer' })),
    owner: await time(runs, page({ owner: 'ana@sales.example' })),
    campaign_minScore60: await time(runs, page({ campaign: 'trade-show', minScore: 60 })),
    minScore100: await time(runs, page({ minScore: 100 })),
    limit1000: await time(runs, () => ledger.search({ limit: 1000 })),
  };
  return { funnel, search };
}

async function measure(backend: string, db: Database, rows: Row[], runs: number) {
  const fillMs = await fill(db, rows);
  const ledger = new LeadLedger(db.pool);
  // The figures must be right before their speed matters.
  const f = await ledger.funnel({}, COSTS);
  const want = {
    mqls: rows.filter((x) => x.mql).length,
    sqls: rows.filter((x) => x.sql).length,
    customers: rows.filter((x) => x.cust).length,
  };
  const stagesWant = Object.fromEntries(STAGES.map((s) => [s, rows.filter((x) => x.stage === s).length]));
  if (
    f.total.mqls !== want.mqls ||
    f.total.sqls !== want.sqls ||
    f.total.customers !== want.customers ||
    JSON.stringify(f.stages) !== JSON.stringify(stagesWant)
  ) {
    throw new Error(
      `${backend}: the funnel says ${JSON.stringify({ ...f.total, stages: f.stages })}, the data ${JSON.stringify({ ...want, stages: stagesWant })}`,
    );
  }
  const analyzed = await timings(ledger, rows.length, runs);
  const t0 = performance.now();
  await db.pool.query('VACUUM ANALYZE leads');
  const vacuumMs = performance.now() - t0;
  const vacuumed = await timings(ledger, rows.length, runs);
  const size = await db.pool.query("SELECT pg_total_relation_size('leads')::bigint AS b");
  return {
    backend,
    fillMs: Math.round(fillMs),
    leadsPerSecond: Math.round(rows.length / (fillMs / 1000)),
    leadsTableMb: Math.round((Number(size.rows[0].b) / 1024 / 1024) * 10) / 10,
    cohort: {
      mqls: f.total.mqls,
      sqls: f.total.sqls,
      customers: f.total.customers,
      mqlToSqlRate: f.total.mqlToSqlRate,
      costPerMql: f.total.costPerMql,
    },
    analyzed,
    vacuumMs: Math.round(vacuumMs),
    vacuumed,
  };
}

const once = (fn: () => Promise<void>) => {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
};

async function main() {
  const o = new Command()
    .option('--leads <n>', 'synthetic leads', (v) => Number.parseInt(v, 10), 50_000)
    .option('--runs <n>', 'timed runs per figure (after one warm-up)', (v) => Number.parseInt(v, 10), 7)
    .option('--seed <n>', 'data seed', (v) => Number.parseInt(v, 10), 42)
    .option('--postgres', 'also on a real PostgreSQL server (initdb/pg_ctl, as the tests run it)')
    .parse()
    .opts<{ leads: number; runs: number; seed: number; postgres?: boolean }>();
  if (!(o.leads > 0) || !(o.runs > 0)) throw new Error('--leads and --runs must be positive numbers');
  const cleanups = new Cleanups();
  const results = [];
  try {
    const t0 = performance.now();
    const rows = makeRows(o.leads, o.seed);
    process.stderr.write(`[bench] ${o.leads} leads generated in ${Math.round(performance.now() - t0)} ms\n`);
    const dir = mkdtempSync(join(os.tmpdir(), 'ledger-bench-'));
    cleanups.add('embedded dir', () => rmSync(dir, { recursive: true, force: true }));
    const embedded = await openDatabase({ dataDir: dir });
    const closeEmbedded = once(() => embedded.close());
    cleanups.add('embedded database', closeEmbedded);
    process.stderr.write('[bench] embedded…\n');
    results.push(await measure('embedded', embedded, rows, o.runs));
    await closeEmbedded();
    if (o.postgres) {
      const server = await startPostgres();
      cleanups.add('postgres', () => server.stop());
      const db = await openDatabase({ url: server.url });
      cleanups.add('postgres pool', () => db.close());
      process.stderr.write('[bench] postgres…\n');
      results.push(await measure('postgres', db, rows, o.runs));
    }
  } finally {
    await cleanups.runAll();
  }
  const report = {
    at: new Date().toISOString(),
    leads: o.leads,
    runs: o.runs,
    seed: o.seed,
    cpus: os.cpus().length,
    node: process.version,
    unit: 'ms (median)',
    results,
  };
  const json = JSON.stringify(report, null, 2);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', `ledger-${report.at.replace(/[:.]/g, '-')}.json`), `${json}\n`);
  process.stdout.write(`${json}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`[bench] ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
