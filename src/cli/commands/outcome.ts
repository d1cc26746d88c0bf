/**
 * `leadctl outcome`: the salesOutcome update, printed as the lead's stage before and after. Which
 * outcome a lead takes is LeadService.salesOutcome's to decide, so leadctl and
 * POST /v1/leads/:id/sales-outcome answer alike (a WrongStageError: exit 2 here, 409 there).
 */
import type { Command } from 'commander';
import { validate } from '../../lead-service.js';
import { leadIdSchema, salesOutcomeSchema } from '../../domain/lead.js';
import type { Cli } from '../shared.js';

export function addOutcomeCommand(program: Command, { io, action }: Cli) {
  program
    .command('outcome')
    .description('record a sales outcome: accepted|rejected (lead in sql), won|lost (opportunity)')
    .argument('<leadId>')
    .argument('<outcome>', 'accepted, rejected, won or lost')
    .option('--reason <r>', 'rejected: not_ready, no_response, bad_fit, duplicate, other; lost: free text')
    .option('--note <text>')
    .option('--rep <who>', 'the sales rep')
    .action(
      action(async (ctx, json, leadId: string, outcome: string, o: Record<string, string | undefined>) => {
        const raw: Record<string, unknown> = { outcome };
        for (const k of ['reason', 'note', 'rep']) if (o[k] !== undefined) raw[k] = o[k];
        validate(leadIdSchema, leadId, 'leadId', ['leadId']);
        validate(salesOutcomeSchema, raw, 'sales outcome');
        const svc = await ctx.connect();
        const before = await svc.getState(leadId);
        const s = await svc.salesOutcome(leadId, raw);
        const owner = s.owner ? ` (owner ${s.owner})` : '';
        io.out(json ? JSON.stringify(s, null, 2) : `lead ${s.leadId}: ${before.stage} -> ${s.stage}${owner}`);
      }),
    );
}
