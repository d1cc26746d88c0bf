/**
 * /openapi.json against the app that serves it (the API test stack: a Temporal dev server, a worker,
 * SMTP): every route Fastify has registered is documented and every documented operation is
 * registered, since one route table does both; and the LeadState schema, the one of
 * src/domain/lead.ts, describes the state a real lead answers with.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { leadStateSchema } from '../../src/domain/lead.js';
import { useStack } from '../helpers/stack.js';
import { uid, waitState } from './fixture.js';

/** Registered routes the document leaves out on purpose, and why. */
const NOT_DOCUMENTED: { method: string; url: RegExp; why: string }[] = [
  { method: 'HEAD', url: /./, why: 'Fastify adds one to every GET route (exposeHeadRoutes): the GET without its body' },
  {
    method: 'POST',
    url: /^\/codec\/(encode|decode)$/,
    why: "Temporal's codec server protocol (src/api/codec.ts), specified by Temporal; only with ApiOptions.codec",
  },
  { method: 'OPTIONS', url: /^\/codec\/(encode|decode)$/, why: 'the CORS preflight of the codec server routes' },
  { method: 'GET', url: /^\/console(\/|$)/, why: "the console's HTML pages and assets (src/api/console/), not an API" },
  { method: 'POST', url: /^\/console\//, why: "the console's forms, behind its session cookie, not an API" },
];

/** Every method and URL of `app.printRoutes()`: a tree whose lines add a path fragment to their parent's. */
function registeredRoutes(tree: string): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const fragments: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([^)]+)\))?$/.exec(line);
    if (!m) continue;
    fragments.length = m[1]!.length / 4;
    fragments.push(m[2]!);
    for (const method of m[3]?.split(', ') ?? []) routes.push({ method, url: fragments.join('') });
  }
  return routes;
}

/** Fastify's `/v1/leads/:leadId` as OpenAPI writes it. */
const docPath = (url: string) => url.replace(/:([A-Za-z]+)/g, '{$1}');

type JsonSchema = { type?: string; properties?: Record<string, JsonSchema>; required?: string[]; items?: JsonSchema };

/** Every key of `value` is a property of `schema` and every required property is in `value`, at every depth. */
function assertDescribes(schema: JsonSchema, value: unknown, path: string) {
  if (Array.isArray(value)) {
    assert.equal(schema.type, 'array', `${path} is an array`);
    value.forEach((v, i) => assertDescribes(schema.items!, v, `${path}[${i}]`));
    return;
  }
  if (value === null || typeof value !== 'object' || !schema.properties) return;
  for (const key of Object.keys(value)) assert.ok(key in schema.properties, `${path}.${key} is in the schema`);
  for (const key of schema.required ?? []) assert.ok(key in value, `${path}.${key} (required) is in the state`);
  // The profile's own fields are the caller's (additionalProperties): only the schema's named ones are checked.
  for (const [key, v] of Object.entries(value)) {
    if (key !== 'profile') assertDescribes(schema.properties[key]!, v, `${path}.${key}`);
  }
}

let doc: { paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, JsonSchema> } };

const s = useStack({ api: true }, async (stack) => {
  const r = await stack.call('GET', '/openapi.json', { token: null });
  assert.equal(r.status, 200, r.body);
  doc = r.json;
});

describe('the OpenAPI document', () => {
  it('documents every route the app registers, and registers every route it documents', () => {
    const routes = registeredRoutes(s.app.printRoutes({ commonPrefix: false }));
    // The tree was read: the open, /v1 and link routes are all there.
    const seen = ['GET /healthz', 'POST /v1/leads/:leadId/sales-outcome', 'POST /l/sales'];
    const listed = new Set(routes.map((r) => `${r.method} ${r.url}`));
    for (const route of seen) assert.ok(listed.has(route), `${route} in\n${s.app.printRoutes()}`);
    const excluded = (r: { method: string; url: string }) =>
      NOT_DOCUMENTED.find((x) => x.method === r.method && x.url.test(r.url));
    const undocumented = routes.filter((r) => !excluded(r) && !doc.paths[docPath(r.url)]?.[r.method.toLowerCase()]);
    assert.deepEqual(undocumented, [], 'registered but not in /openapi.json');
    for (const x of NOT_DOCUMENTED) {
      assert.ok(
        routes.some((r) => excluded(r) === x),
        `the exclusion ${x.method} ${x.url} (${x.why}) matches a route`,
      );
    }

    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const registered = new Set(routes.map((r) => `${r.method} ${docPath(r.url)}`));
    assert.deepEqual(
      documented.filter((op) => !registered.has(op)),
      [],
      'in /openapi.json but not registered',
    );
  });

  it('has the LeadState of src/domain/lead.ts, and it describes the state of a real lead', async () => {
    const { $schema: _s, ...fromDomain } = z.toJSONSchema(leadStateSchema, { io: 'input', unrepresentable: 'any' });
    assert.deepEqual(doc.components.schemas.LeadState, fromDomain, 'generated from leadStateSchema, not by hand');

    // A lead with an owner, an SLA, transitions and scored events: a VP at an 800-person US company
    // (fit 35) asks for a demo (a hand-raiser), so it goes lead -> mql -> sql.
    const leadId = uid('openapi');
    const lead = {
      leadId,
      email: `${leadId}@example.com`,
      firstName: 'Dana',
      seniority: 'vp',
      companySize: 800,
      country: 'US',
      campaign: 'spring-webinar',
    };
    assert.equal((await s.call('POST', '/v1/leads', { body: lead })).status, 201);
    const demo = { leadId, eventId: uid('demo'), type: 'demo_request' };
    assert.equal((await s.call('POST', '/v1/events', { body: demo })).status, 202);
    await waitState(s, leadId, (st) => st.stage === 'sql' && st.owner !== undefined, 'handed to sales');
    const r = await s.call('GET', `/v1/leads/${leadId}`);
    assert.equal(r.status, 200, r.body);
    const state = r.json as Record<string, unknown>;
    for (const key of ['owner', 'campaign', 'becameMqlAt', 'becameSqlAt', 'slaDeadline', 'lastEngagedAt']) {
      assert.ok(key in state, `the state has ${key}`);
    }
    assert.ok((state.transitions as unknown[]).length >= 2 && (state.scoreLog as unknown[]).length >= 1, r.body);

    assertDescribes(doc.components.schemas.LeadState!, state, 'LeadState');
    const parsed = z.safeParse(leadStateSchema, state);
    assert.ok(parsed.success, `the state parses with leadStateSchema: ${parsed.error?.message}`);
  });
});
