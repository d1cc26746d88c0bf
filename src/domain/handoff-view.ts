/**
 * What the handoff mail says, worked out before the template sees it (issue 14 part 3): the lead's
 * name and company without stray punctuation when a field is missing, the profile rows that have a
 * value, dates in words in the owner's time zone with the time left, the score's top factors, the
 * last engagement. Pure: the activity gives it the mail input, the owner's zone and the moment.
 */
import { factorWords, type MailLead } from './mail.js';

export interface HandoffView {
  /** "Dana Smith", "Dana", the address, or the lead id: whatever names the person. */
  who: string;
  /** "Dana Smith, Globex", "Globex" alone when no name is known, or `who`. */
  heading: string;
  /** The subject's tail: "Dana Smith (Globex)", "Globex", or `who`. */
  subjectWho: string;
  /** The profile rows that have a value, in the order a rep reads them. */
  details: { label: string; value: string }[];
  /** When the SLA ends, in words in the owner's zone, and how long is left from the mail's moment. */
  deadline?: { words: string; left: string };
  timeZone: string;
  score: { total: number; fit: number; engagement: number; factors: string[] };
  /** The latest event the lead sent: "webinar attended +15, 2 hours ago". */
  lastEngagement?: string;
  whyNow: { when: string; text: string }[];
  recent: { when: string; text: string }[];
}

const present = (v: unknown): v is string | number =>
  (typeof v === 'string' && v.trim() !== '') || (typeof v === 'number' && Number.isFinite(v));
const str = (v: unknown) => (present(v) ? String(v).trim() : undefined);
const words = (s: string) => s.replace(/_/g, ' ');
const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

/** The zone's short name at `ms`: "CEST", "EST", "BST" where English has one, else "GMT+9". */
function zoneName(ms: number, timeZone: string): string {
  const names = ['en-GB', 'en-US'].map(
    (locale) =>
      new Intl.DateTimeFormat(locale, { timeZone, timeZoneName: 'short' })
        .formatToParts(ms)
        .find((p) => p.type === 'timeZoneName')?.value ?? timeZone,
  );
  return names.find((n) => !/^GMT[+-]/.test(n)) ?? names[0]!;
}

/** "Thursday 3 December 2026 at 18:32 UTC" in `timeZone`. */
export function dateInWords(ms: number, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone,
      weekday: 'long',
      day: 'numeric',
      month: 'long',
      year: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(ms)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.weekday} ${parts.day} ${parts.month} ${parts.year} at ${parts.hour}:${parts.minute} ${zoneName(ms, timeZone)}`;
}

/** "3 Dec, 18:32" in `timeZone` (a list's dates: the year only when it is not the mail's). */
export function shortDate(ms: number, timeZone: string, now: number): string {
  const year = (t: number) => new Intl.DateTimeFormat('en-GB', { timeZone, year: 'numeric' }).format(t);
  return new Intl.DateTimeFormat('en-GB', {
    timeZone,
    day: 'numeric',
    month: 'short',
    ...(year(ms) === year(now) ? {} : { year: 'numeric' }),
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(ms);
}

const UNITS: [string, number][] = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
];

/** "1 day 3 hours", "45 minutes", "less than a minute": the two largest units, rounded down. */
export function spanInWords(ms: number): string {
  const out: string[] = [];
  let rest = Math.max(0, ms);
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || out.length > 0) out.push(`${n} ${unit}${n === 1 ? '' : 's'}`);
    if (out.length === 2) break;
  }
  const kept = out.filter((p) => !p.startsWith('0 '));
  return kept.length ? kept.join(' ') : 'less than a minute';
}

export function timeLeft(deadline: number, now: number): string {
  return deadline >= now ? `${spanInWords(deadline - now)} left` : `overdue by ${spanInWords(now - deadline)}`;
}

/** "Dana Smith", "Dana", or undefined when the profile has neither name (the console's queue says it too). */
export const personName = (p: { firstName?: unknown; lastName?: unknown }) =>
  [str(p.firstName), str(p.lastName)].filter(Boolean).join(' ') || undefined;

export function handoffView(lead: MailLead, o: { timeZone: string; now: number }): HandoffView {
  const p = lead.profile;
  const name = personName(p);
  const company = str(p.company);
  const who = name ?? str(p.email) ?? lead.leadId;
  const heading = name && company ? `${name}, ${company}` : (name ?? company ?? who);
  const subjectWho = name && company ? `${name} (${company})` : (name ?? company ?? who);

  const title = str(p.jobTitle);
  const seniority = str(p.seniority);
  const role =
    title && seniority && !title.toLowerCase().includes(words(seniority).toLowerCase())
      ? `${title} (${words(seniority)})`
      : (title ?? (seniority ? words(seniority) : undefined));
  const size = typeof p.companySize === 'number' ? `${p.companySize.toLocaleString('en-US')} employees` : undefined;
  const details = (
    [
      ['Email', str(p.email)],
      ['Title', role],
      ['Company', company],
      ['Company size', size ?? str(p.companySize)],
      ['Industry', str(p.industry) && words(str(p.industry)!)],
      ['Country', str(p.country)],
      ['Campaign', str(lead.campaign)],
    ] as [string, string | undefined][]
  )
    .filter((r): r is [string, string] => r[1] !== undefined)
    .map(([label, value]) => ({ label, value }));

  const at = (iso: string) => Date.parse(iso);
  const deadline = lead.slaDeadline
    ? { words: dateInWords(at(lead.slaDeadline), o.timeZone), left: timeLeft(at(lead.slaDeadline), o.now) }
    : undefined;
  // An event the lead sent (it has an id), not a profile change or a skipped nurture step.
  const behaviours = lead.scoreLog.filter((s) => s.eventId !== undefined);
  const last = behaviours.at(-1);
  const lastEngagement = last
    ? `${words(last.type)} ${signed(last.points)}, ${spanInWords(o.now - at(last.at))} ago`
    : undefined;
  return {
    who,
    heading,
    subjectWho,
    details,
    ...(deadline ? { deadline } : {}),
    timeZone: o.timeZone,
    score: {
      total: lead.score.total,
      fit: lead.score.fit,
      engagement: lead.score.engagement,
      factors: factorWords(lead.score.factors ?? []),
    },
    ...(lastEngagement ? { lastEngagement } : {}),
    whyNow: lead.transitions.map((t) => ({
      when: shortDate(at(t.at), o.timeZone, o.now),
      text: `${t.from} → ${t.to}${t.reason ? `: ${t.reason}` : ''}`,
    })),
    recent: lead.scoreLog
      .slice()
      .reverse()
      .map((s) => ({
        when: shortDate(at(s.at), o.timeZone, o.now),
        text: `${words(s.type)} ${signed(s.points)}${s.note ? ` (${s.note})` : ''}`,
      })),
  };
}
