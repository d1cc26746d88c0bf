/**
 * The configuration schema (CONTRACT.md §Configuration). Pure: parsing a YAML file and checking
 * template files live in src/config-file.ts; this module only validates a plain object, so the
 * workflow bundle can import the types. Only the types: evaluated in the workflow sandbox beside
 * lead.ts, its `z.config(en())` fails there ("Cannot assign to read only property 'localeError'"),
 * so what the model needs from a config (isScoredType, modelFor) lives in scoring.ts.
 */
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { parseDuration } from './duration.js';
import { BUILTIN_EVENT_TYPES } from './event-types.js';
import { DEFAULT_MODEL_ID, modelsOf } from './scoring.js';
import { STAGES } from './stages.js';
import {
  EVENT_TYPE_RE,
  EVENT_TYPE_RULE,
  isTimeZone,
  TEMPLATE_ID_RE,
  TEMPLATE_ID_RULE,
  TIME_ZONE_RULE,
} from './syntax.js';

// zod/mini loads no messages by default; English ones, as every entry point reports them (as in lead.ts).
z.config(en());

const opt = z.optional;

/**
 * A whole number. Not `z.int()`: its issue aborts every refinement above it, so the
 * cross-field checks (catch-all route, thresholds, tracks) would go unreported next to it.
 */
const wholeNumber = () => z.number().check(z.refine(Number.isSafeInteger, 'must be a whole number'));

/** A duration string (`500ms`, `2s`, `15m`, `48h`, `30d`) that yields milliseconds. */
export const durationMs = z.pipe(
  z.string(),
  z.transform((text: string, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      // mini's transform context has no addIssue (classic adds one): the same issue, pushed directly.
      const message = `"${text}" is not a duration like 500ms, 2s, 15m, 48h or 30d`;
      ctx.issues.push({ code: 'custom', message, input: text });
      return z.NEVER;
    }
    return ms;
  }),
);

const fieldName = z.string().check(z.regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be a profile field name'));
const scalar = z.union([z.string(), z.number(), z.boolean()]);
const nonEmpty = <T extends z.ZodMiniType>(item: T) => z.array(item).check(z.minLength(1));

/** One rule over a profile field. Exactly one kind of test per rule. */
const ruleSchema = z
  .strictObject({
    field: fieldName,
    in: opt(nonEmpty(scalar)),
    notIn: opt(nonEmpty(scalar)),
    pattern: opt(z.string().check(z.minLength(1), z.refine(isRegExp, 'must be a valid regular expression'))),
    domain: opt(nonEmpty(z.string().check(z.minLength(1)))),
    min: opt(z.number()),
    max: opt(z.number()),
    exists: opt(z.boolean()),
  })
  .check(
    z.superRefine(
      (rule, ctx) => {
        const tests = (['in', 'notIn', 'pattern', 'domain', 'exists'] as const).filter((k) => rule[k] !== undefined);
        const hasRange = rule.min !== undefined || rule.max !== undefined;
        if (tests.length + (hasRange ? 1 : 0) !== 1) {
          const message = 'a rule needs exactly one of in, notIn, pattern, domain, exists or min/max';
          ctx.addIssue({ code: 'custom', message });
        }
        if (rule.min !== undefined && rule.max !== undefined && rule.min > rule.max) {
          ctx.addIssue({ code: 'custom', path: ['min'], message: 'min is greater than max' });
        }
      },
      { when: isObject },
    ),
  );
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
const fitRuleSchema = z.intersection(ruleSchema, z.strictObject({ points: wholeNumber() }));
const disqualifyRuleSchema = z.intersection(ruleSchema, z.strictObject({ reason: opt(z.string()) }));

const behaviorSchema = z.strictObject({
  points: wholeNumber(),
  maxPerDay: opt(wholeNumber().check(z.positive())),
  handRaiser: opt(z.boolean()),
});

const timeOfDay = z.string().check(z.regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24h)'));
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const stepSchema = z.strictObject({
  after: durationMs,
  template: z.string().check(z.regex(TEMPLATE_ID_RE, TEMPLATE_ID_RULE)),
  skipIfEngagedWithin: opt(durationMs),
});

const trackSchema = z.strictObject({
  id: z.string().check(z.regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a lower-case id')),
  for: nonEmpty(z.enum(STAGES)),
  steps: nonEmpty(stepSchema),
});

const routingRuleSchema = z.strictObject({
  when: opt(z.record(fieldName, nonEmpty(scalar))),
  owners: nonEmpty(z.email()),
});

const timeZone = z.string().check(z.refine(isTimeZone, TIME_ZONE_RULE));

const thresholdsSchema = z
  .strictObject({
    mql: wholeNumber(),
    sql: wholeNumber(),
    minFit: z._default(wholeNumber(), 0),
  })
  .check(
    z.refine((t) => typeof t.sql !== 'number' || typeof t.mql !== 'number' || t.sql >= t.mql, {
      message: 'sql threshold must not be below the mql threshold',
      path: ['sql'],
      when: isObject,
    }),
  );

const behaviorsSchema = z.record(z.string().check(z.regex(EVENT_TYPE_RE, EVENT_TYPE_RULE)), behaviorSchema).check(
  z.superRefine(
    (b, ctx) => {
      for (const t of BUILTIN_EVENT_TYPES) {
        const message = `${t} is a built-in event type (consent), not a behaviour`;
        if (t in b) ctx.addIssue({ code: 'custom', path: [t], message });
      }
    },
    { when: isObject },
  ),
);

const sendWindowSchema = z
  .strictObject({
    days: z._default(nonEmpty(z.enum(WEEKDAYS)), ['mon', 'tue', 'wed', 'thu', 'fri']),
    from: timeOfDay,
    to: timeOfDay,
  })
  .check(
    z.refine((w) => typeof w.from !== 'string' || typeof w.to !== 'string' || w.from < w.to, {
      message: 'from must be before to',
      path: ['to'],
      when: isObject,
    }),
  );

const modelFields = {
  thresholds: thresholdsSchema,
  fit: z._default(z.array(fitRuleSchema), []),
  disqualify: z._default(z.array(disqualifyRuleSchema), []),
  behavior: behaviorsSchema,
  decay: opt(z.strictObject({ halfLife: durationMs })),
};
const modelSchema = z.strictObject({
  id: z.string().check(z.regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be a lower-case id')),
  /** The profile the model is for: every rule must match (same syntax as fit rules). */
  when: opt(z.union([ruleSchema, nonEmpty(ruleSchema)])),
  ...modelFields,
});

/**
 * `scoring` is one model (CONTRACT.md §Configuration) or `scoring.models` (§Scoring models): the
 * first model whose `when` matches the lead's profile scores it, the last one has no `when`. Either
 * way the parsed config holds a list of models (a flat one becomes the model `default`).
 */
const flatScoringSchema = z.strictObject(modelFields);
const modelsScoringSchema = z.strictObject({
  models: nonEmpty(modelSchema).check(
    z.superRefine(
      (models, ctx) => {
        const ids = new Set<string>();
        models.forEach((m, i) => {
          if (ids.has(m.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate model id ${m.id}` });
          ids.add(m.id);
          const last = i === models.length - 1;
          if (last && m.when !== undefined) {
            const message = 'the last model must have no `when` (it scores every other lead)';
            ctx.addIssue({ code: 'custom', path: [i, 'when'], message });
          }
          if (!last && m.when === undefined) {
            const message = 'only the last model may have no `when` (the models after it would never score)';
            ctx.addIssue({ code: 'custom', path: [i], message });
          }
        });
      },
      { when: (p) => Array.isArray(p.value) },
    ),
  ),
});
type ModelsScoring = z.input<typeof modelsScoringSchema>;
type FlatScoring = z.input<typeof flatScoringSchema>;
export type ScoringModel = Omit<z.output<typeof modelSchema>, 'when'> & { when?: Rule[] };

/**
 * `scoring` is one model (CONTRACT.md §Configuration) or `scoring.models` (§Scoring models): the
 * first model whose `when` matches the lead's profile scores it, the last one has no `when`. Either
 * way the parsed config holds a list of models (a flat one becomes the model `default`). Which form
 * a file uses is decided by the `models` key, so its problems are reported in that form's paths
 * (a union would report only "Invalid input").
 */
const scoringSchema = z.pipe(
  z.custom<ModelsScoring | FlatScoring>(),
  z.transform((value, ctx): { models: ScoringModel[] } => {
    const usesModels = typeof value === 'object' && value !== null && 'models' in value;
    if (usesModels) {
      const r = modelsScoringSchema.safeParse(value);
      if (r.success)
        return {
          models: r.data.models.map(({ when, ...m }) => (when === undefined ? m : { ...m, when: [when].flat() })),
        };
      ctx.issues.push(...(r.error.issues as unknown as (typeof ctx.issues)[number][]));
      return z.NEVER;
    }
    const r = flatScoringSchema.safeParse(value);
    if (r.success) return { models: [{ id: DEFAULT_MODEL_ID, ...r.data }] };
    ctx.issues.push(...(r.error.issues as unknown as (typeof ctx.issues)[number][]));
    return z.NEVER;
  }),
);

/**
 * Segment-compatible ingest (src/api/routes/segment.ts): which environment variable holds the write
 * keys (secrets stay out of the file), Segment event names to event types, and trait names to
 * profile fields (added to, or overriding, the default map of Segment's spec'd traits).
 */
const segmentSchema = z.strictObject({
  writeKeysEnv: z._default(
    z.string().check(z.regex(/^[A-Z][A-Z0-9_]*$/, 'must be an environment variable name')),
    'SEGMENT_WRITE_KEYS',
  ),
  events: z._default(
    z.record(
      z.string().check(z.minLength(1), z.maxLength(200)),
      z.string().check(z.regex(EVENT_TYPE_RE, EVENT_TYPE_RULE)),
    ),
    {},
  ),
  traits: z._default(z.record(z.string().check(z.minLength(1), z.maxLength(200)), fieldName), {}),
});

/** The change types a webhook endpoint can subscribe to (docs/webhooks.md). */
export const WEBHOOK_EVENTS = [
  'lead.stage_changed',
  'lead.handed_off',
  'lead.outcome_recorded',
  'lead.consent_changed',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A Standard Webhooks secret: `whsec_` and the base64 of at least 24 random bytes. */
export const WEBHOOK_SECRET_RE = /^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
export const WEBHOOK_SECRET_RULE = 'must be whsec_ followed by the base64 of at least 24 bytes (Standard Webhooks)';
export const isWebhookSecret = (s: string) =>
  WEBHOOK_SECRET_RE.test(s) && ((s.length - 6) / 4) * 3 - (s.match(/=/g)?.length ?? 0) >= 24;

const httpUrl = z.string().check(
  z.refine((s: string) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL'),
);

/**
 * An outgoing webhook endpoint (src/webhooks/): which changes it gets, and its signing secret, in
 * the file (`secret`) or, better, in an environment variable the file names (`secretEnv`, checked
 * when the worker starts). `retry.initialInterval` is the first retry's delay (doubling up to an
 * hour); attempts stop 3 days after the first.
 */
const webhookSchema = z.strictObject({
  id: z.string().check(z.regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lower case letters, digits, - and _')),
  url: httpUrl,
  events: z.array(z.enum(WEBHOOK_EVENTS)).check(z.minLength(1, `at least one of ${WEBHOOK_EVENTS.join(', ')}`)),
  secret: opt(z.string().check(z.refine(isWebhookSecret, WEBHOOK_SECRET_RULE))),
  secretEnv: opt(z.string().check(z.regex(/^[A-Z][A-Z0-9_]*$/, 'must be an environment variable name'))),
  retry: opt(z.strictObject({ initialInterval: opt(durationMs) })),
});
export type WebhookEndpoint = z.output<typeof webhookSchema>;

/** Endpoint ids are unique; each endpoint has exactly one of secret and secretEnv. */
function webhookProblems(cfg: { webhooks?: unknown }): { path: (string | number)[]; message: string }[] {
  if (!Array.isArray(cfg.webhooks)) return [];
  const seen = new Set<string>();
  const problems: { path: (string | number)[]; message: string }[] = [];
  cfg.webhooks.forEach((w: unknown, i) => {
    if (typeof w !== 'object' || w === null) return;
    const { id, secret, secretEnv } = w as { id?: unknown; secret?: unknown; secretEnv?: unknown };
    if (typeof id === 'string') {
      if (seen.has(id)) problems.push({ path: ['webhooks', i, 'id'], message: `duplicate webhook id ${id}` });
      seen.add(id);
    }
    if ((secret === undefined) === (secretEnv === undefined))
      problems.push({ path: ['webhooks', i, 'secret'], message: 'give exactly one of secret and secretEnv' });
  });
  return problems;
}

/** Every `segment.events` target must be an event type the config scores (or a built-in one). */
function segmentEventProblems(cfg: {
  scoring?: unknown;
  segment?: { events?: unknown };
}): { path: (string | number)[]; message: string }[] {
  const events = cfg.segment?.events;
  const models = (cfg.scoring as { models?: unknown } | undefined)?.models;
  if (typeof events !== 'object' || events === null || !Array.isArray(models)) return [];
  const known = knownEventTypes(cfg as Config);
  return Object.entries(events)
    .filter(([, type]) => typeof type === 'string' && !known.includes(type))
    .map(([name, type]) => ({
      path: ['segment', 'events', name],
      message: `"${name}" maps to ${type}, which the config does not score; known: ${known.join(', ')}`,
    }));
}

export const configSchema = z
  .strictObject({
    scoring: scoringSchema,
    nurture: z._default(z.strictObject({ tracks: z._default(z.array(trackSchema), []) }), { tracks: [] }),
    timeouts: z.strictObject({
      mqlStaleAfter: durationMs,
      salesAcceptWithin: durationMs,
      salesEscalations: z._default(wholeNumber().check(z.gte(0), z.lte(20)), 0),
      dormantAfter: durationMs,
    }),
    routing: z.array(routingRuleSchema).check(z.minLength(1, 'at least one routing rule (a catch-all) is needed')),
    /** Per owner, what their mail is written in: the handoff mail's dates in the owner's zone (default UTC). */
    owners: z._default(z.record(z.email(), z.strictObject({ timezone: timeZone })), {}),
    email: z.strictObject({
      from: z.string().check(z.minLength(3)),
      templates: z._default(z.string(), 'templates/'),
      sendWindow: opt(sendWindowSchema),
      defaultTimezone: z._default(timeZone, 'UTC'),
      frequencyCap: opt(
        z.strictObject({
          perDay: opt(wholeNumber().check(z.positive())),
          perWeek: opt(wholeNumber().check(z.positive())),
        }),
      ),
    }),
    campaigns: z._default(z.record(z.string(), z.strictObject({ cost: z.number().check(z.gte(0)) })), {}),
    segment: opt(segmentSchema),
    webhooks: z._default(z.array(webhookSchema), []),
  })
  .check(
    z.superRefine(
      (cfg, ctx) => {
        // Runs on partly invalid input too (see isObject), so it reads the fields defensively.
        const tracks: unknown[] = Array.isArray(cfg.nurture?.tracks) ? cfg.nurture.tracks : [];
        const ids = new Set<string>();
        const stagesSeen = new Map<string, string>();
        tracks.forEach((track, i) => {
          const t = (typeof track === 'object' && track !== null ? track : {}) as { id?: unknown; for?: unknown };
          if (typeof t.id !== 'string') return;
          if (ids.has(t.id)) {
            ctx.addIssue({
              code: 'custom',
              path: ['nurture', 'tracks', i, 'id'],
              message: `duplicate track id ${t.id}`,
            });
          }
          ids.add(t.id);
          if (!Array.isArray(t.for)) return;
          t.for.forEach((stage: unknown, j) => {
            if (typeof stage !== 'string') return;
            const other = stagesSeen.get(stage);
            if (other) {
              const message = `stage ${stage} is already nurtured by track ${other}`;
              ctx.addIssue({ code: 'custom', path: ['nurture', 'tracks', i, 'for', j], message });
            }
            stagesSeen.set(stage, t.id as string);
          });
        });
        for (const p of segmentEventProblems(cfg)) ctx.addIssue({ code: 'custom', ...p });
        for (const p of webhookProblems(cfg)) ctx.addIssue({ code: 'custom', ...p });
        const routing: unknown[] = Array.isArray(cfg.routing) ? cfg.routing : [];
        const last = routing[routing.length - 1] as { when?: unknown } | undefined;
        if (typeof last === 'object' && last !== null && last.when !== undefined) {
          const message = 'the last routing rule must have no `when` (a catch-all)';
          ctx.addIssue({ code: 'custom', path: ['routing', routing.length - 1], message });
        }
        // An owner's settings for an address no rule routes to is a typo, not a setting.
        const routed = new Set(
          routing.flatMap((r) => {
            const owners = (r as { owners?: unknown } | null)?.owners;
            return Array.isArray(owners) ? owners : [];
          }),
        );
        const owners = typeof cfg.owners === 'object' && cfg.owners !== null ? Object.keys(cfg.owners) : [];
        for (const owner of owners.filter((o) => !routed.has(o)))
          ctx.addIssue({ code: 'custom', path: ['owners', owner], message: `${owner} is in no routing rule's owners` });
      },
      { when: isObject },
    ),
  );

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type Track = Config['nurture']['tracks'][number];
export type Behavior = ScoringModel['behavior'][string];

/** Every event type an entry point accepts: every model's behaviours and the built-in consent types. */
export function knownEventTypes(config: Config): string[] {
  return [...new Set([...modelsOf(config).flatMap((m) => Object.keys(m.behavior)), ...BUILTIN_EVENT_TYPES])];
}

export { WEEKDAYS };
