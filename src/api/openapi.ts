/**
 * The OpenAPI 3.1 document that /openapi.json serves, generated from the API's route tables
 * (src/api/http.ts RouteDoc: the same entries register the routes) and from the zod schemas the
 * routes and LeadService validate with. LeadState is src/domain/lead.ts's schema; the event types
 * are this config's.
 */
import { z } from 'zod';
import { type Config, knownEventTypes } from '../domain/config.js';
import {
  CONSENTS,
  leadEventSchema,
  leadInputSchema,
  leadStateSchema,
  profileSchema,
  salesOutcomeSchema,
  STAGES,
} from '../domain/lead.js';
import { FUNNEL_GROUP_BYS } from '../ledger/funnel.js';
import type { FunnelGroupBy } from '../ledger/ledger.js';
import { type DocSchema, errorAnswer, type RouteDoc } from './http.js';

function jsonSchema(schema: z.core.$ZodType): Record<string, unknown> {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  return rest;
}
const isZod = (s: DocSchema): s is z.core.$ZodType => '_zod' in s;
const docSchema = (s: DocSchema) => (isZod(s) ? jsonSchema(s) : s);

// ---- the answers' schemas besides LeadState (the ledger's reads) --------------------------------------

const stage = z.enum(STAGES);
const errorDoc = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});
const leadSummaryDoc = z.object({
  leadId: z.string(),
  stage,
  score: z.number().int().describe("the total as of the lead's last recorded change"),
  owner: z.string().optional(),
  campaign: z.string().optional().describe('first touch'),
  becameMqlAt: z.string().optional(),
  becameSqlAt: z.string().optional(),
  consent: z.enum(CONSENTS),
});
const rateDoc = z.number().min(0).max(1).nullable().describe('0..1, null when mqls is 0');
const daysDoc = z.number().nullable().describe('days; null when no lead of the cohort got there');
const cohortDoc = z.object({
  mqls: z.number().int(),
  sqls: z.number().int(),
  opportunities: z.number().int(),
  customers: z.number().int(),
  mqlToSqlRate: rateDoc,
  mqlToCustomerRate: rateDoc,
  medianDaysMqlToSql: daysDoc,
  medianDaysMqlToCustomer: daysDoc,
  cost: z.number().optional().describe('configured cost of the campaigns in the cohort'),
  costPerMql: z.number().optional(),
});
const funnelDoc = z.object({
  since: z.string().nullable(),
  until: z.string().nullable(),
  by: z.enum(FUNNEL_GROUP_BYS as [FunnelGroupBy, ...FunnelGroupBy[]]).nullable(),
  stages: z.object(Object.fromEntries(STAGES.map((st) => [st, z.number().int()]))).describe('leads in each stage now'),
  total: cohortDoc.describe('the leads that became MQL in [since, until)'),
  groups: z
    .array(cohortDoc.extend({ key: z.string() }))
    .describe('only with `by`: every value seen in the cohort, `(none)` for leads without one'),
});
const timelineEntryDoc = z.discriminatedUnion('kind', [
  z.object({
    at: z.string(),
    kind: z.literal('event'),
    eventId: z.string(),
    type: z.string(),
    occurredAt: z.string(),
    attributes: z
      .record(z.string(), z.unknown())
      .describe('campaign, channel, asset…, and `points`: what the event scored'),
  }),
  z.object({ at: z.string(), kind: z.literal('profile'), patch: z.record(z.string(), z.unknown()) }),
  z.object({ at: z.string(), kind: z.literal('transition'), from: stage, to: stage, reason: z.string() }),
  z.object({
    at: z.string(),
    kind: z.literal('mail'),
    messageId: z.string(),
    mailKind: z.string(),
    track: z.string().optional(),
    step: z.number().int().optional(),
    status: z.string(),
  }),
  z.object({
    at: z.string(),
    kind: z.literal('outcome'),
    outcome: z.string(),
    reason: z.string().optional(),
    note: z.string().optional(),
    rep: z.string().optional(),
    source: z.string(),
  }),
]);

// ---- operations -------------------------------------------------------------------------------

/** What every /v1 route may answer besides its own answers. */
const V1_ERRORS = {
  400: errorAnswer('invalid input; issues name the fields'),
  401: errorAnswer('missing or invalid bearer token'),
  403: errorAnswer("the token's scope does not cover this route (insufficient_scope)"),
  415: errorAnswer('not JSON'),
  429: errorAnswer('rate limited (Retry-After)'),
  503: errorAnswer('Temporal, the lead or the lead ledger cannot answer now (Retry-After)'),
};

/** A zod object's fields as parameters; a field's description becomes the parameter's. */
function parameters(schema: z.ZodObject | undefined, where: 'path' | 'query'): object[] {
  if (!schema) return [];
  const object = jsonSchema(schema) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, { description, ...s }]) => ({
    name,
    in: where,
    required: where === 'path' || (object.required ?? []).includes(name),
    ...(description ? { description } : {}),
    schema: s,
  }));
}

function operation(r: RouteDoc): object {
  const params = [...parameters(r.params, 'path'), ...parameters(r.query, 'query')];
  const responses = { ...r.responses, ...(r.scope ? V1_ERRORS : {}) };
  return {
    summary: r.summary,
    // A bearer token, of the route's scope (or admin); the open routes take none.
    security: r.scope ? [{ bearer: [r.scope] }] : [],
    ...(params.length ? { parameters: params } : {}),
    ...(r.body
      ? {
          requestBody: {
            required: true,
            content: { [r.body.contentType ?? 'application/json']: { schema: docSchema(r.body.schema) } },
          },
        }
      : {}),
    responses: Object.fromEntries(
      Object.entries(responses).map(([status, { description, schema }]) => [
        status,
        { description, ...(schema ? { content: { 'application/json': { schema: docSchema(schema) } } } : {}) },
      ]),
    ),
  };
}

/** The document for the routes `routes` (every route the app registers but the codec server's) under `config`. */
export function openApiDocument(config: Config, routes: readonly RouteDoc[]): object {
  const event = jsonSchema(leadEventSchema) as { properties: Record<string, Record<string, unknown>> };
  event.properties.type = { ...event.properties.type, enum: knownEventTypes(config) };
  const paths: Record<string, Record<string, object>> = {};
  for (const r of routes) (paths[r.url.replace(/:([A-Za-z]+)/g, '{$1}')] ??= {})[r.method.toLowerCase()] = operation(r);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Lead nurture engine',
      version: '1',
      description: 'Leads, engagement events and sales outcomes; every lead is a Temporal workflow.',
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A token of API_TOKEN (`scope:token`, or bare for admin); each operation lists the scope it ' +
            'needs (ingest, sales, read or admin), and an admin token may call every one.',
        },
      },
      schemas: {
        LeadInput: jsonSchema(leadInputSchema),
        LeadEvent: event,
        Profile: jsonSchema(profileSchema),
        SalesOutcome: jsonSchema(salesOutcomeSchema),
        LeadState: jsonSchema(leadStateSchema),
        LeadSummary: jsonSchema(leadSummaryDoc),
        Funnel: jsonSchema(funnelDoc),
        TimelineEntry: jsonSchema(timelineEntryDoc),
        Error: jsonSchema(errorDoc),
      },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
