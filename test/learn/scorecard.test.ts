/** The scorecard trained on the X Education export (issue 12 part 3), and `leadctl model` as users run it. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { validateConfig } from '../../src/config-file.js';
import { ROOT } from '../../src/env.js';
import { learnedConfig, learnedScoring, readTable, scoreTable } from '../../src/learn/apply.js';
import { rocAuc } from '../../src/learn/roc.js';
import { type Table, trainScorecard, TrainingError } from '../../src/learn/scorecard.js';

const CSV = '/work/shared/data/x-education-leads.train.csv';
const OPTS = { outcomeColumn: 'Converted', idColumn: 'Prospect ID', holdout: 0.3, seed: 1 };

function run(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // No Temporal anywhere: an address nothing listens on, so a connection attempt would fail the run.
    const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', LEAD_CONFIG: join(ROOT, 'config', 'default.yaml') };
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'leadctl.mjs'), ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('scorecard on x-education-leads.train.csv (seed 1, 70/30)', () => {
  const table = readTable(CSV);
  const sc = trainScorecard(table, OPTS);
  const y = sc.test.map((r) => sc.labels.get(r)!);

  it('reaches 0.88 holdout AUC in integer points, within 0.005 of the unrounded regression', () => {
    const integer = rocAuc(sc.test.map(sc.points), y);
    const raw = rocAuc(sc.test.map(sc.logit), y);
    assert.ok(integer >= 0.88, `integer AUC ${integer}`);
    assert.ok(Math.abs(integer - raw) < 0.005, `integer ${integer} vs unrounded ${raw}`);
    assert.ok(sc.rules.every((r) => Number.isSafeInteger(r.points)));
    assert.equal(sc.train.length + sc.test.length, sc.rows);
    assert.equal(sc.test.length, Math.round(sc.rows * 0.3));
  });

  it('emits a config that validates, and the engine scores the holdout exactly as the scorecard sums', () => {
    const base = parseYaml(readFileSync(join(ROOT, 'config', 'default.yaml'), 'utf8')) as Record<string, unknown>;
    const learned = learnedScoring(sc);
    const { raw, dropped } = learnedConfig(
      base,
      learned,
      sc.fields.map((f) => f.field),
    );
    assert.deepEqual(
      dropped.map((r) => r.field),
      ['country'],
    );
    const loaded = validateConfig(raw, join(ROOT, 'config', 'learned.yaml'), ROOT);
    const t = learned.thresholds;
    assert.ok(t.sql >= t.mql && t.minFit <= t.mql);
    const holdout: Table = { headers: table.headers, rows: sc.test.map((r) => table.rows[r]!) };
    const scored = scoreTable(holdout, 'Prospect ID', loaded.config);
    scored.forEach((s, i) => {
      const r = sc.test[i]!;
      assert.equal(s.leadId, table.rows[r]![sc.idIndex]);
      assert.equal(s.fit, sc.points(r));
      assert.equal(s.score, s.fit);
      assert.equal(s.engagement, 0);
      assert.equal(s.stage, s.score >= t.sql ? 'sql' : s.score >= t.mql ? 'mql' : 'lead');
    });
  });

  it('reports and skips constant columns', () => {
    assert.ok(sc.skipped.some((s) => s.column === 'Magazine' && /constant/.test(s.reason)));
    assert.ok(!sc.rules.some((r) => r.field === 'magazine'));
  });
});

describe('bad input', () => {
  const table = readTable(CSV);
  it('refuses too few outcomes of a class', () => {
    const oi = table.headers.indexOf('Converted');
    let positives = 0;
    const rows = table.rows.filter((r) => r[oi] !== '1' || ++positives <= 40);
    assert.throws(() => trainScorecard({ headers: table.headers, rows }, OPTS), {
      name: 'TrainingError',
      message: /too few outcomes to train on: 40 converted/,
    });
  });

  it('reports an all-blank column and skips it', () => {
    const headers = [...table.headers, 'Empty Column'];
    const rows = table.rows.slice(0, 1500).map((r) => [...r, '']);
    const sc = trainScorecard({ headers, rows }, OPTS);
    assert.deepEqual(
      sc.skipped.find((s) => s.column === 'Empty Column'),
      { column: 'Empty Column', reason: 'all blank' },
    );
  });

  it('names a missing column', () => {
    assert.throws(() => trainScorecard(table, { ...OPTS, outcomeColumn: 'Won' }), TrainingError);
  });
});

describe('leadctl model (child processes, no Temporal)', () => {
  it('trains, writes a config, and model score scores the CSV under it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'model-'));
    const out = join(dir, 'learned.yaml');
    const t = await run(
      'model',
      'train',
      '--csv',
      CSV,
      '--outcome-column',
      'Converted',
      '--id-column',
      'Prospect ID',
      '--out',
      out,
    );
    assert.equal(t.code, 0, t.stderr);
    const auc = /holdout ROC AUC: integer scorecard (\d\.\d+)/.exec(t.stdout);
    assert.ok(auc && Number(auc[1]) >= 0.88, t.stdout);
    assert.match(t.stdout, /Lead Source -> leadSource/);
    assert.match(t.stdout, /Magazine: constant/);

    const s = await run('--config', out, 'model', 'score', '--id-column', 'Prospect ID', CSV);
    assert.equal(s.code, 0, s.stderr);
    const lines = s.stdout.trim().split('\n');
    assert.equal(lines[0], 'leadId,score,fit,engagement,stage');
    assert.equal(lines.length, readTable(CSV).rows.length + 1);
    assert.match(lines[1]!, /^[0-9a-f-]+,-?\d+,-?\d+,0,(lead|mql|sql)$/);
  });

  it('exits 2 on bad input', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'model-')), 'x.yaml');
    const r = await run(
      'model',
      'train',
      '--csv',
      CSV,
      '--outcome-column',
      'Nope',
      '--id-column',
      'Prospect ID',
      '--out',
      out,
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no outcome column "Nope"/);
    const m = await run(
      'model',
      'train',
      '--csv',
      '/nonexistent.csv',
      '--outcome-column',
      'C',
      '--id-column',
      'I',
      '--out',
      out,
    );
    assert.equal(m.code, 2);
    assert.match(m.stderr, /cannot read/);
  });
});
