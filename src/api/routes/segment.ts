/**
 * Segment-compatible ingest (CONTRACT.md §Integrations, issue 13 part 1): `POST /v1/segment/{identify,
 * track,group,batch}` and the same under `/v1/segment/v1/` (the paths of Segment's HTTP Tracking API,
 * so `@segment/analytics-node` with `host` set to the engine and RudderStack's Segment-compatible
 * destinations post here as they are).
 *
 * Who may call: HTTP Basic with a write key as user name and an empty password, as Segment's
 * libraries send it. Write keys are secrets, so they come from the environment: the variable the
 * config names in `segment.writeKeysEnv` (default `SEGMENT_WRITE_KEYS`, comma-separated; read on each
 * request, so a key added to the env of a restarted process needs no config change). An API token
 * of scope `ingest` (or `admin`) is accepted too, as the Basic user name or as `Bearer`. Compared in
 * constant time against every key; anything else is a 401 with `WWW-Authenticate: Basic`.
 * The API's rate limits count per key: requests (ApiOptions.rateLimit, apart from /v1's count) and
 * messages (the write budget: each message of a batch spends one).
 *
 * Mapping of a Segment message:
 * - leadId: `userId`, else `anonymousId` (an anonymous visitor is a lead under that id, without an
 *   address, so never mailed). An identify that carries both merges the anonymous lead into the
 *   user's: every event the ledger (and this request) recorded for the anonymous id is sent to the
 *   user's lead with its own eventId and occurredAt (so a repeated identify counts each once). The
 *   anonymous lead stays as it was (erasure is another route); later calls with only the anonymous
 *   id still go to it.
 * - eventId: `messageId`; without one, a hash of the message's ids, event, timestamp and
 *   properties, so a redelivery is still recognised.
 * - occurredAt (track): `timestamp`, else `originalTimestamp` corrected by the clock skew `sentAt`
 *   shows (the message's or the batch's), else the time it arrives; more than an hour in the future
 *   is a problem naming the field. identify and group apply when they arrive: their times are unused.
 * - profile: identify's `traits` (over `context.traits`, where RudderStack puts them), track's
 *   `context.traits`, group's traits (name → company, employees → companySize, industry), through
 *   DEFAULT_TRAITS and the config's `segment.traits`. An unknown trait is kept when its name is a
 *   profile field name and its value a scalar, else dropped; `address.country` only when it is an
 *   ISO-3166 alpha-2 code (a country name is dropped, not refused).
 * - campaign / channel: `context.campaign.name` / `.medium` (else `.source`), first touch.
 * - type: `event` through `segment.events`; an unmapped name is ignored and counted (`ignored`).
 *
 * identify with an email creates or updates the lead (LeadService.upsertLead); without one it
 * updates a lead the engine has, and for an unknown one it is skipped and counted (`skipped`):
 * LeadInput needs an address to create a lead. page, screen and alias calls are ignored and counted.
 *
 * Answers: Segment's senders retry every 5xx (analytics-node for a while, RudderStack for hours),
 * so what is wrong with a message is never a 5xx. A single call that is malformed is a 400 naming
 * the field; a batch is validated in full first, then its good messages are applied in order, and
 * the 200 lists the bad ones in `problems` (`batch.<i>.<field>`). A body that is not JSON, not an
 * object, a `batch` that is not an array is a 400; more than MAX_EVENTS_PER_REQUEST messages a 413.
 * Only Temporal or the ledger away is a 503, and a retry is safe: events count once by eventId and
 * profile changes are values.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../domain/config.js';
import {
  type LeadEvent,
  leadEventSchema,
  leadIdSchema,
  leadInputSchema,
  type Profile,
  profileSchema,
} from '../../domain/lead.js';
import { CONTROL_CHARS } from '../../domain/limits.js';
import { LeadError, MAX_EVENTS_PER_REQUEST, validate } from '../../lead-service.js';
import type { TimelineEntry } from '../../ledger/ledger.js';
import { allows, type ApiToken, type Rate, registerRateLimit, spendWrites } from '../auth.js';
import { type ApiContext, errorAnswer, errorBody, type Issue, type RouteDoc } from '../http.js';

/** Segment's spec'd traits (segment.com/docs/connections/spec/identify/#traits) → profile fields. */
export const DEFAULT_TRAITS: Readonly<Record<string, string>> = {
  email: 'email',
  firstName: 'firstName',
  first_name: 'firstName',
  lastName: 'lastName',
  last_name: 'lastName',
  title: 'jobTitle',
  jobTitle: 'jobTitle',
  company: 'company',
  'company.name': 'company',
  industry: 'industry',
  employees: 'companySize',
  'company.employee_count': 'companySize',
  'company.industry': 'industry',
  seniority: 'seniority',
  department: 'department',
  'address.country': 'country',
  timezone: 'timezone',
};
/** A group call's traits (segment.com/docs/connections/spec/group/#traits). */
const GROUP_TRAITS: Readonly<Record<string, string>> = {
  name: 'company',
  employees: 'companySize',
  industry: 'industry',
};

const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const FUTURE_TOLERANCE_MS = 60 * 60 * 1000;
const TYPES = ['identify', 'track', 'group'] as const;
type CallType = (typeof TYPES)[number];
const IGNORED_TYPES = new Set(['page', 'screen', 'alias']);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (o: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((v, k) => (isObj(v) ? v[k] : undefined), o);

/** What one message comes to, once validated. */
type Plan =
  | { kind: 'identify'; leadId: string; profile: Profile; campaign?: string; channel?: string; mergeFrom?: string }
  | { kind: 'group'; leadId: string; profile: Profile }
  | { kind: 'track'; event: LeadEvent }
  | { kind: 'ignored'; why: string };

class MessageProblem extends Error {
  constructor(readonly issues: Issue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  }
}
const problem = (path: string, message: string) => new MessageProblem([{ path, message }]);

/** Re-throws a validation error with the sender's field names (`traits.title`, not `jobTitle`). */
function asProblem(err: unknown, rename: (path: string) => string): never {
  if (err instanceof LeadError && err.issues)
    throw new MessageProblem(err.issues.map((i) => ({ ...i, path: rename(i.path) })));
  throw err;
}

/** The profile of a trait object through `map` (trait path → field); `from` names the object in problems. */
function mapTraits(
  traits: unknown,
  map: Readonly<Record<string, string>>,
  from: string,
  keepUnknown: boolean,
): { profile: Profile; origin: Map<string, string> } {
  const profile: Obj = {};
  const origin = new Map<string, string>();
  if (traits === undefined || traits === null) return { profile: {}, origin };
  if (!isObj(traits)) throw problem(from, 'must be an object');
  const consumed = new Set<string>();
  for (const [path, field] of Object.entries(map)) {
    let v = at(traits, path);
    consumed.add(path.split('.')[0]!);
    if (v === undefined || v === null || (isObj(v) && path === 'company')) continue;
    if (field === 'country') {
      if (typeof v !== 'string' || !/^[A-Za-z]{2}$/.test(v.trim())) continue;
      v = v.trim().toUpperCase();
    }
    if (field === 'companySize' && typeof v === 'string' && /^\s*\d+\s*$/.test(v)) v = Number(v);
    if (field === 'email' && typeof v === 'string') v = v.trim();
    if (profile[field] !== undefined && origin.get(field) !== `${from}.${path}`) continue;
    profile[field] = v;
    origin.set(field, `${from}.${path}`);
  }
  if (keepUnknown) {
    for (const [k, v] of Object.entries(traits)) {
      if (consumed.has(k) || profile[k] !== undefined || !FIELD_NAME.test(k) || k.length > 100) continue;
      const scalar =
        (typeof v === 'string' && v.length <= 1000 && !CONTROL_CHARS.test(v)) ||
        (typeof v === 'number' && Number.isFinite(v)) ||
        typeof v === 'boolean';
      if (!scalar) continue;
      profile[k] = v;
      origin.set(k, `${from}.${k}`);
    }
  }
  const renamed = (p: string) => {
    const [first, ...rest] = p.split('.');
    return [origin.get(first!) ?? `${from}.${first}`, ...rest].join('.');
  };
  try {
    return { profile: validate(profileSchema, profile, from), origin };
  } catch (err) {
    asProblem(err, (p) => (p === '(root)' ? from : renamed(p)));
  }
}

/** occurredAt from timestamp, else originalTimestamp (skew-corrected by sentAt, as Segment does). */
function occurredAt(m: Obj, receivedAt: number): string | undefined {
  const parse = (field: string) => {
    const v = m[field];
    if (v === undefined || v === null) return undefined;
    const t = typeof v === 'string' || typeof v === 'number' ? Date.parse(String(v)) : NaN;
    if (Number.isNaN(t)) throw problem(field, 'must be an ISO-8601 date-time');
    return t;
  };
  const timestamp = parse('timestamp');
  const original = parse('originalTimestamp');
  const sentAt = parse('sentAt');
  // Neither: the message happened as it was sent, i.e. now (the workflow's clock).
  const field = timestamp !== undefined ? 'timestamp' : 'originalTimestamp';
  let t = timestamp ?? original;
  if (t === undefined) return undefined;
  if (timestamp === undefined && original !== undefined && sentAt !== undefined) t = receivedAt - (sentAt - original);
  if (t > receivedAt + FUTURE_TOLERANCE_MS) throw problem(field, 'is more than an hour in the future');
  return new Date(t).toISOString();
}

/** The message's lead id: userId, else anonymousId. */
function leadIdOf(m: Obj): { leadId: string; field: string; anonymousId?: string } {
  const id = (field: string) => {
    const v = m[field];
    if (v === undefined || v === null || v === '') return undefined;
    const s = typeof v === 'number' && Number.isFinite(v) ? String(v) : v;
    if (typeof s !== 'string') throw problem(field, 'must be a string');
    try {
      return validate(leadIdSchema, s, field);
    } catch (err) {
      asProblem(err, () => field);
    }
  };
  const userId = id('userId');
  const anonymousId = id('anonymousId');
  if (userId) return { leadId: userId, field: 'userId', ...(anonymousId ? { anonymousId } : {}) };
  if (anonymousId) return { leadId: anonymousId, field: 'anonymousId' };
  throw problem('userId', 'a message needs a userId or an anonymousId');
}

/** campaign and channel from context.campaign (UTM). */
function campaignOf(m: Obj): { campaign?: string; channel?: string } {
  const c = at(m, 'context.campaign');
  if (!isObj(c)) return {};
  const text = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
  const campaign = text(c.name);
  const channel = text(c.medium) ?? text(c.source);
  return { ...(campaign ? { campaign } : {}), ...(channel ? { channel } : {}) };
}

const hashId = (m: Obj) =>
  'segment-' +
  createHash('sha256')
    .update(JSON.stringify([m.userId, m.anonymousId, m.event, m.timestamp ?? m.originalTimestamp, m.properties]))
    .digest('hex')
    .slice(0, 40);

/** Validates one message of type `type` into what to do; throws MessageProblem naming the field. */
export function planMessage(raw: unknown, type: CallType, config: Config, receivedAt: number): Plan {
  if (!isObj(raw)) throw problem('(root)', 'a message must be a JSON object');
  const m = raw;
  const segment = config.segment;
  const traitMap = { ...DEFAULT_TRAITS, ...segment?.traits };
  const { leadId, anonymousId } = leadIdOf(m);
  const { campaign, channel } = campaignOf(m);
  if (type === 'group') {
    const { profile } = mapTraits(m.traits, GROUP_TRAITS, 'traits', false);
    return Object.keys(profile).length
      ? { kind: 'group', leadId, profile }
      : { kind: 'ignored', why: 'no group traits' };
  }
  if (type === 'identify') {
    const context = isObj(at(m, 'context.traits')) ? (at(m, 'context.traits') as Obj) : {};
    if (m.traits !== undefined && m.traits !== null && !isObj(m.traits)) throw problem('traits', 'must be an object');
    const merged = { ...context, ...(m.traits as Obj | undefined) };
    const { profile } = mapTraits(merged, traitMap, 'traits', true);
    if (profile.email) {
      // The input a new lead is created with: checked as POST /v1/leads checks it.
      const input = { leadId, ...profile, ...(campaign ? { campaign } : {}), ...(channel ? { channel } : {}) };
      try {
        validate(leadInputSchema, input, 'identify');
      } catch (err) {
        asProblem(err, (p) => (p === 'campaign' || p === 'channel' ? 'context.campaign' : `traits.${p}`));
      }
    }
    return {
      kind: 'identify',
      leadId,
      profile,
      ...(campaign ? { campaign } : {}),
      ...(channel ? { channel } : {}),
      ...(anonymousId && anonymousId !== leadId ? { mergeFrom: anonymousId } : {}),
    };
  }
  if (typeof m.event !== 'string' || !m.event.trim()) throw problem('event', 'a track call needs an event name');
  const eventType = segment?.events[m.event];
  if (!eventType) return { kind: 'ignored', why: `event "${m.event}" is not in segment.events` };
  const when = occurredAt(m, receivedAt);
  const { profile } = mapTraits(at(m, 'context.traits'), traitMap, 'context.traits', true);
  const { email, ...rest } = profile;
  const props = isObj(m.properties) ? m.properties : {};
  const asset = [props.asset, props.url].find((v) => typeof v === 'string' && v.trim()) as string | undefined;
  const messageId = m.messageId === undefined || m.messageId === null ? hashId(m) : m.messageId;
  const ev = {
    leadId,
    eventId: messageId,
    type: eventType,
    ...(when ? { occurredAt: when } : {}),
    ...(campaign ? { campaign } : {}),
    ...(channel ? { channel } : {}),
    ...(asset ? { asset: asset.trim() } : {}),
    ...(typeof email === 'string' ? { email } : {}),
    ...(Object.keys(rest).length ? { profile: rest } : {}),
  };
  try {
    return { kind: 'track', event: validate(leadEventSchema, ev, 'track') };
  } catch (err) {
    const origin: Record<string, string> = {
      eventId: 'messageId',
      occurredAt: 'timestamp',
      campaign: 'context.campaign.name',
      channel: 'context.campaign',
      asset: 'properties.asset',
      email: 'context.traits.email',
      leadId: 'userId',
    };
    asProblem(err, (p) => {
      const [first, ...more] = p.split('.');
      return first === 'profile' ? ['context.traits', ...more].join('.') : (origin[first!] ?? p);
    });
  }
}

// ---- auth ----------------------------------------------------------------------------------------

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** Write keys from `env[name]` (comma-separated), hashed once per value of the variable. */
function writeKeyReader(env: NodeJS.ProcessEnv) {
  let cached: { raw: string; digests: Buffer[] } | undefined;
  return (name: string): Buffer[] => {
    const raw = env[name] ?? '';
    if (cached?.raw !== raw)
      cached = {
        raw,
        digests: raw
          .split(',')
          .map((k) => k.trim())
          .filter(Boolean)
          .map(sha256),
      };
    return cached.digests;
  };
}

/** The credential of a Basic (user name, empty password) or Bearer header. */
function credentialOf(header: string | undefined): { basic: boolean; secret: string } | undefined {
  const basic = /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    return user ? { basic: true, secret: user } : undefined;
  }
  const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  return bearer ? { basic: false, secret: bearer[1]! } : undefined;
}

// ---- the routes ----------------------------------------------------------------------------------

const messageDoc = {
  type: 'object',
  description:
    'A Segment message (segment.com/docs/connections/spec): userId or anonymousId, messageId, timestamp, traits, context.traits, context.campaign, event, properties',
  properties: {
    userId: { type: 'string' },
    anonymousId: { type: 'string' },
    messageId: { type: 'string' },
    timestamp: { type: 'string', format: 'date-time' },
    event: { type: 'string' },
    traits: { type: 'object' },
    properties: { type: 'object' },
    context: { type: 'object' },
  },
};
const answerDoc = {
  type: 'object',
  properties: {
    success: { type: 'boolean' },
    received: { type: 'integer' },
    applied: { type: 'integer' },
    ignored: { type: 'integer', description: 'unmapped event names; page, screen and alias calls' },
    skipped: {
      type: 'integer',
      description: 'identify or group calls for a lead the engine does not know, without an email',
    },
    problems: {
      type: 'array',
      items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } },
    },
  },
};

const segmentRoute = (url: string, what: string, batch: boolean): RouteDoc => ({
  method: 'POST',
  url,
  scope: 'ingest',
  summary:
    `Segment ${what} (HTTP Tracking API). Auth: HTTP Basic with a write key (SEGMENT_WRITE_KEYS, or the env ` +
    'variable segment.writeKeysEnv names) as user name and an empty password, or an ingest token',
  body: {
    schema: batch
      ? {
          type: 'object',
          required: ['batch'],
          properties: { batch: { type: 'array', items: messageDoc, maxItems: MAX_EVENTS_PER_REQUEST } },
        }
      : messageDoc,
  },
  responses: {
    200: {
      description: batch ? 'applied; bad messages listed in problems, the rest applied' : 'applied or ignored',
      schema: answerDoc,
    },
    413: errorAnswer(batch ? `more than ${MAX_EVENTS_PER_REQUEST} messages, or too large` : 'too large'),
  },
});

export const SEGMENT_ROUTES: readonly RouteDoc[] = ['/v1/segment', '/v1/segment/v1'].flatMap((base) => [
  segmentRoute(`${base}/identify`, 'identify: creates or updates the lead', false),
  segmentRoute(`${base}/track`, 'track: an event, its name mapped by segment.events', false),
  segmentRoute(`${base}/group`, "group: the company traits onto the lead's profile", false),
  segmentRoute(`${base}/batch`, 'batch of identify, track and group calls', true),
]);

export interface SegmentRouteOptions {
  c: ApiContext;
  /** The API's bearer token check: an ingest (or admin) token is accepted as a write key too. */
  tokens: (header: string | undefined) => ApiToken | undefined;
  /** Requests per key and window (src/api/auth.ts), counted apart from /v1's; undefined: none. */
  rateLimit?: Rate;
  /** Where write keys are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

interface Outcome {
  received: number;
  applied: number;
  ignored: number;
  skipped: number;
  problems: Issue[];
}

export async function segmentRoutes(app: FastifyInstance, o: SegmentRouteOptions): Promise<void> {
  const { c } = o;
  const keys = writeKeyReader(o.env ?? process.env);

  const authorize = (req: FastifyRequest, reply: FastifyReply) => {
    const cred = credentialOf(req.headers.authorization);
    const given = cred && sha256(cred.secret);
    let found: ApiToken | undefined;
    if (given) {
      for (const d of keys(c.service.config.segment?.writeKeysEnv ?? 'SEGMENT_WRITE_KEYS'))
        if (timingSafeEqual(d, given) && !found)
          found = { scope: 'ingest', id: `segment:${d.subarray(0, 4).toString('hex')}`, digest: d };
      const token = o.tokens(`Bearer ${cred.secret}`);
      if (!found && token && allows(token.scope, 'ingest')) found = token;
    }
    if (!found) {
      void reply
        .status(401)
        .header('www-authenticate', 'Basic realm="lead-nurture segment", charset="UTF-8"')
        .send(errorBody('unauthorized', 'missing or invalid write key (HTTP Basic: the write key as user name)'));
      return false;
    }
    req.apiToken = found;
    return true;
  };

  /** Validates every message, then applies the good ones in order. */
  async function run(
    req: FastifyRequest,
    reply: FastifyReply,
    items: { raw: unknown; type: unknown; prefix: string }[],
    single = false,
  ) {
    const config = c.service.config;
    const receivedAt = Date.now();
    const out: Outcome = { received: items.length, applied: 0, ignored: 0, skipped: 0, problems: [] };
    const plans: { plan: Exclude<Plan, { kind: 'ignored' }>; at: (path: string) => string }[] = [];
    for (const { raw, type, prefix } of items) {
      const p = (path: string) => (path === '(root)' ? prefix || '(root)' : prefix ? `${prefix}.${path}` : path);
      if (typeof type === 'string' && IGNORED_TYPES.has(type)) {
        out.ignored++;
        continue;
      }
      if (!(TYPES as readonly string[]).includes(type as string)) {
        out.problems.push({ path: p('type'), message: `must be one of identify, track, group, page, screen, alias` });
        continue;
      }
      try {
        const plan = planMessage(raw, type as CallType, config, receivedAt);
        if (plan.kind === 'ignored') {
          out.ignored++;
          req.log.info({ why: plan.why }, 'segment message ignored');
        } else plans.push({ plan, at: p });
      } catch (err) {
        if (!(err instanceof MessageProblem)) throw err;
        out.problems.push(...err.issues.map((i) => ({ ...i, path: p(i.path) })));
      }
    }
    spendWrites(c.writes, req, Math.max(1, plans.length), reply);
    const sent = new Map<string, LeadEvent[]>();
    await c.temporal(async () => {
      for (const { plan, at: path } of plans) {
        try {
          if (plan.kind === 'track') {
            await c.service.sendEvent(plan.event);
            sent.set(plan.event.leadId, [...(sent.get(plan.event.leadId) ?? []), plan.event]);
            out.applied++;
            continue;
          }
          const done = await applyProfile(plan);
          if (done) out.applied++;
          else out.skipped++;
          if (plan.kind === 'identify' && plan.mergeFrom) await merge(plan.mergeFrom, plan.leadId, sent);
        } catch (err) {
          // What the service refuses of one message (e.g. a merged profile past its bound) is that message's
          // problem; Temporal or the ledger away stops the request (a 503: a retry is safe).
          if (!(err instanceof LeadError) || err.status >= 500 || err.status === 429) throw err;
          const issues = err.issues?.length ? err.issues : [{ path: '(root)', message: err.message }];
          out.problems.push(...issues.map((i) => ({ path: path(i.path), message: i.message })));
        }
      }
    }, plans.length * 200);
    // A single call the service refused at sending: nothing was applied, and the sender hears why.
    if (single && out.problems.length)
      throw new LeadError(
        400,
        'invalid_input',
        `invalid call: ${out.problems.map((i) => i.message).join('; ')}`,
        out.problems,
      );
    return reply.status(200).send({ success: true, ...out });
  }

  /** identify or group: upsert with an email, else a profile change of a known lead; false when skipped. */
  async function applyProfile(plan: Extract<Plan, { kind: 'identify' | 'group' }>): Promise<boolean> {
    if (plan.kind === 'identify' && plan.profile.email) {
      const { campaign, channel } = plan;
      await c.service.upsertLead({
        leadId: plan.leadId,
        ...plan.profile,
        ...(campaign ? { campaign } : {}),
        ...(channel ? { channel } : {}),
      });
      return true;
    }
    if (!Object.keys(plan.profile).length) return false;
    try {
      await c.service.patchProfile(plan.leadId, plan.profile);
      return true;
    } catch (err) {
      if (err instanceof LeadError && err.status === 404) return false;
      throw err;
    }
  }

  /** The anonymous lead's events (the ledger's and this request's) sent to the user's lead, eventIds kept. */
  async function merge(from: string, to: string, sent: Map<string, LeadEvent[]>) {
    const events = new Map<string, LeadEvent>();
    for (const e of await ledgerEvents(from)) {
      const a = e.attributes;
      const text = (k: string) => (typeof a[k] === 'string' ? { [k]: a[k] as string } : {});
      events.set(e.eventId, {
        leadId: to,
        eventId: e.eventId,
        type: e.type,
        occurredAt: e.occurredAt,
        ...text('campaign'),
        ...text('channel'),
        ...text('asset'),
      });
    }
    for (const ev of sent.get(from) ?? []) {
      const { email: _e, profile: _p, ...rest } = ev;
      events.set(ev.eventId, { ...rest, leadId: to });
    }
    // Every identify of a signed-in visitor carries both ids: what the user's lead already has is not sent again.
    if (events.size) for (const e of await ledgerEvents(to)) events.delete(e.eventId);
    for (const ev of events.values()) await c.service.sendEvent(ev);
  }

  /** The events the ledger holds for a lead (none for a lead it does not know, or without a ledger). */
  async function ledgerEvents(leadId: string) {
    const out: Extract<TimelineEntry, { kind: 'event' }>[] = [];
    if (!c.service.ledger) return out;
    let pageToken: string | undefined;
    do {
      const page = await c.service
        .timeline(leadId, { limit: 1000, ...(pageToken ? { pageToken } : {}) })
        .catch((err: unknown) => {
          if (err instanceof LeadError && err.status === 404) return { entries: [], nextPageToken: undefined };
          throw err;
        });
      for (const e of page.entries) if (e.kind === 'event') out.push(e);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  const bodyObject = (body: unknown): Obj => {
    if (!isObj(body))
      throw new LeadError(400, 'invalid_input', 'the body must be a JSON object', [
        { path: '(root)', message: 'must be a JSON object' },
      ]);
    return body;
  };

  // The key first, so that the rate limit counts per key.
  app.addHook('onRequest', async (req, reply) => {
    if (!authorize(req, reply)) return reply;
  });
  await registerRateLimit(app, o.rateLimit);

  for (const r of SEGMENT_ROUTES) {
    const type = r.url.slice(r.url.lastIndexOf('/') + 1);
    app.route({
      method: 'POST',
      url: r.url,
      handler: async (req, reply) => {
        const body = bodyObject(req.body);
        if (type !== 'batch') {
          const items = [{ raw: body, type, prefix: '' }];
          const config = c.service.config;
          // A single call: a malformed message is a 400 naming the field (nothing applied).
          try {
            planMessage(body, type as CallType, config, Date.now());
          } catch (err) {
            if (!(err instanceof MessageProblem)) throw err;
            throw new LeadError(400, 'invalid_input', `invalid ${type} call: ${err.message}`, err.issues);
          }
          return run(req, reply, items, true);
        }
        const batch = body.batch;
        if (!Array.isArray(batch))
          throw new LeadError(400, 'invalid_input', 'batch must be an array of messages', [
            { path: 'batch', message: 'must be an array of messages' },
          ]);
        if (batch.length > MAX_EVENTS_PER_REQUEST)
          throw new LeadError(
            413,
            'too_many_events',
            `at most ${MAX_EVENTS_PER_REQUEST} messages per batch, got ${batch.length}`,
            [{ path: 'batch', message: `at most ${MAX_EVENTS_PER_REQUEST} messages` }],
          );
        // Segment's batch may carry context and integrations for every message.
        // analytics-node and RudderStack put sentAt on the batch, not on each message.
        const shared = isObj(body.context) ? body.context : undefined;
        const withShared = (m: Obj) => ({
          ...m,
          ...(m.sentAt === undefined && body.sentAt !== undefined ? { sentAt: body.sentAt } : {}),
          ...(shared ? { context: { ...shared, ...(isObj(m.context) ? m.context : {}) } } : {}),
        });
        const items = batch.map((m, i) => ({
          raw: isObj(m) ? withShared(m) : m,
          type: isObj(m) ? m.type : undefined,
          prefix: `batch.${i}`,
        }));
        return run(req, reply, items);
      },
    });
  }
}
