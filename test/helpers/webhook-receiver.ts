/**
 * A webhook receiver on loopback (node:http) that verifies every delivery with the Standard
 * Webhooks library, as a receiver would, and records it. `answer` decides each reply's status
 * (default 200); `hold` keeps a request unanswered until released (a receiver that hangs).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  json: any;
  /** Whether `new Webhook(secret).verify(body, headers)` accepted it. */
  verified: boolean;
  verifyError?: string;
  status: number;
  at: number;
  headers: IncomingHttpHeaders;
}

export interface WebhookReceiver {
  url: string;
  received: Received[];
  /** Deliveries that were answered 2xx. */
  accepted(): Received[];
  answer: (r: Omit<Received, 'status'>) => number | Promise<number>;
  close(): Promise<void>;
}

/** A fresh Standard Webhooks secret. */
export const testSecret = (seed = 'x') =>
  `whsec_${Buffer.from(`test-secret-${seed}-`.padEnd(32, '0').slice(0, 32)).toString('base64')}`;

export async function startWebhookReceiver(secret: string, path = '/hooks'): Promise<WebhookReceiver> {
  const wh = new Webhook(secret);
  const received: Received[] = [];
  const rx: WebhookReceiver = {
    url: '',
    received,
    accepted: () => received.filter((r) => r.status >= 200 && r.status < 300),
    answer: () => 200,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const h = req.headers;
        let verified = false;
        let verifyError: string | undefined;
        try {
          wh.verify(body, h as Record<string, string>);
          verified = true;
        } catch (err) {
          verifyError = (err as Error).message;
        }
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const r = {
          id: String(h['webhook-id']),
          timestamp: String(h['webhook-timestamp']),
          signature: String(h['webhook-signature']),
          body,
          json,
          verified,
          ...(verifyError ? { verifyError } : {}),
          at: Date.now(),
          headers: h,
        };
        const status = req.url === path ? (verified ? await rx.answer(r) : 401) : 404;
        received.push({ ...r, status });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
      })();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  rx.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  const close = rx.close;
  rx.close = () => {
    server.closeAllConnections();
    return close();
  };
  return rx;
}

/** Every change type an endpoint can subscribe to. */
export const ALL_WEBHOOK_EVENTS = [
  'lead.stage_changed',
  'lead.handed_off',
  'lead.outcome_recorded',
  'lead.consent_changed',
] as const;

/** A config `webhooks` entry for a test receiver: retries start after 200 ms, so a test sees several. */
export const testEndpoint = (
  id: string,
  url: string,
  secret: string,
  events: readonly string[] = ALL_WEBHOOK_EVENTS,
) => ({
  id,
  url,
  events: [...events],
  secret,
  retry: { initialInterval: '200ms' },
});
