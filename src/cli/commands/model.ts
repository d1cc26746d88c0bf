/**
 * `leadctl model train --csv …` and `leadctl model score …` (CONTRACT.md §Scoring models): a
 * scorecard learned from a CSV export, written as a complete config, and any config run over a
 * CSV. Neither needs Temporal or the ledger: they read the config and the files only.
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { validateConfig } from '../../config-file.js';
import { describeRule, fitScore } from '../../domain/scoring.js';
import { learnedConfig, learnedScoring, readTable, scoreTable, scoredCsv } from '../../learn/apply.js';
import { accuracyAt, rocAuc } from '../../learn/roc.js';
import { profileOf, trainScorecard, TrainingError } from '../../learn/scorecard.js';
import { type Cli, type Context, intOption, UsageError } from '../shared.js';

interface TrainOptions {
  csv?: string;
  outcomeColumn: string;
  idColumn: string;
  out: string;
  holdout: number;
  seed: number;
  positive?: string;
  precision: number;
  sqlPrecision: number;
  l2: number;
  top: number;
}

function shareOption(field: string) {
  return (value: string) => {
    const n = Number(value);
    if (!(n > 0 && n < 1)) throw new UsageError(field, `expected a number between 0 and 1, got "${value}"`);
    return n;
  };
}

function positiveNumber(field: string) {
  return (value: string) => {
    const n = Number(value);
    if (!(n >= 0) || value.trim() === '')
      throw new UsageError(field, `expected a number of at least 0, got "${value}"`);
    return n;
  };
}

const MAPPING_HELP =
  '\nCSV headers become profile field names in camelCase ("Lead Source" -> leadSource, a clash gets _2); ' +
  '`model train` prints the mapping and `model score` applies the same one. Neither connects to Temporal.';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

async function train(ctx: Context, o: TrainOptions, print: (s: string) => void): Promise<number> {
  if (!o.csv) throw new UsageError('csv', 'training from the ledger is not built yet: name a CSV export with --csv');
  const table = guard(() => readTable(o.csv!));
  const sc = guard(() =>
    trainScorecard(table, {
      outcomeColumn: o.outcomeColumn,
      idColumn: o.idColumn,
      holdout: o.holdout,
      seed: o.seed,
      positive: o.positive,
      l2: o.l2,
    }),
  );
  const learned = learnedScoring(sc, o.precision, o.sqlPrecision);
  const baseFile = ctx.config().file;
  const base = parseYaml(readFileSync(baseFile, 'utf8')) as Record<string, unknown>;
  const profileFields = sc.fields.filter((_, i) => i !== sc.idIndex && i !== sc.outcomeIndex).map((f) => f.field);
  const { raw, dropped } = learnedConfig(base, learned, profileFields);
  const out = resolve(o.out);
  // A learned config the project's own validation refuses is a bug here: validateConfig throws it loudly.
  const loaded = validateConfig(raw, out, process.cwd());

  // The holdout scored by the engine's own fitScore under the emitted config: the figures reported.
  const skip = new Set([sc.idIndex, sc.outcomeIndex]);
  const names = sc.fields.map((f) => f.field);
  const engine = sc.test.map((r) => fitScore(profileOf(table.rows[r]!, names, skip), loaded.config.scoring.models[0]!));
  const mismatch = sc.test.findIndex((r, i) => engine[i] !== sc.points(r));
  if (mismatch >= 0) throw new Error(`bug: the engine scores holdout row ${sc.test[mismatch]} differently`);
  const y = sc.test.map((r) => sc.labels.get(r)!);
  const th = learned.thresholds;
  writeFileSync(out, stringify(raw, { lineWidth: 0 }));

  const positives = [...sc.labels.values()].filter(Boolean).length;
  const lines = [
    `rows with an outcome: ${sc.rows} (converted ${positives}, ${pct(positives / sc.rows)}); ` +
      `train ${sc.train.length}, holdout ${sc.test.length} (seed ${o.seed})`,
    `holdout ROC AUC: integer scorecard ${rocAuc(engine, y).toFixed(4)} (the engine's fitScore on ${out}), ` +
      `unrounded regression ${rocAuc(sc.test.map(sc.logit), y).toFixed(4)}`,
    `holdout accuracy at mql ${th.mql}: ${pct(accuracyAt(engine, y, th.mql))}`,
    `thresholds: mql ${th.mql} (training precision >= ${o.precision}), sql ${th.sql} ` +
      `(training precision >= ${o.sqlPrecision}), minFit ${th.minFit} (the lowest fit: never blocks)`,
    `scale: ${sc.scale.toFixed(2)} points per unit of log-odds; intercept ${sc.intercept.toFixed(3)} ` +
      `(in the thresholds); ${learned.fit.length} rules; IRLS ${sc.iterations} iterations, L2 ${o.l2}`,
    'fields:',
    ...sc.fields.filter((_, i) => !skip.has(i)).map((f) => `  ${f.header} -> ${f.field}`),
    ...(sc.skipped.length ? ['skipped columns:', ...sc.skipped.map((s) => `  ${s.column}: ${s.reason}`)] : []),
    ...(dropped.length ? ['disqualify rules of the base config dropped (the model scores that field):'] : []),
    ...dropped.map((r) => `  ${describeRule(r as never)}`),
    `rules (top ${Math.min(o.top, learned.fit.length)} by |points|):`,
    ...[...learned.fit]
      .sort((a, b) => Math.abs(b.points) - Math.abs(a.points))
      .slice(0, o.top)
      .map((r) => `  ${String(r.points).padStart(5)}  ${describeRule(r)}`),
    `wrote ${out}`,
  ];
  for (const l of lines) print(l);
  return 0;
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TrainingError) throw new UsageError('csv', err.message);
    throw err;
  }
}

async function score(ctx: Context, file: string, o: { idColumn: string }, print: (s: string) => void) {
  const table = guard(() => readTable(file));
  const rows = guard(() => scoreTable(table, o.idColumn, ctx.config().config));
  print(scoredCsv(rows));
  // bin/leadctl.mjs calls process.exit, which drops what a pipe has not taken yet: wait for stdout to drain.
  await new Promise<void>((done) => process.stdout.write('', () => done()));
  return 0;
}

export function addModelCommand(program: Command, { io, action }: Cli) {
  const model = program.command('model').description('scoring models: learn one from outcomes, score a CSV');
  model
    .command('train')
    .description(
      'learn integer fit rules (a scorecard) from a CSV export and write a complete config: the running ' +
        'one (--config) with the learned fit rules and thresholds; prints holdout ROC AUC, accuracy and the rules',
    )
    .option('--csv <file>', 'the CSV export: one row per lead, its outcome in --outcome-column')
    .requiredOption('--outcome-column <column>', 'the column saying whether the lead converted')
    .requiredOption('--id-column <column>', 'the lead id column (not a feature)')
    .requiredOption('--out <file.yaml>', 'where to write the learned config')
    .option('--holdout <share>', 'share of rows held out for the figures', shareOption('holdout'), 0.3)
    .option('--seed <n>', 'seed of the split', intOption('seed'), 1)
    .option('--positive <value>', 'the outcome value meaning converted (default 1/true/yes/won)')
    .option('--precision <p>', 'training precision the mql threshold reaches', shareOption('precision'), 0.7)
    .option('--sql-precision <p>', 'training precision the sql threshold reaches', shareOption('sqlPrecision'), 0.85)
    .option('--l2 <lambda>', 'L2 penalty of the regression', positiveNumber('l2'), 1)
    .option('--top <n>', 'rules to print', intOption('top'), 25)
    .addHelpText('after', MAPPING_HELP)
    .action(action((ctx, _json, o: TrainOptions) => train(ctx, o, io.out)));
  model
    .command('score')
    .description(
      'score each CSV row under --config as a new lead (engagement 0): CSV leadId,score,fit,engagement,stage',
    )
    .argument('<file.csv>', 'the CSV to score')
    .requiredOption('--id-column <column>', 'the lead id column')
    .addHelpText('after', MAPPING_HELP)
    .action(action((ctx, _json, file: string, o: { idColumn: string }) => score(ctx, file, o, io.out)));
}
