/**
 * `leadctl export <leadId>`: everything held about a lead (GDPR article 15; the same JSON as
 * `GET /v1/leads/:leadId/export`, LeadService.exportLead) on stdout. Exit 2 for a bad or missing id,
 * an unknown lead or an erased one.
 */
import type { Command } from 'commander';
import { validate } from '../../lead-service.js';
import { leadIdSchema } from '../../domain/lead.js';
import { visibleJson } from '../output.js';
import { type Cli, leadIdArgument } from '../shared.js';

export function addExportCommand(program: Command, { io, action }: Cli) {
  program
    .command('export')
    .description('everything held about a lead (state, ledger rows, suppressions, workflow runs), as JSON on stdout')
    .argument('[leadId]')
    .action(
      action(async (ctx, _json, id: string | undefined, _o: unknown, cmd: Command) => {
        const leadId = leadIdArgument(io, cmd, id);
        if (leadId === undefined) return 2;
        validate(leadIdSchema, leadId, 'leadId', ['leadId']);
        io.out(visibleJson(await (await ctx.connect()).exportLead(leadId)));
      }),
    );
}
