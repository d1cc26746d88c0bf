/**
 * The public data shapes of CONTRACT.md (LeadInput, LeadEvent, LeadState, sales outcomes) as zod
 * schemas: the one definition that the API, the CLI, the workflow's signal and update handlers
 * and the tests all validate against.
 */
import { z } from 'zod';

export const STAGES = ['lead', 'mql', 'sql', 'opportunity', 'customer', 'recycled', 'disqualified', 'dormant'] as const;
export type Stage = (typeof STAGES)[number];
/** Stages in which a run completes: nothing more happens until the lead engages again. */
export const TERMINAL_STAGES: readonly Stage[] = ['customer', 'disqualified', 'dormant'];

export const LEAD_ID_RE = /^[A-Za-z0-9._:@+-]{1,128}$/;
export const leadIdSchema = z.string().regex(LEAD_ID_RE, 'must be 1-128 characters of A-Z a-z 0-9 . _ : @ + -');
export const workflowIdFor = (leadId: string) => `lead-${leadId}`;

const isoDate = z.iso.datetime({ offset: true });
const text = (max = 200) => z.string().trim().min(1).max(max);

/** Profile fields that scoring, routing and templates read. Unknown fields are kept as given. */
export const profileSchema = z.object({
  email: z.email().max(320).optional(),
  firstName: text(100).optional(),
  lastName: text(100).optional(),
  company: text().optional(),
  jobTitle: text().optional(),
  seniority: text(50).optional(),
  department: text(100).optional(),
  industry: text(100).optional(),
  companySize: z.number().int().min(0).max(10_000_000).optional(),
  country: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO-3166 alpha-2 code like US or DE').optional(),
  timezone: z.string().max(64).refine(isTimeZone, 'must be an IANA time zone like Europe/Berlin').optional(),
}).catchall(z.union([z.string().max(1000), z.number(), z.boolean(), z.null()]));
export type Profile = z.infer<typeof profileSchema>;

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const leadInputSchema = profileSchema.extend({
  leadId: leadIdSchema,
  email: z.email().max(320),
  campaign: text(100).optional(),
  channel: text(100).optional(),
  consent: z.object({ email: z.boolean() }).optional(),
});
export type LeadInput = z.infer<typeof leadInputSchema>;

/** The workflow's start argument: a LeadInput whose email may be missing (an event may create an anonymous lead). */
export const leadStartSchema = leadInputSchema.partial({ email: true });
export type LeadStart = z.infer<typeof leadStartSchema>;

export const leadEventSchema = z.object({
  leadId: leadIdSchema,
  eventId: z.string().min(1).max(200),
  type: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a lower_snake_case event type'),
  occurredAt: isoDate.optional(),
  campaign: text(100).optional(),
  channel: text(100).optional(),
  asset: text(500).optional(),
  email: z.email().max(320).optional(),
  profile: profileSchema.optional(),
});
export type LeadEvent = z.infer<typeof leadEventSchema>;

export const BUILTIN_EVENT_TYPES = ['unsubscribe', 'hard_bounce'] as const;

export const REJECT_REASONS = ['not_ready', 'no_response', 'bad_fit', 'duplicate', 'other'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export const salesOutcomeSchema = z.discriminatedUnion('outcome', [
  z.object({ outcome: z.literal('accepted'), note: z.string().max(2000).optional(), rep: z.string().max(320).optional() }),
  z.object({ outcome: z.literal('rejected'), reason: z.enum(REJECT_REASONS), note: z.string().max(2000).optional(), rep: z.string().max(320).optional() }),
  z.object({ outcome: z.literal('won'), note: z.string().max(2000).optional(), rep: z.string().max(320).optional() }),
  z.object({ outcome: z.literal('lost'), reason: z.string().max(200).optional(), note: z.string().max(2000).optional(), rep: z.string().max(320).optional() }),
]);
export type SalesOutcome = z.infer<typeof salesOutcomeSchema>;
/** Which stage each outcome belongs to. */
export const OUTCOME_STAGE: Record<SalesOutcome['outcome'], Stage> = {
  accepted: 'sql', rejected: 'sql', won: 'opportunity', lost: 'opportunity',
};

export type Consent = 'subscribed' | 'unsubscribed' | 'bounced';

export interface Transition { at: string; from: Stage; to: Stage; reason: string }

export interface LeadState {
  leadId: string;
  stage: Stage;
  score: { total: number; fit: number; engagement: number };
  owner?: string;
  profile: Profile;
  consent: Consent;
  nurture: { track?: string; step: number; nextStepAt?: string };
  createdAt: string;
  lastEngagedAt?: string;
  becameMqlAt?: string;
  becameSqlAt?: string;
  slaDeadline?: string;
  recycleCount: number;
  eventsProcessed: number;
  transitions: Transition[];
  campaign?: string;
  configVersion: string;
  /** Why the score moved, newest last (the last 20 changes). */
  scoreLog: { at: string; eventId?: string; type: string; points: number; note?: string }[];
  escalations: number;
}

/** Formats zod issues as `{ path, message }` with a dotted path, the shape every entry point reports. */
export function formatIssues(error: z.ZodError, prefix: (string | number)[] = []): { path: string; message: string }[] {
  return error.issues.map((i) => ({
    path: [...prefix, ...i.path].map(String).join('.') || '(root)',
    message: i.message,
  }));
}

export function describeIssues(error: z.ZodError, prefix: (string | number)[] = []): string {
  return formatIssues(error, prefix).map((i) => `${i.path}: ${i.message}`).join('; ');
}
