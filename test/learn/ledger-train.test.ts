/**
 * `leadctl model train` from the ledger (no --csv) on both backends, and `--exclude` on both
 * paths: leadctl run in this process (src/cli/leadctl.ts main) against a seeded ledger, through
 * DATABASE_URL as a user's leadctl finds it. The synthetic leads' profiles decide their outcome
 * with noise (a seeded PRNG), so a model that learned anything separates them well.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/leadctl.js';
import { validateConfig } from '../../src/config-file.js';
import type { Rule } from '../../src/domain/config.js';
import type { Stage } from '../../src/domain/stages.js';
import { ROOT } from '../../src/env.js';
import { LeadLedger, type LedgerOutcome } from '../../src/ledger/ledger.js';
import { mulberry32 } from '../../src/random.js';
import { BACKEND_TITLES, BACKENDS, testLedgerDatabase, useLedgerDatabase } from '../helpers/ledger.js';

const CONFIG = join(ROOT, 'config', 'default.yaml');
const dir = mkdtempSync(join(tmpdir(), 'ledger-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let outs = 0;
const outFile = () => join(dir, `learned-${++outs}.yaml`);

/** leadctl in this process, against the ledger at `databaseUrl` (none: no ledger). */
async function leadctl(databaseUrl: string | undefined, ...args: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io = { out: (s: string) => void stdout.push(s), err: (s: string) => void stderr.push(s), stderrIsTTY: false };
  const saved = { DATABASE_URL: process.env.DATABASE_URL, TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS };
  if (databaseUrl) process.env.DATABASE_URL = databaseUrl;
  else delete process.env.DATABASE_URL;
  // No Temporal anywhere: an address nothing listens on, so a connection attempt would fail the run.
  process.env.TEMPORAL_ADDRESS = '127.0.0.1:1';
  try {
    const code = await main(['node', 'leadctl', '--config', CONFIG, ...args], io);
    return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const aucOf = (stdout: string) => {
  const m = /holdout ROC AUC: integer scorecard (\d\.\d+)/.exec(stdout);
  assert.ok(m, stdout);
  return Number(m[1]);
};

/** The learned config as written: validated by the project's own validation (throws if not). */
function learned(file: string) {
  const loaded = validateConfig(parseYaml(readFileSync(file, 'utf8')), file, ROOT);
  return loaded.config.scoring.models[0]!.fit as (Rule & { points: number })[];
}

interface Seeded {
  leadId: string;
  profile: Record<string, unknown>;
  stage: Stage;
  outcomes?: Pick<LedgerOutcome, 'outcome' | 'reason'>[];
  bySales?: boolean;
}

/** Writes leads as their workflows would: the row with the public state's profile, and its outcome rows. */
async function write(ledger: LeadLedger, leads: Seeded[]) {
  for (const l of leads) {
    await ledger.record({
      leadId: l.leadId,
      outcomes: (l.outcomes ?? []).map((o, i) => ({
        ...o,
        occurredAt: new Date(Date.UTC(2026, 0, 10 + i)).toISOString(),
      })),
      lead: {
        leadId: l.leadId,
        stage: l.stage,
        consent: 'subscribed',
        score: 0,
        createdAt: '2026-01-01T00:00:00.000Z',
        state: { leadId: l.leadId, stage: l.stage, profile: l.profile },
        carried: {
          v: 1,
          core: { leadId: l.leadId, stage: l.stage, ...(l.bySales ? { disqualifiedBySales: true } : {}) },
        },
        version: 1,
      },
    });
  }
}

const INDUSTRIES = ['software', 'retail', 'education', 'healthcare'];
const SENIORITIES = ['c_level', 'manager', 'junior'];

/**
 * `n` leads whose profile decides the odds of winning (log-odds from industry, seniority, company
 * size, a boolean and a small numeric band), each lead's outcome drawn from those odds; every
 * tenth lead has no outcome yet. Personal fields and a CRM id (unique text) ride along.
 */
function synthetic(n: number, seed: number, prefix = 's'): Seeded[] {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  return Array.from({ length: n }, (_, i) => {
    const industry = pick(INDUSTRIES);
    const seniority = pick(SENIORITIES);
    const companySize = Math.floor(10 ** (1 + rand() * 3));
    const newsletter = rand() < 0.5;
    const band = 1 + Math.floor(rand() * 4);
    const logit =
      (industry === 'software' ? 2.5 : industry === 'education' ? -2.5 : 0) +
      (seniority === 'c_level' ? 2 : seniority === 'junior' ? -2 : 0) +
      (companySize >= 500 ? 1.5 : -0.5) +
      (newsletter ? 1 : -1) +
      (band - 2.5) * 0.8;
    const won = rand() < 1 / (1 + Math.exp(-logit));
    const leadId = `${prefix}${String(i).padStart(4, '0')}`;
    const profile = {
      email: `lead${i}@corp${i}.example`,
      firstName: pick(['Ana', 'Ben', 'Chloe', 'Dev']),
      lastName: pick(['Ng', 'Ortiz', 'Park']),
      crmId: `CRM-${(i * 7919) % 100000}`,
      industry,
      seniority,
      companySize,
      newsletter,
      band,
      region: pick(['north', 'south']),
    };
    if (i % 10 === 9) return { leadId, profile, stage: 'mql' as Stage };
    if (won) {
      // Most wins have their outcome row; some only say so by their stage (an imported customer).
      return i % 4 === 0
        ? { leadId, profile, stage: 'customer' as Stage }
        : { leadId, profile, stage: 'customer' as Stage, outcomes: [{ outcome: 'accepted' }, { outcome: 'won' }] };
    }
    const r = i % 3;
    if (r === 0)
      return { leadId, profile, stage: 'recycled' as Stage, outcomes: [{ outcome: 'accepted' }, { outcome: 'lost' }] };
    if (r === 1)
      return { leadId, profile, stage: 'recycled' as Stage, outcomes: [{ outcome: 'rejected', reason: 'not_ready' }] };
    return {
      leadId,
      profile,
      stage: 'disqualified' as Stage,
      bySales: true,
      outcomes: [{ outcome: 'rejected', reason: 'bad_fit' }],
    };
  }) as Seeded[];
}

for (const backend of BACKENDS) {
  describe(`model train from the ledger on ${BACKEND_TITLES[backend]}`, () => {
    describe('the label query', () => {
      const db = useLedgerDatabase(backend);
      const profile = { industry: 'software', companySize: 120, newsletter: true, country: 'DE' };
      before(() =>
        write(db.ledger, [
          { leadId: 'won', profile, stage: 'customer', outcomes: [{ outcome: 'accepted' }, { outcome: 'won' }] },
          { leadId: 'customer-only', profile, stage: 'customer' },
          { leadId: 'lost', profile, stage: 'recycled', outcomes: [{ outcome: 'accepted' }, { outcome: 'lost' }] },
          { leadId: 'rejected', profile, stage: 'recycled', outcomes: [{ outcome: 'rejected', reason: 'not_ready' }] },
          {
            leadId: 'rejected-bad-fit',
            profile,
            stage: 'disqualified',
            bySales: true,
            outcomes: [{ outcome: 'rejected', reason: 'bad_fit' }],
          },
          { leadId: 'disqualified-by-sales', profile, stage: 'disqualified', bySales: true },
          { leadId: 'disqualified-by-rule', profile, stage: 'disqualified' },
          {
            leadId: 'rejected-then-won',
            profile,
            stage: 'customer',
            outcomes: [{ outcome: 'rejected', reason: 'not_ready' }, { outcome: 'accepted' }, { outcome: 'won' }],
          },
          { leadId: 'accepted', profile, stage: 'opportunity', outcomes: [{ outcome: 'accepted' }] },
          { leadId: 'no-outcome', profile, stage: 'mql' },
        ]),
      );
      const labels = async (outcome: 'won' | 'accepted') =>
        Object.fromEntries((await db.ledger.trainingRows(outcome)).map((r) => [r.leadId, r.positive]));

      test('--outcome won: won or customer positive; lost, rejected, disqualified by sales negative; the rest absent', async () => {
        assert.deepEqual(await labels('won'), {
          won: true,
          'customer-only': true,
          'rejected-then-won': true,
          lost: false,
          rejected: false,
          'rejected-bad-fit': false,
          'disqualified-by-sales': false,
        });
      });

      test('--outcome accepted: accepted or further positive; rejected negative', async () => {
        assert.deepEqual(await labels('accepted'), {
          won: true,
          'customer-only': true,
          'rejected-then-won': true,
          lost: true,
          accepted: true,
          rejected: false,
          'rejected-bad-fit': false,
          'disqualified-by-sales': false,
        });
      });

      test('each row carries the profile of the public state, in lead id order', async () => {
        const rows = await db.ledger.trainingRows('won');
        assert.deepEqual(
          rows.map((r) => r.leadId),
          rows.map((r) => r.leadId).sort(),
        );
        for (const r of rows) assert.deepEqual(r.profile, profile);
      });
    });

    describe('leadctl model train', () => {
      const db = useLedgerDatabase(backend);
      before(() => write(db.ledger, synthetic(400, 7)));

      test('learns a config that validates, with a holdout AUC well above chance', async (t) => {
        const out = outFile();
        const r = await leadctl(db.url, 'model', 'train', '--out', out);
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
        t.diagnostic(r.stdout.split('\n').slice(0, 3).join(' | '));
        assert.ok(aucOf(r.stdout) > 0.8, r.stdout);
        assert.match(r.stdout, /^from the ledger \(--outcome won/m);
        // 360 of the 400 have an outcome; the tenth without one is left out.
        assert.match(r.stdout, /^leads with an outcome: 360 /m);
        const rules = learned(out);
        const fields = new Set(rules.map((x) => x.field));
        for (const f of ['industry', 'seniority', 'companySize']) assert.ok(fields.has(f), `no rule on ${f}`);
        for (const f of ['email', 'firstName', 'lastName', 'crmId']) assert.ok(!fields.has(f), `a rule on ${f}`);
        assert.match(r.stdout, /^ {2}email: personal/m);
        assert.match(r.stdout, /^ {2}crmId: unique per lead/m);
        // Categories carry the profile's own types: the engine's `in` compares true with true, not "true".
        const typed = rules.filter((x) => (x.field === 'newsletter' || x.field === 'band') && x.in);
        assert.ok(typed.length, 'no category rule on newsletter or band');
        for (const x of typed) for (const v of x.in!) assert.notEqual(typeof v, 'string', JSON.stringify(x));
        // The base config's disqualify rules were written for these very profiles: kept.
        const config = parseYaml(readFileSync(out, 'utf8'));
        const base = parseYaml(readFileSync(CONFIG, 'utf8'));
        assert.deepEqual(config.scoring.disqualify, base.scoring.disqualify);
      });

      test('--outcome accepted learns from the accepted/rejected labels', async (t) => {
        const r = await leadctl(db.url, 'model', 'train', '--outcome', 'accepted', '--out', outFile());
        t.diagnostic(r.stdout.split('\n').slice(0, 3).join(' | '));
        // Accepted: every win and loss (accepted first) against the rejections, still above chance.
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
        assert.match(r.stdout, /^from the ledger \(--outcome accepted/m);
        assert.ok(aucOf(r.stdout) > 0.6, r.stdout);
      });

      test('--exclude leaves the named fields out of the rules and says so', async () => {
        const out = outFile();
        const r = await leadctl(db.url, 'model', 'train', '--exclude', 'industry, region', '--out', out);
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
        assert.match(r.stdout, /^ {2}industry: excluded$/m);
        assert.match(r.stdout, /^ {2}region: excluded$/m);
        const fields = new Set(learned(out).map((x) => x.field));
        assert.ok(!fields.has('industry') && !fields.has('region'), [...fields].join(', '));
        assert.ok(fields.has('seniority'));
      });

      test('--exclude of a field no lead has is refused (exit 2), no file written', async () => {
        const out = outFile();
        const r = await leadctl(db.url, 'model', 'train', '--exclude', 'industri', '--out', out);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /--exclude: no column "industri"/);
        assert.equal(existsSync(out), false);
      });

      test('the CSV options are refused without --csv', async () => {
        const r = await leadctl(db.url, 'model', 'train', '--outcome-column', 'Converted', '--out', outFile());
        assert.equal(r.code, 2);
        assert.match(r.stderr, /--outcome-column: only with --csv/);
      });
    });

    test('too few outcomes: the clear error, exit 2, and no file', async () => {
      const db = await testLedgerDatabase(backend);
      // 30 won, the rest not: fewer than 50 of a class.
      const leads = synthetic(200, 3, 'f').map((l, i): Seeded =>
        i < 30
          ? { ...l, stage: 'customer', outcomes: [{ outcome: 'won' }] }
          : { ...l, stage: 'recycled', bySales: false, outcomes: [{ outcome: 'lost' }] },
      );
      await write(new LeadLedger(db.pool), leads);
      const out = outFile();
      const r = await leadctl(db.url, 'model', 'train', '--out', out);
      assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /too few outcomes to train on: 30 converted and 170 not \(at least 50 of each needed\)/);
      assert.match(r.stderr, /converted: won or customer/);
      assert.equal(existsSync(out), false);
    });
  });
}

describe('model train --csv --exclude', () => {
  // "Lead Number" leaks the outcome: the converted rows got the low numbers.
  const csv = join(dir, 'leads.csv');
  const rand = mulberry32(11);
  const lines = ['Prospect ID,Lead Number,Lead Source,Converted'];
  for (let i = 0; i < 300; i++) {
    const source = ['Google', 'Referral', 'Olark Chat'][i % 3]!;
    const converted = rand() < (source === 'Referral' ? 0.7 : 0.3) ? 1 : 0;
    lines.push(`p${i},${converted ? 1000 + i : 5000 + i},${source},${converted}`);
  }
  writeFileSync(csv, lines.join('\n'));
  const csvArgs = ['model', 'train', '--csv', csv, '--outcome-column', 'Converted', '--id-column', 'Prospect ID'];

  test('without it the leaking column dominates the rules', async () => {
    const out = outFile();
    const r = await leadctl(undefined, ...csvArgs, '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(learned(out).some((x) => x.field === 'leadNumber'));
    assert.ok(aucOf(r.stdout) > 0.95, r.stdout);
  });

  test("--exclude 'Lead Number' leaves it out and reports it", async () => {
    for (const name of ['Lead Number', 'leadNumber']) {
      const out = outFile();
      const r = await leadctl(undefined, ...csvArgs, '--exclude', name, '--out', out);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^skipped columns:\n {2}Lead Number: excluded$/m);
      const rules = learned(out);
      assert.ok(!rules.some((x) => x.field === 'leadNumber'));
      assert.ok(rules.some((x) => x.field === 'leadSource'));
      assert.ok(aucOf(r.stdout) < 0.9, r.stdout);
    }
  });

  test('--csv without --id-column or --outcome-column names the option (exit 2)', async () => {
    const noId = await leadctl(
      undefined,
      'model',
      'train',
      '--csv',
      csv,
      '--outcome-column',
      'Converted',
      '--out',
      outFile(),
    );
    assert.equal(noId.code, 2);
    assert.match(noId.stderr, /--id-column: required with --csv/);
    const noOutcome = await leadctl(
      undefined,
      'model',
      'train',
      '--csv',
      csv,
      '--id-column',
      'Prospect ID',
      '--out',
      outFile(),
    );
    assert.equal(noOutcome.code, 2);
    assert.match(noOutcome.stderr, /--outcome-column: required with --csv/);
  });
});
