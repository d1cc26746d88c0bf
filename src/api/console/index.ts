/**
 * The console for marketing and sales at /console (issue 14): server-rendered pages over the
 * same LeadService, ledger and learn functions the /v1 API and leadctl use, so every figure is
 * the one `GET /v1/funnel`, `GET /v1/leads` or `leadctl what-if` gives.
 *
 * - Sign-in (./session.ts): an API token becomes an HttpOnly, SameSite=Strict session cookie. A
 *   page without a valid session redirects to the login; a view names the token scope it needs
 *   (src/api/auth.ts: funnel, leads and models `read`, the queue `sales`, a rollout `admin`).
 * - Forms post to the same origin only: SameSite=Strict keeps the cookie off cross-site posts,
 *   and a POST whose Origin is another site's is refused before its handler runs.
 * - Pages (./layout.ts) run no inline script: Chart.js and console.js are files the API serves
 *   (./assets.ts), under a CSP of 'self' only; every value is escaped.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LoadedConfig } from '../../config-file.js';
import { LeadError } from '../../lead-service.js';
import { allows, type ApiToken, type Scope } from '../auth.js';
import type { ApiContext } from '../http.js';
import { assetRoutes } from './assets.js';
import { funnelView } from './funnel.js';
import { esc, type PageOptions, problemList, sendPage, type View } from './layout.js';
import { leadsView, leadView } from './leads.js';
import { modelsView, rolloutView, whatIfView } from './models.js';
import { decide, queueView } from './queue.js';
import { type Session, Sessions } from './session.js';

export interface ConsoleContext {
  c: ApiContext;
  /** The running config (a rollout changes it): the models view shows it. */
  config: () => LoadedConfig;
}

/** What a view renders into the shell. */
export type Rendered = Pick<PageOptions, 'title' | 'body' | 'charts'>;

export interface ConsoleOptions {
  c: ApiContext;
  config: () => LoadedConfig;
  tokens: readonly ApiToken[];
  /** Checks a bearer header against the API's tokens (src/api/auth.ts tokenChecker). */
  authorized: (header: string | undefined) => ApiToken | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession?: Session;
  }
}

const LOGIN = '/console/login';
/** Where the login sends the browser back to: a console path only, never another site. */
const safeNext = (next: unknown) =>
  typeof next === 'string' && /^\/console(\/[A-Za-z0-9/_.%-]*)?(\?[^\s]*)?$/.test(next) && !next.startsWith(LOGIN)
    ? next
    : '/console/funnel';

function loginPage(reply: FastifyReply, next: string, problem?: string, status = 200) {
  return sendPage(
    reply,
    {
      title: 'Sign in',
      body:
        (problem ? `<div class="notice error" role="alert">${esc(problem)}</div>` : '') +
        '<form method="post" action="/console/login" class="login">' +
        `<input type="hidden" name="next" value="${esc(next)}">` +
        '<label>API token <input type="password" name="token" autocomplete="current-password" required></label>' +
        '<label>Your owner address (for your sales queue; optional) <input type="email" name="owner" autocomplete="email"></label>' +
        '<button type="submit">Sign in</button></form>' +
        '<p>A read token shows the funnel, the leads and the models; a sales token the queue; an admin token all, and may roll out.</p>',
    },
    status,
  );
}

/** The origin a browser on this server sends (same-origin forms); another one is a cross-site post. */
function crossSite(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (!origin || origin === 'null') return origin === 'null';
  return origin !== `${req.protocol}://${req.host}`;
}

export async function consoleRoutes(app: FastifyInstance, o: ConsoleOptions): Promise<void> {
  const sessions = new Sessions(o.c.links, o.tokens, o.c.now);
  const x: ConsoleContext = { c: o.c, config: o.config };
  assetRoutes(app);

  const send = (reply: FastifyReply, req: FastifyRequest, view: View | undefined, r: Rendered | undefined) =>
    r === undefined
      ? reply
      : sendPage(
          reply,
          { ...r, view, ...(req.consoleSession ? { session: req.consoleSession } : {}) },
          reply.statusCode,
        );

  /** A page behind the session: to the login without one, a 403 page when its token's scope does not cover `need`. */
  const page = (
    method: 'GET' | 'POST',
    url: string,
    view: View | undefined,
    need: Scope,
    render: (req: FastifyRequest, reply: FastifyReply, s: Session) => Promise<Rendered | undefined> | Rendered,
  ) =>
    app.route({
      method,
      url,
      handler: async (req, reply) => {
        const s = sessions.read(req);
        if (!s) {
          if (method === 'POST') return loginPage(reply, safeNext(url), 'Your session has ended; sign in again.', 401);
          return reply.redirect(`${LOGIN}?${new URLSearchParams({ next: req.url }).toString()}`, 303);
        }
        req.consoleSession = s;
        if (!allows(s.scope, need)) {
          reply.status(403);
          return send(reply, req, view, {
            title: 'Not for this token',
            body: `<p>This view needs a token with scope ${esc(need)} (or admin); you signed in with a ${esc(s.scope)} token.</p>`,
          });
        }
        return send(reply, req, view, await render(req, reply, s));
      },
    });

  // A refused input, the ledger or Temporal away: a page saying so, in the console's shell.
  app.setErrorHandler(async (err: Error & { statusCode?: number }, req, reply) => {
    const lead = err instanceof LeadError ? err : undefined;
    const status = lead?.status ?? (err.statusCode && err.statusCode < 500 ? err.statusCode : 500);
    if (status >= 500) req.log.error({ err }, 'console page failed');
    if (status === 503) reply.header('retry-after', '5');
    reply.status(status);
    return send(reply, req, undefined, {
      title: status === 404 ? 'Not found' : status >= 500 ? 'Not available' : 'Cannot do that',
      body:
        `<p>${esc(status >= 500 && status !== 503 ? 'Something went wrong; the error is in the API log.' : err.message)}</p>` +
        (lead?.issues?.length ? problemList(lead.issues) : ''),
    });
  });
  // POSTs from another site are refused whatever their cookie.
  app.addHook('preHandler', async (req, reply) => {
    if (req.method === 'POST' && crossSite(req))
      return reply.status(403).type('text/plain; charset=utf-8').send('cross-site form posts are refused');
  });

  app.get('/console', async (req, reply) => reply.redirect(sessions.read(req) ? '/console/funnel' : LOGIN, 303));
  app.get<{ Querystring: { next?: string } }>(LOGIN, async (req, reply) => loginPage(reply, safeNext(req.query.next)));
  app.post<{ Body: { token?: unknown; owner?: unknown; next?: unknown } }>(LOGIN, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    const token = typeof body.token === 'string' ? o.authorized(`Bearer ${body.token.trim()}`) : undefined;
    if (!token) return loginPage(reply, next, 'token: not a token this API accepts', 401);
    const owner = typeof body.owner === 'string' ? body.owner.trim().toLowerCase() : '';
    if (owner && !/^[^\s@<>"]{1,200}@[^\s@<>"]{1,200}$/.test(owner))
      return loginPage(reply, next, 'owner: must be an email address (or empty)', 400);
    sessions.start(req, reply, token, owner || undefined);
    return reply.redirect(next, 303);
  });
  app.post('/console/logout', async (req, reply) => {
    sessions.end(req, reply);
    return reply.redirect(LOGIN, 303);
  });

  page('GET', '/console/funnel', 'funnel', 'read', (req) => funnelView(x, req));
  page('GET', '/console/leads', 'leads', 'read', (req) => leadsView(x, req));
  page('GET', '/console/leads/:leadId', 'leads', 'read', (req) => leadView(x, req));
  page('GET', '/console/queue', 'queue', 'sales', (req, _reply, s) => queueView(x, req.query, s));
  page('POST', '/console/queue/:leadId', 'queue', 'sales', (req, reply, s) => decide(x, req, reply, s));
  page('GET', '/console/models', 'models', 'read', () => modelsView(x));
  page('POST', '/console/models/what-if', 'models', 'read', (req, reply, s) => whatIfView(x, req, reply, s));
  page('POST', '/console/models/rollout', 'models', 'admin', (req, reply) => rolloutView(x, req, reply));
}
