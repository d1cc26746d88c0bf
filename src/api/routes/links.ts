/**
 * The signed links in mail (CONTRACT.md §HTTP API): no bearer token, the LinkSigner's signature
 * and expiry are the authorization. One plugin holds every `/l/*` route: its hook verifies the
 * link token (`?t=`) once, for the purpose the route names, and answers a bad one itself (400 or
 * 403: a page for browsers, JSON otherwise); the handlers get the verified link. This file has the
 * links that record engagement (open pixel, click redirect, one-click unsubscribe); the pages a
 * person reads (unsubscribe, the owner's sales page) are src/api/routes/pages.ts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { isScoredType } from '../../domain/scoring.js';
import { leadIdSchema } from '../../domain/lead.js';
import type { LinkPayload, LinkPurpose } from '../../links.js';
import { esc, page } from '../html.js';
import { type ApiContext, errorAnswer, errorBody, type RouteDoc } from '../http.js';
import { LeadError } from '../../lead-service.js';

/** A link whose token verified: its payload (lead, owner, message, target) and the token itself. */
export type VerifiedLink = LinkPayload & { token: string };

declare module 'fastify' {
  interface FastifyContextConfig {
    link?: LinkPurpose;
  }
  interface FastifyRequest {
    link?: VerifiedLink;
  }
}

export interface LinkRoute extends RouteDoc {
  /** The purpose the link's token must be signed for. */
  link: LinkPurpose;
  handle(c: ApiContext, link: VerifiedLink, req: FastifyRequest, reply: FastifyReply): Promise<unknown>;
}

export const linkQuerySchema = z.object({ t: z.string().min(1).max(4096).describe('signed link token') });
export const tamperedOrExpired = errorAnswer('tampered or expired');

const wantsHtml = (req: FastifyRequest) => /text\/html/.test(String(req.headers.accept ?? ''));

/** Verifies `?t=` for `purpose`; a refusal is answered here and comes back as undefined. */
function verify(c: ApiContext, req: FastifyRequest, reply: FastifyReply, purpose: LinkPurpose) {
  const refuse = (status: number, code: string, message: string): undefined => {
    const html = () => page('This link does not work', `<p>${esc(message)}</p>`);
    if (wantsHtml(req)) reply.status(status).type('text/html; charset=utf-8').send(html());
    else reply.status(status).send(errorBody(code, message));
    return undefined;
  };
  const q = linkQuerySchema.safeParse(req.query);
  if (!q.success) return refuse(400, 'invalid_input', 'the link has no token (t)');
  const r = c.links.verify(q.data.t, purpose, c.now());
  if (!r.ok) {
    return r.reason === 'expired'
      ? refuse(403, 'link_expired', 'this link has expired')
      : refuse(403, 'link_invalid', `this link is not valid (${r.reason})`);
  }
  if (!leadIdSchema.safeParse(r.payload.l).success) return refuse(403, 'link_invalid', 'this link is not valid (lead)');
  const link: VerifiedLink = { ...r.payload, token: q.data.t };
  return link;
}

/** Registers `routes` behind the one hook that verifies their links (before the handler, as a handler would). */
export async function linkRoutes(scope: FastifyInstance, o: { c: ApiContext; routes: readonly LinkRoute[] }) {
  scope.addHook('preHandler', async (req, reply) => {
    const link = verify(o.c, req, reply, req.routeOptions.config.link!);
    if (!link) return reply;
    req.link = link;
  });
  for (const r of o.routes) {
    scope.route({
      method: r.method,
      url: r.url,
      config: { link: r.link },
      handler: (req, reply) => r.handle(o.c, req.link!, req, reply),
    });
  }
}

// ---- links that record engagement ---------------------------------------------------------------

/** Same link, same event id: a reload or a second click counts once. */
const linkEventId = (kind: string, token: string) =>
  `${kind}:${createHash('sha256').update(token).digest('base64url').slice(0, 32)}`;
const linkEvent = (type: string, link: VerifiedLink) => ({
  leadId: link.l,
  eventId: linkEventId(type, link.token),
  type,
  channel: 'email',
  ...(link.m ? { asset: link.m.slice(0, 500) } : {}),
});

/** Sends an engagement event from a link, if this config scores that type; never fails the page. */
async function recordEngagement(c: ApiContext, req: FastifyRequest, type: string, link: VerifiedLink): Promise<void> {
  if (!isScoredType(type, c.service.config)) return;
  try {
    await c.temporal(() => c.service.sendEvent(linkEvent(type, link)));
  } catch (err) {
    // An erased lead's old link: nothing recorded, and its id not logged.
    if (err instanceof LeadError && err.code === 'erased') return req.log.info({ type }, 'link of an erased lead');
    req.log.error({ err, type, leadId: link.l }, 'link event not recorded');
  }
}

/**
 * An unsubscribe suppresses the lead's address at once (the lead's loop does too, when it applies
 * the event: activities/index.ts), so no nurture mail goes to it under any lead id even while the
 * lead's workflow is busy or failing. Never fails the page: the event is already sent.
 */
async function suppressLeadAddress(c: ApiContext, req: FastifyRequest, leadId: string): Promise<void> {
  const ledger = c.service.ledger;
  if (!ledger) return;
  try {
    const email = ((await ledger.lead(leadId))?.state as { profile?: { email?: unknown } } | undefined)?.profile?.email;
    if (typeof email === 'string' && email) await ledger.suppress(email, 'unsubscribed', leadId);
  } catch (err) {
    req.log.error(
      { err, leadId },
      'unsubscribed address not suppressed here (the lead will when it applies the event)',
    );
  }
}

/** 1x1 transparent GIF. */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

/** RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click` to the List-Unsubscribe header's URL. */
const oneClickForm = z.object({ 'List-Unsubscribe': z.literal('One-Click') });

export const LINK_ROUTES: readonly LinkRoute[] = [
  {
    method: 'GET',
    url: '/l/open',
    link: 'open',
    query: linkQuerySchema,
    summary: 'Open pixel (signed link); records email_open once per link',
    responses: { 200: { description: '1x1 GIF' }, 403: tamperedOrExpired },
    async handle(c, link, req, reply) {
      await recordEngagement(c, req, 'email_open', link);
      return reply
        .type('image/gif')
        .header('cross-origin-resource-policy', 'cross-origin')
        .header('cache-control', 'no-store, max-age=0')
        .send(PIXEL);
    },
  },
  {
    method: 'GET',
    url: '/l/click',
    link: 'click',
    query: linkQuerySchema,
    summary: 'Click redirect (signed link); records email_click',
    responses: { 302: { description: 'to the target' }, 403: tamperedOrExpired },
    async handle(c, link, req, reply) {
      let target: URL | undefined;
      try {
        target = link.u ? new URL(link.u) : undefined;
      } catch {
        /* refused below */
      }
      if (!target || !['http:', 'https:'].includes(target.protocol)) {
        return reply.status(400).send(errorBody('invalid_link', 'this link has no valid target'));
      }
      await recordEngagement(c, req, 'email_click', link);
      return reply.header('cache-control', 'no-store').redirect(target.toString(), 302);
    },
  },
  {
    method: 'POST',
    url: '/l/unsubscribe',
    link: 'unsubscribe',
    query: linkQuerySchema,
    summary: 'RFC 8058 one-click unsubscribe',
    body: { schema: oneClickForm, contentType: 'application/x-www-form-urlencoded' },
    responses: { 200: { description: 'unsubscribed' }, 403: tamperedOrExpired },
    async handle(c, link, req, reply) {
      const body = req.body as Record<string, unknown> | undefined;
      // A multipart body (RFC 8058 allows it) arrives unparsed: only the field's presence matters.
      const oneClick =
        oneClickForm.safeParse(body).success ||
        (typeof body?.raw === 'string' && /List-Unsubscribe[\s\S]*One-Click/.test(body.raw));
      if (!oneClick) {
        return reply
          .status(400)
          .send(
            errorBody('invalid_input', 'expected the form field List-Unsubscribe=One-Click', [
              { path: 'List-Unsubscribe', message: 'must be One-Click' },
            ]),
          );
      }
      // An erased lead's old link: nothing to record (its address is suppressed by hash already).
      const gone = await c
        .temporal(() => c.service.sendEvent(linkEvent('unsubscribe', link)))
        .then(
          () => false,
          (err) => {
            if (err instanceof LeadError && err.code === 'erased') return true;
            throw err;
          },
        );
      if (!gone) await suppressLeadAddress(c, req, link.l);
      return reply
        .type('text/html; charset=utf-8')
        .send(page('You are unsubscribed', '<p>You will get no more marketing email from us at this address.</p>'));
    },
  },
];
