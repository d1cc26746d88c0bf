/**
 * The webhook delivery log (migrations/1796400000000_webhooks.sql): the outbox rows a lead's
 * ledger write adds (LeadLedger.record), what the delivery workflow sends next, every attempt.
 */
import type pg from 'pg';

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface WebhookDelivery {
  seq: number;
  endpointId: string;
  webhookId: string;
  leadId: string;
  eventType: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatus?: number;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
  deliveredAt?: string;
  /** The lead's workflow run whose write added it. */
  runId?: string;
}

export interface WebhookAttempt {
  attempt: number;
  at: string;
  statusCode?: number;
  error?: string;
  durationMs: number;
}

const iso = (d: unknown) => (d instanceof Date ? d.toISOString() : undefined);
const deliveryRow = (x: Record<string, unknown>): WebhookDelivery => ({
  seq: Number(x.seq),
  endpointId: x.endpoint_id as string,
  webhookId: x.webhook_id as string,
  leadId: x.lead_id as string,
  eventType: x.event_type as string,
  payload: x.payload as string,
  status: x.status as DeliveryStatus,
  attempts: x.attempts as number,
  ...(x.last_status !== null ? { lastStatus: x.last_status as number } : {}),
  ...(x.last_error !== null ? { lastError: x.last_error as string } : {}),
  createdAt: iso(x.created_at)!,
  updatedAt: iso(x.updated_at)!,
  ...(x.delivered_at ? { deliveredAt: iso(x.delivered_at) } : {}),
  ...(x.run_id ? { runId: x.run_id as string } : {}),
});

export class WebhookLog {
  constructor(readonly pool: pg.Pool) {}

  /** The lead's oldest pending delivery to the endpoint: the only one that may go now (order per lead). */
  async nextPending(endpointId: string, leadId: string): Promise<WebhookDelivery | undefined> {
    const r = await this.pool.query(
      `SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 AND lead_id = $2 AND status = 'pending' ORDER BY seq LIMIT 1`,
      [endpointId, leadId],
    );
    return r.rows[0] ? deliveryRow(r.rows[0]) : undefined;
  }

  async get(endpointId: string, webhookId: string): Promise<WebhookDelivery | undefined> {
    const r = await this.pool.query('SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 AND webhook_id = $2', [
      endpointId,
      webhookId,
    ]);
    return r.rows[0] ? deliveryRow(r.rows[0]) : undefined;
  }

  /** Logs one attempt; a 2xx makes the delivery `delivered` (a pending one only: a later duplicate changes nothing). */
  async recordAttempt(
    endpointId: string,
    webhookId: string,
    a: { attempt: number; statusCode?: number; error?: string; durationMs: number; delivered: boolean },
  ): Promise<void> {
    await this.pool.query(
      `WITH a AS (
         INSERT INTO webhook_attempts (endpoint_id, webhook_id, attempt, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING 1
       )
       UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $4, last_error = $5, updated_at = now(),
              status = CASE WHEN $7 THEN 'delivered' ELSE status END, delivered_at = CASE WHEN $7 THEN now() ELSE delivered_at END
        WHERE endpoint_id = $1 AND webhook_id = $2 AND status = 'pending'`,
      [endpointId, webhookId, a.attempt, a.statusCode ?? null, a.error ?? null, a.durationMs, a.delivered],
    );
  }

  /** Gives up on a pending delivery (its 3 days are over, or its endpoint is gone): the lead's next one may go. */
  async markFailed(endpointId: string, webhookId: string, error: string): Promise<void> {
    await this.pool.query(
      `UPDATE webhook_deliveries SET status = 'failed', last_error = $3, updated_at = now()
        WHERE endpoint_id = $1 AND webhook_id = $2 AND status = 'pending'`,
      [endpointId, webhookId, error],
    );
  }

  /** The log, newest first, with each delivery's attempts; `status` is one status or any of several. */
  async list(
    q: {
      leadId?: string;
      status?: DeliveryStatus | readonly DeliveryStatus[];
      endpointId?: string;
      limit?: number;
    } = {},
  ): Promise<(WebhookDelivery & { attemptLog: WebhookAttempt[] })[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.leadId !== undefined) where.push(`lead_id = $${params.push(q.leadId)}`);
    if (q.status !== undefined) {
      const statuses = typeof q.status === 'string' ? [q.status] : [...q.status];
      where.push(`status = ANY($${params.push(statuses)}::text[])`);
    }
    if (q.endpointId !== undefined) where.push(`endpoint_id = $${params.push(q.endpointId)}`);
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const r = await this.pool.query(
      `SELECT d.*, COALESCE((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('attempt', a.attempt, 'at', a.at, 'statusCode', a.status_code,
                'error', a.error, 'durationMs', a.duration_ms)) ORDER BY a.at, a.attempt)
                FROM webhook_attempts a WHERE a.endpoint_id = d.endpoint_id AND a.webhook_id = d.webhook_id), '[]'::jsonb) AS attempt_log
         FROM webhook_deliveries d ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY seq DESC LIMIT $${params.push(limit)}`,
      params,
    );
    return r.rows.map((x) => ({
      ...deliveryRow(x),
      attemptLog: (x.attempt_log as WebhookAttempt[]).map((a) => ({ ...a, at: new Date(a.at).toISOString() })),
    }));
  }

  /**
   * (endpoint, lead) pairs whose next pending delivery has not been attempted since before
   * `olderThan`: what the sweep wakes. One being attempted belongs to a running delivery workflow
   * (its retries are the activity's), so it is left alone.
   */
  async pendingPairs(olderThan: Date, limit = 1000): Promise<{ endpointId: string; leadId: string }[]> {
    const r = await this.pool.query(
      `SELECT endpoint_id, lead_id FROM (
         SELECT DISTINCT ON (endpoint_id, lead_id) endpoint_id, lead_id, attempts, updated_at, seq
           FROM webhook_deliveries WHERE status = 'pending' ORDER BY endpoint_id, lead_id, seq) head
        WHERE attempts = 0 AND updated_at < $1 ORDER BY seq LIMIT $2`,
      [olderThan.toISOString(), limit],
    );
    return r.rows.map((x) => ({ endpointId: x.endpoint_id as string, leadId: x.lead_id as string }));
  }
}
