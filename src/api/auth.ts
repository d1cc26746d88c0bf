/**
 * Who may call what (CONTRACT.md §Security): bearer tokens with scopes, and per-token rate limits.
 *
 * - `API_TOKEN` entries are `scope:token` or a bare token (scope `admin`). Scopes: `ingest` (create
 *   leads, profile changes, events, Segment), `sales` (outcomes, the sales queue), `read` (state,
 *   search, funnel, timeline, export), `admin` (everything). Every /v1 route names the scope it
 *   needs in its route config (`{ config: { scope } }`); a route that names none needs `admin`, so
 *   a route added later is closed until someone decides otherwise.
 * - Requests per token and window with @fastify/rate-limit (`API_RATE_LIMIT`, e.g. `600/min`), and
 *   a second budget for what creates leads or sends mail: every lead and every event of a batch
 *   counts one (`API_WRITE_RATE_LIMIT`), so one request of 500 events spends 500 of it. Both are in
 *   memory, per API process.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { LeadError } from '../lead-service.js';

export const SCOPES = ['ingest', 'sales', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiToken {
  scope: Scope;
  /** A short, non-secret name for logs and rate-limit keys: the scope and the first hex digits of the token's SHA-256. */
  id: string;
  digest: Buffer;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * Parses API_TOKEN entries. `word:rest` with a known scope is scoped; a bare token is admin. A
 * `word:` prefix that is not a scope is refused rather than taken as an admin token: a typo in a
 * scope must not grant everything.
 */
export function parseTokens(entries: string[]): ApiToken[] {
  const tokens = entries
    .map((t) => t.trim())
    .filter(Boolean)
    .map((entry): ApiToken => {
      const m = /^([a-z]+):(.*)$/.exec(entry);
      if (m && !(SCOPES as readonly string[]).includes(m[1]!)) {
        throw new Error(
          `API_TOKEN: unknown scope "${m[1]}" (scopes: ${SCOPES.join(', ')}; a token without a scope is admin)`,
        );
      }
      const scope = (m ? m[1] : 'admin') as Scope;
      const secret = m ? m[2]! : entry;
      if (!secret) throw new Error(`API_TOKEN: the ${scope} entry has no token after "${scope}:"`);
      const digest = sha256(secret);
      return { scope, id: `${scope}:${digest.subarray(0, 4).toString('hex')}`, digest };
    });
  if (!tokens.length) throw new Error('buildApi needs at least one API token');
  return tokens;
}

/** Compares against every token's digest, always all of them, in constant time per comparison. */
export function tokenChecker(tokens: ApiToken[]) {
  return (header: string | undefined): ApiToken | undefined => {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return undefined;
    const given = sha256(m[1]!);
    let found: ApiToken | undefined;
    for (const t of tokens) if (timingSafeEqual(t.digest, given) && !found) found = t;
    return found;
  };
}

/** Whether a token of scope `have` may call a route that needs `need`. */
export const allows = (have: Scope, need: Scope) => have === 'admin' || have === need;

// ---- rate limits -----------------------------------------------------------------------------

export interface Rate {
  max: number;
  windowMs: number;
}

const UNITS: Record<string, number> = {
  s: 1000,
  sec: 1000,
  second: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
};

/** `600/min`, `20/s`, `10000/hour`; `off` (or `0`) for no limit. */
export function parseRate(value: string | undefined, fallback: Rate | undefined, name: string): Rate | undefined {
  const v = value?.trim();
  if (!v) return fallback;
  if (v === 'off' || v === '0') return undefined;
  const m = /^(\d+)\s*\/\s*(\d*)\s*([a-z]+)$/.exec(v);
  const unit = m && UNITS[m[3]!];
  if (!m || !unit || Number(m[1]) < 1)
    throw new Error(`${name}: expected a rate like 600/min, 20/s or 10000/hour (or off), got "${value}"`);
  return { max: Number(m[1]), windowMs: unit * (m[2] ? Number(m[2]) : 1) };
}

/** Defaults far above what the tests and the bench send, so only a runaway client meets them. */
export const DEFAULT_RATE: Rate = { max: 60_000, windowMs: 60_000 };
export const DEFAULT_WRITE_RATE: Rate = { max: 120_000, windowMs: 60_000 };

/** A fixed-window counter per key for the write budget (a batch spends as many as it has items). */
export class Budget {
  private readonly windows = new Map<string, { start: number; used: number }>();
  constructor(
    readonly rate: Rate,
    private readonly now: () => number = Date.now,
  ) {}

  /** Spends `n` or nothing; when it cannot, says in how many seconds the window resets. */
  take(key: string, n: number): { ok: true } | { ok: false; retryAfterS: number } {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || t - w.start >= this.rate.windowMs) {
      w = { start: t, used: 0 };
      this.windows.set(key, w);
      if (this.windows.size > 10_000)
        for (const [k, x] of this.windows) if (t - x.start >= this.rate.windowMs) this.windows.delete(k);
    }
    if (w.used + n > this.rate.max)
      return { ok: false, retryAfterS: Math.max(1, Math.ceil((w.start + this.rate.windowMs - t) / 1000)) };
    w.used += n;
    return { ok: true };
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    apiToken?: ApiToken;
  }
  interface FastifyContextConfig {
    scope?: Scope;
  }
}

const perWindow = (r: Rate) =>
  `${r.max} per ${r.windowMs % 60_000 === 0 ? `${r.windowMs / 60_000} min` : `${r.windowMs / 1000} s`}`;

/** Registers the request limit on a /v1 instance (after its auth hook, so the key is the token). */
export async function registerRateLimit(v1: FastifyInstance, rate: Rate | undefined): Promise<void> {
  if (!rate) return;
  await v1.register(rateLimit, {
    max: rate.max,
    timeWindow: rate.windowMs,
    keyGenerator: (req: FastifyRequest) => req.apiToken?.id ?? req.ip,
    errorResponseBuilder: (_req, ctx) =>
      new LeadError(
        429,
        'rate_limited',
        `too many requests for this token: at most ${perWindow(rate)}; retry in ${ctx.after}`,
      ),
  });
}

/** Spends the write budget of the request's token, or throws 429 (the caller sets nothing yet). */
export function spendWrites(
  budget: Budget | undefined,
  req: FastifyRequest,
  n: number,
  reply: { header(k: string, v: string): unknown },
): void {
  if (!budget) return;
  const r = budget.take(req.apiToken?.id ?? req.ip, n);
  if (r.ok) return;
  reply.header('retry-after', String(r.retryAfterS));
  throw new LeadError(
    429,
    'rate_limited',
    `too many leads and events for this token: at most ${perWindow(budget.rate)} (a batch counts each item; this one has ${n}); retry in ${r.retryAfterS} s`,
  );
}
