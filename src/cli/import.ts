/**
 * CSV import for `leadctl import leads|events|outcomes FILE.csv` (CONTRACT.md §Commands and
 * "Importing a real history").
 *
 * The pure parts (column mapping, coercion, validation, deterministic event ids, dates) are
 * exported for tests; `runImport` streams a file through them and hands each good row to a `send`
 * function (LeadService in the CLI, a fake in tests, nothing in a dry run).
 *
 * Rules, as the CLI help documents them:
 * - The header row names LeadInput / LeadEvent fields (matched case-insensitively), or other
 *   tools' columns are mapped with `--map 'Their Column=field'`. A target may also be
 *   `profile.<name>`: a custom profile attribute (for leads it lands on the profile itself).
 *   Columns that are neither fields nor mapped are ignored and listed in the summary.
 * - Cells are trimmed; an empty cell is a missing value. `companySize` becomes a whole number,
 *   `consent.email` a boolean (true/false, yes/no, y/n, 1/0), `country` upper case.
 * - Dates (`occurredAt` and any target whose name ends in `At`) accept ISO 8601 (a date alone is
 *   midnight UTC; a time without an offset is UTC); `--date-format dd-mm-yyyy` reads Olist's
 *   `01-02-2018` (also `dd/mm/yyyy`, `mm/dd/yyyy`), with an optional ` HH:MM[:SS]` (UTC).
 * - `--set field=value` gives every row without a value of its own that value (`--type T` is
 *   `--set type=T`). `--email-template '{leadId}@import.invalid'` gives leads without an email a
 *   placeholder address built from the row's fields; such leads get `consent.email=false` unless
 *   the row says otherwise, so nothing is ever mailed to an address the import made up.
 * - Events without an `eventId` get a deterministic one: a hash of the lead id, type, occurredAt
 *   and the rest of the row's (mapped) content. Re-importing the same file sends the same ids and
 *   the workflow counts each once; two identical rows in a file are one event (the second is
 *   skipped).
 * - Every row is validated with the zod schemas of src/domain/lead.ts and, for events, the type
 *   against the config. Bad rows are reported by line number with the field and reason; good rows
 *   still go in.
 * - Leads may carry an imported history: `stage` and the stage dates `becameMqlAt`, `becameSqlAt`,
 *   `becameOpportunityAt`, `becameCustomerAt` (not profile fields). They are checked with
 *   src/domain/imported.ts (a known stage, dates in funnel order, none beyond the stage, none in the
 *   future) and travel as the row's `fact`, with a deterministic importId (a hash of the lead id and
 *   those fields), for the `history` signal.
 * - Outcomes (`LeadOutcome = { leadId, outcome, occurredAt?, reason?, note?, rep? }`) become a
 *   `history` fact each, its importId a hash of lead id, outcome and occurredAt as the file gives
 *   them; a row without occurredAt is dated at the import. A rejection needs one of the reject
 *   reasons. Whether the lead exists and the outcome is not dated before its MQL date is the
 *   sender's check (the ledger's, in LeadService.importOutcome).
 */
import { parse } from 'csv-parse';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { importedSteps, type ImportedHistory, STAGE_DATE_FIELD } from '../domain/imported.js';
import {
  CONTROL_CHARS,
  formatIssues,
  type ImportedFact,
  leadEventSchema,
  leadIdSchema,
  leadInputSchema,
  profileSchema,
  REJECT_REASONS,
  STAGES,
  type Stage,
} from '../domain/lead.js';

export type ImportKind = 'leads' | 'events' | 'outcomes';
export const IMPORT_KINDS: readonly ImportKind[] = ['leads', 'events', 'outcomes'];
export const DATE_FORMATS = ['iso', 'dd-mm-yyyy', 'dd/mm/yyyy', 'mm/dd/yyyy'] as const;
export type DateFormat = (typeof DATE_FORMATS)[number];

/** A problem with the command line or the file's header: the import does not start. */
export class ImportSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportSetupError';
  }
}

export interface FieldIssue {
  field: string;
  column?: string;
  message: string;
}
export interface BadRow {
  line: number;
  issues: FieldIssue[];
}

export interface ImportOptions {
  kind: ImportKind;
  /** `Their Column=field` specs. */
  map?: string[];
  /** `field=value` constants for rows without a value. */
  set?: string[];
  dateFormat?: DateFormat;
  /** Leads only: placeholder email for rows without one, e.g. `{leadId}@import.invalid`. */
  emailTemplate?: string;
  /** Events: the known event types (from the config); omitted: not checked. */
  knownTypes?: readonly string[];
  /** The import's clock (ms, default Date.now()): dates an outcome without occurredAt; later dates are refused. */
  now?: number;
}

/** The imported-history fields of a lead row (CONTRACT.md "Importing a real history"): never profile fields. */
export const HISTORY_FIELDS = ['stage', ...Object.values(STAGE_DATE_FIELD)] as const;
type HistoryField = (typeof HISTORY_FIELDS)[number];
export const OUTCOMES = ['accepted', 'rejected', 'won', 'lost'] as const;
export type ImportedOutcomeName = (typeof OUTCOMES)[number];

const LEAD_FIELDS = [
  ...Object.keys(leadInputSchema.shape).filter((k) => k !== 'consent'),
  'consent.email',
  ...HISTORY_FIELDS,
];
const EVENT_FIELDS = Object.keys(leadEventSchema.shape).filter((k) => k !== 'profile');
const OUTCOME_FIELDS = ['leadId', 'outcome', 'occurredAt', 'reason', 'note', 'rep'];
const PROFILE_FIELDS = Object.keys(profileSchema.shape);
const CUSTOM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function knownFields(kind: ImportKind): string[] {
  if (kind === 'leads') return LEAD_FIELDS;
  if (kind === 'outcomes') return OUTCOME_FIELDS;
  return [...EVENT_FIELDS, ...PROFILE_FIELDS.map((f) => `profile.${f}`)];
}

/** The row shape a kind's header names. */
const shapeName = (kind: ImportKind) => ({ leads: 'LeadInput', events: 'LeadEvent', outcomes: 'LeadOutcome' })[kind];
const fieldHint = (kind: ImportKind) =>
  `use one of ${knownFields(kind).join(', ')}${kind === 'outcomes' ? '' : ' or profile.<name>'}`;

/** Normalises a target field name: known fields case-insensitively, `profile.x` for custom attributes. Undefined if not a field. */
export function resolveField(kind: ImportKind, name: string): string | undefined {
  const n = name.trim();
  const known = knownFields(kind);
  const exact = known.find((f) => f === n) ?? known.find((f) => f.toLowerCase() === n.toLowerCase());
  if (exact) return exact;
  const m = /^profile\.(.+)$/i.exec(n);
  if (m && kind !== 'outcomes' && CUSTOM_NAME.test(m[1]!)) {
    const inner = PROFILE_FIELDS.find((f) => f.toLowerCase() === m[1]!.toLowerCase()) ?? m[1]!;
    if (kind === 'leads') return resolveField('leads', inner) ?? `profile.${inner}`;
    return `profile.${inner}`;
  }
  return undefined;
}

/** Splits `a=b` at the `=` a field name cannot hold: the last for `column=field`, the first for `field=value`. */
function splitSpec(spec: string, what: string, example: string, at: 'first' | 'last'): [string, string] {
  const i = at === 'last' ? spec.lastIndexOf('=') : spec.indexOf('=');
  if (i <= 0) throw new ImportSetupError(`${what} "${spec}" must look like ${example}`);
  return [spec.slice(0, i), spec.slice(i + 1)];
}

/** `--map` specs as column -> field. */
export function parseMapSpecs(kind: ImportKind, specs: readonly string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  for (const spec of specs) {
    const [column, target] = splitSpec(spec, '--map', "'Their Column=field'", 'last');
    const field = resolveField(kind, target);
    if (!field)
      throw new ImportSetupError(`--map "${spec}": "${target}" is not a ${shapeName(kind)} field; ${fieldHint(kind)}`);
    if (out.has(column)) throw new ImportSetupError(`--map: column "${column}" is mapped twice`);
    out.set(column, field);
  }
  return out;
}

/** `--set` specs as field -> raw value. */
export function parseSetSpecs(kind: ImportKind, specs: readonly string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  for (const spec of specs) {
    const [name, value] = splitSpec(spec, '--set', 'field=value', 'first');
    const field = resolveField(kind, name);
    if (!field)
      throw new ImportSetupError(`--set "${spec}": "${name}" is not a ${shapeName(kind)} field; ${fieldHint(kind)}`);
    out.set(field, value);
  }
  return out;
}

export interface ColumnPlan {
  index: number;
  column: string;
  field: string;
}
export interface Plan {
  kind: ImportKind;
  columns: ColumnPlan[];
  /** Header columns that are neither fields nor mapped. */
  ignored: string[];
  constants: Map<string, string>;
  dateFormat: DateFormat;
  emailTemplate?: string;
  knownTypes?: readonly string[];
  width: number;
  /** The import's clock (ms): dates an outcome without occurredAt; no date may be after it. */
  now: number;
}

/** Decides, from the header row, which column feeds which field. Throws ImportSetupError on a header that cannot work. */
export function planColumns(header: readonly string[], opts: ImportOptions): Plan {
  const map = parseMapSpecs(opts.kind, opts.map);
  const constants = parseSetSpecs(opts.kind, opts.set);
  const names = header.map((h) => h.trim());
  for (const column of map.keys()) {
    if (!names.includes(column))
      throw new ImportSetupError(
        `--map: the file has no column "${column}"; its columns are ${names.map((n) => `"${n}"`).join(', ')}`,
      );
  }
  const columns: ColumnPlan[] = [];
  const ignored: string[] = [];
  const byField = new Map<string, string>();
  const mappedTargets = new Set(map.values());
  names.forEach((column, index) => {
    // A column named like a field is used as that field, unless --map gives the field another column.
    const named = resolveField(opts.kind, column);
    const field = map.get(column) ?? (named && !mappedTargets.has(named) ? named : undefined);
    if (!field) {
      if (column) ignored.push(column);
      return;
    }
    if (byField.has(field))
      throw new ImportSetupError(
        `columns "${byField.get(field)}" and "${column}" both give ${field}; --map one of them elsewhere`,
      );
    byField.set(field, column);
    columns.push({ index, column, field });
  });
  const have = (f: string) => byField.has(f) || constants.has(f);
  if (!have('leadId'))
    throw new ImportSetupError(`no column gives leadId; name one "leadId" or --map 'Their Column=leadId'`);
  if (opts.kind === 'events' && !have('type'))
    throw new ImportSetupError(
      `no column gives the event type; name one "type", --map 'Their Column=type', or give --type`,
    );
  if (opts.kind === 'outcomes' && !have('outcome'))
    throw new ImportSetupError(
      `no column gives the outcome; name one "outcome", --map 'Their Column=outcome', or --set outcome=won`,
    );
  if (opts.kind === 'leads' && !have('email') && !opts.emailTemplate) {
    throw new ImportSetupError(
      `no column gives email (LeadInput requires one); --map 'Their Column=email', or --email-template '{leadId}@import.invalid' for placeholder addresses (those leads get no mail)`,
    );
  }
  if (opts.emailTemplate) checkTemplate(opts.emailTemplate);
  return {
    kind: opts.kind,
    columns,
    ignored,
    constants,
    dateFormat: opts.dateFormat ?? 'iso',
    emailTemplate: opts.emailTemplate,
    knownTypes: opts.knownTypes,
    width: names.length,
    now: opts.now ?? Date.now(),
  };
}

function checkTemplate(t: string) {
  if (!/\{[A-Za-z_.]+\}/.test(t))
    throw new ImportSetupError(`--email-template "${t}" must use a placeholder such as {leadId}`);
}

// ---- coercion ------------------------------------------------------------------------------

const isDateField = (field: string) => field === 'occurredAt' || /At$/.test(field);

/** A date cell as an ISO 8601 string (UTC), or an error message. */
export function parseDate(raw: string, format: DateFormat = 'iso'): { value: string } | { error: string } {
  const s = raw.trim();
  if (format === 'iso') {
    const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.exec(s);
    if (!m) return { error: `"${raw}" is not an ISO 8601 date (like 2024-05-01 or 2024-05-01T09:30:00Z)` };
    const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone = 'Z'] = m;
    if (!validYmd(+y!, +mo!, +d!) || +h > 23 || +mi > 59 || +sec > 59) return { error: `"${raw}" is not a real date` };
    const normalizedZone =
      zone.toUpperCase() === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
    const t = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${sec}${frac}${normalizedZone}`);
    if (Number.isNaN(t)) return { error: `"${raw}" is not a real date` };
    return { value: new Date(t).toISOString() };
  }
  const sep = format[2]!;
  const re = new RegExp(`^(\\d{1,2})\\${sep}(\\d{1,2})\\${sep}(\\d{4})(?:[ T](\\d{1,2}):(\\d{2})(?::(\\d{2}))?)?$`);
  const m = re.exec(s);
  if (!m) return { error: `"${raw}" is not a ${format} date` };
  const [a, b] = [+m[1]!, +m[2]!];
  const [d, mo] = format === 'mm/dd/yyyy' ? [b, a] : [a, b];
  const y = +m[3]!;
  const [h, mi, sec] = [+(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0)];
  if (!validYmd(y, mo, d) || h > 23 || mi > 59 || sec > 59) return { error: `"${raw}" is not a real date (${format})` };
  return { value: new Date(Date.UTC(y, mo - 1, d, h, mi, sec)).toISOString() };
}

function validYmd(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}

const TRUE = ['true', 'yes', 'y', '1'];
const FALSE = ['false', 'no', 'n', '0'];

/** One cell (already trimmed, non-empty) as the value its field wants, or an error message. */
export function coerceValue(
  field: string,
  raw: string,
  dateFormat: DateFormat = 'iso',
): { value: unknown } | { error: string } {
  const base = field.replace(/^profile\./, '');
  if (base === 'companySize') {
    const cleaned = raw.replace(/[\s,_]/g, '');
    if (!/^-?\d+(\.\d+)?$/.test(cleaned)) return { error: `expected a whole number, got "${raw}"` };
    return { value: Number(cleaned) };
  }
  if (base === 'consent.email') {
    const v = raw.toLowerCase();
    if (TRUE.includes(v)) return { value: true };
    if (FALSE.includes(v)) return { value: false };
    return { error: `expected true or false, got "${raw}"` };
  }
  if (base === 'country' && /^[a-z]{2}$/i.test(raw)) return { value: raw.toUpperCase() };
  if (isDateField(base)) return parseDate(raw, dateFormat);
  return { value: raw };
}

function put(target: Record<string, unknown>, kind: ImportKind, field: string, value: unknown) {
  if (field === 'consent.email') {
    target.consent = { ...(target.consent as object | undefined), email: value };
  } else if (field.startsWith('profile.')) {
    const name = field.slice('profile.'.length);
    if (kind === 'leads') target[name] = value;
    else target.profile = { ...(target.profile as object | undefined), [name]: value };
  } else {
    target[field] = value;
  }
}

function has(target: Record<string, unknown>, kind: ImportKind, field: string): boolean {
  if (field === 'consent.email') return (target.consent as { email?: unknown } | undefined)?.email !== undefined;
  if (field.startsWith('profile.')) {
    const name = field.slice('profile.'.length);
    return kind === 'leads'
      ? target[name] !== undefined
      : (target.profile as Record<string, unknown> | undefined)?.[name] !== undefined;
  }
  return target[field] !== undefined;
}

/** JSON with sorted keys: the same content always gives the same text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The deterministic id of an event row without one: a hash of lead id, type, occurredAt and the rest of its content. */
export function eventIdFor(ev: Record<string, unknown>): string {
  const { leadId, type, occurredAt, eventId: _ignored, ...rest } = ev;
  const h = createHash('sha256')
    .update(canonicalJson([leadId ?? null, type ?? null, occurredAt ?? null, rest]))
    .digest('hex');
  return `csv-${h.slice(0, 32)}`;
}

function fillTemplate(template: string, row: Record<string, unknown>): string {
  return template.replace(/\{([A-Za-z_.]+)\}/g, (_, name: string) => {
    const v = name.includes('.')
      ? name.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], row)
      : row[name];
    // Only characters an address's local part may hold.
    return String(v ?? '').replace(/[^A-Za-z0-9._+-]/g, '_');
  });
}

export type RowResult =
  | {
      kind: 'ok';
      line: number;
      value: Record<string, unknown>;
      key: string;
      leadId: string;
      /** The imported history or outcome for the `history` signal (leads with history fields; every outcome). */
      fact?: ImportedFact;
      /** Leads: the funnel stages (mql .. customer) the history takes the lead to, for the ledger to show. */
      stages?: Stage[];
    }
  | { kind: 'bad'; line: number; issues: FieldIssue[] }
  | { kind: 'empty'; line: number };

const hash = (v: unknown) => createHash('sha256').update(canonicalJson(v)).digest('hex');
const columnIn = (columnOf: Map<string, string>, field: string) =>
  columnOf.has(field) ? { column: columnOf.get(field)! } : {};

/** One data row through mapping, coercion, constants, defaults and validation. */
export function processRow(plan: Plan, cells: readonly string[], line: number): RowResult {
  if (cells.every((c) => c.trim() === '')) return { kind: 'empty', line };
  const issues: FieldIssue[] = [];
  const columnOf = new Map<string, string>();
  if (cells.length !== plan.width) {
    issues.push({ field: '(row)', message: `expected ${plan.width} columns as in the header, got ${cells.length}` });
    return { kind: 'bad', line, issues };
  }
  const value: Record<string, unknown> = {};
  for (const c of plan.columns) {
    const raw = (cells[c.index] ?? '').trim();
    if (raw === '') continue;
    columnOf.set(c.field, c.column);
    const r = coerceValue(c.field, raw, plan.dateFormat);
    if ('error' in r) issues.push({ field: c.field, column: c.column, message: r.error });
    else put(value, plan.kind, c.field, r.value);
  }
  for (const [field, raw] of plan.constants) {
    if (has(value, plan.kind, field) || columnOf.has(field) || raw.trim() === '') continue;
    const r = coerceValue(field, raw.trim(), plan.dateFormat);
    if ('error' in r) issues.push({ field, column: '--set', message: r.error });
    else {
      put(value, plan.kind, field, r.value);
      columnOf.set(field, '--set');
    }
  }
  if (plan.kind === 'outcomes') return outcomeRow(plan, value, columnOf, issues, line);
  if (
    plan.kind === 'leads' &&
    value.email === undefined &&
    plan.emailTemplate &&
    !columnOf.has('email') &&
    typeof value.leadId === 'string'
  ) {
    value.email = fillTemplate(plan.emailTemplate, value).toLowerCase();
    // A made-up address is never mailed.
    if ((value.consent as { email?: unknown } | undefined)?.email === undefined) value.consent = { email: false };
  }
  if (plan.kind === 'events' && value.eventId === undefined && !columnOf.has('eventId'))
    value.eventId = eventIdFor(value);
  // The history fields leave the row before it is validated as a LeadInput (whose catch-all would keep them as profile fields).
  const history = plan.kind === 'leads' ? takeHistory(plan, value, columnOf, issues) : undefined;

  const schema = plan.kind === 'leads' ? leadInputSchema : leadEventSchema;
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    for (const i of formatIssues(parsed.error)) {
      // Not reported twice when coercion already said why.
      if (issues.some((x) => x.field === i.path)) continue;
      const column = columnOf.get(i.path) ?? columnOf.get(`profile.${i.path}`);
      issues.push({ field: i.path, ...(column ? { column } : {}), message: i.message });
    }
  }
  if (
    plan.kind === 'events' &&
    plan.knownTypes &&
    typeof value.type === 'string' &&
    !plan.knownTypes.includes(value.type) &&
    !issues.some((i) => i.field === 'type')
  ) {
    issues.push({
      field: 'type',
      ...(columnOf.has('type') ? { column: columnOf.get('type') } : {}),
      message: `unknown event type "${value.type}"; known: ${plan.knownTypes.join(', ')}`,
    });
  }
  if (issues.length || !parsed.success) return { kind: 'bad', line, issues };
  const data = parsed.data as Record<string, unknown>;
  const leadId = String(data.leadId);
  if (plan.kind === 'events') return { kind: 'ok', line, value: data, key: String(data.eventId), leadId };
  if (!history) return { kind: 'ok', line, value: data, key: hash(data), leadId };
  const fact = { importId: importIdFor('lead', [leadId, history.fields]), ...history.fields } as ImportedFact;
  return { kind: 'ok', line, value: data, key: hash([data, history.fields]), leadId, fact, stages: history.stages };
}

/** The importId of an imported fact: `import:lead:<hash>` of the lead id and its history, `import:outcome:<hash>` of lead id, outcome and date. */
export function importIdFor(kind: 'lead' | 'outcome', content: unknown): string {
  return `import:${kind}:${hash(content).slice(0, 32)}`;
}

const isFuture = (iso: string, now: number) => Date.parse(iso) > now;
const future = (iso: string) => `${iso} is in the future: an imported history is the past`;

/**
 * Takes a lead row's history fields off it and checks them: a known stage, real dates not in the
 * future, dates in funnel order and none beyond the stage (importedSteps). Undefined when the row
 * has none.
 */
function takeHistory(
  plan: Plan,
  value: Record<string, unknown>,
  columnOf: Map<string, string>,
  issues: FieldIssue[],
): { fields: Partial<Record<HistoryField, string>>; stages: Stage[] } | undefined {
  const fields: Partial<Record<HistoryField, string>> = {};
  for (const f of HISTORY_FIELDS) {
    if (value[f] !== undefined) fields[f] = String(value[f]);
    delete value[f];
  }
  // A date cell that did not parse is already an issue: the history is not checked further.
  const broken = issues.some((i) => (HISTORY_FIELDS as readonly string[]).includes(i.field));
  if (!Object.keys(fields).length && !broken) return undefined;
  const h: ImportedHistory = {};
  let bad = broken;
  if (fields.stage !== undefined) {
    const stage = fields.stage.toLowerCase();
    if ((STAGES as readonly string[]).includes(stage)) h.stage = fields.stage = stage as Stage;
    else {
      issues.push({
        field: 'stage',
        ...columnIn(columnOf, 'stage'),
        message: `unknown stage "${fields.stage}"; one of ${STAGES.join(', ')}`,
      });
      bad = true;
    }
  }
  for (const f of Object.values(STAGE_DATE_FIELD)) {
    const v = fields[f];
    if (v === undefined) continue;
    if (isFuture(v, plan.now)) {
      issues.push({ field: f, ...columnIn(columnOf, f), message: future(v) });
      bad = true;
    }
    h[f] = Date.parse(v);
  }
  if (bad) return { fields, stages: [] };
  const r = importedSteps(h, plan.now);
  if ('problems' in r) {
    for (const p of r.problems) issues.push({ field: p.field, ...columnIn(columnOf, p.field), message: p.message });
    return { fields, stages: [] };
  }
  const path = Object.keys(STAGE_DATE_FIELD) as Stage[];
  return { fields, stages: [...new Set(r.steps.map((s) => s.to).filter((s) => path.includes(s)))] };
}

/** An outcome row: `{ leadId, outcome, occurredAt?, reason?, note?, rep? }` and its `history` fact. */
function outcomeRow(
  plan: Plan,
  value: Record<string, unknown>,
  columnOf: Map<string, string>,
  issues: FieldIssue[],
  line: number,
): RowResult {
  const issue = (field: string, message: string) => {
    if (!issues.some((i) => i.field === field)) issues.push({ field, ...columnIn(columnOf, field), message });
  };
  const id = leadIdSchema.safeParse(value.leadId);
  if (!id.success)
    issue(
      'leadId',
      value.leadId === undefined ? 'missing: every row needs the lead it is about' : id.error.issues[0]!.message,
    );
  const outcome = typeof value.outcome === 'string' ? value.outcome.toLowerCase() : undefined;
  if (!outcome || !(OUTCOMES as readonly string[]).includes(outcome)) {
    issue(
      'outcome',
      outcome === undefined
        ? `missing; one of ${OUTCOMES.join(', ')}`
        : `unknown outcome "${String(value.outcome)}"; one of ${OUTCOMES.join(', ')}`,
    );
  }
  const text = (field: 'reason' | 'note' | 'rep', max: number) => {
    const v = value[field];
    if (v === undefined) return undefined;
    const s = String(v);
    if (s.length > max) issue(field, `at most ${max} characters, got ${s.length}`);
    else if (CONTROL_CHARS.test(s))
      issue(field, 'must not contain control characters (CR, LF, NUL, tab, bidi overrides ...)');
    return s;
  };
  let reason = text('reason', 200);
  if (outcome === 'rejected') {
    const r = reason?.toLowerCase();
    if (r === undefined)
      issue('reason', `a rejection needs a reason: one of ${REJECT_REASONS.join(', ')} (--set reason=other for all)`);
    else if (!(REJECT_REASONS as readonly string[]).includes(r))
      issue('reason', `unknown reject reason "${reason}"; one of ${REJECT_REASONS.join(', ')}`);
    else reason = r;
  }
  const note = text('note', 2000);
  const rep = text('rep', 320);
  const given = value.occurredAt as string | undefined;
  if (given !== undefined && isFuture(given, plan.now)) issue('occurredAt', future(given));
  if (issues.length) return { kind: 'bad', line, issues };
  const leadId = id.data!;
  // Dated by the file, or at the import; the id hangs on what the file says, so a re-import is the same fact.
  const importId = importIdFor('outcome', [leadId, outcome, given ?? null]);
  const fact = {
    importId,
    outcome: outcome as ImportedOutcomeName,
    occurredAt: given ?? new Date(plan.now).toISOString(),
    ...(reason !== undefined ? { reason } : {}),
    ...(note !== undefined ? { note } : {}),
    ...(rep !== undefined ? { rep } : {}),
  };
  const { importId: _id, ...row } = fact;
  return { kind: 'ok', line, value: { leadId, ...row }, key: importId, leadId, fact };
}

export function describeBadRow(b: BadRow): string {
  return `line ${b.line}: ${b.issues.map((i) => `${i.field}${i.column && i.column !== i.field ? ` (column "${i.column}")` : ''}: ${i.message}`).join('; ')}`;
}

// ---- streaming ---------------------------------------------------------------------------------

export interface CsvRow {
  line: number;
  cells: string[];
}

/** The records of a CSV stream with the line each starts on (1-based; the header is line 1). */
export async function* readCsv(input: Readable): AsyncGenerator<CsvRow> {
  const parser = input.pipe(
    parse({ info: true, relax_column_count: true, skip_empty_lines: true, bom: true, relax_quotes: false }),
  );
  input.on('error', (err) => parser.destroy(err));
  let lastLine = 0;
  let lastEmpty = 0;
  for await (const item of parser as AsyncIterable<{
    record: string[];
    info: { lines: number; empty_lines: number };
  }>) {
    const start = lastLine + 1 + (item.info.empty_lines - lastEmpty);
    lastLine = item.info.lines;
    lastEmpty = item.info.empty_lines;
    yield { line: start, cells: item.record };
  }
}

/** readCsv, with a malformed file (an unclosed quote, say) as an ImportFatalError naming the file. */
async function* readCsvOrFail(input: Readable, file: string, summary: ImportSummary): AsyncGenerator<CsvRow> {
  try {
    yield* readCsv(input);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('CSV_'))
      throw new ImportFatalError(`${file}: ${(err as Error).message}`, summary, { cause: err });
    if ((err as { code?: string }).code === 'ENOENT') throw new ImportSetupError(`${file}: no such file`);
    throw err;
  }
}

/** `unchanged`: the ledger already shows the row (an existing lead for leads, so it counts as updated too); nothing was sent. */
export type SendResult = 'created' | 'updated' | 'sent' | 'unchanged';
/** What runImport hands to `send` beside the row's value. */
export interface SentRow {
  line: number;
  leadId: string;
  fact?: ImportedFact;
  stages?: Stage[];
}

export interface ImportSummary {
  kind: ImportKind;
  file: string;
  dryRun: boolean;
  rowsRead: number;
  imported: number;
  created: number;
  updated: number;
  /** Rows the ledger already showed as the file says: nothing sent (leads: counted in `updated` too). */
  unchanged: number;
  bad: number;
  skipped: number;
  skippedReasons: { empty: number; duplicate: number };
  ignoredColumns: string[];
  columns: { column: string; field: string }[];
  badRows: BadRow[];
  /** From the header to the last row sent (ms). */
  elapsedMs: number;
  /** Leads and outcomes, after waiting for the ledger (waitForLedger): how many it shows, how long that took. */
  ledger?: { recorded: number; pending: number; waitedMs: number };
}

export interface RunImportOptions extends ImportOptions {
  file: string;
  /** Opened from `file` when not given. */
  input?: Readable;
  concurrency?: number;
  dryRun?: boolean;
  /** Read at most this many data rows. */
  limit?: number;
  /**
   * Sends one good row (with its imported `fact`, if any); a thrown error whose `status` is 4xx
   * marks the row bad (its `issues` name the fields), anything else stops the import.
   */
  send?: (value: Record<string, unknown>, row: SentRow) => Promise<SendResult>;
  onBadRow?: (b: BadRow) => void;
  onProgress?: (p: { rowsRead: number; bytesRead: number; imported: number; bad: number }) => void;
  /** Bad rows kept in the summary (all are counted). */
  keepBadRows?: number;
}

export class ImportFatalError extends Error {
  constructor(
    message: string,
    readonly summary: ImportSummary,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ImportFatalError';
  }
}

/**
 * Streams the file: header, then each row through `processRow`, good rows to `send` with at most
 * `concurrency` in flight (rows of the same lead in file order). Throws ImportSetupError before
 * anything is sent when the header or options cannot work, ImportFatalError when sending fails for
 * a reason that is not the row's fault.
 */
export async function runImport(o: RunImportOptions): Promise<ImportSummary> {
  const summary: ImportSummary = {
    kind: o.kind,
    file: o.file,
    dryRun: !!o.dryRun,
    rowsRead: 0,
    imported: 0,
    created: 0,
    updated: 0,
    unchanged: 0,
    bad: 0,
    skipped: 0,
    skippedReasons: { empty: 0, duplicate: 0 },
    ignoredColumns: [],
    columns: [],
    badRows: [],
    elapsedMs: 0,
  };
  const started = performance.now();
  const keep = o.keepBadRows ?? 1000;
  const bad = (b: BadRow) => {
    summary.bad++;
    if (summary.badRows.length < keep) summary.badRows.push(b);
    o.onBadRow?.(b);
  };
  const input = o.input ?? createReadStream(o.file);
  let bytesRead = 0;
  input.on('data', (chunk: Buffer | string) => {
    bytesRead += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
  });
  const concurrency = Math.max(1, o.concurrency ?? 16);
  const inflight = new Set<Promise<void>>();
  const chains = new Map<string, Promise<void>>();
  const seen = new Set<string>();
  let fatal: unknown;
  let plan: Plan | undefined;
  const progress = () =>
    o.onProgress?.({ rowsRead: summary.rowsRead, bytesRead, imported: summary.imported, bad: summary.bad });

  try {
    for await (const row of readCsvOrFail(input, o.file, summary)) {
      if (!plan) {
        plan = planColumns(row.cells, o);
        summary.ignoredColumns = plan.ignored;
        summary.columns = plan.columns.map(({ column, field }) => ({ column, field }));
        continue;
      }
      if (fatal) break;
      if (o.limit !== undefined && summary.rowsRead >= o.limit) break;
      summary.rowsRead++;
      const r = processRow(plan, row.cells, row.line);
      if (r.kind === 'empty') {
        summary.skipped++;
        summary.skippedReasons.empty++;
      } else if (r.kind === 'bad') {
        bad({ line: r.line, issues: r.issues });
      } else if (seen.has(r.key)) {
        summary.skipped++;
        summary.skippedReasons.duplicate++;
      } else {
        seen.add(r.key);
        if (o.dryRun || !o.send) {
          summary.imported++;
        } else {
          const send = o.send;
          const prev = chains.get(r.leadId);
          const p: Promise<void> = (prev ?? Promise.resolve())
            .then(async () => {
              if (fatal) return;
              try {
                const res = await send(r.value, {
                  line: r.line,
                  leadId: r.leadId,
                  ...(r.fact ? { fact: r.fact } : {}),
                  ...(r.stages ? { stages: r.stages } : {}),
                });
                summary.imported++;
                if (res === 'created') summary.created++;
                if (res === 'updated' || (res === 'unchanged' && o.kind === 'leads')) summary.updated++;
                if (res === 'unchanged') summary.unchanged++;
              } catch (err) {
                const status = (err as { status?: number }).status;
                if (typeof status === 'number' && status >= 400 && status < 500) {
                  const issues = (err as { issues?: { path: string; message: string }[] }).issues;
                  bad({
                    line: r.line,
                    issues: issues?.length
                      ? issues.map((i) => ({ field: i.path, message: i.message }))
                      : [{ field: '(row)', message: (err as Error).message }],
                  });
                } else {
                  fatal ??= err;
                }
              }
            })
            .finally(() => {
              inflight.delete(p);
              if (chains.get(r.leadId) === p) chains.delete(r.leadId);
              progress();
            });
          chains.set(r.leadId, p);
          inflight.add(p);
          while (inflight.size >= concurrency) await Promise.race(inflight);
        }
      }
      progress();
    }
    if (!plan) throw new ImportSetupError(`${o.file} is empty: expected a header row`);
  } finally {
    await Promise.all(inflight);
    if (!(input as { destroyed?: boolean }).destroyed) input.destroy();
  }
  progress();
  summary.elapsedMs = Math.round(performance.now() - started);
  if (fatal) {
    throw new ImportFatalError(`import stopped: ${(fatal as Error)?.message ?? String(fatal)}`, summary, {
      cause: fatal,
    });
  }
  return summary;
}

/** The human summary printed at the end. */
export function formatSummary(s: ImportSummary): string {
  const lines = [
    `${s.dryRun ? 'dry run (nothing sent): ' : ''}${s.file}: ${s.rowsRead} rows read, ${s.imported} ${s.dryRun ? 'valid' : 'imported'}` +
      (s.kind === 'leads' && !s.dryRun
        ? ` (${s.created} new, ${s.updated} updated${s.unchanged ? `; ${s.unchanged} already so in the ledger, not sent` : ''})`
        : '') +
      (s.kind !== 'leads' && s.unchanged ? ` (${s.unchanged} already in the ledger, not sent)` : '') +
      `, ${s.bad} bad, ${s.skipped} skipped` +
      (s.skipped
        ? ` (${[s.skippedReasons.empty ? `${s.skippedReasons.empty} empty` : '', s.skippedReasons.duplicate ? `${s.skippedReasons.duplicate} duplicate rows` : ''].filter(Boolean).join(', ')})`
        : ''),
    `columns: ${s.columns.map((c) => (c.column === c.field ? c.field : `${c.column} -> ${c.field}`)).join(', ') || '(none)'}`,
  ];
  if (!s.dryRun && s.elapsedMs > 0 && s.rowsRead)
    lines.push(
      `read and sent in ${(s.elapsedMs / 1000).toFixed(1)} s (${Math.round(s.rowsRead / (s.elapsedMs / 1000))} rows/s)`,
    );
  if (s.ledger && s.ledger.recorded + s.ledger.pending > 0) {
    lines.push(
      `in the ledger: ${s.ledger.recorded} of ${s.ledger.recorded + s.ledger.pending} ${s.kind}` +
        (s.ledger.pending
          ? `; ${s.ledger.pending} not yet after waiting ${(s.ledger.waitedMs / 1000).toFixed(1)} s`
          : ` (${(s.ledger.waitedMs / 1000).toFixed(1)} s after the last send)`),
    );
  }
  if (s.ignoredColumns.length)
    lines.push(
      `ignored columns (not a ${shapeName(s.kind)} field; --map them to use them): ${s.ignoredColumns.join(', ')}`,
    );
  return lines.join('\n');
}

// ---- waiting for the ledger --------------------------------------------------------------------

export interface WaitForLedgerOptions<T> {
  items: readonly T[];
  /** Whether the ledger shows each item of a batch, in order. */
  check: (batch: T[]) => Promise<boolean[]>;
  /** Gives up once nothing new showed for this long (ms). */
  stallMs: number;
  pollMs?: number;
  batchSize?: number;
  onProgress?: (recorded: number, total: number) => void;
}

/**
 * Waits until the ledger shows every item (what each lead's workflow writes once it applied the
 * import), so that the next command (an outcomes import after the leads) reads a ledger that has
 * them. Gives up when nothing new showed for `stallMs` (no worker running, say): the signals are
 * delivered all the same and are applied once a worker runs.
 */
export async function waitForLedger<T>(
  o: WaitForLedgerOptions<T>,
): Promise<{ recorded: number; pending: T[]; waitedMs: number }> {
  const started = performance.now();
  const size = o.batchSize ?? 1000;
  let pending = [...o.items];
  let lastProgress = started;
  for (;;) {
    const still: T[] = [];
    for (let i = 0; i < pending.length; i += size) {
      const batch = pending.slice(i, i + size);
      const shown = await o.check(batch);
      batch.forEach((item, j) => {
        if (!shown[j]) still.push(item);
      });
    }
    if (still.length < pending.length) lastProgress = performance.now();
    pending = still;
    o.onProgress?.(o.items.length - pending.length, o.items.length);
    if (!pending.length || performance.now() - lastProgress >= o.stallMs) break;
    await new Promise((r) => setTimeout(r, o.pollMs ?? 250));
  }
  return { recorded: o.items.length - pending.length, pending, waitedMs: Math.round(performance.now() - started) };
}
