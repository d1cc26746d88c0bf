/**
 * The webhook delivery log as `leadctl webhooks deliveries` and `GET /v1/webhooks/deliveries` show
 * it (docs/webhooks.md): one filter schema for both (so a bad status or limit is refused the same,
 * naming the field), and the public view of a ledger row (src/ledger/webhooks.ts), which leaves
 * out the stored body: it holds the lead's profile, and the log is a read-scope view of delivery.
 */
import { z } from 'zod';
import { leadIdSchema } from '../domain/lead.js';
import {
  DELIVERY_STATUSES,
  type DeliveryStatus,
  type WebhookAttempt,
  type WebhookDelivery,
} from '../ledger/webhooks.js';

export const DEFAULT_DELIVERIES_LIMIT = 100;
export const MAX_DELIVERIES_LIMIT = 1000;

const STATUS_RULE = `must be ${DELIVERY_STATUSES.join(', ')} (several: comma-separated or repeated)`;

/** `pending`, `pending,failed` or (a repeated query parameter) `['pending', 'failed']`. */
const statusList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) =>
    (Array.isArray(v) ? v : [v])
      .flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  )
  .pipe(
    z
      .array(z.string())
      .min(1, STATUS_RULE)
      .superRefine((list, ctx) => {
        const bad = list.filter((s) => !(DELIVERY_STATUSES as readonly string[]).includes(s));
        if (bad.length)
          ctx.addIssue({ code: 'custom', message: `${bad.map((b) => `"${b}"`).join(', ')}: ${STATUS_RULE}` });
      })
      .transform((list) => [...new Set(list)] as DeliveryStatus[]),
  );

/** The query string (all text) or leadctl's options. */
export const deliveriesQuerySchema = z
  .object({
    lead: z.optional(leadIdSchema).describe('only this lead'),
    endpoint: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a webhook endpoint id (lower case letters, digits, - and _)')
      .optional()
      .describe('only this endpoint id'),
    status: statusList.optional().describe(`${DELIVERY_STATUSES.join(', ')}; several comma-separated or repeated`),
    limit: z
      .union([
        z.number(),
        z
          .string()
          .trim()
          .regex(/^-?\d+$/, 'must be a whole number')
          .transform(Number),
      ])
      .pipe(z.number().int('must be a whole number').min(1).max(MAX_DELIVERIES_LIMIT))
      .optional()
      .describe(`at most this many, newest first (default ${DEFAULT_DELIVERIES_LIMIT})`),
  })
  .strict();
export type DeliveriesQuery = z.output<typeof deliveriesQuerySchema>;

/** A delivery as ops read it: the ledger's row and its attempts, without the stored body (it carries the profile) or the run. */
export type DeliveryView = Omit<WebhookDelivery, 'seq' | 'payload' | 'runId'> & { attemptLog: WebhookAttempt[] };

export function deliveryView(d: WebhookDelivery & { attemptLog: WebhookAttempt[] }): DeliveryView {
  const { seq: _seq, payload: _payload, runId: _runId, ...view } = d;
  return view;
}

/** The ledger's list call for a validated query. */
export const listArgs = (q: DeliveriesQuery) => ({
  ...(q.lead !== undefined ? { leadId: q.lead } : {}),
  ...(q.endpoint !== undefined ? { endpointId: q.endpoint } : {}),
  ...(q.status !== undefined ? { status: q.status } : {}),
  limit: q.limit ?? DEFAULT_DELIVERIES_LIMIT,
});
