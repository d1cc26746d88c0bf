/**
 * What a mail activity is given: the few facts of a lead that the templates, the headers and the
 * Message-ID read, with a hard size bound. The workflow used to pass the whole state (profile,
 * every transition, the score log): a lead with a huge profile made the input exceed Temporal's
 * 2 MiB payload limit, and its every workflow task failed for good. Pure (no Temporal import): the
 * workflow builds it, the activities and the tests read it.
 */
import type { Config } from './config.js';
import type { LeadState, Profile } from './lead.js';
import { CONTROL_CHARS } from './limits.js';
import { type LeadCore, scoreStateOf } from './lifecycle.js';

/** Longest string a mail input carries (profile values, reasons, notes). */
export const MAIL_TEXT_MAX = 200;
/** The profile a mail sees: the named fields first, then extra fields while they fit. */
export const MAIL_PROFILE_MAX_BYTES = 8 * 1024;
export const MAIL_PROFILE_MAX_FIELDS = 40;
/** How many of the latest transitions and score changes the handoff mail lists ("why now", "recent engagement"). */
export const MAIL_TRANSITIONS_MAX = 10;
export const MAIL_SCORE_LOG_MAX = 10;

/** The fields the templates and headers read first; a template may also read an extra field that fits the bound. */
const NAMED_FIELDS = [
  'email',
  'firstName',
  'lastName',
  'company',
  'jobTitle',
  'seniority',
  'department',
  'industry',
  'companySize',
  'country',
  'timezone',
] as const;

/**
 * The `lead` in a mail template's scope (the same names as LeadState, so templates read
 * `lead.score.total`, `lead.slaDeadline`, `lead.transitions`, `lead.scoreLog` as before).
 * `recycleCount` and `becameSqlAt` are part of the Message-IDs: they are copied unchanged.
 */
export type MailLead = Pick<
  LeadState,
  | 'leadId'
  | 'stage'
  | 'score'
  | 'owner'
  | 'profile'
  | 'consent'
  | 'campaign'
  | 'becameMqlAt'
  | 'becameSqlAt'
  | 'slaDeadline'
  | 'recycleCount'
  | 'escalations'
  | 'transitions'
  | 'scoreLog'
>;

const CONTROL_CHARS_ALL = new RegExp(CONTROL_CHARS.source, 'g');
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/**
 * A string fit for a mail: control characters (CR/LF included, which could forge lines of the
 * text part or headers) become spaces, and it is cut at MAIL_TEXT_MAX characters.
 */
export function mailText(s: string, max = MAIL_TEXT_MAX): string {
  const clean = s.replace(CONTROL_CHARS_ALL, ' ');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

const optText = (s: string | undefined) => (s === undefined ? undefined : mailText(s));

/** The profile bounded: named fields first, then extra fields in their order, while the budget holds. */
export function mailProfile(profile: Profile): Profile {
  const out: Profile = {};
  let bytes = 2;
  let fields = 0;
  const add = (key: string, value: unknown) => {
    if (value === undefined || key === '__proto__' || fields >= MAIL_PROFILE_MAX_FIELDS) return;
    const v = typeof value === 'string' ? mailText(value) : value;
    if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return;
    const cost = JSON.stringify(key).length + JSON.stringify(v).length + 2;
    if (bytes + cost > MAIL_PROFILE_MAX_BYTES) return;
    bytes += cost;
    fields++;
    out[mailText(key, 64)] = v;
  };
  // The address is never cut (a cut address would mail someone else): one that is not fit for a
  // header (validated upstream, so never in practice) is left out, and the send fails as NoEmail.
  if (
    typeof profile.email === 'string' &&
    profile.email.length <= 320 &&
    // eslint-disable-next-line no-control-regex
    !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(profile.email)
  ) {
    out.email = profile.email;
    bytes += profile.email.length + 10;
    fields++;
  }
  for (const k of NAMED_FIELDS) if (k !== 'email') add(k, profile[k]);
  for (const [k, v] of Object.entries(profile)) {
    if (!(NAMED_FIELDS as readonly string[]).includes(k) && !(k in out)) add(k, v);
  }
  return out;
}

/** The mail activities' input for a lead at `now` (the score as the mail reports it). */
export function mailLead(core: LeadCore, config: Config, now: number): MailLead {
  return {
    leadId: core.leadId,
    stage: core.stage,
    score: scoreStateOf(core, config, now),
    owner: core.owner,
    profile: mailProfile(core.profile),
    consent: core.consent,
    campaign: optText(core.campaign),
    becameMqlAt: iso(core.becameMqlAt),
    becameSqlAt: iso(core.becameSqlAt),
    slaDeadline: iso(core.slaDeadline),
    recycleCount: core.recycleCount,
    escalations: core.escalations,
    transitions: core.transitions
      .slice(-MAIL_TRANSITIONS_MAX)
      .map((t) => ({ at: iso(t.at)!, from: t.from, to: t.to, reason: mailText(t.reason) })),
    scoreLog: core.scoreLog.slice(-MAIL_SCORE_LOG_MAX).map((s) => ({
      at: iso(s.at)!,
      type: mailText(s.type, 64),
      points: s.points,
      ...(s.eventId === undefined ? {} : { eventId: mailText(s.eventId) }),
      ...(s.note === undefined ? {} : { note: mailText(s.note) }),
    })),
  };
}

/** How many factors a handoff mail and the sales page show. */
export const TOP_FACTORS = 5;

const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

/**
 * The score's top factors in words, largest first: "seniority vp +20", "webinar attended x2 +22
 * (decayed from 30 to 22)". Fit factors name the field and the value that matched; behaviours the
 * event type, how many counted and, where decay took some, what they earned.
 */
export function factorWords(factors: LeadState['score']['factors'], n = TOP_FACTORS): string[] {
  return factors
    .filter((f) => f.points !== 0)
    .slice(0, n)
    .map((f) => {
      if (f.count === undefined) {
        const field = f.rule.split(' ')[0]!;
        const what = f.value === undefined ? f.rule : `${field} ${mailText(String(f.value), 60)}`;
        return `${what} ${signed(f.points)}`;
      }
      const times = f.count > 1 ? ` x${f.count}` : '';
      const decayed =
        f.earned !== undefined && f.earned !== f.points ? ` (decayed from ${f.earned} to ${f.points})` : '';
      return `${f.rule.replace(/_/g, ' ')}${times} ${signed(f.points)}${decayed}`;
    });
}
