/**
 * The public data shapes of CONTRACT.md (LeadInput, LeadEvent, LeadState, sales outcomes) as zod
 * schemas: the one definition that the API, the CLI, the workflow's signal and update handlers
 * and the tests all validate against.
 *
 * Written with `zod/mini`: these schemas are also built inside every cached lead workflow (the
 * workflow sandbox evaluates its modules per workflow), and classic zod attaches dozens of
 * methods to every schema instance; mini's schemas are plain data, so a cached lead stays small.
 */
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { CONTROL_CHARS, profileLimitProblem } from './limits.js';
import { STAGES } from './stages.js';
import { EVENT_TYPE_RE, EVENT_TYPE_RULE, isTimeZone, TIME_ZONE_RULE } from './syntax.js';

// zod/mini loads no messages by default; English ones, as every entry point reports them.
z.config(en());

export { OUTCOME_STAGE, type Stage, STAGES, TERMINAL_STAGES } from './stages.js';

export const LEAD_ID_RE = /^[A-Za-z0-9._:@+-]{1,128}$/;
export const leadIdSchema = z
  .string()
  .check(z.regex(LEAD_ID_RE, 'must be 1-128 characters of A-Z a-z 0-9 . _ : @ + -'));
/** Each lead's workflow id is `lead-<leadId>` (CONTRACT.md): built and read here only. */
const WORKFLOW_ID_PREFIX = 'lead-';
export const workflowIdFor = (leadId: string) => `${WORKFLOW_ID_PREFIX}${leadId}`;
/** The lead id of a workflow id `lead-<leadId>` (the inverse of workflowIdFor). */
export const leadIdOfWorkflowId = (workflowId: string) =>
  workflowId.startsWith(WORKFLOW_ID_PREFIX) ? workflowId.slice(WORKFLOW_ID_PREFIX.length) : workflowId;

const isoDate = z.iso.datetime({ offset: true });
/**
 * Control characters are refused, not stripped: C0 (CR, LF, NUL, tab ...), DEL, C1, and the Unicode
 * line separators and bidi overrides. Profile text ends up in mail headers and text parts, HTML
 * pages and `leadctl show`; a CR/LF there is header or line injection, a bidi override spoofs what
 * a reader sees. Refusing tells the sender which field is wrong (a silent strip would change a value
 * nobody asked to change, and two senders' "same" value would differ from what each sent).
 * Leading and trailing whitespace (a stray newline at the end of a CSV cell) is trimmed first.
 */
const noControls = z.refine<string>(
  (v) => !CONTROL_CHARS.test(v),
  'must not contain control characters (CR, LF, NUL, tab, bidi overrides ...)',
);
const text = (max = 200) => z.string().check(z.trim(), z.minLength(1), z.maxLength(max), noControls);
const opt = z.optional;
const email = z.email().check(z.maxLength(320));

export { CONTROL_CHARS, PROFILE_LIMITS, profileLimitProblem, profileWithinLimits } from './limits.js';

/** Fails the parse with the bound's reason; `pick` chooses which keys of the value are profile fields. */
const withinLimits = <T extends Record<string, unknown>>(pick: (v: T) => Record<string, unknown> = (v) => v) =>
  z.superRefine<T>((v, ctx) => {
    const profile = pick(v);
    const problem = profileLimitProblem(profile);
    if (problem) ctx.issues.push({ code: 'custom', message: problem, input: v });
    // Field names are text too: they reach templates, pages and leadctl like the values.
    for (const key of Object.keys(profile)) {
      if (!key.length || key.length > 100 || CONTROL_CHARS.test(key))
        ctx.issues.push({
          code: 'custom',
          path: [key],
          message: 'a field name must be 1-100 characters without control characters',
          input: key,
        });
    }
  });

/** Profile fields that scoring, routing and templates read. Unknown fields are kept as given. */
const profileObject = z.catchall(
  z.object({
    email: opt(email),
    firstName: opt(text(100)),
    lastName: opt(text(100)),
    company: opt(text()),
    jobTitle: opt(text()),
    seniority: opt(text(50)),
    department: opt(text(100)),
    industry: opt(text(100)),
    companySize: opt(z.int().check(z.gte(0), z.lte(10_000_000))),
    country: opt(z.string().check(z.regex(/^[A-Z]{2}$/, 'must be an ISO-3166 alpha-2 code like US or DE'))),
    timezone: opt(z.string().check(z.maxLength(64), z.refine(isTimeZone, TIME_ZONE_RULE))),
  }),
  z.union([z.string().check(z.maxLength(1000), noControls), z.number(), z.boolean(), z.null()]),
);
export const profileSchema = profileObject.check(withinLimits());
export type Profile = z.infer<typeof profileSchema>;

const leadInputObject = z.extend(profileObject, {
  leadId: leadIdSchema,
  email,
  campaign: opt(text(100)),
  channel: opt(text(100)),
  consent: opt(z.object({ email: z.boolean() })),
});
/** The keys of a LeadInput that are not profile fields (what upsertLead takes off before the profile signal). */
const profileOf = ({ leadId: _l, campaign: _c, channel: _ch, consent: _co, ...profile }: Record<string, unknown>) =>
  profile;
export const leadInputSchema = leadInputObject.check(withinLimits(profileOf));
export type LeadInput = z.infer<typeof leadInputSchema>;

/** The workflow's start argument: a LeadInput whose email may be missing (an event may create an anonymous lead). */
export const leadStartSchema = z.partial(leadInputObject, { email: true }).check(withinLimits(profileOf));
export type LeadStart = z.infer<typeof leadStartSchema>;

export const leadEventSchema = z.object({
  leadId: leadIdSchema,
  eventId: z.string().check(z.minLength(1), z.maxLength(200)),
  type: z.string().check(z.regex(EVENT_TYPE_RE, EVENT_TYPE_RULE)),
  occurredAt: opt(isoDate),
  campaign: opt(text(100)),
  channel: opt(text(100)),
  asset: opt(text(500)),
  email: opt(email),
  profile: opt(profileSchema),
});
export type LeadEvent = z.infer<typeof leadEventSchema>;

/**
 * An imported history fact (signal `history`, sent by `leadctl import`): a lead's stage and stage
 * dates, or a sales outcome at its own date (src/domain/imported.ts says what each means).
 * `importId` is its idempotency key, remembered like an event id: a second import changes nothing.
 */
const stageDates = {
  becameMqlAt: opt(isoDate),
  becameSqlAt: opt(isoDate),
  becameOpportunityAt: opt(isoDate),
  becameCustomerAt: opt(isoDate),
};
// The outcome form first: the history form's keys are all optional, so it would match an outcome too.
export const importedFactSchema = z.union([
  z.object({
    importId: z.string().check(z.minLength(1), z.maxLength(300)),
    outcome: z.enum(['accepted', 'rejected', 'won', 'lost']),
    occurredAt: isoDate,
    reason: opt(z.string().check(z.maxLength(200))),
    note: opt(z.string().check(z.maxLength(2000))),
    rep: opt(z.string().check(z.maxLength(320))),
  }),
  z.object({ importId: z.string().check(z.minLength(1), z.maxLength(300)), stage: opt(z.enum(STAGES)), ...stageDates }),
]);
export type ImportedFact = z.infer<typeof importedFactSchema>;

export { BUILTIN_EVENT_TYPES } from './event-types.js';

export const REJECT_REASONS = ['not_ready', 'no_response', 'bad_fit', 'duplicate', 'other'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

const note = opt(z.string().check(z.maxLength(2000)));
const rep = opt(z.string().check(z.maxLength(320)));
export const salesOutcomeSchema = z.discriminatedUnion('outcome', [
  z.object({ outcome: z.literal('accepted'), note, rep }),
  z.object({ outcome: z.literal('rejected'), reason: z.enum(REJECT_REASONS), note, rep }),
  z.object({ outcome: z.literal('won'), note, rep }),
  z.object({ outcome: z.literal('lost'), reason: opt(z.string().check(z.maxLength(200))), note, rep }),
]);
export type SalesOutcome = z.infer<typeof salesOutcomeSchema>;

export const CONSENTS = ['subscribed', 'unsubscribed', 'bounced'] as const;
export type Consent = (typeof CONSENTS)[number];

/**
 * LeadState (CONTRACT.md §Data), what the `state` query, `GET /v1/leads/:leadId` and `leadctl show`
 * answer: built by `toState` (src/domain/lifecycle.ts), typed by this schema, and documented from it
 * in /openapi.json (src/api/openapi.ts). Times are ISO 8601 in UTC, as `toISOString` writes them.
 */
const instant = z.iso.datetime();
const count = z.int().check(z.gte(0));
const stage = z.enum(STAGES);
const transitionSchema = z.object({ at: instant, from: stage, to: stage, reason: z.string() });
export type Transition = z.infer<typeof transitionSchema>;
export const leadStateSchema = z.object({
  leadId: leadIdSchema,
  stage,
  score: z.object({
    total: z.int(),
    fit: z.int(),
    engagement: z.int(),
    model: z.string().check(z.describe('the id of the scoring model that scores the lead (scoring.models)')),
    factors: z
      .array(
        z.object({
          rule: z.string().check(z.describe('the fit rule as the config reads, or the event type')),
          points: z.int(),
          value: opt(z.union([z.string(), z.number(), z.boolean()])),
          count: opt(count),
          earned: opt(z.number().check(z.describe('the points the events earned before decay'))),
        }),
      )
      .check(z.describe('every fit rule and behaviour that contributes, largest first')),
  }),
  owner: opt(z.string()),
  profile: profileSchema,
  consent: z.enum(CONSENTS),
  nurture: z.object({ track: opt(z.string()), step: count, nextStepAt: opt(instant) }),
  createdAt: instant,
  lastEngagedAt: opt(instant),
  becameMqlAt: opt(instant),
  becameSqlAt: opt(instant),
  slaDeadline: opt(instant),
  recycleCount: count,
  eventsProcessed: count,
  transitions: z.array(transitionSchema).check(z.describe('the last 50, oldest first')),
  campaign: opt(z.string().check(z.describe('first touch'))),
  configVersion: z.string().check(z.describe('the config version the lead scores with')),
  scoreLog: z
    .array(
      z.object({
        at: instant,
        eventId: opt(z.string()),
        type: z.string(),
        points: z.number(),
        note: opt(z.string()),
      }),
    )
    .check(z.describe('why the score moved, newest last (the last 20 changes)')),
  escalations: count,
});
export type LeadState = z.infer<typeof leadStateSchema>;

/** Formats zod issues as `{ path, message }` with a dotted path, the shape every entry point reports. */
export function formatIssues(
  error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] },
  prefix: (string | number)[] = [],
): { path: string; message: string }[] {
  return error.issues.map((i) => ({
    path: [...prefix, ...i.path].map(String).join('.') || '(root)',
    message: i.message,
  }));
}

export function describeIssues(
  error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] },
  prefix: (string | number)[] = [],
): string {
  return formatIssues(error, prefix)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
}
