/**
 * The learned scorecard as a config, and any config run over a CSV: the engine's own functions
 * (newLead, advance, scoreAt), so the numbers are the ones the workflow would give. No Temporal.
 */
import { parse } from 'csv-parse/sync';
import { readFileSync } from 'node:fs';
import type { Config } from '../domain/config.js';
import type { LeadStart } from '../domain/lead.js';
import { advance, newLead, scoreOf } from '../domain/lifecycle.js';

import { thresholdForPrecision } from './roc.js';
import { fieldNames, type FitRule, profileOf, type Scorecard, type Table, TrainingError } from './scorecard.js';

/** Reads a CSV file (header row first) as text cells. Throws TrainingError when it cannot. */
export function readTable(file: string): Table {
  let records: string[][];
  try {
    records = parse(readFileSync(file), { bom: true, relax_column_count: true, skip_empty_lines: true });
  } catch (err) {
    throw new TrainingError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (!records.length) throw new TrainingError(`${file} is empty (a header row is needed)`);
  return { headers: records[0]!, rows: records.slice(1) };
}

export interface LearnedScoring {
  fit: FitRule[];
  thresholds: { mql: number; sql: number; minFit: number };
}

/**
 * Thresholds from the training rows' integer scores: mql the lowest score where precision reaches
 * `precision`, sql where it reaches `sqlPrecision` (never below mql); minFit the lowest fit the
 * rules can give, so it never blocks (fit is the whole score here).
 */
export function learnedScoring(sc: Scorecard, precision = 0.7, sqlPrecision = 0.85): LearnedScoring {
  const scores = sc.train.map(sc.points);
  const labels = sc.train.map((r) => sc.labels.get(r)!);
  const top = Math.max(...scores);
  const mql = thresholdForPrecision(scores, labels, precision) ?? top;
  const sql = Math.max(mql, thresholdForPrecision(scores, labels, sqlPrecision) ?? top);
  const minFit = sc.rules.reduce((s, r) => s + Math.min(0, r.points), 0);
  return { fit: sc.rules, thresholds: { mql, sql, minFit } };
}

/**
 * A complete config (raw, as YAML would hold it): `base` with the learned fit rules and thresholds;
 * its disqualify rules on a field of the CSV are dropped (they were written for another profile
 * vocabulary: the model scores those fields) and returned, to be reported. The learned scoring is
 * one model: a base with several (scoring.models) keeps its last model's behaviour and decay.
 */
export function learnedConfig(
  base: Record<string, unknown>,
  learned: LearnedScoring,
  csvFields: readonly string[],
): { raw: Record<string, unknown>; dropped: { field: string }[] } {
  // A base with several models: the learned scoring replaces them all, keeping the catch-all's behaviour and decay.
  const baseScoring = (base.scoring ?? {}) as Record<string, unknown>;
  const models = Array.isArray(baseScoring.models) ? (baseScoring.models as Record<string, unknown>[]) : undefined;
  const { id: _id, when: _when, ...scoring } = models ? (models[models.length - 1] ?? {}) : baseScoring;
  const disqualify = (Array.isArray(scoring.disqualify) ? scoring.disqualify : []) as { field: string }[];
  const fields = new Set(csvFields);
  const kept = disqualify.filter((r) => !fields.has(r.field));
  const dropped = disqualify.filter((r) => fields.has(r.field));
  const raw = {
    ...base,
    scoring: { ...scoring, thresholds: learned.thresholds, fit: learned.fit, disqualify: kept },
  };
  return { raw, dropped };
}

export interface ScoredRow {
  leadId: string;
  score: number;
  fit: number;
  engagement: number;
  stage: string;
}

/**
 * Scores each row under `config` as a new lead with that profile (headers mapped to field names as
 * `model train` maps them; engagement 0) and lets the lifecycle's rules give its stage.
 */
export function scoreTable(table: Table, idColumn: string, config: Config, now = Date.now()): ScoredRow[] {
  const idIndex = table.headers.indexOf(idColumn);
  if (idIndex < 0) throw new TrainingError(`no id column "${idColumn}" in the CSV`);
  const fields = fieldNames(table.headers);
  const skip = new Set([idIndex]);
  return table.rows.map((row) => {
    const leadId = (row[idIndex] ?? '').trim();
    const profile = profileOf(row, fields, skip);
    const start = { ...profile, leadId } as LeadStart;
    const core = advance(newLead(start, config, 'model-score', now), config, now).core;
    const s = scoreOf(core, config, now);
    return { leadId, score: s.total, fit: s.fit, engagement: s.engagement, stage: core.stage };
  });
}

const csvCell = (v: string | number) => {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The rows as CSV `leadId,score,fit,engagement,stage`. */
export function scoredCsv(rows: ScoredRow[]): string {
  const lines = ['leadId,score,fit,engagement,stage'];
  for (const r of rows) lines.push([r.leadId, r.score, r.fit, r.engagement, r.stage].map(csvCell).join(','));
  return lines.join('\n');
}
