/**
 * The configuration schema (CONTRACT.md §Configuration). Pure: parsing a YAML file and checking
 * template files live in src/config-file.ts; this module only validates a plain object, so the
 * workflow bundle can import the types.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { BUILTIN_EVENT_TYPES } from './event-types.js';
import { STAGES } from './stages.js';
import { EVENT_TYPE_RE, EVENT_TYPE_RULE, isTimeZone, TEMPLATE_ID_RE, TEMPLATE_ID_RULE, TIME_ZONE_RULE } from './syntax.js';

/**
 * A whole number. Not `z.number().int()`: its issue aborts every refinement above it, so the
 * cross-field checks (catch-all route, thresholds, tracks) would go unreported next to it.
 */
const wholeNumber = () => z.number().refine(Number.isSafeInteger, 'must be a whole number');

/** A duration string (`500ms`, `2s`, `15m`, `48h`, `30d`) that yields milliseconds. */
export const durationMs = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration like 500ms, 2s, 15m, 48h or 30d` });
    return z.NEVER;
  }
  return ms;
});

const fieldName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be a profile field name');
const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** One rule over a profile field. Exactly one kind of test per rule. */
const ruleSchema = z.object({
  field: fieldName,
  in: z.array(scalar).min(1).optional(),
  notIn: z.array(scalar).min(1).optional(),
  pattern: z.string().min(1).refine(isRegExp, 'must be a valid regular expression').optional(),
  domain: z.array(z.string().min(1)).min(1).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  exists: z.boolean().optional(),
}).strict().superRefine((rule, ctx) => {
  const tests = (['in', 'notIn', 'pattern', 'domain', 'exists'] as const).filter((k) => rule[k] !== undefined);
  const hasRange = rule.min !== undefined || rule.max !== undefined;
  if (tests.length + (hasRange ? 1 : 0) !== 1) {
    ctx.addIssue({ code: 'custom', message: 'a rule needs exactly one of in, notIn, pattern, domain, exists or min/max' });
  }
  if (rule.min !== undefined && rule.max !== undefined && rule.min > rule.max) {
    ctx.addIssue({ code: 'custom', path: ['min'], message: 'min is greater than max' });
  }
}, { when: isObject });
export type Rule = z.infer<typeof ruleSchema>;

/**
 * Cross-field checks run even when a sibling field has a problem, so that a bad file reports every
 * problem at once (zod skips refinements after an earlier issue unless told when to run them).
 */
function isObject(payload: { value: unknown }): boolean {
  return typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value);
}

function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern, 'i');
    return true;
  } catch {
    return false;
  }
}

// Both sides strict: an intersection drops a key only one side rejects, and a misspelt key must be reported.
const fitRuleSchema = ruleSchema.and(z.object({ points: wholeNumber() }).strict());
const disqualifyRuleSchema = ruleSchema.and(z.object({ reason: z.string().optional() }).strict());

const behaviorSchema = z.object({
  points: wholeNumber(),
  maxPerDay: wholeNumber().positive().optional(),
  handRaiser: z.boolean().optional(),
}).strict();

const timeOfDay = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24h)');
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const stepSchema = z.object({
  after: durationMs,
  template: z.string().regex(TEMPLATE_ID_RE, TEMPLATE_ID_RULE),
  skipIfEngagedWithin: durationMs.optional(),
}).strict();

const trackSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a lower-case id'),
  for: z.array(z.enum(STAGES)).min(1),
  steps: z.array(stepSchema).min(1),
}).strict();

const routingRuleSchema = z.object({
  when: z.record(fieldName, z.array(scalar).min(1)).optional(),
  owners: z.array(z.email()).min(1),
}).strict();

const timeZone = z.string().refine(isTimeZone, TIME_ZONE_RULE);

export const configSchema = z.object({
  scoring: z.object({
    thresholds: z.object({
      mql: wholeNumber(),
      sql: wholeNumber(),
      minFit: wholeNumber().default(0),
    }).strict().refine((t) => typeof t.sql !== 'number' || typeof t.mql !== 'number' || t.sql >= t.mql, {
      message: 'sql threshold must not be below the mql threshold', path: ['sql'], when: isObject,
    }),
    fit: z.array(fitRuleSchema).default([]),
    disqualify: z.array(disqualifyRuleSchema).default([]),
    behavior: z.record(z.string().regex(EVENT_TYPE_RE, EVENT_TYPE_RULE), behaviorSchema)
      .superRefine((b, ctx) => {
        for (const t of BUILTIN_EVENT_TYPES) {
          if (t in b) ctx.addIssue({ code: 'custom', path: [t], message: `${t} is a built-in event type (consent), not a behaviour` });
        }
      }, { when: isObject }),
    decay: z.object({ halfLife: durationMs }).strict().optional(),
  }).strict(),
  nurture: z.object({ tracks: z.array(trackSchema).default([]) }).strict().default({ tracks: [] }),
  timeouts: z.object({
    mqlStaleAfter: durationMs,
    salesAcceptWithin: durationMs,
    salesEscalations: wholeNumber().min(0).max(20).default(0),
    dormantAfter: durationMs,
  }).strict(),
  routing: z.array(routingRuleSchema).min(1, 'at least one routing rule (a catch-all) is needed'),
  email: z.object({
    from: z.string().min(3),
    templates: z.string().default('templates/'),
    sendWindow: z.object({
      days: z.array(z.enum(WEEKDAYS)).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri']),
      from: timeOfDay,
      to: timeOfDay,
    }).strict().refine((w) => typeof w.from !== 'string' || typeof w.to !== 'string' || w.from < w.to, {
      message: 'from must be before to', path: ['to'], when: isObject,
    }).optional(),
    defaultTimezone: timeZone.default('UTC'),
    frequencyCap: z.object({
      perDay: wholeNumber().positive().optional(),
      perWeek: wholeNumber().positive().optional(),
    }).strict().optional(),
  }).strict(),
  campaigns: z.record(z.string(), z.object({ cost: z.number().min(0) }).strict()).default({}),
}).strict().superRefine((cfg, ctx) => {
  // Runs on partly invalid input too (see isObject), so it reads the fields defensively.
  const tracks: unknown[] = Array.isArray(cfg.nurture?.tracks) ? cfg.nurture.tracks : [];
  const ids = new Set<string>();
  const stagesSeen = new Map<string, string>();
  tracks.forEach((track, i) => {
    const t = (typeof track === 'object' && track !== null ? track : {}) as { id?: unknown; for?: unknown };
    if (typeof t.id !== 'string') return;
    if (ids.has(t.id)) ctx.addIssue({ code: 'custom', path: ['nurture', 'tracks', i, 'id'], message: `duplicate track id ${t.id}` });
    ids.add(t.id);
    if (!Array.isArray(t.for)) return;
    t.for.forEach((stage: unknown, j) => {
      if (typeof stage !== 'string') return;
      const other = stagesSeen.get(stage);
      if (other) ctx.addIssue({ code: 'custom', path: ['nurture', 'tracks', i, 'for', j], message: `stage ${stage} is already nurtured by track ${other}` });
      stagesSeen.set(stage, t.id as string);
    });
  });
  const routing: unknown[] = Array.isArray(cfg.routing) ? cfg.routing : [];
  const last = routing[routing.length - 1] as { when?: unknown } | undefined;
  if (typeof last === 'object' && last !== null && last.when !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['routing', routing.length - 1], message: 'the last routing rule must have no `when` (a catch-all)' });
  }
}, { when: isObject });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type Track = Config['nurture']['tracks'][number];
export type Behavior = Config['scoring']['behavior'][string];

/** Every event type an entry point accepts: the config's behaviours and the built-in consent types. */
export function knownEventTypes(config: Config): string[] {
  return [...Object.keys(config.scoring.behavior), ...BUILTIN_EVENT_TYPES];
}
export { WEEKDAYS };
