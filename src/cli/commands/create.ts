/** `leadctl create`: a new lead, or a profile update of an existing one (LeadService.upsertLead). */
import type { Command } from 'commander';
import { validate } from '../../lead-service.js';
import { leadInputSchema } from '../../domain/lead.js';
import { coerceValue, resolveField } from '../import.js';
import { type Cli, collect, UsageError } from '../shared.js';

/** The options that are LeadInput fields as they are. */
const FIELD_OPTIONS = [
  'firstName',
  'lastName',
  'company',
  'jobTitle',
  'seniority',
  'department',
  'industry',
  'country',
  'timezone',
  'campaign',
  'channel',
];

/** `--set field=value` pairs onto a LeadInput, values coerced as the CSV import does. */
function applySets(target: Record<string, unknown>, specs: string[]) {
  for (const spec of specs) {
    const i = spec.indexOf('=');
    if (i <= 0) throw new UsageError('--set', `"${spec}" must look like field=value`);
    const name = spec.slice(0, i);
    const field = resolveField('leads', name);
    if (!field) throw new UsageError(name, 'not a LeadInput field (use profile.<name> for a custom attribute)');
    const raw = spec.slice(i + 1).trim();
    const r = coerceValue(field, raw);
    if ('error' in r) throw new UsageError(field, r.error);
    if (field === 'consent.email') target.consent = { email: r.value };
    else target[field.replace(/^profile\./, '')] = r.value;
  }
}

export function addCreateCommand(program: Command, { io, action }: Cli) {
  program
    .command('create')
    .description('create a lead, or update the profile of an existing one')
    .requiredOption('--lead-id <id>', "the caller's contact id (1-128 of A-Z a-z 0-9 . _ : @ + -)")
    .requiredOption('--email <email>', 'email address')
    .option('--first-name <name>')
    .option('--last-name <name>')
    .option('--company <name>')
    .option('--job-title <title>')
    .option('--seniority <s>')
    .option('--department <d>')
    .option('--industry <i>')
    .option('--company-size <n>', 'employees (a whole number)')
    .option('--country <cc>', 'ISO-3166 alpha-2, e.g. US')
    .option('--timezone <tz>', 'IANA zone, e.g. Europe/Berlin')
    .option('--campaign <id>', 'first-touch campaign')
    .option('--channel <c>')
    .option(
      '--set <field=value>',
      'any other LeadInput field, e.g. consent.email=false or profile.plan=pro ' + '(repeatable)',
      collect,
      [],
    )
    .action(
      action(async (ctx, json, o: Record<string, string | string[] | undefined>) => {
        const input: Record<string, unknown> = { leadId: o.leadId, email: o.email };
        for (const k of FIELD_OPTIONS) if (o[k] !== undefined) input[k] = o[k];
        if (o.companySize !== undefined) {
          const r = coerceValue('companySize', String(o.companySize));
          if ('error' in r) throw new UsageError('companySize', r.error);
          input.companySize = r.value;
        }
        applySets(input, (o.set as string[]) ?? []);
        validate(leadInputSchema, input, 'lead');
        const r = await (await ctx.connect()).upsertLead(input);
        io.out(
          json ? JSON.stringify(r) : r.created ? `created lead ${r.leadId}` : `updated lead ${r.leadId} (profile)`,
        );
      }),
    );
}
