/**
 * Erasure and export over HTTP (CONTRACT.md "Integrations"; GDPR articles 17 and 15), entries of
 * the /v1 table (src/api/routes/v1.ts) so they are documented in /openapi.json like every other:
 * `DELETE /v1/leads/:leadId` (scope `admin`: it destroys data and decides who is never mailed) and
 * `GET /v1/leads/:leadId/export` (scope `read`, as the contract's scopes say). The rules are
 * LeadService.erase and LeadService.exportLead (src/lead-erasure.ts).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type ApiContext, errorAnswer } from '../http.js';
import { leadParamsSchema, registerV1Table, route, type V1Route } from './v1.js';

/** Erasing waits for Temporal to remove the runs: more than one ordinary call's deadline. */
const ERASE_EXTRA_MS = 40_000;

const erasureDoc = z.object({
  leadId: z.string(),
  erased: z.literal(true),
  alreadyErased: z.boolean().describe('the lead had been erased before; this call repeated what was left to do'),
  runsDeleted: z
    .number()
    .int()
    .describe("workflow runs deleted from Temporal (the lead's and its webhook deliveries')"),
  rowsDeleted: z.number().int().describe('ledger rows deleted'),
});

const exportDoc = z.object({
  leadId: z.string(),
  exportedAt: z.string(),
  state: z.record(z.string(), z.unknown()).nullable().describe('the LeadState, as GET /v1/leads/:leadId answers it'),
  ledger: z
    .object({
      lead: z.record(z.string(), z.unknown()).nullable(),
      events: z.array(z.record(z.string(), z.unknown())),
      profileChanges: z.array(z.record(z.string(), z.unknown())),
      transitions: z.array(z.record(z.string(), z.unknown())),
      outcomes: z.array(z.record(z.string(), z.unknown())),
      mails: z.array(z.record(z.string(), z.unknown())),
      webhookDeliveries: z.array(z.record(z.string(), z.unknown())),
      webhookAttempts: z.array(z.record(z.string(), z.unknown())),
      suppressions: z.array(z.record(z.string(), z.unknown())),
    })
    .describe('every ledger row about the lead, columns in camelCase'),
  temporal: z.object({
    runs: z.array(
      z.object({
        workflowId: z.string(),
        runId: z.string(),
        type: z.string(),
        status: z.string(),
        startTime: z.string(),
        closeTime: z.string().optional(),
        historyLength: z.number().int(),
      }),
    ),
  }),
});

export const ERASURE_ROUTES: readonly V1Route[] = [
  route({
    method: 'DELETE',
    url: '/v1/leads/:leadId',
    scope: 'admin',
    params: leadParamsSchema,
    summary:
      'Erase the lead: its workflow runs and histories, its ledger rows and mail records go; only a salted hash ' +
      'of its address stays, suppressed, and a salted hash of its id, so late events create nothing',
    responses: {
      200: { description: 'erased (again: alreadyErased)', schema: erasureDoc },
      404: errorAnswer('no such lead, and none erased under this id'),
      503: errorAnswer('Temporal or the ledger unreachable, or Temporal has not removed a run yet: erase again'),
    },
    async handle(c, { params: { leadId } }) {
      return c.temporal(() => c.service.erase(leadId), ERASE_EXTRA_MS);
    },
  }),
  route({
    method: 'GET',
    url: '/v1/leads/:leadId/export',
    scope: 'read',
    params: leadParamsSchema,
    summary: 'Everything held about the lead, as JSON: state, ledger rows, suppressions of its address, workflow runs',
    responses: {
      200: { description: 'the export', schema: exportDoc },
      404: errorAnswer('no such lead'),
      410: errorAnswer('the lead was erased'),
    },
    async handle(c, { params: { leadId } }) {
      return c.temporal(() => c.service.exportLead(leadId));
    },
  }),
];

/** Registers the table on the /v1 instance (its hooks check the token, the scope and JSON). */
export async function erasureRoutes(v1: FastifyInstance, c: ApiContext): Promise<void> {
  registerV1Table(v1, c, ERASURE_ROUTES);
}
