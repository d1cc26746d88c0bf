/** `leadctl wedged`: leads whose workflow task keeps failing (src/cli/wedged.ts), with the reset for each. */
import type { Command } from 'commander';
import type { Cli } from '../shared.js';
import { wedgedLeads } from '../wedged.js';

/** Exit code 3 when any lead is wedged, so a cron or probe can alert on it. */
export function addWedgedCommand(program: Command, { io: { out }, action }: Cli) {
  program
    .command('wedged')
    .description(
      'leads whose workflow task keeps failing (TemporalReportedProblems), with the reset that recovers ' +
        'each; exit 3 if any',
    )
    .option('--limit <n>', 'at most this many (default 100)', (v) => Math.max(1, Number.parseInt(v, 10) || 100))
    .action(
      action(async (ctx, json, o: { limit?: number }) => {
        const leads = await wedgedLeads((await ctx.connect({ ledger: false })).client, o.limit ?? 100);
        if (json) out(JSON.stringify({ leads }, null, 2));
        else if (!leads.length) out('no wedged leads');
        else {
          for (const l of leads) {
            const attempts = `${l.attempts ? `  attempt ${l.attempts}` : ''}${l.since ? ` since ${l.since}` : ''}`;
            out(`${l.leadId}  ${l.problems.join(' ')}${attempts}`);
            if (l.failure) out(`  failure: ${l.failure.split('\n')[0]}`);
            out(`  recover: ${l.reset}`);
          }
          const see = '(see docs/operations.md, "A lead whose workflow task fails")';
          out(`${leads.length} wedged lead${leads.length === 1 ? '' : 's'} ${see}`);
        }
        return leads.length ? 3 : 0;
      }),
    );
}
