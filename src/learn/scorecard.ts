/**
 * Training a scorecard from a CSV export (issue 12 part 3): every column but the id and the outcome
 * becomes features (numeric columns as cumulative bins at training-set quantiles plus a missing
 * bin; categorical columns one-hot for the categories with enough support plus missing, the rare
 * ones pooled at 0 points), an L2-regularised logistic regression fitted by Newton's method (IRLS)
 * with ml-matrix, and the coefficients scaled and rounded to integer points, emitted as fit rules
 * in the config's own syntax. Pure: no Temporal, no files (the command reads and writes them).
 *
 * Numeric bins are cumulative: one rule `{ field, min: cut, points }` per cut, so a value gets the
 * points of every cut it reaches. `matchesRule` tests `min` inclusively, like the `x >= cut`
 * features the regression sees, so the engine's sums equal the scorecard's on every value.
 */
import { Matrix, solve } from 'ml-matrix';
import type { Rule } from '../domain/config.js';
import type { Profile } from '../domain/lead.js';
import { mulberry32 } from '../random.js';
import { rocAuc as aucOf } from './roc.js';

export type FitRule = Rule & { points: number };

/** Bad input (too few outcomes, missing columns): reported as such, no model emitted. */
export class TrainingError extends Error {
  /** The option of trainScorecard whose value is at fault, when it is one (`exclude`). */
  constructor(
    message: string,
    readonly option?: keyof TrainOptions,
  ) {
    super(message);
    this.name = 'TrainingError';
  }
}

export interface Table {
  headers: string[];
  rows: string[][];
}

/** A CSV header as a config field name (/^[A-Za-z][A-Za-z0-9_]*$/): "Lead Source" -> leadSource. */
export function fieldNameOf(header: string): string {
  const words = header.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const name = words.map((w, i) => (i ? w[0]!.toUpperCase() + w.slice(1) : w[0]!.toLowerCase() + w.slice(1))).join('');
  if (!name) return 'field';
  return /^[A-Za-z]/.test(name) ? name : `f${name}`;
}

/** Field names for every header, distinct (a clash gets _2, _3…). */
export function fieldNames(headers: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return headers.map((h) => {
    const base = fieldNameOf(h);
    const n = (seen.get(base.toLowerCase()) ?? 0) + 1;
    seen.set(base.toLowerCase(), n);
    return n === 1 ? base : `${base}_${n}`;
  });
}

/** A row as a profile: field name -> trimmed text, blank cells left out (a missing field). */
export function profileOf(row: readonly string[], fields: readonly string[], skip: ReadonlySet<number>): Profile {
  const profile: Record<string, string> = {};
  fields.forEach((f, i) => {
    const v = (row[i] ?? '').trim();
    if (!skip.has(i) && v !== '') profile[f] = v;
  });
  return profile as Profile;
}

/** Row indices shuffled by the seed, split into train and holdout (`holdout` a share, 0..1). */
export function splitRows(n: number, holdout: number, seed: number): { train: number[]; test: number[] } {
  const idx = Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  const k = Math.round(n * holdout);
  return { test: idx.slice(0, k), train: idx.slice(k) };
}

const POSITIVE = new Set(['1', 'true', 'yes', 'y', 'won', 'converted', 'customer']);
const NEGATIVE = new Set(['0', 'false', 'no', 'n', 'lost']);

/** An outcome cell as true/false; undefined for a blank (the row is left out); throws on other text. */
export function outcomeOf(cell: string, positive?: string): boolean | undefined {
  const v = cell.trim().toLowerCase();
  if (v === '') return undefined;
  if (positive !== undefined) return v === positive.trim().toLowerCase();
  if (POSITIVE.has(v)) return true;
  if (NEGATIVE.has(v)) return false;
  throw new TrainingError(`outcome "${cell}" is neither 1/true/yes/won nor 0/false/no/lost (name it with --positive)`);
}

type Feature =
  | { kind: 'cut'; col: number; cut: number }
  | { kind: 'category'; col: number; key: string; value: string }
  | { kind: 'missing'; col: number };

export interface Skipped {
  column: string;
  reason: string;
}

export interface TrainOptions {
  outcomeColumn: string;
  idColumn: string;
  /** Share of rows held out (default 0.3). */
  holdout?: number;
  seed?: number;
  /** The outcome value that means converted (default 1/true/yes/won). */
  positive?: string;
  /** Quantile bins per numeric column (default 8). */
  bins?: number;
  /** L2 penalty (default 1). */
  l2?: number;
  /** Fewest training rows a category needs to get its own points (default 20). */
  minSupport?: number;
  /** Fewest rows of either class (default 50). */
  minClass?: number;
  /** The headers' field names (default fieldNames(headers)): a ledger's profile keys are names already. */
  fields?: readonly string[];
  /**
   * Columns (a header, or its field name) not used as features, each reported in `skipped` with
   * its reason (e.g. "excluded": a column that leaks the outcome). One not in the table is an error.
   */
  exclude?: readonly Skipped[];
}

export interface Scorecard {
  fields: { header: string; field: string }[];
  idIndex: number;
  outcomeIndex: number;
  skipped: Skipped[];
  /** Rows with an outcome, and the indices (into table.rows) of the two parts of the split. */
  rows: number;
  train: number[];
  test: number[];
  labels: Map<number, boolean>;
  rules: FitRule[];
  /** Points per unit of logit (the rounding scale). */
  scale: number;
  /** The unrounded regression's log-odds (intercept included) of each row, by table row index. */
  logit: (row: number) => number;
  /** The integer scorecard's sum of points of each row, by table row index. */
  points: (row: number) => number;
  intercept: number;
  iterations: number;
}

const isNumber = (v: string) => v !== '' && Number.isFinite(Number(v));

function quantileCuts(values: number[], bins: number): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  const cuts = new Set<number>();
  for (let k = 1; k < bins; k++) {
    const q = sorted[Math.floor((k * sorted.length) / bins)]!;
    if (q > sorted[0]!) cuts.add(q);
  }
  return [...cuts].sort((a, b) => a - b);
}

/**
 * The columns' features from the training rows, and what was skipped and why (in column order).
 * `exclude`: columns that are not features, with the reason to report (none for the id and outcome).
 */
function buildFeatures(
  table: Table,
  train: number[],
  exclude: Map<number, string | undefined>,
  bins: number,
  minSupport: number,
): { features: Feature[]; skipped: Skipped[] } {
  const features: Feature[] = [];
  const skipped: Skipped[] = [];
  table.headers.forEach((header, col) => {
    if (exclude.has(col)) {
      const reason = exclude.get(col);
      if (reason !== undefined) skipped.push({ column: header, reason });
      return;
    }
    const cells = train.map((r) => (table.rows[r]![col] ?? '').trim());
    const present = cells.filter((v) => v !== '');
    const missing = cells.length - present.length;
    if (!present.length) return void skipped.push({ column: header, reason: 'all blank' });
    const distinct = new Set(present.map((v) => v.toLowerCase()));
    if (distinct.size === 1 && !missing)
      return void skipped.push({ column: header, reason: `constant (${present[0]})` });
    const numeric = present.every(isNumber) && distinct.size > bins;
    if (numeric) {
      for (const cut of quantileCuts(present.map(Number), bins)) features.push({ kind: 'cut', col, cut });
    } else {
      const counts = new Map<string, { n: number; value: string }>();
      for (const v of present) {
        const key = v.toLowerCase();
        const c = counts.get(key) ?? { n: 0, value: v };
        c.n++;
        counts.set(key, c);
      }
      const kept = [...counts].filter(([, c]) => c.n >= minSupport).sort((a, b) => b[1].n - a[1].n);
      if (!kept.length && !missing) {
        return void skipped.push({ column: header, reason: `no category has ${minSupport} training rows` });
      }
      for (const [key, c] of kept) features.push({ kind: 'category', col, key, value: c.value });
    }
    if (missing) features.push({ kind: 'missing', col });
  });
  return { features, skipped };
}

function featureValue(f: Feature, cell: string): number {
  const v = cell.trim();
  if (f.kind === 'missing') return v === '' ? 1 : 0;
  if (v === '') return 0;
  if (f.kind === 'category') return v.toLowerCase() === f.key ? 1 : 0;
  const n = Number(v);
  return !Number.isNaN(n) && n >= f.cut ? 1 : 0;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** L2-regularised logistic regression by Newton's method (IRLS); column 0 is the unpenalised intercept. */
export function logisticRegression(
  x: Matrix,
  y: number[],
  l2: number,
  maxIter = 50,
): { beta: number[]; iterations: number } {
  const p = x.columns;
  let beta = Matrix.zeros(p, 1);
  const xt = x.transpose();
  for (let iter = 1; iter <= maxIter; iter++) {
    const eta = x.mmul(beta);
    const weighted = x.clone();
    const residual = new Matrix(x.rows, 1);
    for (let i = 0; i < x.rows; i++) {
      const mu = sigmoid(eta.get(i, 0));
      residual.set(i, 0, y[i]! - mu);
      const w = Math.max(mu * (1 - mu), 1e-10);
      for (let j = 0; j < p; j++) weighted.set(i, j, weighted.get(i, j) * w);
    }
    const hessian = xt.mmul(weighted);
    const gradient = xt.mmul(residual);
    for (let j = 1; j < p; j++) {
      hessian.set(j, j, hessian.get(j, j) + l2);
      gradient.set(j, 0, gradient.get(j, 0) - l2 * beta.get(j, 0));
    }
    const delta = solve(hessian, gradient);
    beta = beta.add(delta);
    if (delta.clone().abs().max() < 1e-8) return { beta: beta.getColumn(0), iterations: iter };
  }
  return { beta: beta.getColumn(0), iterations: maxIter };
}

function ruleOf(f: Feature, field: string, points: number): FitRule {
  if (f.kind === 'cut') return { field, min: f.cut, points };
  if (f.kind === 'category') return { field, in: [f.value], points };
  return { field, exists: false, points };
}

/** Trains the scorecard on a seeded split of the table. Throws TrainingError on bad input. */
export function trainScorecard(table: Table, o: TrainOptions): Scorecard {
  const holdout = o.holdout ?? 0.3;
  const bins = o.bins ?? 8;
  const l2 = o.l2 ?? 1;
  const minSupport = o.minSupport ?? 20;
  const minClass = o.minClass ?? 50;
  const idIndex = table.headers.indexOf(o.idColumn);
  const outcomeIndex = table.headers.indexOf(o.outcomeColumn);
  const columns = table.headers.map((h) => `"${h}"`).join(', ');
  if (idIndex < 0) throw new TrainingError(`no id column "${o.idColumn}" (the columns are ${columns})`);
  if (outcomeIndex < 0) throw new TrainingError(`no outcome column "${o.outcomeColumn}" (the columns are ${columns})`);
  if (!(holdout > 0 && holdout < 1)) throw new TrainingError(`holdout must be between 0 and 1, got ${holdout}`);
  const names = o.fields ? [...o.fields] : fieldNames(table.headers);
  if (names.length !== table.headers.length) throw new Error('bug: fields must name every header');
  const exclude = new Map<number, string | undefined>();
  for (const x of o.exclude ?? []) {
    const col = table.headers.findIndex((h, i) => h === x.column || names[i] === x.column);
    if (col < 0) throw new TrainingError(`no column "${x.column}" (the columns are ${columns})`, 'exclude');
    if (col !== idIndex && col !== outcomeIndex) exclude.set(col, x.reason);
  }
  exclude.set(idIndex, undefined).set(outcomeIndex, undefined);

  const labels = new Map<number, boolean>();
  table.rows.forEach((row, i) => {
    const y = outcomeOf(row[outcomeIndex] ?? '', o.positive);
    if (y !== undefined) labels.set(i, y);
  });
  const withOutcome = [...labels.keys()];
  const positives = withOutcome.filter((i) => labels.get(i)).length;
  const negatives = withOutcome.length - positives;
  if (positives < minClass || negatives < minClass) {
    throw new TrainingError(
      `too few outcomes to train on: ${positives} converted and ${negatives} not (at least ${minClass} of each needed)`,
    );
  }
  const split = splitRows(withOutcome.length, holdout, o.seed ?? 1);
  const train = split.train.map((k) => withOutcome[k]!);
  const test = split.test.map((k) => withOutcome[k]!);

  const { features, skipped } = buildFeatures(table, train, exclude, bins, minSupport);
  if (!features.length) throw new TrainingError('no usable column: every column is blank, constant or too sparse');

  const design = (rows: number[]) => {
    const m = new Matrix(rows.length, features.length + 1);
    rows.forEach((r, i) => {
      m.set(i, 0, 1);
      features.forEach((f, j) => m.set(i, j + 1, featureValue(f, table.rows[r]![f.col] ?? '')));
    });
    return m;
  };
  const x = design(train);
  const { beta, iterations } = logisticRegression(
    x,
    train.map((r) => (labels.get(r) ? 1 : 0)),
    l2,
  );
  const logit = (r: number) =>
    features.reduce((s, f, j) => s + beta[j + 1]! * featureValue(f, table.rows[r]![f.col] ?? ''), beta[0]!);

  // The smallest scale (points per unit of logit, 20 points doubling the odds first) whose rounding
  // costs under 0.001 training AUC.
  const trainLabels = train.map((r) => labels.get(r)!);
  const rawTrainAuc = aucOf(train.map(logit), trainLabels);
  const roundAt = (scale: number) => beta.slice(1).map((b) => Math.round(b * scale));
  let scale = 20 / Math.LN2;
  let points = roundAt(scale);
  for (let attempt = 0; attempt < 5; attempt++) {
    const sums = train.map((r) => sumPoints(features, points, table.rows[r]!));
    if (Math.abs(aucOf(sums, trainLabels) - rawTrainAuc) < 0.001) break;
    scale *= 2;
    points = roundAt(scale);
  }

  const rules = features
    .map((f, j) => ({ f, rule: ruleOf(f, names[f.col]!, points[j]!) }))
    .filter(({ rule }) => rule.points !== 0)
    .map(({ rule }) => rule);
  const fields = table.headers.map((header, i) => ({ header, field: names[i]! }));
  return {
    fields,
    idIndex,
    outcomeIndex,
    skipped,
    rows: withOutcome.length,
    train,
    test,
    labels,
    rules,
    scale,
    logit,
    points: (r) => sumPoints(features, points, table.rows[r]!),
    intercept: beta[0]!,
    iterations,
  };
}

function sumPoints(features: Feature[], points: number[], row: string[]): number {
  return features.reduce((s, f, j) => s + points[j]! * featureValue(f, row[f.col] ?? ''), 0);
}
