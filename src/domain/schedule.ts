/**
 * When nurture mail may go out: send windows in the lead's time zone and rolling frequency caps.
 * Pure; uses Intl (available and deterministic inside the workflow sandbox).
 */
import type { Config, Weekday } from './config.js';
import type { Profile } from './lead.js';

const MINUTE = 60_000;
const DAY = 86_400_000;
const WEEK = 7 * DAY;

/** A representative zone per country, for leads with a country but no explicit time zone. */
const COUNTRY_ZONES: Record<string, string> = {
  US: 'America/New_York',
  CA: 'America/Toronto',
  MX: 'America/Mexico_City',
  BR: 'America/Sao_Paulo',
  AR: 'America/Argentina/Buenos_Aires',
  CL: 'America/Santiago',
  CO: 'America/Bogota',
  GB: 'Europe/London',
  IE: 'Europe/Dublin',
  PT: 'Europe/Lisbon',
  ES: 'Europe/Madrid',
  FR: 'Europe/Paris',
  DE: 'Europe/Berlin',
  NL: 'Europe/Amsterdam',
  BE: 'Europe/Brussels',
  LU: 'Europe/Luxembourg',
  CH: 'Europe/Zurich',
  AT: 'Europe/Vienna',
  IT: 'Europe/Rome',
  DK: 'Europe/Copenhagen',
  SE: 'Europe/Stockholm',
  NO: 'Europe/Oslo',
  FI: 'Europe/Helsinki',
  PL: 'Europe/Warsaw',
  CZ: 'Europe/Prague',
  GR: 'Europe/Athens',
  RO: 'Europe/Bucharest',
  UA: 'Europe/Kyiv',
  TR: 'Europe/Istanbul',
  IL: 'Asia/Jerusalem',
  AE: 'Asia/Dubai',
  SA: 'Asia/Riyadh',
  ZA: 'Africa/Johannesburg',
  NG: 'Africa/Lagos',
  EG: 'Africa/Cairo',
  KE: 'Africa/Nairobi',
  IN: 'Asia/Kolkata',
  SG: 'Asia/Singapore',
  MY: 'Asia/Kuala_Lumpur',
  ID: 'Asia/Jakarta',
  PH: 'Asia/Manila',
  TH: 'Asia/Bangkok',
  VN: 'Asia/Ho_Chi_Minh',
  CN: 'Asia/Shanghai',
  HK: 'Asia/Hong_Kong',
  TW: 'Asia/Taipei',
  JP: 'Asia/Tokyo',
  KR: 'Asia/Seoul',
  AU: 'Australia/Sydney',
  NZ: 'Pacific/Auckland',
};

export function timeZoneFor(profile: Profile, config: Config): string {
  if (typeof profile.timezone === 'string') return profile.timezone;
  if (typeof profile.country === 'string' && COUNTRY_ZONES[profile.country]) return COUNTRY_ZONES[profile.country]!;
  return config.email.defaultTimezone;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function partsIn(t: number, tz: string): { weekday: Weekday; minutes: number; offsetMs: number } {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
  const localAsUtc = Date.UTC(
    Number(p.year),
    Number(p.month) - 1,
    Number(p.day),
    Number(p.hour),
    Number(p.minute),
    Number(p.second),
  );
  return {
    weekday: p.weekday!.toLowerCase().slice(0, 3) as Weekday,
    minutes: Number(p.hour) * 60 + Number(p.minute),
    offsetMs: localAsUtc - Math.floor(t / 1000) * 1000,
  };
}

/**
 * The first instant at which the local wall-clock time `localMs` (local time written as if it were
 * UTC) is reached in `tz`, starting from a guessed offset: the offset on the target day may differ
 * from the guess across a DST change. For a wall time that the clocks skip (spring forward), that
 * is the instant of the jump.
 */
function instantOfLocal(localMs: number, tz: string, guessOffsetMs: number): number {
  const first = localMs - guessOffsetMs;
  const offset = partsIn(first, tz).offsetMs;
  if (offset === guessOffsetMs) return first;
  const second = localMs - offset;
  if (partsIn(second, tz).offsetMs === offset) return second;
  // In the gap: the offset changes between the two guesses; find the instant it does.
  let lo = Math.min(first, second);
  let hi = Math.max(first, second);
  const before = partsIn(lo, tz).offsetMs;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (partsIn(mid, tz).offsetMs === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

const hhmm = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));

/** The earliest instant at or after `t` inside the send window (t itself when there is no window). */
export function nextInWindow(t: number, config: Config, tz: string): number {
  const w = config.email.sendWindow;
  if (!w) return t;
  const from = hhmm(w.from);
  const to = hhmm(w.to);
  let candidate = t;
  for (let i = 0; i < 10; i++) {
    const { weekday, minutes, offsetMs } = partsIn(candidate, tz);
    if (w.days.includes(weekday) && minutes >= from && minutes < to) return candidate;
    // Jump to `from` on this local day (if still ahead) or the next local day, converted with
    // that day's own offset (it may differ across a DST change), then re-check.
    const localMidnight = Math.floor((candidate + offsetMs) / DAY) * DAY;
    const localStart = localMidnight + from * MINUTE + (minutes < from && w.days.includes(weekday) ? 0 : DAY);
    candidate = Math.max(instantOfLocal(localStart, tz, offsetMs), candidate + 1);
  }
  return candidate;
}

/** The earliest instant at or after `t` at which one more nurture mail stays within the caps. */
export function nextUnderCap(t: number, sentAt: readonly number[], config: Config): number {
  const cap = config.email.frequencyCap;
  if (!cap) return t;
  let candidate = t;
  for (const [limit, span] of [
    [cap.perDay, DAY],
    [cap.perWeek, WEEK],
  ] as const) {
    if (!limit) continue;
    const recent = sentAt.filter((s) => s > candidate - span).sort((a, b) => a - b);
    if (recent.length >= limit) candidate = Math.max(candidate, recent[recent.length - limit]! + span);
  }
  return candidate;
}

/** The earliest instant at or after `t` that is inside the window and under the caps. */
export function nextSendSlot(t: number, sentAt: readonly number[], config: Config, tz: string): number {
  let candidate = t;
  for (let i = 0; i < 20; i++) {
    const next = nextInWindow(nextUnderCap(candidate, sentAt, config), config, tz);
    if (next === candidate) return candidate;
    candidate = next;
  }
  return candidate;
}

/** Nurture send times worth keeping for the caps. */
export const pruneSent = (sentAt: readonly number[], now: number) => sentAt.filter((s) => s > now - WEEK);
