/**
 * A webhook receiver that keeps HubSpot contacts current from the engine's webhooks (docs/crm.md,
 * issue 13 part 6). Standalone on purpose (node:http and the `standardwebhooks` library only, no
 * import from the engine), so it can be copied next to a CRM integration as it is.
 *
 *   CRM_WEBHOOK_SECRET=whsec_… HUBSPOT_TOKEN=pat-… npx tsx examples/crm-receiver.ts
 *
 * For each POST it:
 * 1. verifies the Standard Webhooks signature over the raw body (`Webhook.verify`); a bad or
 *    missing signature, or a stale timestamp, is 401 and nothing else happens;
 * 2. skips a `webhook-id` it has already passed to the CRM (200, no second upsert): the engine
 *    delivers at least once, with the same id on every retry of one change;
 * 3. maps the lead to a HubSpot contact (hubspotContact, a pure function) and upserts it by email
 *    with `POST /crm/v3/objects/contacts/batch/upsert` (clearing the lifecycle stage first when
 *    HubSpot refuses to move it back, as for a recycled lead that re-qualifies);
 * 4. answers 200 only once HubSpot accepted; when HubSpot fails (5xx, 429, 4xx, no answer) it
 *    answers 502 with HubSpot's status, so the engine retries with backoff (for up to 3 days) and
 *    the engine's delivery log (`leadctl webhooks deliveries`) shows why.
 *
 * The seen ids are kept in a file (JSON lines, CRM_RECEIVER_STORE), loaded at start: a restart of
 * the receiver must not forget what it passed on, since a retry can arrive after it (an answer lost
 * on the way back). In memory the set would be lost on every deploy. An id is written only after
 * HubSpot accepted, so a crash in between means one more upsert of the same values, never a loss.
 *
 * Env: CRM_WEBHOOK_SECRET (the endpoint's `whsec_…` secret), HUBSPOT_TOKEN (a private app token
 * with crm.objects.contacts.write), HUBSPOT_BASE_URL (default https://api.hubapi.com), PORT
 * (default 4000), CRM_RECEIVER_PATH (default /hooks), CRM_RECEIVER_STORE (default
 * .data/crm-receiver-seen.jsonl).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';

// ---- what the engine sends (docs/webhooks.md "What is sent") ---------------------------------------

export interface LeadWebhook {
  type: 'lead.stage_changed' | 'lead.handed_off' | 'lead.outcome_recorded' | 'lead.consent_changed';
  timestamp: string;
  data: {
    leadId: string;
    change: Record<string, unknown>;
    stage: string;
    score: { total: number; fit: number; engagement: number; model?: string };
    owner: string | null;
    consent: 'subscribed' | 'unsubscribed' | 'bounced';
    campaign: string | null;
    profile: Record<string, unknown> & {
      email?: string;
      firstName?: string;
      lastName?: string;
      company?: string;
      jobTitle?: string;
    };
  };
}

// ---- the mapping ------------------------------------------------------------------------------------

/** Our stages that have a HubSpot lifecycle stage (HubSpot's internal values). */
export const LIFECYCLE_STAGES: Readonly<Record<string, string>> = {
  lead: 'lead',
  mql: 'marketingqualifiedlead',
  sql: 'salesqualifiedlead',
  opportunity: 'opportunity',
  customer: 'customer',
};

/** One input of HubSpot's contacts batch upsert. */
export interface HubSpotUpsertInput {
  idProperty: 'email';
  id: string;
  properties: Record<string, string>;
}

/**
 * The HubSpot contact for a webhook: the standard properties from the profile, the lifecycle stage
 * for the stages HubSpot has, and our own state in custom properties (create them in HubSpot under
 * Settings → Properties → Contact, group "Lead nurture", before the first run: HubSpot refuses an
 * unknown property). `lead_nurture_stage` always holds our stage, also recycled, disqualified and
 * dormant, which have no lifecycle stage. Undefined when the lead has no email (HubSpot's key).
 */
export function hubspotContact(w: LeadWebhook): HubSpotUpsertInput | undefined {
  const p = w.data.profile ?? {};
  const email = typeof p.email === 'string' ? p.email.trim().toLowerCase() : '';
  if (!email) return undefined;
  const properties: Record<string, string> = { email };
  const text = (name: string, value: unknown) => {
    if (typeof value === 'string' && value.trim() !== '') properties[name] = value.trim();
  };
  text('firstname', p.firstName);
  text('lastname', p.lastName);
  text('company', p.company);
  text('jobtitle', p.jobTitle);
  const lifecycle = LIFECYCLE_STAGES[w.data.stage];
  if (lifecycle) properties.lifecyclestage = lifecycle;
  properties.lead_nurture_id = w.data.leadId;
  properties.lead_nurture_stage = w.data.stage;
  properties.lead_nurture_score = String(w.data.score.total);
  properties.lead_nurture_consent = w.data.consent;
  if (w.data.owner) properties.lead_nurture_owner = w.data.owner;
  if (w.data.campaign) properties.lead_nurture_campaign = w.data.campaign;
  return { idProperty: 'email', id: email, properties };
}

// ---- the seen webhook ids ---------------------------------------------------------------------------

/** The webhook ids passed to the CRM: a JSON lines file, one `{ id, at }` a line, read once at start. */
export class SeenStore {
  private readonly ids = new Set<string>();
  constructor(readonly file: string) {
    if (!existsSync(file)) return;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        this.ids.add((JSON.parse(line) as { id: string }).id);
      } catch {
        // A line torn by a crash mid-write: that id is upserted once more, which is harmless.
      }
    }
  }
  has(id: string): boolean {
    return this.ids.has(id);
  }
  add(id: string): void {
    if (this.ids.has(id)) return;
    mkdirSync(dirname(this.file), { recursive: true });
    appendFileSync(this.file, `${JSON.stringify({ id, at: new Date().toISOString() })}\n`);
    this.ids.add(id);
  }
}

// ---- HubSpot ----------------------------------------------------------------------------------------

export type CrmResult = { ok: true } | { ok: false; status?: number; error: string };
type Answer = { ok: true } | { ok: false; status?: number; error: string; text: string };

/** One upsert call (HubSpot CRM v3, contacts by email). Never throws: a failure is a result. */
async function upsertOnce(
  baseUrl: string,
  token: string,
  input: HubSpotUpsertInput,
  timeoutMs: number,
): Promise<Answer> {
  try {
    const res = await fetch(new URL('/crm/v3/objects/contacts/batch/upsert', baseUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [input] }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text().catch(() => '');
    // 200 (all updated) or 201 (some created); 207 is a partial failure: one input, so a failure.
    if (res.status === 200 || res.status === 201) return { ok: true };
    return { ok: false, status: res.status, error: `HubSpot ${res.status}: ${text.slice(0, 150)}`, text };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.message);
    return { ok: false, error: `HubSpot unreachable: ${why}`, text: '' };
  }
}

/**
 * Upserts the contact. HubSpot's API does not move `lifecyclestage` back to an earlier stage (a
 * lead recycled from sql that re-qualifies as an MQL): it answers 400 naming the property. Then the
 * property is cleared and set again, as HubSpot's documentation says to move a stage backwards.
 */
export async function upsertHubSpotContact(
  baseUrl: string,
  token: string,
  input: HubSpotUpsertInput,
  timeoutMs = 10_000,
): Promise<CrmResult> {
  const first = await upsertOnce(baseUrl, token, input, timeoutMs);
  if (first.ok) return first;
  const backwards = first.status === 400 && !!input.properties.lifecyclestage && /lifecyclestage/i.test(first.text);
  if (!backwards) return { ok: false, ...(first.status ? { status: first.status } : {}), error: first.error };
  const clear = { ...input, properties: { email: input.id, lifecyclestage: '' } };
  for (const step of [clear, input]) {
    const r = await upsertOnce(baseUrl, token, step, timeoutMs);
    if (!r.ok) return { ok: false, ...(r.status ? { status: r.status } : {}), error: r.error };
  }
  return { ok: true };
}

// ---- the server -------------------------------------------------------------------------------------

export interface CrmReceiverOptions {
  /** The endpoint's Standard Webhooks secret (`whsec_…`). */
  secret: string;
  hubspotToken: string;
  hubspotBaseUrl?: string;
  /** Where the seen webhook ids are kept. */
  storeFile: string;
  port?: number;
  host?: string;
  path?: string;
  log?: (line: string) => void;
}

export interface CrmReceiver {
  url: string;
  server: Server;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const answer = (res: ServerResponse, status: number, body: Record<string, unknown>) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

export async function startCrmReceiver(o: CrmReceiverOptions): Promise<CrmReceiver> {
  const wh = new Webhook(o.secret);
  const seen = new SeenStore(o.storeFile);
  const baseUrl = o.hubspotBaseUrl ?? 'https://api.hubapi.com';
  const path = o.path ?? '/hooks';
  const log = o.log ?? ((line: string) => console.log(line));
  /** Deliveries of one id at once (an attempt the engine timed out, and its retry): one upsert, one result. */
  const inFlight = new Map<string, Promise<CrmResult>>();

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (new URL(req.url ?? '/', 'http://x').pathname !== path) return answer(res, 404, { error: 'not found' });
    if (req.method !== 'POST') return answer(res, 405, { error: 'POST only' });
    const raw = await readBody(req);
    if (raw === undefined) return answer(res, 413, { error: 'body too large' });
    const headers = {
      'webhook-id': String(req.headers['webhook-id'] ?? ''),
      'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
      'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
    };
    let w: LeadWebhook;
    try {
      w = wh.verify(raw, headers) as LeadWebhook;
    } catch (err) {
      log(`401 ${headers['webhook-id'] || '(no id)'}: ${(err as Error).message}`);
      return answer(res, 401, { error: 'bad signature' });
    }
    const id = headers['webhook-id'];
    if (seen.has(id)) return answer(res, 200, { ok: true, duplicate: true });
    const contact = hubspotContact(w);
    if (!contact) {
      // Nothing HubSpot can key it by: retrying would not change that, so it is taken (and logged).
      log(`skipped ${id} (${w.type} for ${w.data?.leadId}): the lead has no email`);
      seen.add(id);
      return answer(res, 200, { ok: true, skipped: 'no email' });
    }
    let pending = inFlight.get(id);
    if (!pending) {
      pending = upsertHubSpotContact(baseUrl, o.hubspotToken, contact).finally(() => inFlight.delete(id));
      inFlight.set(id, pending);
    }
    const r = await pending;
    if (!r.ok) {
      log(`502 ${id} (${w.type} for ${w.data.leadId}): ${r.error}`);
      return answer(res, 502, { error: r.error });
    }
    seen.add(id);
    log(`200 ${id} (${w.type} for ${w.data.leadId}): contact ${contact.id} upserted`);
    return answer(res, 200, { ok: true });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`500: ${(err as Error).message}`);
      if (!res.headersSent) answer(res, 500, { error: 'receiver error' });
    });
  });
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, o.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${o.host ?? '127.0.0.1'}:${port}${path}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function required(name: string): string {
  const v = process.env[name]?.trim();
  if (!v) {
    console.error(`crm-receiver: set ${name} (see docs/crm.md)`);
    process.exit(1);
  }
  return v;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rx = await startCrmReceiver({
    secret: required('CRM_WEBHOOK_SECRET'),
    hubspotToken: required('HUBSPOT_TOKEN'),
    hubspotBaseUrl: process.env.HUBSPOT_BASE_URL || 'https://api.hubapi.com',
    storeFile: resolve(process.env.CRM_RECEIVER_STORE || '.data/crm-receiver-seen.jsonl'),
    port: Number(process.env.PORT || 4000),
    host: process.env.HOST || '127.0.0.1',
    path: process.env.CRM_RECEIVER_PATH || '/hooks',
  });
  console.log(`crm-receiver listening on ${rx.url}`);
  const stop = () => void rx.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
