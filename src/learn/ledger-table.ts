/**
 * The ledger's training rows (src/ledger/training.ts) as the scorecard's Table of text cells, so
 * `model train` learns from the ledger exactly as from a CSV export: a column per profile field
 * seen (its own name), the values as text (blank when missing), the label as the outcome column.
 *
 * The scorecard reads text; the engine scores the profile as stored, where 50 is a number and
 * true a boolean, and `in: ["50"]` does not match 50 (src/domain/scoring.ts matchesRule). So the
 * category rules are emitted with the values the profiles hold (`typed`), and the command checks
 * the engine's fitScore on the stored profiles against the scorecard's sums.
 */
import type { FitRule, Skipped, Table } from './scorecard.js';

/** Never features: who the lead is, not what it is like. */
export const PERSONAL_FIELDS: readonly string[] = ['email', 'firstName', 'lastName'];
/** The two columns that are not profile fields; not valid field names, so no profile key is one. */
export const ID_HEADER = '(lead id)';
export const OUTCOME_HEADER = '(outcome)';

/** What a rule can name (src/domain/config.ts fieldName). */
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

export interface LabelledProfile {
  leadId: string;
  profile: Record<string, unknown>;
  positive: boolean;
}

export interface ProfileTable {
  /** Headers: the profile fields seen (sorted), then ID_HEADER and OUTCOME_HEADER ('1' or '0'). */
  table: Table;
  /** The headers' field names (the headers themselves): trainScorecard's `fields`. */
  fields: string[];
  /** Fields that are not features, with why: personal, unique per lead, not a nameable field. */
  exclude: Skipped[];
  /** The rules with each category's values as the profiles hold them (the number 50, the boolean true). */
  typed(rules: readonly FitRule[]): FitRule[];
}

/**
 * A value as a cell. Blank only when the engine calls it missing (undefined, null, ''): a string of
 * spaces is present to the engine, so it is written quoted, which the scorecard does not trim away.
 */
export function cellOf(v: unknown): string {
  if (v === undefined || v === null || v === '') return '';
  if (typeof v === 'string') return v.trim() === '' ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

const isNumber = (v: string) => v !== '' && Number.isFinite(Number(v));
/** How the scorecard keys a category: trimmed, lower case. */
const keyOf = (cell: string) => cell.trim().toLowerCase();

export function profileTable(rows: readonly LabelledProfile[]): ProfileTable {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r.profile)) seen.add(k);
  const names = [...seen].sort();
  const exclude: Skipped[] = [];
  const cells = rows.map((r) => names.map((f) => cellOf(r.profile[f])));

  names.forEach((field, col) => {
    if (PERSONAL_FIELDS.includes(field))
      return void exclude.push({ column: field, reason: 'personal, never a feature' });
    if (!FIELD_NAME.test(field)) {
      return void exclude.push({
        column: field,
        reason: 'not a name a rule can use (a letter, then letters, digits, _)',
      });
    }
    // A text field with a different value on every lead (an id, a URL) tells nothing about the next
    // lead. A number may be different on every lead and still mean something (it is binned).
    const present = cells.map((c) => c[col]!.trim()).filter((v) => v !== '');
    if (present.length > 1 && !present.every(isNumber) && new Set(present.map(keyOf)).size === present.length) {
      exclude.push({ column: field, reason: 'unique per lead (an id?), not a feature' });
    }
  });

  // Each field's values as stored, by the scorecard's key of their text.
  const excluded = new Set(exclude.map((x) => x.column));
  const variants = new Map<string, Map<string, unknown[]>>();
  names.forEach((field, col) => {
    if (excluded.has(field)) return;
    const byKey = new Map<string, unknown[]>();
    rows.forEach((r, i) => {
      const cell = cells[i]![col]!;
      if (cell === '') return;
      const v = r.profile[field];
      const list = byKey.get(keyOf(cell)) ?? [];
      // matchesRule compares strings case-insensitively: one spelling of a string is enough.
      const same = (x: unknown) =>
        typeof x === 'string' && typeof v === 'string' ? x.toLowerCase() === v.toLowerCase() : x === v;
      if (!list.some(same)) list.push(v);
      byKey.set(keyOf(cell), list);
    });
    variants.set(field, byKey);
  });

  const table: Table = {
    headers: [...names, ID_HEADER, OUTCOME_HEADER],
    rows: rows.map((r, i) => [...cells[i]!, r.leadId, r.positive ? '1' : '0']),
  };
  return {
    table,
    fields: table.headers,
    exclude,
    typed: (rules) =>
      rules.map((rule) => {
        if (!rule.in) return rule;
        const byKey = variants.get(rule.field);
        return { ...rule, in: rule.in.flatMap((v) => byKey?.get(keyOf(String(v))) ?? [v]) as FitRule['in'] };
      }),
  };
}
