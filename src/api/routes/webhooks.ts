/**
 * The webhook delivery log over HTTP (docs/webhooks.md): `GET /v1/webhooks/deliveries?lead=&endpoint=
 * &status=&limit=`, newest first, from the ledger's webhook_deliveries and webhook_attempts. Read
 * scope, like the lead's other ledger reads; the stored bodies (a lead's profile) are not shown.
 * The filters are src/webhooks/deliveries.ts's, the same `leadctl webhooks deliveries` validates with.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { LeadError } from '../../lead-service.js';
import { DELIVERY_STATUSES, WebhookLog } from '../../ledger/webhooks.js';
import { deliveriesQuerySchema, deliveryView, listArgs } from '../../webhooks/deliveries.js';
import type { ApiContext } from '../http.js';
import { registerV1Table, route, type V1Route } from './v1.js';

const attemptDoc = z.object({
  attempt: z.number().int(),
  at: z.string(),
  statusCode: z.number().int().optional(),
  error: z.string().optional(),
  durationMs: z.number().int(),
});
const deliveryDoc = z.object({
  webhookId: z.string().describe('the `webhook-id` header of every attempt'),
  endpointId: z.string(),
  leadId: z.string(),
  eventType: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  lastStatus: z.number().int().optional().describe("the last attempt's HTTP status"),
  lastError: z.string().optional().describe("the last attempt's error (HTTP status and body start, timeout, refused)"),
  createdAt: z.string(),
  updatedAt: z.string(),
  deliveredAt: z.string().optional(),
  attemptLog: z.array(attemptDoc),
});

export const WEBHOOK_ROUTES: readonly V1Route[] = [
  route({
    method: 'GET',
    url: '/v1/webhooks/deliveries',
    scope: 'read',
    query: deliveriesQuerySchema,
    summary: "The webhook delivery log, newest first: each change's delivery to each endpoint with its attempts",
    responses: {
      200: { description: 'the deliveries', schema: z.object({ deliveries: z.array(deliveryDoc) }) },
    },
    async handle(c, { query }) {
      const ledger = c.service.ledger;
      if (!ledger) throw new LeadError(503, 'ledger_unavailable', 'this API has no lead ledger');
      const rows = await c.service.fromLedger(() => new WebhookLog(ledger.pool).list(listArgs(query)));
      return { deliveries: rows.map(deliveryView) };
    },
  }),
];
/** Registers the table on the /v1 instance (its hooks check the token, the read scope and JSON). */
export async function webhookRoutes(v1: FastifyInstance, c: ApiContext): Promise<void> {
  registerV1Table(v1, c, WEBHOOK_ROUTES);
}
