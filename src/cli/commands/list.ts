/** `leadctl list`: a search of the lead ledger, as a table or (--json) the API's page. */
import type { Command } from 'commander';
import { table, visible, visibleJson } from '../output.js';
import { type Cli, intOption } from '../shared.js';
import type { SearchParams } from '../../lead-service.js';

const COLUMNS = ['LEAD', 'STAGE', 'SCORE', 'OWNER', 'CAMPAIGN', 'CONSENT', 'MQL AT', 'SQL AT'];

export function addListCommand(program: Command, { io, action }: Cli) {
  program
    .command('list')
    .description(
      'leads by stage, owner, first-touch campaign, scoring model and score, from the lead ledger ' +
        '(every lead ever recorded)',
    )
    .option('--stage <stage>')
    .option('--owner <email>')
    .option('--campaign <id>')
    .option('--model <id>', 'scored by this scoring model (scoring.models id)')
    .option('--min-score <n>', 'score at least', intOption('minScore', -1_000_000))
    .option('--limit <n>', 'at most this many (default 50, at most 1000)', intOption('limit', 1))
    .option('--page-token <token>', 'the next page, as printed by a previous list with the same filters')
    .action(
      action(async (ctx, json, o: SearchParams) => {
        const q = { ...o, limit: o.limit ?? 50 };
        ctx.service.validateSearch(q);
        const r = await (await ctx.ledgerOnly()).search(q);
        if (json) {
          io.out(visibleJson(r));
          return;
        }
        const text = (v: string | undefined) => (v === undefined ? v : visible(v));
        const rows = r.leads.map((l) => [
          l.leadId,
          l.stage,
          l.score,
          text(l.owner),
          text(l.campaign),
          l.consent,
          l.becameMqlAt,
          l.becameSqlAt,
        ]);
        io.out(table(rows, COLUMNS));
        const more = r.nextPageToken ? `; more with --page-token ${r.nextPageToken}` : '';
        io.out(`${r.leads.length} lead${r.leads.length === 1 ? '' : 's'}${more}`);
      }),
    );
}
