/**
 * One delivery attempt: the stored body signed per the Standard Webhooks spec with its own library
 * (`webhook-id`, `webhook-timestamp` = the attempt's time in seconds, `webhook-signature:
 * v1,<base64 HMAC-SHA256 of "id.timestamp.body">`) and POSTed. A 2xx is delivered; anything else,
 * a timeout or a connection error is a failed attempt (retried by the activity's retry policy).
 */
import { Webhook } from 'standardwebhooks';
import { isWebhookSecret, type WebhookEndpoint } from '../domain/config.js';

export const ATTEMPT_TIMEOUT_MS = 15_000;
export const USER_AGENT = 'lead-nurture-engine-webhooks/1';

export interface AttemptResult {
  ok: boolean;
  statusCode?: number;
  error?: string;
  durationMs: number;
}

/** The endpoint's signing secret: the file's, or the environment variable it names. */
export function endpointSecret(e: WebhookEndpoint, env: NodeJS.ProcessEnv = process.env): string {
  if (e.secret) return e.secret;
  const name = e.secretEnv!;
  const value = env[name]?.trim();
  if (!value) throw new WebhookSecretError(`webhooks.${e.id}.secretEnv: environment variable ${name} is not set`);
  if (!isWebhookSecret(value))
    throw new WebhookSecretError(
      `webhooks.${e.id}.secretEnv: ${name} must be whsec_ followed by the base64 of at least 24 bytes (Standard Webhooks)`,
    );
  return value;
}

export class WebhookSecretError extends Error {
  override name = 'WebhookSecretError';
}

/** Every endpoint's secret resolves (the worker checks at start, naming the endpoint and variable). */
export function checkEndpointSecrets(endpoints: readonly WebhookEndpoint[], env: NodeJS.ProcessEnv = process.env) {
  for (const e of endpoints) endpointSecret(e, env);
}

export function signedHeaders(secret: string, webhookId: string, payload: string, at: Date): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(webhookId, at, payload),
  };
}

export async function attemptDelivery(
  url: string,
  secret: string,
  webhookId: string,
  payload: string,
  at: Date = new Date(),
  timeoutMs = ATTEMPT_TIMEOUT_MS,
): Promise<AttemptResult> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: signedHeaders(secret, webhookId, payload, at),
      body: payload,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The body is not read beyond a little (a receiver's error page may be large).
    const text = res.ok ? '' : (await res.text().catch(() => '')).slice(0, 200);
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true, statusCode: res.status, durationMs: took() };
    return {
      ok: false,
      statusCode: res.status,
      error: `HTTP ${res.status}${text ? `: ${text}` : ''}`,
      durationMs: took(),
    };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { ok: false, error: why, durationMs: took() };
  }
}
