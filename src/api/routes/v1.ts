/**
 * The /v1 JSON API (CONTRACT.md §HTTP API): one table, each entry registered here and documented
 * from the same entry in /openapi.json. A route's path parameters and query string are validated
 * with its table schemas before its handler runs (a 400 naming the field); bodies are validated
 * by LeadService with the schemas of src/domain/lead.ts. The bearer token and its scope (the
 * entry's `scope`), the rate limit and the JSON-only rule are src/api/server.ts's hooks.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LeadError, MAX_EVENTS_PER_REQUEST, validate } from '../../lead-service.js';
import { CONTROL_CHARS, leadIdSchema, profileSchema, STAGES } from '../../domain/lead.js';
import { FUNNEL_GROUP_BYS } from '../../ledger/funnel.js';
import type { FunnelGroupBy } from '../../ledger/ledger.js';
import type { LeadSearchPage } from '../../ledger/search.js';
import type { LinkSigner } from '../../links.js';
import { type Scope, spendWrites } from '../auth.js';
import { type ApiContext, cleanQuery, errorAnswer, ref, type RouteDoc } from '../http.js';

// ---- what the routes take besides the LeadService bodies ------------------------------------------

/** Query strings come as text; empty values (`?stage=&owner=`) count as absent. */
const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine((v) => !CONTROL_CHARS.test(v), 'must not contain control characters')
    .optional();
const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
const isoDateParam = z.union([z.iso.datetime({ offset: true }), z.iso.date()], {
  error: 'must be an ISO-8601 date or date-time, e.g. 2025-01-31 or 2025-01-31T00:00:00Z',
});

/** A sealed page token (LinkSigner.seal): base64url, a dot, base64url. */
const pageTokenParam = z
  .string()
  .max(4096)
  .regex(/^[A-Za-z0-9_.-]+$/, 'must be a nextPageToken from an earlier answer');

export const leadParamsSchema = z.object({ leadId: leadIdSchema }).strict();
export const searchQuerySchema = z
  .object({
    stage: z.enum(STAGES).optional(),
    owner: optionalText(320),
    campaign: optionalText(100),
    minScore: wholeNumber(-1_000_000, 1_000_000).optional(),
    model: optionalText(64),
    limit: wholeNumber(1, 1000).optional(),
    pageToken: pageTokenParam.optional(),
  })
  .strict();
export const funnelQuerySchema = z
  .object({
    since: isoDateParam.optional(),
    until: isoDateParam.optional(),
    by: z.enum(FUNNEL_GROUP_BYS as [FunnelGroupBy, ...FunnelGroupBy[]]).optional(),
  })
  .strict()
  .refine((q) => !q.since || !q.until || Date.parse(q.since) < Date.parse(q.until), {
    message: 'since must be before until',
    path: ['until'],
  });
export const timelineQuerySchema = z
  .object({
    limit: wholeNumber(1, 1000).optional(),
    pageToken: pageTokenParam.optional(),
  })
  .strict();

// ---- page tokens ------------------------------------------------------------------------------------

/**
 * Page tokens are the ledger's, sealed (LinkSigner.seal) for what they page through: the search's
 * filters, the timeline's lead. A garbage or foreign token is a 400 before any database round trip.
 */
const SEARCH_PAGE = 'leads-page';
const TIMELINE_PAGE = 'timeline-page';
function badToken(what: string) {
  const issue = { path: 'pageToken', message: `must be the nextPageToken of an earlier answer to ${what}` };
  return new LeadError(400, 'invalid_input', `invalid pageToken: not a nextPageToken of ${what}`, [issue]);
}
function unsealToken(links: LinkSigner, kind: string, context: string, token: string | undefined, what: string) {
  if (token === undefined) return undefined;
  const raw = links.unseal(kind, context, token);
  if (!raw) throw badToken(what);
  return raw.toString();
}
const sealToken = (links: LinkSigner, kind: string, context: string, token: string | undefined) =>
  token ? links.seal(kind, context, Buffer.from(token)) : undefined;

/** The ledger refuses a token whose seal held (one from before the ledger's search): still the caller's bad token. */
const ledgerRefusal = (ledgerToken: string | undefined, what: string) => (err: unknown) => {
  throw err instanceof LeadError && err.status === 400 && ledgerToken ? badToken(what) : err;
};

/**
 * A page of the ledger's search with a sealed nextPageToken bound to its filters: `GET /v1/leads`
 * and the console's leads and queue views.
 */
export async function searchPage(
  c: ApiContext,
  { pageToken, ...q }: z.output<typeof searchQuerySchema>,
): Promise<{ leads: LeadSearchPage['leads']; nextPageToken?: string }> {
  // The model only when set: a search without it keeps the seal context its tokens had before.
  const filters = JSON.stringify([q.stage, q.owner, q.campaign, q.minScore, ...(q.model ? [q.model] : [])]);
  const what = 'this search (same stage, owner, campaign, minScore and model)';
  const ledgerToken = unsealToken(c.links, SEARCH_PAGE, filters, pageToken, what);
  const r = await c.service
    .search({ ...q, ...(ledgerToken ? { pageToken: ledgerToken } : {}) })
    .catch(ledgerRefusal(ledgerToken, what));
  const next = sealToken(c.links, SEARCH_PAGE, filters, r.nextPageToken);
  return { leads: r.leads, ...(next ? { nextPageToken: next } : {}) };
}

// ---- the table ---------------------------------------------------------------------------------------

type Schema = z.ZodObject | undefined;
type Output<S extends Schema> = S extends z.ZodObject ? z.output<S> : undefined;
/** What the handler gets: the path parameters and the query string, parsed with the entry's schemas. */
type Parsed<P extends Schema, Q extends Schema> = { params: Output<P>; query: Output<Q> };

/** A /v1 route: its entry in the document, the scope it needs, and its handler, given the parsed path and query. */
export interface V1Route<P extends Schema = Schema, Q extends Schema = Schema> extends RouteDoc {
  scope: Scope;
  params?: P;
  query?: Q;
  handle(c: ApiContext, input: Parsed<P, Q>, req: FastifyRequest, reply: FastifyReply): Promise<unknown>;
}

/** An entry, its handler typed by its schemas. */
export const route = <P extends Schema = undefined, Q extends Schema = undefined>(r: V1Route<P, Q>) =>
  r as unknown as V1Route;

const notFound = errorAnswer('no such lead');
const erased = errorAnswer(
  'the lead was erased (code `erased`, naming leadId); a new LeadInput with consent may reuse the id',
);

export const V1_ROUTES: readonly V1Route[] = [
  route({
    method: 'POST',
    url: '/v1/leads',
    scope: 'ingest',
    summary: 'Create a lead, or update the profile of an existing one',
    body: { schema: ref('LeadInput') },
    responses: {
      201: { description: 'created', schema: z.object({ leadId: z.string(), created: z.boolean() }) },
      200: { description: 'existed; profile updated' },
      410: erased,
    },
    async handle(c, _input, req, reply) {
      spendWrites(c.writes, req, 1, reply);
      const r = await c.temporal(() => c.service.upsertLead(req.body));
      const location = `/v1/leads/${encodeURIComponent(r.leadId)}`;
      return reply
        .status(r.created ? 201 : 200)
        .header('location', location)
        .send(r);
    },
  }),
  route({
    method: 'POST',
    url: '/v1/events',
    scope: 'ingest',
    summary: `One event or an array of up to ${MAX_EVENTS_PER_REQUEST}; all are validated before any is sent`,
    body: {
      schema: {
        oneOf: [
          ref('LeadEvent'),
          { type: 'array', items: ref('LeadEvent'), minItems: 1, maxItems: MAX_EVENTS_PER_REQUEST },
        ],
      },
    },
    responses: {
      202: { description: 'accepted', schema: z.object({ accepted: z.number().int() }) },
      413: errorAnswer('too many events or too large'),
      410: erased,
    },
    async handle(c, _input, req, reply) {
      const batch = Array.isArray(req.body) ? req.body.length : undefined;
      // Each event of a batch may create a lead and mail it: the batch spends one per item.
      spendWrites(c.writes, req, batch ?? 1, reply);
      // A batch of new leads is one signal-with-start each (tens per second on a dev server): give it time.
      // A batch cut short is safe to send again: eventIds make every event count once.
      const r = await c.temporal(() => c.service.sendEvents(req.body), (batch ?? 0) * 200);
      return reply.status(202).send(r);
    },
  }),
  route({
    method: 'PATCH',
    url: '/v1/leads/:leadId',
    scope: 'ingest',
    params: leadParamsSchema,
    summary: 'Profile change (re-scores fit)',
    body: { schema: ref('Profile') },
    responses: {
      202: { description: 'accepted' },
      404: notFound,
    },
    async handle(c, { params: { leadId } }, req, reply) {
      const patch = validate(profileSchema, req.body, 'profile');
      // Each under its own deadline: a slow state read never eats into the signal's.
      await c.temporal(() => c.service.checkProfileMerge(leadId, patch));
      await c.temporal(() => c.service.patchProfile(leadId, patch));
      return reply.status(202).send({ leadId, accepted: true });
    },
  }),
  route({
    method: 'POST',
    url: '/v1/leads/:leadId/sales-outcome',
    scope: 'sales',
    params: leadParamsSchema,
    summary: 'Accept, reject (with a reason), won or lost',
    body: { schema: ref('SalesOutcome') },
    responses: {
      200: { description: 'the new state', schema: ref('LeadState') },
      404: notFound,
      409: errorAnswer('outcome does not fit the stage'),
    },
    async handle(c, { params: { leadId } }, req) {
      return c.temporal(() => c.service.salesOutcome(leadId, req.body));
    },
  }),
  route({
    method: 'GET',
    url: '/v1/leads/:leadId',
    scope: 'read',
    params: leadParamsSchema,
    summary: "The lead's state",
    responses: { 200: { description: 'state', schema: ref('LeadState') }, 404: notFound, 410: erased },
    async handle(c, { params: { leadId } }) {
      return c.temporal(() => c.service.getState(leadId));
    },
  }),
  route({
    method: 'GET',
    url: '/v1/leads',
    scope: 'read',
    query: searchQuerySchema,
    summary:
      "Search the ledger's leads (every lead ever recorded) by stage, owner, first-touch campaign, " +
      'scoring model and minimum score, in lead id order',
    responses: {
      200: {
        description: 'a page of leads',
        schema: {
          type: 'object',
          properties: {
            leads: { type: 'array', items: ref('LeadSummary') },
            nextPageToken: { type: ['string', 'null'] },
          },
        },
      },
    },
    async handle(c, { query }) {
      const r = await searchPage(c, query);
      return { leads: r.leads, nextPageToken: r.nextPageToken ?? null };
    },
  }),
  route({
    method: 'GET',
    url: '/v1/funnel',
    scope: 'read',
    query: funnelQuerySchema,
    summary:
      'Leads per stage now, and the cohort funnel of the leads that became MQL in [since, until): how many ' +
      'reached sql, opportunity, customer, rates, median days, cost per MQL; per campaign, channel, month or ' +
      'scoring model with `by`',
    responses: { 200: { description: 'the funnel', schema: ref('Funnel') } },
    async handle(c, { query: q }) {
      const iso = (s: string) => new Date(s).toISOString();
      return c.service.funnel({
        ...(q.since ? { since: iso(q.since) } : {}),
        ...(q.until ? { until: iso(q.until) } : {}),
        ...(q.by ? { by: q.by } : {}),
      });
    },
  }),
  route({
    method: 'GET',
    url: '/v1/leads/:leadId/timeline',
    scope: 'read',
    params: leadParamsSchema,
    query: timelineQuerySchema,
    summary:
      'Every event (with the points it scored), profile change, transition, mail and outcome of the lead, in ' +
      'order, from the ledger',
    responses: {
      200: {
        description: 'a page of the timeline; nextPageToken (opaque) while there is more',
        schema: {
          type: 'object',
          required: ['entries'],
          properties: { entries: { type: 'array', items: ref('TimelineEntry') }, nextPageToken: { type: 'string' } },
        },
      },
      404: errorAnswer('the ledger does not know this lead'),
    },
    async handle(c, { params: { leadId }, query: { pageToken, limit } }) {
      const what = "this lead's timeline";
      const ledgerToken = unsealToken(c.links, TIMELINE_PAGE, leadId, pageToken, what);
      const page = { ...(limit ? { limit } : {}), ...(ledgerToken ? { pageToken: ledgerToken } : {}) };
      const r = await c.service.timeline(leadId, page).catch(ledgerRefusal(ledgerToken, what));
      const next = sealToken(c.links, TIMELINE_PAGE, leadId, r.nextPageToken);
      return { entries: r.entries, ...(next ? { nextPageToken: next } : {}) };
    },
  }),
];

/** Registers the table on a /v1 instance whose hooks (server.ts) check the token, its scope and the content type. */
export async function v1Routes(v1: FastifyInstance, c: ApiContext): Promise<void> {
  registerV1Table(v1, c, V1_ROUTES);
}

/** Registers a table of /v1 routes (this file's, or another route file's), validating path and query first. */
export function registerV1Table(v1: FastifyInstance, c: ApiContext, routes: readonly V1Route[]): void {
  for (const r of routes) {
    v1.route({
      method: r.method,
      url: r.url,
      config: { scope: r.scope },
      handler: async (req, reply) => {
        const params = r.params && validate(r.params, req.params, 'path');
        const query = r.query && validate(r.query, cleanQuery(req.query), 'query');
        return r.handle(c, { params, query }, req, reply);
      },
    });
  }
}
