/**
 * The HTTP API (CONTRACT.md §HTTP API): a thin shell over LeadService. Every body, query string
 * and path parameter is validated with zod schemas (src/domain/lead.ts, the route tables) before
 * anything is sent to Temporal, so bad input is a 4xx that changes nothing. Errors are always
 * `{ error: { code, message, issues? } }`.
 *
 * This file is the app: the Fastify instance, its limits, error answers and hooks, and the route
 * plugins it registers, each from a table whose entries are also the OpenAPI document
 * (src/api/openapi.ts):
 * - `/v1/*` (src/api/routes/v1.ts): bearer token (constant-time compare) with a scope per route
 *   and per-token rate limits (src/api/auth.ts), JSON only.
 * - `/l/*` (src/api/routes/links.ts, pages.ts): the signed links in mail (open pixel, click
 *   redirect, unsubscribe, the owner's sales page); no token, the LinkSigner signature and expiry
 *   are the authorization.
 * - `/healthz`, `/openapi.json`: open. `/codec/*` (src/api/codec.ts) when ApiOptions.codec is set.
 * - `/console/*` (src/api/console/): the pages for marketing and sales, behind a session cookie
 *   from a sign-in with an API token, under their own CSP; when ApiOptions.console is set.
 *
 * Every answer has security headers (@fastify/helmet; the link pages' CSP allows no script), link
 * tokens never reach the access log, and slow or idle clients time out (ApiOptions.timeouts).
 */
import helmet from '@fastify/helmet';
import Fastify, {
  type FastifyHttpOptions,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { type Server, STATUS_CODES } from 'node:http';
import { LeadError, type LeadService } from '../lead-service.js';
import type { LinkSigner } from '../links.js';
import {
  allows,
  type ApiToken,
  Budget,
  DEFAULT_RATE,
  DEFAULT_WRITE_RATE,
  parseTokens,
  type Rate,
  registerRateLimit,
  type Scope,
  tokenChecker,
} from './auth.js';
import type { LoadedConfig } from '../config-file.js';
import { codecRoutes, type CodecRouteOptions } from './codec.js';
import { consoleRoutes } from './console/index.js';
import { STYLE_HASH } from './html.js';
import { type ApiContext, errorAnswer, errorBody, type RouteDoc } from './http.js';
import { openApiDocument } from './openapi.js';
import { EMAIL_EVENT_ROUTES, emailEventRoutes } from './routes/email-events.js';
import { LINK_ROUTES, linkRoutes } from './routes/links.js';
import { PAGE_ROUTES } from './routes/pages.js';
import { SEGMENT_ROUTES, segmentRoutes } from './routes/segment.js';
import { SUPPRESSION_ROUTES, suppressionRoutes } from './routes/suppressions.js';
import { ERASURE_ROUTES, erasureRoutes } from './routes/erasure.js';
import { V1_ROUTES, v1Routes } from './routes/v1.js';
import { WEBHOOK_ROUTES, webhookRoutes } from './routes/webhooks.js';

export { funnelQuerySchema, leadParamsSchema, searchQuerySchema, timelineQuerySchema } from './routes/v1.js';

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
  /**
   * Leads and events (each item of a batch) per token and window (default DEFAULT_WRITE_RATE; `null`: none).
   * Env API_WRITE_RATE_LIMIT.
   */
  writeRateLimit?: Rate | null;
  /**
   * Slow clients: whole request received within `requestMs` (30 s), headers within `headersMs` (10 s), idle
   * keep-alive `keepAliveMs` (5 s), silent socket `socketMs` (150 s: longer than a 500-event batch takes to answer).
   */
  timeouts?: { requestMs?: number; headersMs?: number; keepAliveMs?: number; socketMs?: number };
  /** The codec server (src/api/codec.ts): POST /codec/encode and /codec/decode; omitted: no such routes. */
  codec?: Omit<CodecRouteOptions, 'authorized'>;
  /** The console at /console (src/api/console/): the running config it shows; omitted: no console. */
  console?: { config: () => LoadedConfig };
}

/** The URL as logged: a link's token (`t=`) is a credential for that link, so only its first characters are kept. */
export const redactUrl = (url: string) => url.replace(/([?&]t=)([^&#]{0,6})[^&#]*/g, '$1$2…');

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
  // An update whose call ran out of time (or was cancelled by it): it may still be applied, and a retry is safe
  // (the stage rules refuse a second one).
  if ((err as Error)?.name === 'WorkflowUpdateRPCTimeoutOrCancelledError') return 4;
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'number' && RETRYABLE_GRPC[e.code]) return e.code;
  }
  return undefined;
}

/** Fastify's own 4xx errors (a body that is not JSON, too large ...) by code. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'empty_body',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_content_length',
};

/**
 * Every error a route throws, in the contract's shape:
 * a LeadError as it says, Fastify's 4xx, Temporal away (503), anything else 500.
 */
function answerError(err: Error & { statusCode?: number; code?: string }, req: FastifyRequest, reply: FastifyReply) {
  if (err instanceof LeadError) {
    // A lead that is starting or whose workflow task is being retried answers again shortly.
    if (err.status === 503) reply.header('retry-after', '2');
    return reply.status(err.status).send(errorBody(err.code, err.message, err.issues));
  }
  const status = err.statusCode;
  if (status && status >= 400 && status < 500) {
    const code = FASTIFY_CODES[err.code ?? ''] ?? 'bad_request';
    const message =
      code === 'malformed_json'
        ? 'the body is not valid JSON'
        : code === 'unsupported_media_type'
          ? `unsupported content type ${req.headers['content-type'] ?? '(none)'}`
          : err.message;
    return reply.status(status).send(errorBody(code, message));
  }
  const grpc = grpcCode(err);
  if (grpc) {
    req.log.warn({ err }, 'temporal unavailable');
    return reply
      .status(503)
      .header('retry-after', grpc === 9 ? '2' : '5')
      .send(errorBody(grpc === 9 ? 'lead_unavailable' : 'temporal_unavailable', RETRYABLE_GRPC[grpc]!));
  }
  req.log.error({ err }, 'request failed');
  return reply.status(500).send(errorBody('internal', 'internal error'));
}

/** The server's limits, access log and the answers to errors of the connection or URL itself. */
function serverOptions(opts: ApiOptions): FastifyHttpOptions<Server> {
  const t = opts.timeouts ?? {};
  return {
    logger: opts.logger
      ? {
          ...(typeof opts.logger === 'object' ? { stream: opts.logger.stream } : {}),
          serializers: {
            req: (req: FastifyRequest) => ({
              method: req.method,
              url: redactUrl(req.url),
              host: req.headers?.host,
              remoteAddress: req.ip,
            }),
          },
        }
      : false,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // Lead ids are up to 128 characters, up to three times that when a client percent-encodes : @ +.
    routerOptions: { maxParamLength: 400 },
    requestTimeout: t.requestMs ?? 30_000,
    keepAliveTimeout: t.keepAliveMs ?? 5_000,
    connectionTimeout: t.socketMs ?? 150_000,
    // The server checks its request and header deadlines every `connectionsCheckingInterval`.
    http: {
      headersTimeout: t.headersMs ?? 10_000,
      connectionsCheckingInterval: Math.min(1000, t.requestMs ?? 30_000, t.headersMs ?? 10_000),
    },
    // Errors of the connection itself (a body or headers too slow, headers too large, not HTTP) in the
    // contract's shape too.
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const [status, code, message] =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'request_timeout', 'the request was not received in time']
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'headers_too_large', 'the request headers are too large']
            : [400, 'bad_request', 'the request is not valid HTTP'];
      const body = JSON.stringify(errorBody(code, message));
      const head =
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n';
      if (socket.writable) socket.write(head + body);
      socket.destroy();
    },
    // Errors Fastify answers before any route (a URL that does not decode, a parameter too long) get the
    // contract's shape too.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      const tooLong = (err as { code?: string }).code === 'FST_ERR_MAX_PARAM_LENGTH';
      void reply
        .status(tooLong ? 414 : 400)
        .send(
          tooLong
            ? errorBody('uri_too_long', 'a path parameter is too long (a leadId is at most 128 characters)')
            : errorBody('bad_url', 'the URL is malformed (bad percent-encoding)'),
        );
    },
  };
}

/** The /v1 bearer token check: 401 without a valid token, 403 when its scope does not cover the route's. */
type TokenCheck = (header: string | undefined) => ApiToken | undefined;
const bearerAuth = (authorized: TokenCheck) => async (req: FastifyRequest, reply: FastifyReply) => {
  const token = authorized(req.headers.authorization);
  if (!token) {
    return reply
      .status(401)
      .header('www-authenticate', 'Bearer realm="lead-nurture"')
      .send(errorBody('unauthorized', 'missing or invalid bearer token (Authorization: Bearer <token>)'));
  }
  req.apiToken = token;
  // A route names the scope it needs; one that names none is admin's.
  const need: Scope = req.routeOptions.config.scope ?? 'admin';
  if (!allows(token.scope, need)) {
    const message = `this route needs a token with scope ${need} (or admin); this token has scope ${token.scope}`;
    return reply
      .status(403)
      .header('www-authenticate', `Bearer realm="lead-nurture", error="insufficient_scope", scope="${need}"`)
      .send(errorBody('insufficient_scope', message));
  }
};

/** /v1 bodies are JSON: anything else is a 415 before the route runs. */
async function jsonOnly(req: FastifyRequest, reply: FastifyReply) {
  if (req.method !== 'POST' && req.method !== 'PATCH' && req.method !== 'PUT') return;
  const type = String(req.headers['content-type'] ?? '');
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    const message = `send JSON (Content-Type: application/json), not ${type || 'no content type'}`;
    return reply.status(415).send(errorBody('unsupported_media_type', message));
  }
}

const SECURITY_HEADERS = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      styleSrc: [STYLE_HASH],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
    },
  },
  frameguard: { action: 'deny' as const },
  referrerPolicy: { policy: 'no-referrer' as const },
  // Mail clients load the open pixel from other origins; the pixel route allows that itself.
  crossOriginResourcePolicy: { policy: 'same-origin' as const },
};

/** 404 for an unknown path, 405 (with Allow) for a known path with another method: routes are collected as added. */
function answerUnknownRoutes(app: FastifyInstance) {
  const routes: { re: RegExp; method: string }[] = [];
  app.addHook('onRoute', (r) => {
    const re = new RegExp(`^${r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}/?$`);
    for (const m of [r.method].flat()) routes.push({ re, method: m });
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((r) => r.re.test(path)).map((r) => r.method))];
    if (!allowed.length) return reply.status(404).send(errorBody('route_not_found', `no route ${req.method} ${path}`));
    return reply
      .status(405)
      .header('allow', allowed.join(', '))
      .send(errorBody('method_not_allowed', `${req.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`));
  });
}

/** Bodies: JSON for /v1, forms for the pages behind mail links. Anything else is a 415. */
function parseForms(app: FastifyInstance) {
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  // RFC 8058 allows multipart/form-data for the one-click POST; only its presence matters there.
  app.addContentTypeParser('multipart/form-data', { parseAs: 'string' }, (_req, body, done) => {
    done(null, { raw: body });
  });
}

const HEALTHZ: RouteDoc = {
  method: 'GET',
  url: '/healthz',
  summary: 'Temporal reachable',
  responses: { 200: { description: 'ok' }, 503: errorAnswer('Temporal unreachable') },
};
const OPENAPI: RouteDoc = {
  method: 'GET',
  url: '/openapi.json',
  summary: 'This document',
  responses: { 200: { description: 'OpenAPI 3.1' } },
};

/** The `/l/*` routes; the pages first, so that a path's GET comes before its POST (in `Allow` too). */
const LINKS = [...PAGE_ROUTES, ...LINK_ROUTES];
/** Every route the app registers, as documented; the codec server's routes are Temporal's protocol, not ours. */
const ROUTES: readonly RouteDoc[] = [
  ...V1_ROUTES,
  ...SUPPRESSION_ROUTES,
  ...WEBHOOK_ROUTES,
  ...ERASURE_ROUTES,
  ...SEGMENT_ROUTES,
  ...EMAIL_EVENT_ROUTES,
  HEALTHZ,
  OPENAPI,
  ...LINKS,
];

export function buildApi(opts: ApiOptions): FastifyInstance {
  const { service, healthCheck } = opts;
  const tokens = parseTokens(opts.tokens);
  const authorized = tokenChecker(tokens);
  const timeoutMs = opts.temporalTimeoutMs ?? 20_000;
  const c: ApiContext = {
    service,
    links: opts.links,
    now: opts.now ?? Date.now,
    temporal: (fn, extraMs = 0) => service.client.connection.withDeadline(Date.now() + timeoutMs + extraMs, fn),
    writes: opts.writeRateLimit === null ? undefined : new Budget(opts.writeRateLimit ?? DEFAULT_WRITE_RATE),
  };
  const app = Fastify(serverOptions(opts));

  // Security headers on every answer. The pages behind mail links run no script and are never framed;
  // no Referer leaks a link's token to a click's target.
  void app.register(helmet, SECURITY_HEADERS);
  parseForms(app);
  app.setErrorHandler(answerError);
  answerUnknownRoutes(app);

  // ---- open routes ---------------------------------------------------------------------------
  app.route({
    method: HEALTHZ.method,
    url: HEALTHZ.url,
    handler: async (_req, reply) => {
      const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref());
      const ok = await Promise.race([healthCheck(), timeout]).catch(() => false);
      return ok
        ? reply.send({ ok: true, temporal: 'reachable' })
        : reply.status(503).send(errorBody('temporal_unavailable', 'Temporal is not reachable'));
    },
  });
  let openapi: object | undefined;
  app.route({
    method: OPENAPI.method,
    url: OPENAPI.url,
    handler: async () => (openapi ??= openApiDocument(service.config, ROUTES)),
  });

  // Decoding shows profile data: a token that may read leads (read or admin), as GET /v1/leads/:id needs.
  if (opts.codec) {
    const readToken = (req: FastifyRequest) => {
      const t = authorized(req.headers.authorization);
      return t !== undefined && allows(t.scope, 'read');
    };
    app.register(codecRoutes, { ...opts.codec, authorized: readToken });
  }

  app.register(async (v1) => {
    v1.addHook('onRequest', bearerAuth(authorized));
    await registerRateLimit(v1, opts.rateLimit === null ? undefined : (opts.rateLimit ?? DEFAULT_RATE));
    v1.addHook('preValidation', jsonOnly);
    await v1.register(v1Routes, c);
    await v1.register(suppressionRoutes, c);
    await v1.register(webhookRoutes, c);
    await v1.register(erasureRoutes, c);
  });
  app.register(segmentRoutes, {
    c,
    tokens: authorized,
    rateLimit: opts.rateLimit === null ? undefined : (opts.rateLimit ?? DEFAULT_RATE),
  });
  app.register(emailEventRoutes, {
    c,
    tokens: authorized,
    rateLimit: opts.rateLimit === null ? undefined : (opts.rateLimit ?? DEFAULT_RATE),
  });
  app.register(linkRoutes, { c, routes: LINKS });
  if (opts.console) app.register(consoleRoutes, { c, config: opts.console.config, tokens, authorized });
  return app;
}
