/** `leadctl event`: one engagement event, by signal-with-start (an unknown lead starts). */
import type { Command } from 'commander';
import { parseDate } from '../import.js';
import type { Cli } from '../shared.js';

export function addEventCommand(program: Command, { io, action }: Cli) {
  program
    .command('event')
    .description('send an engagement event (starts the lead if it is unknown)')
    .argument('<leadId>')
    .argument('<type>', 'an event type of the config (behavior keys), or unsubscribe / hard_bounce')
    .option('--event-id <id>', 'idempotency key (default: a random uuid)')
    .option('--occurred-at <iso>', 'when it happened (ISO 8601; default now)')
    .option('--campaign <id>')
    .option('--channel <c>')
    .option('--asset <a>')
    .option('--email <email>', 'lets the event create an unknown lead with this address')
    .action(
      action(async (ctx, json, leadId: string, type: string, o: Record<string, string | undefined>) => {
        const ev: Record<string, unknown> = { leadId, type, eventId: o.eventId ?? crypto.randomUUID() };
        if (o.occurredAt !== undefined) {
          const d = parseDate(o.occurredAt, 'iso');
          ev.occurredAt = 'value' in d ? d.value : o.occurredAt;
        }
        for (const k of ['campaign', 'channel', 'asset', 'email']) if (o[k] !== undefined) ev[k] = o[k];
        const [valid] = ctx.service.validateEvents(ev);
        await (await ctx.connect()).sendEvent(valid!);
        io.out(
          json
            ? JSON.stringify({ accepted: 1, eventId: valid!.eventId })
            : `sent ${valid!.type} for ${valid!.leadId} (event id ${valid!.eventId})`,
        );
      }),
    );
}
