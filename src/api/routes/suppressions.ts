/**
 * The address-level suppression list over HTTP (CONTRACT.md "Integrations"): `GET /v1/suppressions`
 * (pages in address order), `POST /v1/suppressions` `{ email, reason? }` (idempotent: 201 added,
 * 200 already there, the first reason kept), `DELETE /v1/suppressions/:email` (404 when absent).
 * Admin scope: the list decides who gets mail at all. Entries of the /v1 table (src/api/routes/v1.ts),
 * so they are documented in /openapi.json like every other route. The list itself is the ledger's
 * (src/ledger/ledger.ts); the nurture activity checks it before every send.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { LeadError, validate } from '../../lead-service.js';
import { MANUAL_REASON, suppressionAddressSchema, suppressionInputSchema } from '../../suppression-input.js';
import type { LeadLedger, Suppression } from '../../ledger/ledger.js';
import { normalizeAddress } from '../../ledger/ledger.js';
import { type ApiContext, errorAnswer } from '../http.js';
import { registerV1Table, route, type V1Route } from './v1.js';

const PAGE = 'suppressions-page';
const DEFAULT_LIMIT = 100;

const suppressionDoc = z.object({
  address: z.string().describe('normalized: trimmed, lower case'),
  reason: z.string().describe('unsubscribed, hard_bounce, manual, or what the caller said'),
  leadId: z.string().optional().describe('the lead whose event or mail put it there'),
  createdAt: z.string(),
});

const listQuerySchema = z
  .object({
    limit: z
      .string()
      .trim()
      .regex(/^\d+$/, 'must be a whole number')
      .transform(Number)
      .pipe(z.number().int().min(1).max(1000))
      .optional(),
    pageToken: z
      .string()
      .max(4096)
      .regex(/^[A-Za-z0-9_.-]+$/, 'must be a nextPageToken from an earlier answer')
      .optional(),
  })
  .strict();
const emailParamsSchema = z.object({ email: suppressionAddressSchema }).strict();

function ledgerOf(c: ApiContext): LeadLedger {
  if (!c.service.ledger) throw new LeadError(503, 'ledger_unavailable', 'this API has no lead ledger');
  return c.service.ledger;
}

export const SUPPRESSION_ROUTES: readonly V1Route[] = [
  route({
    method: 'GET',
    url: '/v1/suppressions',
    scope: 'admin',
    query: listQuerySchema,
    summary: 'The address-level suppression list (never mailed, under any lead id), in address order',
    responses: {
      200: {
        description: 'a page of the list; nextPageToken while there is more',
        schema: z.object({ suppressions: z.array(suppressionDoc), nextPageToken: z.string().nullable() }),
      },
    },
    async handle(c, { query: { limit, pageToken } }) {
      let after: string | undefined;
      if (pageToken !== undefined) {
        after = c.links.unseal(PAGE, '', pageToken)?.toString();
        if (after === undefined) {
          const message = 'must be the nextPageToken of an earlier answer';
          throw new LeadError(400, 'invalid_input', `invalid pageToken: ${message}`, [{ path: 'pageToken', message }]);
        }
      }
      const ledger = ledgerOf(c);
      const page = await c.service.fromLedger(() =>
        ledger.suppressionPage({ limit: limit ?? DEFAULT_LIMIT, ...(after ? { after } : {}) }),
      );
      const last = page.entries.at(-1)?.address;
      return {
        suppressions: page.entries,
        nextPageToken: page.more && last ? c.links.seal(PAGE, '', Buffer.from(last)) : null,
      };
    },
  }),
  route({
    method: 'POST',
    url: '/v1/suppressions',
    scope: 'admin',
    summary: 'Suppress an address (idempotent: a second add keeps the first entry)',
    body: { schema: suppressionInputSchema },
    responses: {
      201: { description: 'added', schema: suppressionDoc },
      200: { description: 'already on the list (as it was)', schema: suppressionDoc },
    },
    async handle(c, _input, req, reply) {
      const input = validate(suppressionInputSchema, req.body, 'suppression');
      const ledger = ledgerOf(c);
      const added = await c.service.fromLedger(() => ledger.suppress(input.email, input.reason ?? MANUAL_REASON));
      const entry = (await c.service.fromLedger(() => ledger.suppression(input.email))) as Suppression;
      return reply
        .status(added ? 201 : 200)
        .header('location', `/v1/suppressions/${encodeURIComponent(entry.address)}`)
        .send(entry);
    },
  }),
  route({
    method: 'DELETE',
    url: '/v1/suppressions/:email',
    scope: 'admin',
    params: emailParamsSchema,
    summary: 'Take an address off the list: nurture mail may go to it again',
    responses: {
      200: { description: 'removed', schema: z.object({ address: z.string(), removed: z.literal(true) }) },
      404: errorAnswer('the address is not on the list'),
    },
    async handle(c, { params: { email } }) {
      const ledger = ledgerOf(c);
      const removed = await c.service.fromLedger(() => ledger.unsuppress(email));
      const address = normalizeAddress(email);
      if (!removed) throw new LeadError(404, 'not_found', `${address} is not on the suppression list`);
      return { address, removed: true };
    },
  }),
];

/** Registers the table on the /v1 instance (its hooks check the token, the admin scope and JSON). */
export async function suppressionRoutes(v1: FastifyInstance, c: ApiContext): Promise<void> {
  registerV1Table(v1, c, SUPPRESSION_ROUTES);
}
