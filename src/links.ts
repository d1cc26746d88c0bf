/**
 * Signed links in mail (CONTRACT.md §HTTP API): open pixel, click redirect, unsubscribe and the
 * owner's accept/reject page need no bearer token, so each link carries the lead, its purpose and
 * an expiry, HMAC-SHA256-signed with LINK_SECRET. A tampered, foreign or expired link is refused.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { parseEpisode } from './domain/episode.js';

export const LINK_PURPOSES = ['open', 'click', 'unsubscribe', 'sales'] as const;
export type LinkPurpose = (typeof LINK_PURPOSES)[number];

const payloadSchema = z.object({
  l: z.string(), // leadId
  p: z.enum(LINK_PURPOSES),
  e: z.number().int(), // expiry, epoch seconds
  m: z.string().optional(), // message ref (track:step or handoff episode `<becameSqlAt>:<escalation>`)
  u: z.string().optional(), // click target
  o: z.string().optional(), // sales links: the owner the handoff was sent to
});
export type LinkPayload = z.infer<typeof payloadSchema>;

export type VerifyResult =
  | { ok: true; payload: LinkPayload }
  | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' | 'wrong_purpose' };

const b64 = (buf: Buffer | string) => Buffer.from(buf).toString('base64url');

export const LINK_TTL = { open: 90, click: 90, unsubscribe: 365, sales: 14 } as const satisfies Record<
  LinkPurpose,
  number
>;

export class LinkSigner {
  constructor(
    private readonly secret: string,
    readonly baseUrl: string,
  ) {
    if (secret.length < 16) throw new Error('LINK_SECRET must be at least 16 characters');
  }

  token(payload: LinkPayload): string {
    const body = b64(JSON.stringify(payload));
    return `${body}.${this.mac(body)}`;
  }

  /** A signed URL for a lead; expires after the purpose's TTL (days) from `now` (ms). */
  url(
    purpose: LinkPurpose,
    leadId: string,
    now: number,
    extra: { m?: string; u?: string; o?: string; ttlDays?: number } = {},
  ): string {
    const e = Math.floor(now / 1000) + (extra.ttlDays ?? LINK_TTL[purpose]) * 86_400;
    const t = this.token({
      l: leadId,
      p: purpose,
      e,
      ...(extra.m ? { m: extra.m } : {}),
      ...(extra.u ? { u: extra.u } : {}),
      ...(extra.o ? { o: extra.o } : {}),
    });
    return `${this.baseUrl}/l/${purpose}?t=${t}`;
  }

  verify(token: string, purpose: LinkPurpose, now: number): VerifyResult {
    const [body, mac, rest] = token.split('.');
    if (!body || !mac || rest !== undefined) return { ok: false, reason: 'malformed' };
    const expected = Buffer.from(this.mac(body));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given))
      return { ok: false, reason: 'bad_signature' };
    let payload: LinkPayload;
    try {
      payload = payloadSchema.parse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')));
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (payload.p !== purpose) return { ok: false, reason: 'wrong_purpose' };
    if (payload.e * 1000 < now) return { ok: false, reason: 'expired' };
    return { ok: true, payload };
  }

  /**
   * Seals an opaque value for a round trip through a client (a search's nextPageToken): the value
   * and a MAC over `kind` and `context` (the filters it belongs to), so a forged, altered or foreign
   * token is refused before it reaches Temporal. Not a link: link tokens never verify as sealed ones.
   */
  seal(kind: string, context: string, value: Uint8Array): string {
    const body = b64(Buffer.from(value));
    return `${body}.${this.mac(`${kind}\n${context}\n${body}`)}`;
  }

  /** The value a `seal` wrapped, or undefined when the token is not one this secret sealed for `kind` and `context`. */
  unseal(kind: string, context: string, token: string): Buffer | undefined {
    const [body, mac, rest] = token.split('.');
    if (!body || !mac || rest !== undefined) return undefined;
    const expected = Buffer.from(this.mac(`${kind}\n${context}\n${body}`));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    return Buffer.from(body, 'base64url');
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url');
  }
}

/**
 * Whether a sales link may still decide its lead. A link is bound to the handoff it came in: the
 * owner it was mailed to and its episode (the sql entry and the escalation). `decided`: the lead
 * has left sql (accepted, rejected, recycled...); `moved_on`: it is in sql but not in that link's
 * hands any more (escalated to another owner, or handed off again later).
 */
export function salesLinkStatus(
  p: Pick<LinkPayload, 'm' | 'o'>,
  s: { stage: string; owner?: string; becameSqlAt?: string; escalations?: number },
): 'current' | 'decided' | 'moved_on' {
  if (s.stage !== 'sql') return 'decided';
  const ep = parseEpisode(p.m);
  // A sales link without its episode was not made by sendHandoffEmail: never current.
  if (!ep) return 'moved_on';
  if (s.becameSqlAt !== undefined && ep.sqlAt !== s.becameSqlAt) return 'moved_on';
  if (ep.escalation !== (s.escalations ?? 0)) return 'moved_on';
  // Links mailed before they carried the owner are bound by the episode alone.
  if (p.o !== undefined && p.o !== s.owner) return 'moved_on';
  return 'current';
}
