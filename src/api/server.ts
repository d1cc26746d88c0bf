/**
 * The HTTP API (CONTRACT.md §HTTP API): a thin shell over LeadService. Every body, query string
 * and path parameter is validated with the zod schemas of src/domain/lead.ts before anything is
 * sent to Temporal, so bad input is a 4xx that changes nothing. Errors are always
 * `{ error: { code, message, issues? } }`.
 *
 * - `/v1/*`: bearer token (constant-time compare) with a scope per route and per-token rate limits
 *   (src/api/auth.ts), JSON only.
 * - `/l/*`: the signed links in mail (open pixel, click redirect, unsubscribe, the owner's sales
 *   page); no token, the LinkSigner signature and expiry are the authorization.
 * - `/healthz`, `/openapi.json`: open.
 *
 * Every answer has security headers (@fastify/helmet; the link pages' CSP allows no script), link
 * tokens never reach the access log, and slow or idle clients time out (ApiOptions.timeouts).
 */
import helmet from '@fastify/helmet';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { LeadError, type LeadService, MAX_EVENTS_PER_REQUEST, validate } from '../client.js';
import { FUNNEL_GROUP_BYS } from '../ledger/funnel.js';
import type { FunnelGroupBy } from '../ledger/ledger.js';
import { knownEventTypes } from '../domain/config.js';
import {
  CONTROL_CHARS, leadEventSchema, leadIdSchema, leadInputSchema, type LeadState, profileSchema, REJECT_REASONS, salesOutcomeSchema,
  STAGES,
} from '../domain/lead.js';
import { type LinkPayload, type LinkPurpose, type LinkSigner, salesLinkStatus } from '../links.js';
import {
  allows, Budget, DEFAULT_RATE, DEFAULT_WRITE_RATE, parseTokens, type Rate, registerRateLimit, type Scope, spendWrites, tokenChecker,
} from './auth.js';
import { codecRoutes, type CodecRouteOptions } from './codec.js';

export interface ApiOptions {
  service: LeadService;
  /** Accepted bearer tokens, `scope:token` or bare (admin); at least one (src/api/auth.ts). */
  tokens: string[];
  links: LinkSigner;
  /** Whether Temporal answers; /healthz says 200 or 503. */
  healthCheck: () => Promise<boolean>;
  /** Access log (pino) on stdout, or into `stream` (tests read it); link tokens are redacted either way. */
  logger?: boolean | { stream: { write(line: string): void } };
  /** Largest request body in bytes (default 1 MiB: 500 events with profiles fit easily). */
  bodyLimit?: number;
  /** Clock for link expiry (ms); tests move it. */
  now?: () => number;
  /** Deadline for the Temporal calls of one request (default 20 s); past it the answer is 503. */
  temporalTimeoutMs?: number;
  /** Requests per token and window (default DEFAULT_RATE; `null`: none). Env API_RATE_LIMIT in main.ts. */
  rateLimit?: Rate | null;
  /** Leads and events (each item of a batch) per token and window (default DEFAULT_WRITE_RATE; `null`: none). Env API_WRITE_RATE_LIMIT. */
  writeRateLimit?: Rate | null;
  /** Slow clients: whole request received within `requestMs` (30 s), headers within `headersMs` (10 s), idle keep-alive `keepAliveMs` (5 s), silent socket `socketMs` (150 s: longer than a 500-event batch takes to answer). */
  timeouts?: { requestMs?: number; headersMs?: number; keepAliveMs?: number; socketMs?: number };
  /** The codec server (src/api/codec.ts): POST /codec/encode and /codec/decode; omitted: no such routes. */
  codec?: Omit<CodecRouteOptions, 'authorized'>;
}

type Issue = { path: string; message: string };
const errorBody = (code: string, message: string, issues?: Issue[]) => ({ error: { code, message, ...(issues?.length ? { issues } : {}) } });

// ---- schemas of what the routes take besides the LeadService bodies -----------------------------

/** Query strings come as text; empty values (`?stage=&owner=`) count as absent. */
const optionalText = (max: number) => z.string().trim().min(1).max(max).refine((v) => !CONTROL_CHARS.test(v), 'must not contain control characters').optional();
const wholeNumber = (min: number, max: number) =>
  z.string().trim().regex(/^-?\d+$/, 'must be a whole number').transform(Number).pipe(z.number().int().min(min).max(max));
const isoDateParam = z.union([z.iso.datetime({ offset: true }), z.iso.date()], { error: 'must be an ISO-8601 date or date-time, e.g. 2025-01-31 or 2025-01-31T00:00:00Z' });

/** A sealed page token (LinkSigner.seal): base64url, a dot, base64url. */
const pageTokenParam = z.string().max(4096).regex(/^[A-Za-z0-9_.-]+$/, 'must be a nextPageToken from an earlier answer');

export const leadParamsSchema = z.object({ leadId: leadIdSchema }).strict();
export const searchQuerySchema = z.object({
  stage: z.enum(STAGES).optional(),
  owner: optionalText(320),
  campaign: optionalText(100),
  minScore: wholeNumber(-1_000_000, 1_000_000).optional(),
  limit: wholeNumber(1, 1000).optional(),
  pageToken: pageTokenParam.optional(),
}).strict();
export const funnelQuerySchema = z.object({
  since: isoDateParam.optional(),
  until: isoDateParam.optional(),
  by: z.enum(FUNNEL_GROUP_BYS as [FunnelGroupBy, ...FunnelGroupBy[]]).optional(),
}).strict()
  .refine((q) => !q.since || !q.until || Date.parse(q.since) < Date.parse(q.until), { message: 'since must be before until', path: ['until'] });
export const timelineQuerySchema = z.object({
  limit: wholeNumber(1, 1000).optional(),
  pageToken: pageTokenParam.optional(),
}).strict();
const linkQuerySchema = z.object({ t: z.string().min(1).max(4096) });
const salesPageQuerySchema = linkQuerySchema.extend({ action: z.enum(['accept', 'reject']).optional() });
const salesFormSchema = z.object({
  action: z.enum(['accept', 'reject']),
  reason: z.enum(REJECT_REASONS).optional(),
  note: z.string().max(2000).optional(),
});

/** Drops empty query values, so `?stage=&minScore=` means "no filter". */
function cleanQuery(q: unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries((q ?? {}) as Record<string, unknown>).filter(([, v]) => v !== ''));
}

// ---- helpers -------------------------------------------------------------------------------

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse}td{padding:.2em .8em .2em 0;vertical-align:top}form{margin:1em 0;padding:1em;border:1px solid #ccc}
label{display:block;margin:.5em 0}button{font-size:1em;padding:.4em 1.2em}`;
/** The pages' one stylesheet, allowed by its hash: the CSP allows no script and no other inline style. */
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${esc(title)}</title>
<style>${STYLE}</style></head>
<body><h1>${esc(title)}</h1>${body}</body></html>`;
}

/** The URL as logged: a link's token (`t=`) is a credential for that link, so only its first characters are kept. */
export const redactUrl = (url: string) => url.replace(/([?&]t=)([^&#]{0,6})[^&#]*/g, '$1$2…');

/** 1x1 transparent GIF. */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

const wantsHtml = (req: FastifyRequest) => /text\/html/.test(String(req.headers.accept ?? ''));

/**
 * gRPC codes that mean "not now" rather than "no": UNAVAILABLE (14) and DEADLINE_EXCEEDED (4),
 * Temporal did not answer; RESOURCE_EXHAUSTED (8), it is throttling; FAILED_PRECONDITION (9),
 * the lead's workflow task failed and waits to be retried (a killed worker), so Temporal refuses
 * its queries and updates for now. All are a 503 with Retry-After: a client that retries gets its
 * answer once the lead recovers (one that never does is the wedge detection's business).
 */
const RETRYABLE_GRPC: Record<number, string> = {
  14: 'Temporal is not reachable; try again',
  4: 'Temporal did not answer in time; try again',
  8: 'Temporal is busy; try again',
  9: 'the lead cannot answer right now (its workflow task is being retried); try again',
};
function grpcCode(err: unknown): number | undefined {
  // An update whose call ran out of time (or was cancelled by it): it may still be applied, and a retry is safe (the stage rules refuse a second one).
  if ((err as Error)?.name === 'WorkflowUpdateRPCTimeoutOrCancelledError') return 4;
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'number' && RETRYABLE_GRPC[e.code]) return e.code;
  }
  return undefined;
}

/** What a sealed page token pages through (LinkSigner.seal kinds). */
const SEARCH_PAGE = 'leads-page';
const TIMELINE_PAGE = 'timeline-page';

// ---- the app -------------------------------------------------------------------------------

export function buildApi(opts: ApiOptions): FastifyInstance {
  const { service, links, healthCheck } = opts;
  const authorized = tokenChecker(parseTokens(opts.tokens));
  const writes = opts.writeRateLimit === null ? undefined : new Budget(opts.writeRateLimit ?? DEFAULT_WRITE_RATE);
  const t = opts.timeouts ?? {};
  const now = opts.now ?? Date.now;
  const behaviors = () => service.config.scoring.behavior;
  const timeoutMs = opts.temporalTimeoutMs ?? 20_000;
  /** Runs a request's Temporal calls under one deadline, so an unreachable server is a 503, not a hang. */
  const temporal = <T>(fn: () => Promise<T>, extraMs = 0): Promise<T> => service.client.connection.withDeadline(Date.now() + timeoutMs + extraMs, fn);

  const app = Fastify({
    logger: opts.logger ? {
      ...(typeof opts.logger === 'object' ? { stream: opts.logger.stream } : {}),
      serializers: {
        req: (req: FastifyRequest) => ({ method: req.method, url: redactUrl(req.url), host: req.headers?.host, remoteAddress: req.ip }),
      },
    } : false,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // Lead ids are up to 128 characters, up to three times that when a client percent-encodes : @ +.
    routerOptions: { maxParamLength: 400 },
    requestTimeout: t.requestMs ?? 30_000,
    keepAliveTimeout: t.keepAliveMs ?? 5_000,
    connectionTimeout: t.socketMs ?? 150_000,
    // The server checks its request and header deadlines every `connectionsCheckingInterval`.
    http: { headersTimeout: t.headersMs ?? 10_000, connectionsCheckingInterval: Math.min(1000, t.requestMs ?? 30_000, t.headersMs ?? 10_000) },
    // Errors of the connection itself (a body or headers too slow, headers too large, not HTTP) in the contract's shape too.
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const [status, code, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout', 'the request was not received in time']
        : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'headers_too_large', 'the request headers are too large']
        : [400, 'bad_request', 'the request is not valid HTTP'];
      const body = JSON.stringify(errorBody(code, message));
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
    // Errors Fastify answers before any route (a URL that does not decode, a parameter too long) get the contract's shape too.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      const tooLong = (err as { code?: string }).code === 'FST_ERR_MAX_PARAM_LENGTH';
      void reply.status(tooLong ? 414 : 400).send(errorBody(tooLong ? 'uri_too_long' : 'bad_url', tooLong ? 'a path parameter is too long (a leadId is at most 128 characters)' : 'the URL is malformed (bad percent-encoding)'));
    },
  });

  // Security headers on every answer. The pages behind mail links run no script and are never framed;
  // no Referer leaks a link's token to a click's target.
  void app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], styleSrc: [STYLE_HASH], formAction: ["'self'"], frameAncestors: ["'none'"], baseUri: ["'none'"] } },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // Mail clients load the open pixel from other origins; the pixel route allows that itself.
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });

  // 405 for a known path with another method; the routes are collected as they are added.
  const routes: { re: RegExp; method: string }[] = [];
  app.addHook('onRoute', (r) => {
    const re = new RegExp(`^${r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}/?$`);
    for (const m of [r.method].flat()) routes.push({ re, method: m });
  });

  // Bodies: JSON for /v1, forms for the pages behind mail links. Anything else is a 415.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  // RFC 8058 allows multipart/form-data for the one-click POST; only its presence matters there.
  app.addContentTypeParser('multipart/form-data', { parseAs: 'string' }, (_req, body, done) => done(null, { raw: body }));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof LeadError) {
      // A lead that is starting or whose workflow task is being retried answers again shortly.
      if (err.status === 503) reply.header('retry-after', '2');
      return reply.status(err.status).send(errorBody(err.code, err.message, err.issues));
    }
    const status = err.statusCode;
    if (status && status >= 400 && status < 500) {
      const code = ({
        FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
        FST_ERR_CTP_EMPTY_JSON_BODY: 'empty_body',
        FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
        FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
        FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_content_length',
      } as Record<string, string>)[err.code ?? ''] ?? 'bad_request';
      const message = code === 'malformed_json' ? 'the body is not valid JSON'
        : code === 'unsupported_media_type' ? `unsupported content type ${req.headers['content-type'] ?? '(none)'}`
        : err.message;
      return reply.status(status).send(errorBody(code, message));
    }
    const grpc = grpcCode(err);
    if (grpc) {
      req.log.warn({ err }, 'temporal unavailable');
      return reply.status(503).header('retry-after', grpc === 9 ? '2' : '5')
        .send(errorBody(grpc === 9 ? 'lead_unavailable' : 'temporal_unavailable', RETRYABLE_GRPC[grpc]!));
    }
    req.log.error({ err }, 'request failed');
    return reply.status(500).send(errorBody('internal', 'internal error'));
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((r) => r.re.test(path)).map((r) => r.method))];
    if (allowed.length) {
      return reply.status(405).header('allow', allowed.join(', ')).send(errorBody('method_not_allowed', `${req.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`));
    }
    return reply.status(404).send(errorBody('route_not_found', `no route ${req.method} ${path}`));
  });

  // ---- open routes ---------------------------------------------------------------------------
  app.get('/healthz', async (_req, reply) => {
    let ok = false;
    try {
      ok = await Promise.race([healthCheck(), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
    } catch {
      ok = false;
    }
    return ok ? reply.send({ ok: true, temporal: 'reachable' })
      : reply.status(503).send(errorBody('temporal_unavailable', 'Temporal is not reachable'));
  });

  let openapi: object | undefined;
  app.get('/openapi.json', async () => (openapi ??= openApiDocument(service)));

  // Decoding shows profile data: a token that may read leads (read or admin), as GET /v1/leads/:id needs.
  if (opts.codec) {
    app.register(codecRoutes, { ...opts.codec, authorized: (req) => { const t = authorized(req.headers.authorization); return t !== undefined && allows(t.scope, 'read'); } });
  }

  // ---- /v1 -----------------------------------------------------------------------------------
  app.register(async (v1) => {
    v1.addHook('onRequest', async (req, reply) => {
      const token = authorized(req.headers.authorization);
      if (!token) {
        return reply.status(401).header('www-authenticate', 'Bearer realm="lead-nurture"')
          .send(errorBody('unauthorized', 'missing or invalid bearer token (Authorization: Bearer <token>)'));
      }
      req.apiToken = token;
      // A route names the scope it needs; one that names none is admin's.
      const need: Scope = req.routeOptions.config.scope ?? 'admin';
      if (!allows(token.scope, need)) {
        return reply.status(403).header('www-authenticate', `Bearer realm="lead-nurture", error="insufficient_scope", scope="${need}"`)
          .send(errorBody('insufficient_scope', `this route needs a token with scope ${need} (or admin); this token has scope ${token.scope}`));
      }
    });
    await registerRateLimit(v1, opts.rateLimit === null ? undefined : opts.rateLimit ?? DEFAULT_RATE);
    v1.addHook('preValidation', async (req, reply) => {
      if (req.method !== 'POST' && req.method !== 'PATCH' && req.method !== 'PUT') return;
      const type = String(req.headers['content-type'] ?? '');
      if (!/^application\/(.+\+)?json\b/i.test(type)) {
        return reply.status(415).send(errorBody('unsupported_media_type', `send JSON (Content-Type: application/json), not ${type || 'no content type'}`));
      }
    });

    const leadIdOf = (req: FastifyRequest) => validate(leadParamsSchema, req.params, 'path').leadId;

    const ingest = { config: { scope: 'ingest' as const } };
    const sales = { config: { scope: 'sales' as const } };
    const read = { config: { scope: 'read' as const } };

    v1.post('/leads', ingest, async (req, reply) => {
      spendWrites(writes, req, 1, reply);
      const r = await temporal(() => service.upsertLead(req.body));
      return reply.status(r.created ? 201 : 200).header('location', `/v1/leads/${encodeURIComponent(r.leadId)}`).send(r);
    });

    v1.post('/events', ingest, async (req, reply) => {
      // Each event of a batch may create a lead and mail it: the batch spends one per item.
      spendWrites(writes, req, Array.isArray(req.body) ? req.body.length : 1, reply);
      // A batch of new leads is one signal-with-start each (tens per second on a dev server): give it time.
      // A batch cut short is safe to send again: eventIds make every event count once.
      const r = await temporal(() => service.sendEvents(req.body), Array.isArray(req.body) ? req.body.length * 200 : 0);
      return reply.status(202).send(r);
    });

    v1.patch('/leads/:leadId', ingest, async (req, reply) => {
      const leadId = leadIdOf(req);
      const patch = validate(profileSchema, req.body, 'profile');
      // Each under its own deadline: a slow state read never eats into the signal's.
      await temporal(() => service.checkProfileMerge(leadId, patch));
      await temporal(() => service.patchProfile(leadId, patch));
      return reply.status(202).send({ leadId, accepted: true });
    });

    v1.post('/leads/:leadId/sales-outcome', sales, async (req, reply) => {
      const leadId = leadIdOf(req);
      return reply.send(await temporal(() => salesOutcome(leadId, req.body)));
    });

    v1.get('/leads/:leadId', read, async (req) => {
      const leadId = leadIdOf(req);
      return temporal(() => service.getState(leadId));
    });

    // Page tokens are the ledger's, sealed for what they page through (the search's filters, the
    // timeline's lead): a garbage or foreign token is a 400 before any database round trip.
    const badToken = (what: string) => new LeadError(400, 'invalid_input', `invalid pageToken: not a nextPageToken of ${what}`, [{ path: 'pageToken', message: `must be the nextPageToken of an earlier answer to ${what}` }]);
    const unsealToken = (kind: string, context: string, token: string | undefined, what: string) => {
      if (token === undefined) return undefined;
      const raw = links.unseal(kind, context, token);
      if (!raw) throw badToken(what);
      return raw.toString();
    };
    const sealToken = (kind: string, context: string, token: string | undefined) => (token ? links.seal(kind, context, Buffer.from(token)) : undefined);

    v1.get('/leads', read, async (req) => {
      const { pageToken, ...q } = validate(searchQuerySchema, cleanQuery(req.query), 'query');
      const filters = JSON.stringify([q.stage, q.owner, q.campaign, q.minScore]);
      const what = 'this search (same stage, owner, campaign and minScore)';
      const ledgerToken = unsealToken(SEARCH_PAGE, filters, pageToken, what);
      const r = await service.search({ ...q, ...(ledgerToken ? { pageToken: ledgerToken } : {}) }).catch((err) => {
        // The seal held but the ledger refuses the token (one from before the ledger's search): still the caller's token.
        throw err instanceof LeadError && err.status === 400 && ledgerToken ? badToken(what) : err;
      });
      return { leads: r.leads, nextPageToken: sealToken(SEARCH_PAGE, filters, r.nextPageToken) ?? null };
    });

    v1.get('/funnel', read, async (req) => {
      const q = validate(funnelQuerySchema, cleanQuery(req.query), 'query');
      const iso = (s?: string) => (s ? new Date(s).toISOString() : undefined);
      return service.funnel({ ...(q.since ? { since: iso(q.since) } : {}), ...(q.until ? { until: iso(q.until) } : {}), ...(q.by ? { by: q.by } : {}) });
    });

    v1.get('/leads/:leadId/timeline', read, async (req) => {
      const leadId = leadIdOf(req);
      const { pageToken, limit } = validate(timelineQuerySchema, cleanQuery(req.query), 'query');
      const what = "this lead's timeline";
      const ledgerToken = unsealToken(TIMELINE_PAGE, leadId, pageToken, what);
      const r = await service.timeline(leadId, { ...(limit ? { limit } : {}), ...(ledgerToken ? { pageToken: ledgerToken } : {}) }).catch((err) => {
        throw err instanceof LeadError && err.status === 400 && ledgerToken ? badToken(what) : err;
      });
      const next = sealToken(TIMELINE_PAGE, leadId, r.nextPageToken);
      return { entries: r.entries, ...(next ? { nextPageToken: next } : {}) };
    });
  }, { prefix: '/v1' });

  /**
   * The salesOutcome update. An update to a run that already completed (a customer, a disqualified
   * lead) is "not found" to Temporal, but the lead exists: that is a wrong stage, not a 404.
   */
  async function salesOutcome(leadId: string, body: unknown): Promise<LeadState> {
    try {
      return await service.salesOutcome(leadId, body);
    } catch (err) {
      if (!(err instanceof LeadError) || err.status !== 404) throw err;
      const state = await service.getState(leadId).catch(() => undefined);
      if (!state) throw err;
      const outcome = (body as { outcome?: string }).outcome;
      throw new LeadError(409, 'wrong_stage', `outcome ${outcome} does not fit: the lead is ${state.stage} and its run has completed`);
    }
  }

  // ---- links in mail ---------------------------------------------------------------------------
  /** Verifies `?t=`; answers 400/403 itself (HTML for browsers, JSON otherwise) and returns undefined. */
  function verified(req: FastifyRequest, reply: FastifyReply, purpose: LinkPurpose): LinkPayload | undefined {
    const q = linkQuerySchema.safeParse(req.query);
    const refuse = (status: number, code: string, message: string) => {
      if (wantsHtml(req)) reply.status(status).type('text/html; charset=utf-8').send(page('This link does not work', `<p>${esc(message)}</p>`));
      else reply.status(status).send(errorBody(code, message));
      return undefined;
    };
    if (!q.success) return refuse(400, 'invalid_input', 'the link has no token (t)');
    const r = links.verify(q.data.t, purpose, now());
    if (!r.ok) {
      return r.reason === 'expired' ? refuse(403, 'link_expired', 'this link has expired')
        : refuse(403, 'link_invalid', `this link is not valid (${r.reason})`);
    }
    if (!leadIdSchema.safeParse(r.payload.l).success) return refuse(403, 'link_invalid', 'this link is not valid (lead)');
    return r.payload;
  }

  /** Same link, same event id: a reload or a second click counts once. */
  const linkEventId = (kind: string, token: string) => `${kind}:${createHash('sha256').update(token).digest('base64url').slice(0, 32)}`;

  /** Sends an engagement event from a link, if this config scores that type; never fails the page. */
  async function linkEvent(req: FastifyRequest, type: string, p: LinkPayload, token: string): Promise<void> {
    if (!(type in behaviors())) return;
    try {
      await temporal(() => service.sendEvent({ leadId: p.l, eventId: linkEventId(type, token), type, channel: 'email', ...(p.m ? { asset: p.m.slice(0, 500) } : {}) }));
    } catch (err) {
      req.log.error({ err, type, leadId: p.l }, 'link event not recorded');
    }
  }

  app.get('/l/open', async (req, reply) => {
    const p = verified(req, reply, 'open');
    if (!p) return reply;
    await linkEvent(req, 'email_open', p, (req.query as { t: string }).t);
    return reply.type('image/gif').header('cross-origin-resource-policy', 'cross-origin').header('cache-control', 'no-store, max-age=0').send(PIXEL);
  });

  app.get('/l/click', async (req, reply) => {
    const p = verified(req, reply, 'click');
    if (!p) return reply;
    let target: URL | undefined;
    try {
      target = p.u ? new URL(p.u) : undefined;
    } catch { /* refused below */ }
    if (!target || !['http:', 'https:'].includes(target.protocol)) {
      return reply.status(400).send(errorBody('invalid_link', 'this link has no valid target'));
    }
    await linkEvent(req, 'email_click', p, (req.query as { t: string }).t);
    return reply.header('cache-control', 'no-store').redirect(target.toString(), 302);
  });

  app.get('/l/unsubscribe', async (req, reply) => {
    const p = verified(req, reply, 'unsubscribe');
    if (!p) return reply;
    const t = (req.query as { t: string }).t;
    return reply.type('text/html; charset=utf-8').send(page('Unsubscribe', `
<p>Stop receiving our marketing email at this address?</p>
<form method="post" action="/l/unsubscribe?t=${esc(encodeURIComponent(t))}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>`));
  });

  // RFC 8058 one-click: the mail client POSTs `List-Unsubscribe=One-Click` to the header's URL.
  app.post('/l/unsubscribe', async (req, reply) => {
    const p = verified(req, reply, 'unsubscribe');
    if (!p) return reply;
    const body = req.body as Record<string, unknown> | undefined;
    const oneClick = body?.['List-Unsubscribe'] === 'One-Click' || (typeof body?.raw === 'string' && /List-Unsubscribe[\s\S]*One-Click/.test(body.raw));
    if (!oneClick) {
      return reply.status(400).send(errorBody('invalid_input', 'expected the form field List-Unsubscribe=One-Click', [{ path: 'List-Unsubscribe', message: 'must be One-Click' }]));
    }
    await temporal(() => service.sendEvent({ leadId: p.l, eventId: linkEventId('unsubscribe', (req.query as { t: string }).t), type: 'unsubscribe', channel: 'email', ...(p.m ? { asset: p.m.slice(0, 500) } : {}) }));
    return reply.type('text/html; charset=utf-8').send(page('You are unsubscribed', '<p>You will get no more marketing email from us at this address.</p>'));
  });

  /** A sales link that is not current answers here: 409 when the lead was decided, 403 when it moved on to another owner or episode. */
  function staleSalesPage(reply: FastifyReply, p: LinkPayload, state: LeadState, action: 'page' | 'form'): FastifyReply | undefined {
    const status = salesLinkStatus(p, state);
    if (status === 'current') return undefined;
    if (status === 'moved_on') {
      return htmlPage(reply, 403, 'This lead has moved on', `<p id="moved-on">This handoff link is no longer yours to act on: the lead was handed to ${state.owner && state.owner !== p.o ? 'another owner' : 'sales again'} since it was sent${action === 'form' ? '; nothing was changed' : ''}.</p>`);
    }
    return htmlPage(reply, 409, 'Nothing to decide', action === 'form'
      ? `<p>This lead is now <strong>${esc(state.stage)}</strong>; nothing was changed.</p>${summary(state)}`
      : `<p>This lead is now <strong>${esc(state.stage)}</strong>; this handoff link is no longer current.</p>${summary(state)}`);
  }
  const htmlPage = (reply: FastifyReply, status: number, title: string, body: string) =>
    reply.status(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page(title, body));

  function summary(s: LeadState): string {
    const pr = s.profile;
    const rows: [string, unknown][] = [
      ['Lead', s.leadId], ['Name', [pr.firstName, pr.lastName].filter(Boolean).join(' ') || '-'], ['Email', pr.email ?? '-'],
      ['Company', pr.company ?? '-'], ['Title', pr.jobTitle ?? '-'], ['Country', pr.country ?? '-'], ['Campaign', s.campaign ?? '-'],
      ['Stage', s.stage], ['Score', `${s.score.total} (fit ${s.score.fit}, engagement ${s.score.engagement})`],
      ['Owner', s.owner ?? '-'], ['Decide by', s.slaDeadline ?? '-'],
    ];
    const why = s.transitions.slice(-5).map((t) => `<li>${esc(t.at)}: ${esc(t.from)} &rarr; ${esc(t.to)} (${esc(t.reason)})</li>`).join('');
    return `<table>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>${why ? `<h2>Recent changes</h2><ul>${why}</ul>` : ''}`;
  }

  app.get('/l/sales', async (req, reply) => {
    const p = verified(req, reply, 'sales');
    if (!p) return reply;
    const q = salesPageQuerySchema.safeParse(req.query);
    if (!q.success) return htmlPage(reply, 400, 'This link does not work', '<p>action must be accept or reject.</p>');
    const state = await temporal(() => service.getState(p.l)).catch((err) => {
      if (err instanceof LeadError && err.status === 404) return undefined;
      throw err;
    });
    if (!state) return htmlPage(reply, 404, 'Lead not found', `<p>There is no lead ${esc(p.l)}.</p>`);
    if (staleSalesPage(reply, p, state, 'page')) return reply;
    const action = `/l/sales?t=${esc(encodeURIComponent(q.data.t))}`;
    const accept = `<form method="post" action="${action}" id="accept"><input type="hidden" name="action" value="accept">
<label>Note (optional)<br><textarea name="note" rows="2" cols="40" maxlength="2000"></textarea></label>
<button type="submit">Accept lead</button></form>`;
    const reject = `<form method="post" action="${action}" id="reject"><input type="hidden" name="action" value="reject">
<label>Reason <select name="reason" required><option value="" disabled selected>choose a reason</option>${REJECT_REASONS.map((r) => `<option value="${r}">${r.replace('_', ' ')}</option>`).join('')}</select></label>
<label>Note (optional)<br><textarea name="note" rows="2" cols="40" maxlength="2000"></textarea></label>
<button type="submit">Reject lead</button></form>`;
    const forms = q.data.action === 'accept' ? accept : q.data.action === 'reject' ? reject : accept + reject;
    return htmlPage(reply, 200, `${q.data.action === 'reject' ? 'Reject' : q.data.action === 'accept' ? 'Accept' : 'Accept or reject'} this lead`, summary(state) + forms);
  });

  app.post('/l/sales', async (req, reply) => {
    const p = verified(req, reply, 'sales');
    if (!p) return reply;
    if (!/^application\/x-www-form-urlencoded\b/i.test(String(req.headers['content-type'] ?? ''))) {
      return htmlPage(reply, 415, 'Not a form', '<p>Submit the form on the sales page.</p>');
    }
    const form = salesFormSchema.safeParse(cleanQuery(req.body));
    if (!form.success) {
      return htmlPage(reply, 400, 'Please check the form', `<ul>${form.error.issues.map((i) => `<li>${esc(i.path.join('.'))}: ${esc(i.message)}</li>`).join('')}</ul>`);
    }
    const state = await temporal(() => service.getState(p.l)).catch((err) => {
      if (err instanceof LeadError && err.status === 404) return undefined;
      throw err;
    });
    if (!state) return htmlPage(reply, 404, 'Lead not found', `<p>There is no lead ${esc(p.l)}.</p>`);
    if (staleSalesPage(reply, p, state, 'form')) return reply;
    const rep = p.o ?? state.owner;
    const outcome = form.data.action === 'accept'
      ? { outcome: 'accepted', ...(form.data.note ? { note: form.data.note } : {}), ...(rep ? { rep } : {}) }
      : { outcome: 'rejected', reason: form.data.reason, ...(form.data.note ? { note: form.data.note } : {}), ...(rep ? { rep } : {}) };
    try {
      const after = await temporal(() => salesOutcome(p.l, outcome));
      const verb = form.data.action === 'accept' ? 'accepted' : 'rejected';
      return htmlPage(reply, 200, `Lead ${verb}`, `<p id="result">Thank you. The lead is now <strong>${esc(after.stage)}</strong>.</p>${summary(after)}`);
    } catch (err) {
      if (!(err instanceof LeadError)) throw err;
      const title = err.status === 409 ? 'Nothing to decide' : err.status === 404 ? 'Lead not found' : 'Please check the form';
      return htmlPage(reply, err.status, title, `<p>${esc(err.message)}</p>`);
    }
  });

  return app;
}

// ---- OpenAPI ---------------------------------------------------------------------------------

function jsonSchema(schema: z.core.$ZodType): Record<string, unknown> {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const leadStateDoc = z.object({
  leadId: z.string(), stage: z.enum(STAGES),
  score: z.object({ total: z.number().int(), fit: z.number().int(), engagement: z.number().int() }),
  owner: z.string().optional(), profile: profileSchema, consent: z.enum(['subscribed', 'unsubscribed', 'bounced']),
  nurture: z.object({ track: z.string().optional(), step: z.number().int(), nextStepAt: z.string().optional() }),
  createdAt: z.string(), lastEngagedAt: z.string().optional(), becameMqlAt: z.string().optional(), becameSqlAt: z.string().optional(),
  slaDeadline: z.string().optional(), recycleCount: z.number().int(), eventsProcessed: z.number().int(),
  transitions: z.array(z.object({ at: z.string(), from: z.enum(STAGES), to: z.enum(STAGES), reason: z.string() })),
  campaign: z.string().optional(), configVersion: z.string(), escalations: z.number().int(),
  scoreLog: z.array(z.object({ at: z.string(), eventId: z.string().optional(), type: z.string(), points: z.number(), note: z.string().optional() })),
});
const errorDoc = z.object({ error: z.object({ code: z.string(), message: z.string(), issues: z.array(z.object({ path: z.string(), message: z.string() })).optional() }) });
const leadSummaryDoc = z.object({
  leadId: z.string(), stage: z.enum(STAGES), score: z.number().int().describe('the total as of the lead\'s last recorded change'),
  owner: z.string().optional(), campaign: z.string().optional().describe('first touch'),
  becameMqlAt: z.string().optional(), becameSqlAt: z.string().optional(), consent: z.enum(['subscribed', 'unsubscribed', 'bounced']),
});
const rateDoc = z.number().min(0).max(1).nullable().describe('0..1, null when mqls is 0');
const daysDoc = z.number().nullable().describe('days; null when no lead of the cohort got there');
const cohortDoc = z.object({
  mqls: z.number().int(), sqls: z.number().int(), opportunities: z.number().int(), customers: z.number().int(),
  mqlToSqlRate: rateDoc, mqlToCustomerRate: rateDoc, medianDaysMqlToSql: daysDoc, medianDaysMqlToCustomer: daysDoc,
  cost: z.number().optional().describe('configured cost of the campaigns in the cohort'), costPerMql: z.number().optional(),
});
const funnelDoc = z.object({
  since: z.string().nullable(), until: z.string().nullable(), by: z.enum(FUNNEL_GROUP_BYS as [FunnelGroupBy, ...FunnelGroupBy[]]).nullable(),
  stages: z.object(Object.fromEntries(STAGES.map((st) => [st, z.number().int()]))).describe('leads in each stage now'),
  total: cohortDoc.describe('the leads that became MQL in [since, until)'),
  groups: z.array(cohortDoc.extend({ key: z.string() })).describe('only with `by`: every value seen in the cohort, `(none)` for leads without one'),
});
const timelineEntryDoc = z.discriminatedUnion('kind', [
  z.object({ at: z.string(), kind: z.literal('event'), eventId: z.string(), type: z.string(), occurredAt: z.string(), attributes: z.record(z.string(), z.unknown()).describe('campaign, channel, asset…, and `points`: what the event scored') }),
  z.object({ at: z.string(), kind: z.literal('profile'), patch: z.record(z.string(), z.unknown()) }),
  z.object({ at: z.string(), kind: z.literal('transition'), from: z.enum(STAGES), to: z.enum(STAGES), reason: z.string() }),
  z.object({ at: z.string(), kind: z.literal('mail'), messageId: z.string(), mailKind: z.string(), track: z.string().optional(), step: z.number().int().optional(), status: z.string() }),
  z.object({ at: z.string(), kind: z.literal('outcome'), outcome: z.string(), reason: z.string().optional(), note: z.string().optional(), rep: z.string().optional(), source: z.string() }),
]);

/** OpenAPI 3.1 from the same zod schemas the routes validate with; event types are this config's. */
export function openApiDocument(service: Pick<LeadService, 'config'>): object {
  const event = jsonSchema(leadEventSchema) as { properties: Record<string, Record<string, unknown>> };
  event.properties.type = { ...event.properties.type, enum: knownEventTypes(service.config) };
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  const json = (schema: object) => ({ content: { 'application/json': { schema } } });
  const err = (description: string) => ({ description, ...json(ref('Error')) });
  const common = {
    400: err('invalid input; issues name the fields'), 401: err('missing or invalid bearer token'), 403: err('the token\'s scope does not cover this route (insufficient_scope)'),
    415: err('not JSON'), 429: err('rate limited (Retry-After)'), 503: err('Temporal, the lead or the lead ledger cannot answer now (Retry-After)'),
  };
  const leadIdParam = { name: 'leadId', in: 'path', required: true, schema: jsonSchema(leadIdSchema) };
  const queryParams = (schema: z.ZodObject) => Object.entries((jsonSchema(schema) as { properties: Record<string, object> }).properties)
    .map(([name, s]) => ({ name, in: 'query', required: false, schema: s }));
  const linkParam = { name: 't', in: 'query', required: true, schema: { type: 'string' }, description: 'signed link token' };
  return {
    openapi: '3.1.0',
    info: { title: 'Lead nurture engine', version: '1', description: 'Leads, engagement events and sales outcomes; every lead is a Temporal workflow.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        LeadInput: jsonSchema(leadInputSchema), LeadEvent: event, Profile: jsonSchema(profileSchema), SalesOutcome: jsonSchema(salesOutcomeSchema),
        LeadState: jsonSchema(leadStateDoc), LeadSummary: jsonSchema(leadSummaryDoc), Funnel: jsonSchema(funnelDoc), TimelineEntry: jsonSchema(timelineEntryDoc), Error: jsonSchema(errorDoc),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/leads': {
        post: {
          summary: 'Create a lead, or update the profile of an existing one', requestBody: { required: true, ...json(ref('LeadInput')) },
          responses: { 201: { description: 'created', ...json({ type: 'object', properties: { leadId: { type: 'string' }, created: { type: 'boolean' } } }) }, 200: { description: 'existed; profile updated' }, ...common },
        },
        get: {
          summary: 'Search the ledger\'s leads (every lead ever recorded) by stage, owner, first-touch campaign and minimum score, in lead id order', parameters: queryParams(searchQuerySchema),
          responses: { 200: { description: 'a page of leads', ...json({ type: 'object', properties: { leads: { type: 'array', items: ref('LeadSummary') }, nextPageToken: { type: ['string', 'null'] } } }) }, ...common },
        },
      },
      '/v1/events': {
        post: {
          summary: `One event or an array of up to ${MAX_EVENTS_PER_REQUEST}; all are validated before any is sent`,
          requestBody: { required: true, ...json({ oneOf: [ref('LeadEvent'), { type: 'array', items: ref('LeadEvent'), minItems: 1, maxItems: MAX_EVENTS_PER_REQUEST }] }) },
          responses: { 202: { description: 'accepted', ...json({ type: 'object', properties: { accepted: { type: 'integer' } } }) }, 413: err('too many events or too large'), ...common },
        },
      },
      '/v1/leads/{leadId}': {
        get: { summary: 'The lead\'s state', parameters: [leadIdParam], responses: { 200: { description: 'state', ...json(ref('LeadState')) }, 404: err('no such lead'), ...common } },
        patch: {
          summary: 'Profile change (re-scores fit)', parameters: [leadIdParam], requestBody: { required: true, ...json(ref('Profile')) },
          responses: { 202: { description: 'accepted' }, 404: err('no such lead'), ...common },
        },
      },
      '/v1/leads/{leadId}/sales-outcome': {
        post: {
          summary: 'Accept, reject (with a reason), won or lost', parameters: [leadIdParam], requestBody: { required: true, ...json(ref('SalesOutcome')) },
          responses: { 200: { description: 'the new state', ...json(ref('LeadState')) }, 404: err('no such lead'), 409: err('outcome does not fit the stage'), ...common },
        },
      },
      '/v1/funnel': {
        get: {
          summary: 'Leads per stage now, and the cohort funnel of the leads that became MQL in [since, until): how many reached sql, opportunity, customer, rates, median days, cost per MQL; per campaign, channel, month or scoring model with `by`',
          parameters: queryParams(funnelQuerySchema),
          responses: { 200: { description: 'the funnel', ...json(ref('Funnel')) }, ...common },
        },
      },
      '/v1/leads/{leadId}/timeline': {
        get: {
          summary: 'Every event (with the points it scored), profile change, transition, mail and outcome of the lead, in order, from the ledger',
          parameters: [leadIdParam, ...queryParams(timelineQuerySchema)],
          responses: {
            200: { description: 'a page of the timeline; nextPageToken (opaque) while there is more', ...json({ type: 'object', required: ['entries'], properties: { entries: { type: 'array', items: ref('TimelineEntry') }, nextPageToken: { type: 'string' } } }) },
            404: err('the ledger does not know this lead'), ...common,
          },
        },
      },
      '/healthz': { get: { summary: 'Temporal reachable', security: [], responses: { 200: { description: 'ok' }, 503: err('Temporal unreachable') } } },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { 200: { description: 'OpenAPI 3.1' } } } },
      '/l/open': { get: { summary: 'Open pixel (signed link); records email_open once per link', security: [], parameters: [linkParam], responses: { 200: { description: '1x1 GIF' }, 403: err('tampered or expired') } } },
      '/l/click': { get: { summary: 'Click redirect (signed link); records email_click', security: [], parameters: [linkParam], responses: { 302: { description: 'to the target' }, 403: err('tampered or expired') } } },
      '/l/unsubscribe': {
        get: { summary: 'Unsubscribe page with a confirm button', security: [], parameters: [linkParam], responses: { 200: { description: 'HTML' }, 403: err('tampered or expired') } },
        post: {
          summary: 'RFC 8058 one-click unsubscribe', security: [], parameters: [linkParam],
          requestBody: { content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { 'List-Unsubscribe': { const: 'One-Click' } }, required: ['List-Unsubscribe'] } } } },
          responses: { 200: { description: 'unsubscribed' }, 403: err('tampered or expired') },
        },
      },
      '/l/sales': {
        get: {
          summary: 'The owner\'s accept/reject page', security: [],
          parameters: [linkParam, { name: 'action', in: 'query', required: false, schema: { enum: ['accept', 'reject'] } }],
          responses: { 200: { description: 'HTML' }, 403: { description: 'tampered or expired' }, 409: { description: 'no longer in sql' } },
        },
        post: {
          summary: 'Submit the owner\'s decision', security: [], parameters: [linkParam],
          requestBody: { content: { 'application/x-www-form-urlencoded': { schema: jsonSchema(salesFormSchema) } } },
          responses: { 200: { description: 'HTML result' }, 400: { description: 'bad form' }, 403: { description: 'tampered or expired' }, 409: { description: 'wrong stage' } },
        },
      },
    },
  };
}
