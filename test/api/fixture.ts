/**
 * Helpers for the API tests over the test stack (test/helpers/stack.ts with `api: true`: a Temporal
 * dev server, a real SMTP capture, a worker running the real workflows and activities and the
 * Fastify app over a LeadService): calls, and waits for eventually consistent things.
 */
import type { LeadState } from '../../src/domain/lead.js';
import type { Captured, SmtpCapture } from '../helpers/smtp.js';
import { LINK_BASE, type Stack } from '../helpers/stack.js';

export { LINK_BASE, OTHER_TOKEN, type Res, SALES_TOKEN, TOKEN } from '../helpers/stack.js';

/** A stack with the API. */
export type ApiStack = Stack;

/** Polls `fn` until it returns a value that is not undefined/false; bounded. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
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
export function waitState(
  s: ApiStack,
  leadId: string,
  pred: (st: LeadState) => boolean,
  what = 'state',
  timeoutMs = 20_000,
): Promise<LeadState> {
  let last: LeadState | undefined;
  return eventually(
    `${leadId}: ${what}`,
    async () => {
      last = await s.state(leadId).catch((err) => {
        if (/starting/.test(String(err))) return undefined;
        throw err;
      });
      return last && pred(last) ? last : undefined;
    },
    timeoutMs,
  ).catch((err) => {
    throw new Error(
      `${(err as Error).message}; last: ${JSON.stringify(last && { stage: last.stage, consent: last.consent, score: last.score, eventsProcessed: last.eventsProcessed, owner: last.owner })}`,
    );
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
export function mailLinks(m: Captured): {
  open?: string;
  click?: string;
  unsubscribe?: string;
  accept?: string;
  reject?: string;
  listUnsubscribe?: string;
} {
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
export const mailsFor = (smtp: SmtpCapture, leadId: string) =>
  smtp.messages.filter((m) => header(m, 'x-lead-id') === leadId);

/** A lowercase address of its own per test (uid has the pid and a clock). */
export const address = (prefix: string) => `${uid(prefix).toLowerCase()}@buyer.example`;

/** A mailable LeadInput for `leadId` at `email` (consent given). */
export const mailableLead = (leadId: string, email: string) => ({
  leadId,
  email,
  firstName: 'Noor',
  company: 'Globex',
  country: 'US',
  consent: { email: true },
});

/** The captured messages sent to `email` (lower case), whichever lead they were for. */
export const mailsTo = (smtp: SmtpCapture, email: string) =>
  smtp.messages.filter((m) => m.to.some((t) => t.toLowerCase() === email));
