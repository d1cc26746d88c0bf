/**
 * `leadctl model train` and `leadctl model score …` (CONTRACT.md §Scoring models): a scorecard
 * learned from the ledger's leads and their outcomes, or from a CSV export (--csv), written as a
 * complete config, and any config run over a CSV. Training from a CSV and scoring need neither
 * Temporal nor the ledger; training from the ledger opens the ledger (DATABASE_URL, else the
 * embedded one under DATA_DIR), never Temporal.
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { validateConfig } from '../../config-file.js';
import { configByVersion, runningVersion } from '../../ledger/configs.js';
import type { Profile } from '../../domain/lead.js';
import { describeRule, fitScore } from '../../domain/scoring.js';
import { TRAINING_OUTCOMES, type TrainingOutcome } from '../../ledger/training.js';
import { learnedConfig, learnedScoring, readTable, scoreTable, scoredCsv } from '../../learn/apply.js';
import { ID_HEADER, OUTCOME_HEADER, profileTable } from '../../learn/ledger-table.js';
import { accuracyAt, rocAuc } from '../../learn/roc.js';
import {
  type FitRule,
  profileOf,
  type Scorecard,
  type Skipped,
  trainScorecard,
  type TrainOptions as ScorecardOptions,
  TrainingError,
} from '../../learn/scorecard.js';
import { type Cli, type Context, intOption, UsageError } from '../shared.js';

interface TrainOptions {
  csv?: string;
  outcomeColumn?: string;
  idColumn?: string;
  /** From the ledger: what counts as converted (TRAINING_OUTCOMES; won when not given). */
  outcome?: TrainingOutcome;
  exclude?: string[];
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

function outcomeOption(value: string): TrainingOutcome {
  if (!(TRAINING_OUTCOMES as readonly string[]).includes(value)) {
    throw new UsageError('--outcome', `must be one of ${TRAINING_OUTCOMES.join(', ')}, got "${value}"`);
  }
  return value as TrainingOutcome;
}

/** `--exclude a,b` (repeatable): the names, trimmed. */
function excludeOption(value: string, previous: string[] = []): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw new UsageError('--exclude', `expected comma-separated column names, got "${value}"`);
  return [...previous, ...names];
}

const LEDGER_HELP =
  "\nWithout --csv: the ledger's leads with a known outcome. --outcome won (the default): a won outcome or " +
  'stage customer is converted; a lost or rejected outcome or a disqualification by sales is not. --outcome ' +
  'accepted: accepted (or opportunity, customer, won, lost) is converted; rejected is not. Every profile field ' +
  'is a column except email, firstName, lastName and text fields unique per lead (ids); --exclude leaves out more.';

const MAPPING_HELP =
  '\nCSV headers become profile field names in camelCase ("Lead Source" -> leadSource, a clash gets _2); ' +
  '`model train` prints the mapping and `model score` applies the same one. Neither connects to Temporal.';

const LABEL_HELP: Record<TrainingOutcome, string> = {
  won: 'converted: won or customer; not: lost, rejected or disqualified by sales',
  accepted: 'converted: accepted, opportunity, customer, won or lost; not: rejected or disqualified by sales',
};

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** A scorecard trained on a table, and what the engine is to score for each of its rows. */
interface Trained {
  /** Where the rows came from, and what one is ("rows" of a CSV, "leads" of the ledger). */
  source: string;
  noun: string;
  sc: Scorecard;
  /** The fit rules to emit: the scorecard's (from the ledger, with values typed as its profiles hold them). */
  rules: FitRule[];
  /** The profile the engine scores for a table row: what `model score` or the live lead has. */
  profileAt: (row: number) => Profile;
  /** Fields whose disqualify rules in the base config the model replaces (a CSV's: another vocabulary). */
  replaces: string[];
}

/** What both sources give trainScorecard alike. */
type Shared = Pick<ScorecardOptions, 'holdout' | 'seed' | 'l2'>;

async function train(ctx: Context, o: TrainOptions, print: (s: string) => void): Promise<number> {
  const opts: Shared = { holdout: o.holdout, seed: o.seed, l2: o.l2 };
  const excluded = (o.exclude ?? []).map((column) => ({ column, reason: 'excluded' }));
  const trained = o.csv ? fromCsv(o, opts, excluded) : await fromLedger(ctx, o, opts, excluded);
  emit(o, trained, o.csv ? baseOfFile(ctx) : await runningBase(ctx), print);
  return 0;
}

/** The config file (--config / LEAD_CONFIG) as it reads: what a learned config from a CSV builds on. */
const baseOfFile = (ctx: Context) => parseYaml(readFileSync(ctx.config().file, 'utf8')) as Record<string, unknown>;

/** The running config, as a learned config from the ledger builds on: the ledger's latest rollout, else the file. */
async function runningBase(ctx: Context): Promise<Record<string, unknown>> {
  const pool = (await ctx.ledger()).pool;
  const version = await runningVersion(pool);
  const row = version ? await configByVersion(pool, version) : undefined;
  return row ? (row.raw as Record<string, unknown>) : baseOfFile(ctx);
}

function fromCsv(o: TrainOptions, opts: Shared, excluded: Skipped[]): Trained {
  if (o.outcome)
    throw new UsageError('--outcome', 'only without --csv (a CSV names its outcome with --outcome-column)');
  if (!o.outcomeColumn)
    throw new UsageError('--outcome-column', 'required with --csv: the column saying whether the lead converted');
  if (!o.idColumn) throw new UsageError('--id-column', 'required with --csv: the lead id column');
  const table = guard('csv', () => readTable(o.csv!));
  const sc = guard('csv', () =>
    trainScorecard(table, {
      ...opts,
      outcomeColumn: o.outcomeColumn!,
      idColumn: o.idColumn!,
      positive: o.positive,
      exclude: excluded,
    }),
  );
  const skip = new Set([sc.idIndex, sc.outcomeIndex]);
  const names = sc.fields.map((f) => f.field);
  return {
    source: o.csv!,
    noun: 'rows',
    sc,
    rules: sc.rules,
    profileAt: (r) => profileOf(table.rows[r]!, names, skip),
    replaces: names.filter((_, i) => !skip.has(i)),
  };
}

async function fromLedger(ctx: Context, o: TrainOptions, opts: Shared, excluded: Skipped[]): Promise<Trained> {
  for (const [given, flag] of [
    [o.outcomeColumn, '--outcome-column'],
    [o.idColumn, '--id-column'],
    [o.positive, '--positive'],
  ] as const) {
    if (given !== undefined)
      throw new UsageError(flag, 'only with --csv (from the ledger, --outcome says what converted)');
  }
  const outcome = o.outcome ?? 'won';
  const ledger = await ctx.ledger();
  const rows = await ledger.trainingRows(outcome);
  const pt = profileTable(rows);
  const sc = guard(
    'ledger',
    () =>
      trainScorecard(pt.table, {
        ...opts,
        outcomeColumn: OUTCOME_HEADER,
        idColumn: ID_HEADER,
        fields: pt.fields,
        exclude: [...pt.exclude, ...excluded],
      }),
    `from the ledger, ${LABEL_HELP[outcome]}`,
  );
  return {
    source: `the ledger (--outcome ${outcome}: ${LABEL_HELP[outcome]})`,
    noun: 'leads',
    sc,
    rules: pt.typed(sc.rules),
    profileAt: (r) => rows[r]!.profile as Profile,
    // The ledger's profiles are the ones the base config's disqualify rules were written for: kept.
    replaces: [],
  };
}

/** Writes the learned config and prints the figures, the same for a CSV and the ledger. */
function emit(o: TrainOptions, t: Trained, base: Record<string, unknown>, print: (s: string) => void) {
  const { sc } = t;
  const learned = learnedScoring({ ...sc, rules: t.rules }, o.precision, o.sqlPrecision);
  const { raw, dropped } = learnedConfig(base, learned, t.replaces);
  const out = resolve(o.out);
  // A learned config the project's own validation refuses is a bug here: validateConfig throws it loudly.
  const loaded = validateConfig(raw, out, process.cwd());

  // The holdout scored by the engine's own fitScore under the emitted config: the figures reported.
  const skip = new Set([sc.idIndex, sc.outcomeIndex]);
  const engine = sc.test.map((r) => fitScore(t.profileAt(r), loaded.config.scoring.models[0]!));
  const mismatch = sc.test.findIndex((r, i) => engine[i] !== sc.points(r));
  if (mismatch >= 0) throw new Error(`bug: the engine scores holdout row ${sc.test[mismatch]} differently`);
  const y = sc.test.map((r) => sc.labels.get(r)!);
  const th = learned.thresholds;
  writeFileSync(out, stringify(raw, { lineWidth: 0 }));

  const positives = [...sc.labels.values()].filter(Boolean).length;
  const fields = sc.fields.filter((_, i) => !skip.has(i));
  const lines = [
    `from ${t.source}`,
    `${t.noun} with an outcome: ${sc.rows} (converted ${positives}, ${pct(positives / sc.rows)}); ` +
      `train ${sc.train.length}, holdout ${sc.test.length} (seed ${o.seed})`,
    `holdout ROC AUC: integer scorecard ${rocAuc(engine, y).toFixed(4)} (the engine's fitScore on ${out}), ` +
      `unrounded regression ${rocAuc(sc.test.map(sc.logit), y).toFixed(4)}`,
    `holdout accuracy at mql ${th.mql}: ${pct(accuracyAt(engine, y, th.mql))}`,
    `thresholds: mql ${th.mql} (training precision >= ${o.precision}), sql ${th.sql} ` +
      `(training precision >= ${o.sqlPrecision}), minFit ${th.minFit} (the lowest fit: never blocks)`,
    `scale: ${sc.scale.toFixed(2)} points per unit of log-odds; intercept ${sc.intercept.toFixed(3)} ` +
      `(in the thresholds); ${learned.fit.length} rules; IRLS ${sc.iterations} iterations, L2 ${o.l2}`,
    // A CSV's headers are mapped to field names; a ledger's fields are their own names.
    ...(fields.every((f) => f.header === f.field)
      ? [`fields: ${fields.map((f) => f.field).join(', ')}`]
      : ['fields:', ...fields.map((f) => `  ${f.header} -> ${f.field}`)]),
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
}

/** Runs `fn`; a TrainingError is a usage error (exit 2) on the option at fault, else on `field` with `hint` after it. */
function guard<T>(field: string, fn: () => T, hint?: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TrainingError) {
      if (err.option) throw new UsageError(`--${err.option}`, err.message);
      throw new UsageError(field, hint ? `${err.message} (${hint})` : err.message);
    }
    throw err;
  }
}

async function score(ctx: Context, file: string, o: { idColumn: string }, print: (s: string) => void) {
  const table = guard('csv', () => readTable(file));
  const rows = guard('csv', () => scoreTable(table, o.idColumn, ctx.config().config));
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
      "learn integer fit rules (a scorecard) from the ledger's leads and their outcomes, or from a CSV export, " +
        'and write a complete config: the running one (--config) with the learned fit rules and thresholds; ' +
        'prints holdout ROC AUC, accuracy and the rules',
    )
    .option('--csv <file>', 'learn from this CSV export instead: one row per lead, its outcome in --outcome-column')
    .option('--outcome-column <column>', 'with --csv: the column saying whether the lead converted')
    .option('--id-column <column>', 'with --csv: the lead id column (not a feature)')
    .option(
      '--outcome <outcome>',
      `from the ledger: what converted means, ${TRAINING_OUTCOMES.join(' or ')} (default won)`,
      outcomeOption,
    )
    .option(
      '--exclude <columns>',
      'comma-separated CSV headers or field names not to use as features (repeatable)',
      excludeOption,
    )
    .requiredOption('--out <file.yaml>', 'where to write the learned config')
    .option('--holdout <share>', 'share of rows held out for the figures', shareOption('holdout'), 0.3)
    .option('--seed <n>', 'seed of the split', intOption('seed'), 1)
    .option('--positive <value>', 'with --csv: the outcome value meaning converted (default 1/true/yes/won)')
    .option('--precision <p>', 'training precision the mql threshold reaches', shareOption('precision'), 0.7)
    .option('--sql-precision <p>', 'training precision the sql threshold reaches', shareOption('sqlPrecision'), 0.85)
    .option('--l2 <lambda>', 'L2 penalty of the regression', positiveNumber('l2'), 1)
    .option('--top <n>', 'rules to print', intOption('top'), 25)
    .addHelpText('after', LEDGER_HELP + MAPPING_HELP)
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
