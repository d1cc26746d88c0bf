/**
 * The bench's workload: realistic lead profiles and engagement events (seeded, so two runs send
 * the same thing), a bounded-concurrency runner, and the statistics the report prints.
 */
import type { LeadEvent, Profile } from '../src/domain/lead.js';
import { mulberry32 } from '../src/random.js';

/** The workload's seeded PRNG (src/random.ts). */
export const rng = mulberry32;

type Weighted<T> = [T, number][];
function pick<T>(r: () => number, items: Weighted<T>): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  for (const [v, w] of items) {
    x -= w;
    if (x < 0) return v;
  }
  return items[items.length - 1]![0];
}
const one = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

// Only countries the default config sells to (its disqualify rule takes everyone else out).
const COUNTRIES: Weighted<{ code: string; tz: string }> = [
  [{ code: 'US', tz: 'America/New_York' }, 30],
  [{ code: 'US', tz: 'America/Chicago' }, 10],
  [{ code: 'US', tz: 'America/Los_Angeles' }, 12],
  [{ code: 'CA', tz: 'America/Toronto' }, 8],
  [{ code: 'GB', tz: 'Europe/London' }, 14],
  [{ code: 'IE', tz: 'Europe/Dublin' }, 3],
  [{ code: 'DE', tz: 'Europe/Berlin' }, 11],
  [{ code: 'FR', tz: 'Europe/Paris' }, 7],
  [{ code: 'NL', tz: 'Europe/Amsterdam' }, 5],
];
const SENIORITY: Weighted<{ seniority: string; titles: string[] }> = [
  [{ seniority: 'c_level', titles: ['CMO', 'CTO', 'CEO', 'COO'] }, 5],
  [{ seniority: 'vp', titles: ['VP Marketing', 'VP Sales', 'VP Engineering', 'VP Operations'] }, 8],
  [
    {
      seniority: 'director',
      titles: ['Director of Demand Generation', 'Director of IT', 'Head of Growth', 'Director of Sales Ops'],
    },
    14,
  ],
  [{ seniority: 'manager', titles: ['Marketing Manager', 'IT Manager', 'Sales Manager', 'Operations Manager'] }, 25],
  [{ seniority: 'senior', titles: ['Senior Analyst', 'Senior Engineer', 'Senior Marketing Specialist'] }, 18],
  [
    {
      seniority: 'individual_contributor',
      titles: ['Analyst', 'Engineer', 'Marketing Specialist', 'Account Executive'],
    },
    24,
  ],
  [{ seniority: 'entry', titles: ['Marketing Intern', 'Student', 'Trainee Developer'] }, 6],
];
const DEPARTMENTS: Weighted<string> = [
  ['marketing', 30],
  ['sales', 20],
  ['it', 18],
  ['operations', 12],
  ['engineering', 10],
  ['finance', 6],
  ['hr', 4],
];
const INDUSTRIES: Weighted<string> = [
  ['software', 22],
  ['saas', 14],
  ['fintech', 8],
  ['ecommerce', 9],
  ['manufacturing', 12],
  ['healthcare', 9],
  ['education', 8],
  ['retail', 8],
  ['media', 5],
  ['logistics', 5],
];
const SIZES: Weighted<[number, number]> = [
  [[1, 10], 15],
  [[11, 50], 22],
  [[51, 199], 23],
  [[200, 999], 22],
  [[1000, 4999], 12],
  [[5000, 50000], 6],
];
const CAMPAIGNS: Weighted<string | undefined> = [
  ['spring-webinar', 25],
  ['google-ads-q2', 30],
  ['linkedin-abm', 20],
  [undefined, 25],
];
const CHANNELS: Weighted<string> = [
  ['paid_search', 30],
  ['social', 20],
  ['organic', 25],
  ['email', 15],
  ['referral', 10],
];
const FIRST = [
  'Ava',
  'Ben',
  'Chloe',
  'Daniel',
  'Emma',
  'Felix',
  'Grace',
  'Hugo',
  'Isla',
  'Jonas',
  'Klara',
  'Liam',
  'Mia',
  'Noah',
  'Olivia',
  'Paul',
  'Quinn',
  'Rosa',
  'Sam',
  'Tara',
];
const LAST = [
  'Smith',
  'Müller',
  'Martin',
  'Jones',
  'Schmidt',
  'Dubois',
  'Brown',
  'de Vries',
  'Murphy',
  'Taylor',
  'Fischer',
  'Bernard',
  'Wilson',
  'Jansen',
  'Kelly',
];
const COMPANY_A = ['Blue', 'North', 'Bright', 'Iron', 'Silver', 'Green', 'Rapid', 'Clear', 'Summit', 'Harbor'];
const COMPANY_B = [
  'Labs',
  'Systems',
  'Works',
  'Analytics',
  'Logistics',
  'Health',
  'Retail',
  'Cloud',
  'Dynamics',
  'Foods',
];
const ASSETS = [
  'state-of-marketing-2026.pdf',
  'roi-calculator.xlsx',
  'buyers-guide.pdf',
  'case-study-acme.pdf',
  'integration-checklist.pdf',
];

/** Engagement event types and their share of ordinary traffic. */
export const EVENT_MIX: Weighted<string> = [
  ['email_open', 38],
  ['page_view', 34],
  ['content_download', 11],
  ['pricing_page_view', 9],
  ['webinar_attended', 8],
];

export interface LeadPlan {
  leadId: string;
  email: string;
  profile: Profile;
  campaign?: string;
  channel: string;
  handRaiser: boolean;
}

export function makeLeads(n: number, prefix: string, seed: number, handRaiserShare = 0.1): LeadPlan[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const c = pick(r, COUNTRIES);
    const s = pick(r, SENIORITY);
    const [lo, hi] = pick(r, SIZES);
    const first = one(r, FIRST);
    const last = one(r, LAST);
    const company = `${one(r, COMPANY_A)} ${one(r, COMPANY_B)}`;
    const domain = `${company.toLowerCase().replace(/[^a-z]+/g, '')}.example`;
    const email = `${first}.${last}.${i}@${domain}`.toLowerCase().replace(/[^a-z0-9.@]/g, '');
    const profile: Profile = {
      firstName: first,
      lastName: last,
      company,
      jobTitle: one(r, s.titles),
      seniority: s.seniority,
      department: pick(r, DEPARTMENTS),
      industry: pick(r, INDUSTRIES),
      companySize: Math.round(lo + r() * (hi - lo)),
      country: c.code,
      timezone: c.tz,
    };
    return {
      leadId: `${prefix}${i}`,
      email,
      profile,
      campaign: pick(r, CAMPAIGNS),
      channel: pick(r, CHANNELS),
      handRaiser: r() < handRaiserShare,
    };
  });
}

/** An ordinary engagement event (never a hand-raiser). */
export function engagementEvent(r: () => number, lead: LeadPlan, eventId: string): LeadEvent {
  const type = pick(r, EVENT_MIX);
  return {
    leadId: lead.leadId,
    eventId,
    type,
    channel: type === 'email_open' ? 'email' : lead.channel,
    ...(type === 'content_download' ? { asset: one(r, ASSETS) } : {}),
  };
}

/**
 * Each lead's M events, in send order: the first carries the email, profile and campaign (it is
 * the signal-with-start that creates the lead); a hand-raiser's demo_request comes in the second
 * half of its events. Rounds are interleaved across leads (every lead's first event, then every
 * lead's second…), the shape of many leads engaging at once rather than one lead at a time.
 */
export function makeEvents(leads: LeadPlan[], perLead: number, seed: number, tag: string): LeadEvent[] {
  const r = rng(seed ^ 0x5bd1e995);
  const demoAt = leads.map(() =>
    Math.max(0, Math.min(perLead - 1, Math.floor(perLead / 2 + r() * Math.ceil(perLead / 2)))),
  );
  const out: LeadEvent[] = [];
  for (let round = 0; round < perLead; round++) {
    leads.forEach((lead, i) => {
      const eventId = `${tag}-${lead.leadId}-${round}`;
      let ev: LeadEvent =
        lead.handRaiser && round === demoAt[i] && perLead > 1
          ? { leadId: lead.leadId, eventId, type: 'demo_request', channel: 'website', asset: 'demo-form' }
          : engagementEvent(r, lead, eventId);
      if (round === 0)
        ev = {
          ...ev,
          email: lead.email,
          profile: lead.profile,
          ...(lead.campaign ? { campaign: lead.campaign } : {}),
          channel: lead.channel,
        };
      out.push(ev);
    });
  }
  return out;
}

export class BenchTimeout extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchTimeout';
  }
}

/** A wall-clock budget shared by every phase of a run. */
export class Deadline {
  readonly at: number;
  constructor(readonly minutes: number) {
    this.at = Date.now() + minutes * 60_000;
  }
  get passed() {
    return Date.now() > this.at;
  }
  check(what: string): void {
    if (this.passed)
      throw new BenchTimeout(`the bench ran past its ${this.minutes}-minute budget (--max-minutes) during ${what}`);
  }
}

/**
 * Runs `fn` over `items` with at most `concurrency` in flight. Items for the same key (a lead) are
 * never in flight at once: a later one waits for the earlier, so a lead's events arrive in order.
 * Stops dispatching when the deadline passes and throws BenchTimeout saying how far it got.
 */
export async function runPool<T>(
  items: T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
  o: { key?: (item: T) => string; deadline?: Deadline; what: string; onDone?: (n: number) => void; maxErrors?: number },
): Promise<{ errors: number; firstError?: unknown }> {
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: unknown;
  const busy = new Map<string, Promise<void>>();
  const worker = async () => {
    while (next < items.length) {
      if (o.deadline?.passed) return;
      const i = next++;
      const item = items[i]!;
      const key = o.key?.(item);
      if (key !== undefined) {
        const prior = busy.get(key);
        if (prior) await prior;
      }
      const p = fn(item, i).catch((err) => {
        errors++;
        firstError ??= err;
      });
      if (key !== undefined) busy.set(key, p);
      await p;
      if (key !== undefined && busy.get(key) === p) busy.delete(key);
      done++;
      o.onDone?.(done);
      if (errors > (o.maxErrors ?? 50)) return;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  if (errors > (o.maxErrors ?? 50)) {
    throw new Error(
      `${o.what}: ${errors} calls failed; first: ${firstError instanceof Error ? firstError.message : String(firstError)}`,
    );
  }
  if (done < items.length && o.deadline?.passed) {
    throw new BenchTimeout(
      `the bench ran past its ${o.deadline.minutes}-minute budget (--max-minutes) during ${o.what}: ${done} of ${items.length} done`,
    );
  }
  return { errors, firstError };
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
  samples: number;
}

/** Nearest-rank percentiles, rounded to 0.1 ms. */
export function percentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) =>
    s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN;
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    p50: round(at(50)),
    p95: round(at(95)),
    p99: round(at(99)),
    mean: round(s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN),
    max: round(s.length ? s[s.length - 1]! : NaN),
    samples: s.length,
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
