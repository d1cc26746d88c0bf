/**
 * The console's sign-in: an API token (src/api/auth.ts) typed into the login form becomes a
 * session cookie, HttpOnly and SameSite=Strict, so the token never sits in a URL, in local
 * storage or in script reach. The cookie is sealed with the link secret (LinkSigner.seal): it
 * carries the first bytes of the token's digest (never the token), the owner the person signs in
 * as (their sales queue) and an expiry. Every request checks the digest against the tokens the
 * API accepts now, so a token removed from API_TOKEN ends its sessions too. A missing, expired,
 * forged or foreign cookie sends the browser to the login.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { LinkSigner } from '../../links.js';
import type { ApiToken, Scope } from '../auth.js';

export const COOKIE = 'lead_console';
const KIND = 'console-session';
/** How long a sign-in lasts (a working day). */
export const SESSION_MS = 8 * 3600_000;
/** Bytes of the token's digest the cookie names it by: enough to tell tokens apart, no use to a thief. */
const DIGEST_BYTES = 8;

export interface Session {
  scope: Scope;
  /** The owner address the person signed in as (their sales queue); absent: no queue. */
  owner?: string;
  expiresAt: number;
}

const payloadSchema = z.object({ d: z.string(), o: z.string().optional(), e: z.number() });

/** The Cookie header's value for `name`, if any (one cookie, so no cookie library). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

const secure = (req: FastifyRequest) => req.protocol === 'https';
const cookie = (req: FastifyRequest, value: string, maxAgeS: number) =>
  `${COOKIE}=${value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure(req) ? '; Secure' : ''}`;

export class Sessions {
  constructor(
    private readonly links: LinkSigner,
    private readonly tokens: readonly ApiToken[],
    private readonly now: () => number,
  ) {}

  /** Signs in: the cookie for `token` (already checked), as `owner`. */
  start(req: FastifyRequest, reply: FastifyReply, token: ApiToken, owner: string | undefined): void {
    const e = this.now() + SESSION_MS;
    const body = { d: token.digest.subarray(0, DIGEST_BYTES).toString('hex'), ...(owner ? { o: owner } : {}), e };
    const value = this.links.seal(KIND, '', Buffer.from(JSON.stringify(body)));
    reply.header('set-cookie', cookie(req, value, SESSION_MS / 1000));
  }

  end(req: FastifyRequest, reply: FastifyReply): void {
    reply.header('set-cookie', cookie(req, '', 0));
  }

  /** The request's session, or undefined (no cookie, forged, expired, or its token no longer accepted). */
  read(req: FastifyRequest): Session | undefined {
    const value = cookieValue(req.headers.cookie, COOKIE);
    if (!value) return undefined;
    const raw = this.links.unseal(KIND, '', value);
    if (!raw) return undefined;
    let p: z.infer<typeof payloadSchema>;
    try {
      p = payloadSchema.parse(JSON.parse(raw.toString('utf8')));
    } catch {
      return undefined;
    }
    if (p.e <= this.now()) return undefined;
    const token = this.tokens.find((t) => t.digest.subarray(0, DIGEST_BYTES).toString('hex') === p.d);
    if (!token) return undefined;
    return { scope: token.scope, ...(p.o ? { owner: p.o } : {}), expiresAt: p.e };
  }
}
