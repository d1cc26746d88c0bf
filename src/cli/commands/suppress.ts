/**
 * `leadctl suppress list|add|remove`: the address-level suppression list (CONTRACT.md
 * "Integrations"), read and written in the lead ledger directly (no Temporal needed). Input is
 * checked with the API's schema (src/domain/suppression.ts): a bad address or reason is exit 2
 * naming the field; removing an address that is not on the list is exit 2 too.
 */
import type { Command } from 'commander';
import { LeadError, validate } from '../../lead-service.js';
import { MANUAL_REASON, suppressionInputSchema } from '../../suppression-input.js';
import { normalizeAddress } from '../../ledger/ledger.js';
import { table, visible, visibleJson } from '../output.js';
import { type Cli, intOption } from '../shared.js';

export function addSuppressCommand(program: Command, { io, action }: Cli) {
  const suppress = program
    .command('suppress')
    .description('the address-level suppression list: addresses never mailed again, under any lead id');

  suppress
    .command('list')
    .description('the suppressed addresses, in address order')
    .option('--limit <n>', 'at most this many (default 1000)', intOption('limit', 1))
    .action(
      action(async (ctx, json, o: { limit?: number }) => {
        const ledger = await ctx.ledger();
        const { entries, more } = await ledger.suppressionPage({ limit: o.limit ?? 1000 });
        if (json) {
          io.out(visibleJson({ suppressions: entries, more }));
          return;
        }
        const rows = entries.map((s) => [
          visible(s.address),
          visible(s.reason),
          s.leadId && visible(s.leadId),
          s.createdAt,
        ]);
        io.out(table(rows, ['ADDRESS', 'REASON', 'LEAD', 'SINCE']));
        io.out(`${entries.length} address${entries.length === 1 ? '' : 'es'}${more ? ' (more: raise --limit)' : ''}`);
      }),
    );

  suppress
    .command('add')
    .description('suppress an address (idempotent: an address already on the list keeps its entry)')
    .argument('<email>')
    .option('--reason <reason>', `why (default ${MANUAL_REASON})`)
    .action(
      action(async (ctx, json, email: string, o: { reason?: string }) => {
        const input = validate(suppressionInputSchema, { email, ...o }, 'suppression');
        const ledger = await ctx.ledger();
        const added = await ledger.suppress(input.email, input.reason ?? MANUAL_REASON);
        const entry = (await ledger.suppression(input.email))!;
        if (json) io.out(JSON.stringify({ ...entry, added }));
        else
          io.out(
            `${added ? 'suppressed' : 'already suppressed'}: ${visible(entry.address)} (${visible(entry.reason)})`,
          );
      }),
    );

  suppress
    .command('remove')
    .description('take an address off the list (nurture mail may go to it again)')
    .argument('<email>')
    .action(
      action(async (ctx, json, email: string) => {
        const input = validate(suppressionInputSchema, { email }, 'suppression');
        const ledger = await ctx.ledger();
        const address = normalizeAddress(input.email);
        if (!(await ledger.unsuppress(address)))
          throw new LeadError(404, 'not_found', `${address} is not on the suppression list`);
        io.out(json ? JSON.stringify({ address, removed: true }) : `removed: ${visible(address)}`);
      }),
    );
}
