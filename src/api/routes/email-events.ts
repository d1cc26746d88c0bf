/**
 * Email provider events in (CONTRACT.md §Integrations, issue 13 part 3).
 *
 * - `POST /v1/email-events`: the generic shape, one event or an array of at most MAX_EMAIL_EVENTS:
 *   `{ type: delivered|bounce|complaint, bounceType?: hard|soft, email?, messageId?, occurredAt?, id? }`
 *   (`bounceType` defaults to hard for a bounce; `id` is the provider's event id, for idempotency).
 * - `POST /v1/email-events/postmark`: Postmark's native bounce, spam-complaint and delivery webhooks
 *   (`RecordType` Bounce with `Type` HardBounce, SpamComplaint, Delivery; other bounce types count as
 *   soft: Postmark's own "Inactive" suppression follows only a hard bounce or a complaint). Open, Click
 *   and SubscriptionChange records are answered 200 and ignored. Postmark's MessageID is Postmark's own
 *   id, not the engine's Message-ID header, so a Postmark event mostly finds its lead by Email.
 *
 * Auth: an API token of scope ingest (or admin), as `Bearer` or as the HTTP Basic password (or user
 * name): Postmark sends the credentials written in its webhook URL, `https://user:<token>@host/...`.
 * No token is a 401, a token of another scope a 403.
 *
 * The whole request is validated first (a 400 naming the field: type, bounceType, email/messageId,
 * occurredAt), then applied. The lead is found by Message-ID (the ledger's `mails` table, with or
 * without angle brackets) or by address (the leads' profile email, case-insensitive; every lead
 * with it). A hard bounce or a complaint suppresses the address (reason hard_bounce or complaint) and
 * sends each lead a built-in `hard_bounce` event (a complaint too: it sets consent bounced and stops
 * nurture mail, which is what a complaint must do), with an eventId derived from the provider's event
 * id or a hash of the event, so a redelivery counts once. A soft bounce and a delivery change nothing:
 * logged and counted in `received`. The answer is 200 `{ received, applied, unknown }`: an address or
 * Message-ID the engine never mailed is `unknown`, not an error (providers retry every non-2xx).
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HARD_BOUNCE } from '../../domain/event-types.js';
import { CONTROL_CHARS } from '../../domain/limits.js';
import type { LeadLedger } from '../../ledger/ledger.js';
import { normalizeAddress } from '../../ledger/ledger.js';
import { LeadError } from '../../lead-service.js';
import { allows, type ApiToken, type Rate, registerRateLimit } from '../auth.js';
import { type ApiContext, errorAnswer, errorBody, type Issue, type RouteDoc } from '../http.js';

export const MAX_EMAIL_EVENTS = 500;
const TYPES = ['delivered', 'bounce', 'complaint'] as const;
const BOUNCE_TYPES = ['hard', 'soft'] as const;
const EMAIL_RE = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

/** One provider event, validated. */
export interface EmailEvent {
  type: (typeof TYPES)[number];
  bounceType?: (typeof BOUNCE_TYPES)[number];
  email?: string;
  messageId?: string;
  occurredAt?: string;
  /** The provider's id of the event (or a hash of it): the eventId of the lead events it causes. */
  key: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const hash = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 32);

const bad = (issues: Issue[]) =>
  new LeadError(
    400,
    'invalid_input',
    `invalid email event: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    issues,
  );

function optText(o: Obj, field: string, path: string, issues: Issue[], max: number): string | undefined {
  const v = o[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > max || CONTROL_CHARS.test(v)) {
    issues.push({ path, message: `must be a string of at most ${max} characters` });
    return undefined;
  }
  return v.trim();
}

function optDate(v: unknown, path: string, issues: Issue[]): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const t = typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) {
    issues.push({ path, message: 'must be an ISO-8601 date-time, e.g. 2025-01-31T12:00:00Z' });
    return undefined;
  }
  return new Date(t).toISOString();
}

function addressAndId(
  o: Obj,
  fields: { email: string; messageId: string },
  at: (f: string) => string,
  issues: Issue[],
) {
  const email = optText(o, fields.email, at(fields.email), issues, 320);
  if (email !== undefined && !EMAIL_RE.test(email))
    issues.push({ path: at(fields.email), message: 'must be an email address' });
  const messageId = optText(o, fields.messageId, at(fields.messageId), issues, 998);
  if (
    email === undefined &&
    messageId === undefined &&
    !issues.some((i) => i.path === at(fields.email) || i.path === at(fields.messageId))
  )
    issues.push({ path: at(fields.email), message: `${fields.email} or ${fields.messageId} is required` });
  return { email, messageId };
}

/** The generic shape; `prefix` names an item of an array (`3.type`). */
export function parseGeneric(raw: unknown, prefix: string, issues: Issue[]): EmailEvent | undefined {
  const at = (f: string) => (prefix ? `${prefix}.${f}` : f);
  if (!isObj(raw)) {
    issues.push({ path: prefix || '(root)', message: 'must be a JSON object' });
    return undefined;
  }
  const before = issues.length;
  const type = raw.type;
  if (!(TYPES as readonly unknown[]).includes(type))
    issues.push({ path: at('type'), message: `must be one of ${TYPES.join(', ')}` });
  let bounceType = raw.bounceType;
  if (bounceType !== undefined && !(BOUNCE_TYPES as readonly unknown[]).includes(bounceType))
    issues.push({ path: at('bounceType'), message: `must be one of ${BOUNCE_TYPES.join(', ')}` });
  else if (bounceType !== undefined && type !== 'bounce')
    issues.push({ path: at('bounceType'), message: 'only for type bounce' });
  if (type === 'bounce') bounceType ??= 'hard';
  const { email, messageId } = addressAndId(raw, { email: 'email', messageId: 'messageId' }, at, issues);
  const occurredAt = optDate(raw.occurredAt, at('occurredAt'), issues);
  const id = optText(raw, 'id', at('id'), issues, 200);
  if (issues.length > before) return undefined;
  return {
    type: type as EmailEvent['type'],
    ...(bounceType ? { bounceType: bounceType as 'hard' | 'soft' } : {}),
    ...(email ? { email } : {}),
    ...(messageId ? { messageId } : {}),
    ...(occurredAt ? { occurredAt } : {}),
    key: id ? `id:${id}` : `h:${hash({ type, bounceType, email, messageId, occurredAt })}`,
  };
}

/** Postmark's other webhook record types: answered 200 and ignored, so a webhook ticked for them is not retried. */
export const POSTMARK_IGNORED = ['Open', 'Click', 'SubscriptionChange'] as const;

/**
 * Postmark's webhook bodies (postmarkapp.com/developer/webhooks): Bounce, SpamComplaint, Delivery;
 * 'ignored' for the record types of POSTMARK_IGNORED. Postmark's `MessageID` is its own id (a UUID),
 * not the Message-ID header the engine wrote, so the lead is mostly found by `Email`.
 */
export function parsePostmark(raw: unknown, issues: Issue[]): EmailEvent | 'ignored' | undefined {
  if (!isObj(raw)) {
    issues.push({ path: '(root)', message: 'must be a JSON object' });
    return undefined;
  }
  if ((POSTMARK_IGNORED as readonly unknown[]).includes(raw.RecordType)) return 'ignored';
  const before = issues.length;
  const record = raw.RecordType;
  let type: EmailEvent['type'] | undefined;
  let bounceType: EmailEvent['bounceType'];
  if (record === 'Bounce') {
    type = 'bounce';
    if (typeof raw.Type !== 'string') issues.push({ path: 'Type', message: 'must be a Postmark bounce type' });
    bounceType = raw.Type === 'HardBounce' ? 'hard' : 'soft';
  } else if (record === 'SpamComplaint') type = 'complaint';
  else if (record === 'Delivery') type = 'delivered';
  else issues.push({ path: 'RecordType', message: 'must be Bounce, SpamComplaint or Delivery' });
  const fields = { email: record === 'Delivery' ? 'Recipient' : 'Email', messageId: 'MessageID' };
  const { email, messageId } = addressAndId(raw, fields, (f) => f, issues);
  const dateField = record === 'Bounce' ? 'BouncedAt' : record === 'Delivery' ? 'DeliveredAt' : 'BouncedAt';
  const occurredAt = optDate(raw[dateField], dateField, issues);
  if (issues.length > before || !type) return undefined;
  const id = typeof raw.ID === 'number' || typeof raw.ID === 'string' ? String(raw.ID) : undefined;
  return {
    type,
    ...(bounceType ? { bounceType } : {}),
    ...(email ? { email } : {}),
    ...(messageId ? { messageId } : {}),
    ...(occurredAt ? { occurredAt } : {}),
    key: id ? `postmark:${record}:${id}` : `h:${hash(raw)}`,
  };
}

/** The leads an event is about: by Message-ID in the mails table, else by the profile email. */
async function leadsFor(ledger: LeadLedger, ev: EmailEvent): Promise<{ leadId: string; email?: string }[]> {
  if (ev.messageId) {
    const bare = ev.messageId.replace(/^<|>$/g, '');
    const r = await ledger.pool.query('SELECT lead_id, recipient FROM mails WHERE message_id = ANY($1) LIMIT 1', [
      [`<${bare}>`, bare],
    ]);
    if (r.rows[0]) return [{ leadId: r.rows[0].lead_id as string, email: (r.rows[0].recipient as string) ?? ev.email }];
  }
  if (!ev.email) return [];
  const address = normalizeAddress(ev.email);
  const r = await ledger.pool.query(
    "SELECT lead_id FROM leads WHERE lower(trim(state->'profile'->>'email')) = $1 ORDER BY lead_id LIMIT 100",
    [address],
  );
  return r.rows.map((x) => ({ leadId: x.lead_id as string, email: address }));
}

const genericDoc = {
  type: 'object',
  required: ['type'],
  properties: {
    type: { type: 'string', enum: [...TYPES] },
    bounceType: { type: 'string', enum: [...BOUNCE_TYPES], description: 'for type bounce; default hard' },
    email: { type: 'string', description: 'the recipient; email or messageId is required' },
    messageId: { type: 'string', description: 'the Message-ID the engine sent, with or without <>' },
    occurredAt: { type: 'string', format: 'date-time' },
    id: { type: 'string', description: "the provider's event id: a redelivery counts once" },
  },
};
const answerDoc = {
  type: 'object',
  properties: {
    received: { type: 'integer' },
    applied: { type: 'integer', description: 'hard bounces and complaints applied to a known lead or address' },
    unknown: { type: 'integer', description: 'events for an address or Message-ID the engine never mailed' },
  },
};
const AUTH = 'Auth: an ingest (or admin) API token as Bearer, or as the HTTP Basic password (user name anything)';

export const EMAIL_EVENT_ROUTES: readonly RouteDoc[] = [
  {
    method: 'POST',
    url: '/v1/email-events',
    scope: 'ingest',
    summary:
      'Email provider feedback, generic shape: a hard bounce or a complaint suppresses the address and sends the ' +
      `lead(s) a hard_bounce event (nurture mail stops); soft bounces and deliveries change nothing. ${AUTH}`,
    body: {
      schema: { oneOf: [genericDoc, { type: 'array', items: genericDoc, maxItems: MAX_EMAIL_EVENTS }] },
    },
    responses: {
      200: { description: 'applied; unknown addresses and Message-IDs counted, not refused', schema: answerDoc },
      400: errorAnswer('an event is malformed: nothing applied; the issues name the field'),
      403: errorAnswer('the token has neither scope ingest nor admin'),
      413: errorAnswer(`more than ${MAX_EMAIL_EVENTS} events`),
    },
  },
  {
    method: 'POST',
    url: '/v1/email-events/postmark',
    scope: 'ingest',
    summary:
      "Postmark's bounce, spam-complaint and delivery webhooks as Postmark sends them (RecordType Bounce with " +
      `Type HardBounce, SpamComplaint, Delivery). ${AUTH}: set the webhook URL to https://postmark:<token>@host/v1/email-events/postmark`,
    body: {
      schema: {
        type: 'object',
        required: ['RecordType'],
        properties: {
          RecordType: {
            type: 'string',
            enum: ['Bounce', 'SpamComplaint', 'Delivery', ...POSTMARK_IGNORED],
            description: `${POSTMARK_IGNORED.join(', ')}: answered 200 and ignored`,
          },
          ID: { type: 'integer' },
          Type: { type: 'string' },
          Email: { type: 'string' },
          Recipient: { type: 'string' },
          MessageID: { type: 'string' },
          BouncedAt: { type: 'string', format: 'date-time' },
          DeliveredAt: { type: 'string', format: 'date-time' },
        },
      },
    },
    responses: {
      200: { description: 'applied, or counted as unknown', schema: answerDoc },
      400: errorAnswer('not a Postmark bounce, spam-complaint or delivery record; the issues name the field'),
      403: errorAnswer('the token has neither scope ingest nor admin'),
    },
  },
];

/** The token of a Bearer header, or of a Basic one (its password, else its user name). */
function credentialOf(header: string | undefined): string | undefined {
  const basic = /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const secret = colon < 0 ? decoded : decoded.slice(colon + 1) || decoded.slice(0, colon);
    return secret || undefined;
  }
  return /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

export interface EmailEventRouteOptions {
  c: ApiContext;
  /** The API's bearer token check. */
  tokens: (header: string | undefined) => ApiToken | undefined;
  /** Requests per token and window, counted apart from /v1's; undefined: none. */
  rateLimit?: Rate;
}

export interface EmailEventAnswer {
  received: number;
  applied: number;
  unknown: number;
}

/** Applies validated events in order. */
export async function applyEmailEvents(c: ApiContext, events: EmailEvent[]): Promise<EmailEventAnswer> {
  const ledger = c.service.ledger;
  if (!ledger) throw new LeadError(503, 'ledger_unavailable', 'this API has no lead ledger');
  const out: EmailEventAnswer = { received: events.length, applied: 0, unknown: 0 };
  for (const ev of events) {
    const leads = await c.service.fromLedger(() => leadsFor(ledger, ev));
    if (leads.length === 0) {
      out.unknown++;
      continue;
    }
    const stops = ev.type === 'complaint' || (ev.type === 'bounce' && ev.bounceType === 'hard');
    if (!stops) continue; // a soft bounce or a delivery: nothing changes
    const reason = ev.type === 'complaint' ? 'complaint' : HARD_BOUNCE;
    for (const l of leads) {
      const address = l.email ?? ev.email;
      if (address) await c.service.fromLedger(() => ledger.suppress(address, reason, l.leadId));
      await c.service.sendEvent({
        leadId: l.leadId,
        eventId: `email-event:${ev.key}`.slice(0, 200),
        type: HARD_BOUNCE,
        ...(ev.occurredAt ? { occurredAt: ev.occurredAt } : {}),
      });
    }
    out.applied++;
  }
  return out;
}

export async function emailEventRoutes(app: FastifyInstance, o: EmailEventRouteOptions): Promise<void> {
  const { c } = o;

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const secret = credentialOf(req.headers.authorization);
    const token = secret === undefined ? undefined : o.tokens(`Bearer ${secret}`);
    if (!token) {
      return reply
        .status(401)
        .header('www-authenticate', 'Basic realm="lead-nurture email-events", charset="UTF-8"')
        .send(errorBody('unauthorized', 'missing or invalid token (Bearer, or HTTP Basic with the token as password)'));
    }
    req.apiToken = token;
    if (!allows(token.scope, 'ingest')) {
      return reply
        .status(403)
        .send(
          errorBody(
            'insufficient_scope',
            `this route needs a token with scope ingest (or admin); this token has scope ${token.scope}`,
          ),
        );
    }
  });
  await registerRateLimit(app, o.rateLimit);

  app.route({
    method: 'POST',
    url: EMAIL_EVENT_ROUTES[0]!.url,
    handler: async (req) => {
      const body = req.body;
      const list = Array.isArray(body) ? body : [body];
      if (list.length > MAX_EMAIL_EVENTS)
        throw new LeadError(
          413,
          'too_many_events',
          `at most ${MAX_EMAIL_EVENTS} events per request, got ${list.length}`,
        );
      const issues: Issue[] = [];
      const events = list.map((x, i) => parseGeneric(x, Array.isArray(body) ? String(i) : '', issues));
      if (issues.length) throw bad(issues);
      const answer = await applyEmailEvents(c, events as EmailEvent[]);
      req.log.info({ emailEvents: answer, types: (events as EmailEvent[]).map((e) => e.type) }, 'email events');
      return answer;
    },
  });
  app.route({
    method: 'POST',
    url: EMAIL_EVENT_ROUTES[1]!.url,
    handler: async (req) => {
      const issues: Issue[] = [];
      const ev = parsePostmark(req.body, issues);
      if (issues.length || !ev) throw bad(issues);
      if (ev === 'ignored') return { received: 1, applied: 0, unknown: 0 };
      const answer = await applyEmailEvents(c, [ev]);
      req.log.info({ emailEvents: answer, type: ev.type, bounceType: ev.bounceType }, 'postmark event');
      return answer;
    },
  });
}
