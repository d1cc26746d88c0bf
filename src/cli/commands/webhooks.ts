/**
 * `leadctl webhooks deliveries`: the webhook delivery log (docs/webhooks.md) from the lead ledger
 * (no Temporal needed), newest first: each change's delivery to each endpoint, its status, attempts
 * and last answer. The filters are validated with the schema `GET /v1/webhooks/deliveries` uses
 * (src/webhooks/deliveries.ts): an unknown status or a limit below 1 is exit 2 naming the field.
 */
import type { Command } from 'commander';
import { validate } from '../../lead-service.js';
import { DELIVERY_STATUSES, WebhookLog } from '../../ledger/webhooks.js';
import { deliveriesQuerySchema, deliveryView, type DeliveryView, listArgs } from '../../webhooks/deliveries.js';
import { table, visible, visibleJson } from '../output.js';
import { type Cli, collect } from '../shared.js';

const COLUMNS = ['WEBHOOK ID', 'ENDPOINT', 'LEAD', 'EVENT', 'STATUS', 'ATTEMPTS', 'LAST', 'CREATED', 'DELIVERED'];
const MAX_ERROR = 60;

/** The last answer: its status code, else the error, shortened for a table cell. */
function lastAnswer(d: DeliveryView): string | undefined {
  const text = d.lastError ?? (d.lastStatus !== undefined ? `HTTP ${d.lastStatus}` : undefined);
  if (text === undefined) return undefined;
  const one = visible(text.replace(/\s+/g, ' '));
  return one.length > MAX_ERROR ? `${one.slice(0, MAX_ERROR - 1)}…` : one;
}

export function addWebhooksCommand(program: Command, { io, action }: Cli) {
  const webhooks = program.command('webhooks').description('outgoing webhooks (docs/webhooks.md)');
  webhooks
    .command('deliveries')
    .description('the delivery log from the lead ledger, newest first: status, attempts and last answer')
    .option('--lead <id>', 'only this lead')
    .option('--endpoint <id>', 'only this endpoint')
    .option('--status <status>', `${DELIVERY_STATUSES.join('|')} (repeatable, or comma-separated)`, collect)
    .option('--limit <n>', 'at most this many (default 100, at most 1000)')
    .action(
      action(async (ctx, json, o: { lead?: string; endpoint?: string; status?: string[]; limit?: string }) => {
        const q = validate(deliveriesQuerySchema, o, 'options');
        const ledger = await ctx.ledger();
        const rows = (await new WebhookLog(ledger.pool).list(listArgs(q))).map(deliveryView);
        if (json) {
          io.out(visibleJson({ deliveries: rows }));
          return;
        }
        const cells = rows.map((d) => [
          d.webhookId,
          visible(d.endpointId),
          visible(d.leadId),
          d.eventType,
          d.status,
          d.attempts,
          lastAnswer(d),
          d.createdAt,
          d.deliveredAt,
        ]);
        io.out(table(cells, COLUMNS));
        io.out(`${rows.length} deliver${rows.length === 1 ? 'y' : 'ies'}`);
      }),
    );
}
