/**
 * The API test stack, one per test file: a Temporal dev server, a real SMTP capture, a worker
 * running the real workflows and activities (test/helpers/temporal.ts) and the Fastify app over a
 * LeadService, with small helpers to call it and to wait for eventually consistent things.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { LoadedConfig } from '../../src/config-file.js';
import { LeadService } from '../../src/client.js';
import type { LeadState } from '../../src/domain/lead.js';
import type { LeadLedger } from '../../src/ledger/ledger.js';
import { LinkSigner } from '../../src/links.js';
import { buildApi } from '../../src/api/server.js';
import { EncryptionCodec, parsePayloadKeys } from '../../src/codec.js';
import { devServerEnv, harness, startSmtp, TEST_PAYLOAD_KEYS, testConfig } from '../helpers/temporal.js';
import type { Captured, SmtpCapture } from '../helpers/smtp.js';

/** The secret and base URL the harness's worker signs mail links with. */
export const TEST_LINK_SECRET = 'test-link-secret-0123456789';
export const LINK_BASE = 'http://links.test';
export const TOKEN = 'test-token-0123456789abcdef';
export const OTHER_TOKEN = 'second-token-for-rotation';
/** The Temporal UI origin the fixture's codec server allows (CODEC_CORS_ORIGINS). */
export const UI_ORIGIN = 'http://localhost:8233';

export interface ApiStack {
  env: TestWorkflowEnvironment;
  smtp: SmtpCapture;
  loaded: LoadedConfig;
  service: LeadService;
  /** The ledger the worker writes and the API reads (an embedded database of this stack). */
  ledger: LeadLedger;
  /** Where other processes (leadctl) reach that ledger. */
  databaseUrl: string;
  /** The worker's task queue. */
  taskQueue: string;
  links: LinkSigner;
  app: FastifyInstance;
  /** app.inject with the bearer token (unless `token: null`) and JSON bodies. */
  call(method: string, url: string, o?: { body?: unknown; payload?: string; headers?: Record<string, string>; token?: string | null }): Promise<Res>;
  state(leadId: string): Promise<LeadState>;
  close(): Promise<void>;
}

export interface Res { status: number; json: any; body: string; headers: LightMyRequestResponse['headers'] }

export async function startStack(loaded: LoadedConfig = testConfig(), extraArgs: string[] = []): Promise<ApiStack> {
  const cleanup: (() => Promise<unknown> | unknown)[] = [];
  const close = async () => {
    for (const fn of cleanup.reverse()) await Promise.resolve().then(fn).catch((err) => console.error('cleanup:', err));
  };
  try {
    const env = await devServerEnv(extraArgs);
    cleanup.push(() => env.teardown());
    const smtp = await startSmtp();
    cleanup.push(() => smtp.close());
    const h = await harness(env, smtp, loaded);
    cleanup.push(() => h.close());
    const service = new LeadService(env.client, h.taskQueue, loaded.config, h.ledger);
    const links = new LinkSigner(TEST_LINK_SECRET, LINK_BASE);
    const app = buildApi({
      service, links, tokens: [TOKEN, OTHER_TOKEN],
      codec: { codec: new EncryptionCodec(parsePayloadKeys(TEST_PAYLOAD_KEYS)), corsOrigins: [UI_ORIGIN] },
      healthCheck: async () => (await env.connection.healthService.check({})).status === 1,
    });
    cleanup.push(() => app.close());
    await app.ready();
    return {
      env, smtp, loaded, service, ledger: h.ledger, databaseUrl: h.database.url, taskQueue: h.taskQueue, links, app, close,
      async call(method, url, o = {}) {
        const headers: Record<string, string> = { ...(o.token === null ? {} : { authorization: `Bearer ${o.token ?? TOKEN}` }), ...o.headers };
        let payload = o.payload;
        if (o.body !== undefined) {
          payload = JSON.stringify(o.body);
          headers['content-type'] ??= 'application/json';
        }
        const r = await app.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}) });
        let json: unknown;
        try {
          json = r.json();
        } catch {
          json = undefined;
        }
        return { status: r.statusCode, json, body: r.body, headers: r.headers };
      },
      state: (leadId) => service.getState(leadId),
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Polls `fn` until it returns a value that is not undefined/false; bounded. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the lead's state satisfies `pred`. */
export function waitState(s: ApiStack, leadId: string, pred: (st: LeadState) => boolean, what = 'state', timeoutMs = 20_000): Promise<LeadState> {
  let last: LeadState | undefined;
  return eventually(`${leadId}: ${what}`, async () => {
    last = await s.state(leadId).catch((err) => {
      if (/starting/.test(String(err))) return undefined;
      throw err;
    });
    return last && pred(last) ? last : undefined;
  }, timeoutMs).catch((err) => {
    throw new Error(`${(err as Error).message}; last: ${JSON.stringify(last && { stage: last.stage, consent: last.consent, score: last.score, eventsProcessed: last.eventsProcessed, owner: last.owner })}`);
  });
}

let seq = 0;
export const uid = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;

/**
 * Sends a throwaway event and waits until the workflow counted it: signals are handled in order,
 * so everything sent before it has been handled too.
 */
export async function settle(s: ApiStack, leadId: string): Promise<LeadState> {
  const eventId = uid('sentinel');
  await s.service.sendEvents({ leadId, eventId, type: 'email_open' });
  return waitState(s, leadId, (st) => st.scoreLog.some((l) => l.eventId === eventId), 'sentinel handled');
}

/** The signed links in a captured mail, with the origin cut off (paths to inject). */
export function mailLinks(m: Captured): { open?: string; click?: string; unsubscribe?: string; accept?: string; reject?: string; listUnsubscribe?: string } {
  const all = `${m.text}\n${m.html.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&')}`;
  const find = (re: RegExp) => re.exec(all)?.[0]?.slice(LINK_BASE.length);
  const token = '[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+';
  const header = m.raw.headerLines.find((l) => l.key === 'list-unsubscribe')?.line;
  return {
    open: find(new RegExp(`${LINK_BASE}/l/open\\?t=${token}`)),
    click: find(new RegExp(`${LINK_BASE}/l/click\\?t=${token}`)),
    unsubscribe: find(new RegExp(`${LINK_BASE}/l/unsubscribe\\?t=${token}`)),
    accept: find(new RegExp(`${LINK_BASE}/l/sales\\?t=${token}&action=accept`)),
    reject: find(new RegExp(`${LINK_BASE}/l/sales\\?t=${token}&action=reject`)),
    listUnsubscribe: header ? new RegExp(`<${LINK_BASE}(/l/unsubscribe\\?t=${token})>`).exec(header)?.[1] : undefined,
  };
}

export const header = (m: Captured, name: string) => {
  const v = m.headers.get(name.toLowerCase());
  return v === undefined ? undefined : String(v);
};

/** Mail to or about a lead. */
export const mailsFor = (smtp: SmtpCapture, leadId: string) => smtp.messages.filter((m) => header(m, 'x-lead-id') === leadId);
