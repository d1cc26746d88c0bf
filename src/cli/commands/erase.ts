/**
 * `leadctl erase <leadId>`: erasure (GDPR article 17; CONTRACT.md "Integrations", the same as
 * `DELETE /v1/leads/:leadId`): LeadService.erase deletes the lead's workflow runs and ledger rows and
 * keeps only salted hashes (its address stays suppressed). Exit 2 for a bad or missing id or an
 * unknown lead; erasing an erased lead again is done (exit 0, "already erased").
 */
import type { Command } from 'commander';
import { validate } from '../../lead-service.js';
import { leadIdSchema } from '../../domain/lead.js';
import { visible } from '../output.js';
import { type Cli, leadIdArgument } from '../shared.js';

export function addEraseCommand(program: Command, { io, action }: Cli) {
  program
    .command('erase')
    .description(
      'erase a lead: its workflow runs and histories, its ledger rows and mail records; only a salted hash of ' +
        'its address stays, suppressed, so it is never mailed again',
    )
    .argument('[leadId]')
    .action(
      action(async (ctx, json, id: string | undefined, _o: unknown, cmd: Command) => {
        const leadId = leadIdArgument(io, cmd, id);
        if (leadId === undefined) return 2;
        validate(leadIdSchema, leadId, 'leadId', ['leadId']);
        const r = await (await ctx.connect()).erase(leadId);
        if (json) io.out(JSON.stringify(r));
        else
          io.out(
            `${r.alreadyErased ? 'already erased' : 'erased'}: lead ${visible(leadId)} ` +
              `(${r.runsDeleted} workflow runs, ${r.rowsDeleted} ledger rows deleted)`,
          );
      }),
    );
}
