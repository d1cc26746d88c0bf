/**
 * `leadctl import leads|events|outcomes FILE.csv`: runs the CSV import of src/cli/import.ts with
 * LeadService as its sender, shows progress and bad rows, then waits for the ledger to show what
 * was sent (leads and outcomes), so the next command reads it.
 */
import { SingleBar } from 'cli-progress';
import { type Command, Option } from 'commander';
import { existsSync, statSync } from 'node:fs';
import type { ImportCheck } from '../../lead-service.js';
import { knownEventTypes } from '../../domain/config.js';
import type { ImportedFact, LeadEvent } from '../../domain/lead.js';
import {
  type BadRow,
  DATE_FORMATS,
  type DateFormat,
  describeBadRow,
  formatSummary,
  IMPORT_KINDS,
  ImportFatalError,
  type ImportKind,
  ImportSetupError,
  type ImportSummary,
  runImport,
  type RunImportOptions,
  waitForLedger,
} from '../import.js';
import { type Cli, collect, type Context, intOption, type Io, UsageError } from '../shared.js';

interface ImportOptions {
  map: string[];
  set: string[];
  type?: string;
  dateFormat: DateFormat;
  emailTemplate?: string;
  concurrency?: number;
  limit?: number;
  wait?: number;
  dryRun?: boolean;
}

/** Bad rows printed on stderr (without --json): at most this many, the rest counted. */
const MAX_SHOWN = 100;

const IMPORT_HELP = [
  '',
  'Columns named like LeadInput / LeadEvent / LeadOutcome fields are read as they are; others are',
  'ignored unless mapped (the summary lists them). Bad rows are reported by line number with the field',
  'and reason; good rows still go in. Importing a file twice changes nothing: events without an',
  'eventId get a deterministic id (a hash of lead id, type, occurredAt and the row), imported',
  'histories and outcomes one of their own.',
  '',
  'Leads may carry an imported history: stage, becameMqlAt, becameSqlAt, becameOpportunityAt,',
  'becameCustomerAt. The lead enters each dated stage at its date (transitions with reason',
  '"imported"); a bad stage, a date in the future or dates out of funnel order make the row bad.',
  'Outcomes are { leadId, outcome, occurredAt?, reason?, note?, rep? } with outcome accepted, rejected',
  '(reason: not_ready, no_response, bad_fit, duplicate, other), won or lost; applied at occurredAt',
  '(default: now), skipping stages the history never recorded (a won mql becomes a customer). A row',
  "for a lead the ledger does not have, or dated before the lead's MQL date, is bad.",
  'Leads and outcomes wait until the ledger shows them, so the next import reads them (--wait).',
  '',
  'Olist, as published (CONTRACT.md "Importing a real history"):',
  '  leadctl import leads olist-marketing-qualified-leads.csv --map mql_id=leadId --map origin=channel \\',
  '    --map first_contact_date=becameMqlAt --set stage=mql --date-format dd-mm-yyyy' +
    " --email-template '{leadId}@import.invalid'",
  '  leadctl import outcomes olist-closed-deals.csv --map mql_id=leadId --map won_date=occurredAt' +
    ' --set outcome=won --date-format dd-mm-yyyy',
  'or the MQLs as form submissions on their first-contact date (anonymous leads):',
  '  leadctl import events olist-marketing-qualified-leads.csv --type form_submit --map mql_id=leadId \\',
  '    --map first_contact_date=occurredAt --map origin=campaign --map landing_page_id=asset --date-format dd-mm-yyyy',
].join('\n');

/** The kind argument, and the options that only one kind takes. */
function importKind(kindArg: string, o: ImportOptions): ImportKind {
  if (!(IMPORT_KINDS as readonly string[]).includes(kindArg)) {
    throw new UsageError('kind', `expected ${IMPORT_KINDS.join(' or ')}, got "${kindArg}"`);
  }
  const kind = kindArg as ImportKind;
  if (o.type && kind !== 'events') throw new UsageError('--type', 'only for import events');
  if (o.emailTemplate && kind !== 'leads') throw new UsageError('--email-template', 'only for import leads');
  return kind;
}

/**
 * LeadService as the import's sender, per kind; `checks` collects what the ledger should show once
 * each lead's workflow has applied its row.
 */
function senders(ctx: Context, checks: ImportCheck[]): Record<ImportKind, RunImportOptions['send']> {
  return {
    leads: async (v, row) => {
      const r = await (await ctx.connect()).importLead(v, row.fact);
      if (!r.unchanged) checks.push({ leadId: r.leadId, stages: row.stages ?? [] });
      return r.created ? 'created' : r.unchanged ? 'unchanged' : 'updated';
    },
    events: async (v) => {
      await (await ctx.connect()).sendEvent(v as LeadEvent);
      return 'sent';
    },
    outcomes: async (_v, row) => {
      const fact = row.fact as Extract<ImportedFact, { outcome: string }>;
      const r = await (await ctx.connect()).importOutcome(row.leadId, fact);
      if (r === 'sent') checks.push({ leadId: row.leadId, outcome: fact.outcome, occurredAt: fact.occurredAt });
      return r;
    },
  };
}

/**
 * Bad rows on stderr as they come, the first MAX_SHOWN of them (none with --json: the summary lists
 * them); held back while a progress bar is drawn, printed by `flush` once it is gone.
 */
function badRowPrinter(io: Io, json: boolean, bar: SingleBar | undefined) {
  const held: string[] = [];
  let shown = 0;
  return {
    onBadRow: (b: BadRow) => {
      if (json || shown >= MAX_SHOWN) return;
      shown++;
      if (bar) held.push(describeBadRow(b));
      else io.err(describeBadRow(b));
    },
    flush: () => held.splice(0).forEach((l) => io.err(l)),
    shown: () => shown,
  };
}

/** Streams the file through runImport, with a progress bar on a terminal; on a fatal error, the summary so far. */
async function importFile(
  ctx: Context,
  io: Io,
  json: boolean,
  kind: ImportKind,
  file: string,
  o: ImportOptions,
  checks: ImportCheck[],
): Promise<ImportSummary> {
  const knownTypes = kind === 'events' ? knownEventTypes(ctx.config().config) : undefined;
  const svc = o.dryRun ? undefined : ctx.service;
  const size = statSync(file).size;
  const format = 'importing [{bar}] {percentage}% | {rows} rows | {imported} in | {bad} bad';
  const bar =
    io.stderrIsTTY && !json
      ? new SingleBar({ stream: process.stderr, format, hideCursor: true, clearOnComplete: true })
      : undefined;
  const bad = badRowPrinter(io, json, bar);
  bar?.start(Math.max(size, 1), 0, { rows: 0, imported: 0, bad: 0 });
  let summary: ImportSummary;
  try {
    summary = await runImport({
      kind,
      file,
      map: o.map,
      set: [...o.set, ...(o.type ? [`type=${o.type}`] : [])],
      dateFormat: o.dateFormat,
      emailTemplate: o.emailTemplate,
      knownTypes,
      concurrency: o.concurrency ?? 16,
      limit: o.limit,
      dryRun: !!o.dryRun,
      send: svc && senders(ctx, checks)[kind],
      onBadRow: bad.onBadRow,
      onProgress: (p) =>
        bar?.update(Math.min(p.bytesRead, size), {
          rows: p.rowsRead,
          imported: p.imported,
          bad: p.bad,
        }),
    });
  } catch (err) {
    if (err instanceof ImportFatalError) {
      bar?.stop();
      bad.flush();
      if (json) io.out(JSON.stringify({ ...err.summary, error: err.message }, null, 2));
      else io.out(formatSummary(err.summary));
    }
    throw err;
  } finally {
    bar?.stop();
  }
  bad.flush();
  if (!json && summary.bad > bad.shown()) {
    io.err(`... and ${summary.bad - bad.shown()} more bad rows (--json lists up to 1000)`);
  }
  return summary;
}

/** Waits for the ledger to show `checks` (recorded in the summary); returns those it still does not show. */
async function waitForImported(
  ctx: Context,
  io: Io,
  json: boolean,
  checks: ImportCheck[],
  waitSeconds: number,
  summary: ImportSummary,
): Promise<ImportCheck[]> {
  const svc = ctx.service;
  const format = 'waiting for the ledger [{bar}] {value}/{total}';
  const waitBar =
    io.stderrIsTTY && !json
      ? new SingleBar({ stream: process.stderr, format, hideCursor: true, clearOnComplete: true })
      : undefined;
  waitBar?.start(checks.length, 0);
  try {
    const r = await waitForLedger({
      items: checks,
      check: (batch) => svc.importedInLedger(batch),
      stallMs: waitSeconds * 1000,
      onProgress: (n) => waitBar?.update(n),
    });
    summary.ledger = { recorded: r.recorded, pending: r.pending.length, waitedMs: r.waitedMs };
    return r.pending;
  } finally {
    waitBar?.stop();
  }
}

export function addImportCommand(program: Command, { io, action }: Cli) {
  program
    .command('import')
    .description(
      'import a CSV of leads (LeadInput columns, with an optional imported history), ' +
        'events (LeadEvent columns) or sales outcomes (LeadOutcome columns)',
    )
    .argument('<kind>', 'leads, events or outcomes')
    .argument('<file>', 'CSV with a header row')
    .option(
      '--map <column=field>',
      "read another tool's column as a field, e.g. 'E-mail Address=email' " +
        '(repeatable; field may be profile.<name>)',
      collect,
      [],
    )
    .option(
      '--set <field=value>',
      'a value for every row that has none, e.g. consent.email=false or stage=mql ' + '(repeatable)',
      collect,
      [],
    )
    .option('--type <type>', 'events: the event type of rows without one (same as --set type=T)')
    .addOption(
      new Option(
        '--date-format <format>',
        'how dates are written (occurredAt and fields ending in At; ' + 'the dd/mm forms take an optional " HH:mm")',
      )
        .choices(DATE_FORMATS)
        .default('iso'),
    )
    .option(
      '--email-template <template>',
      "leads: address for rows without an email, e.g. '{leadId}@import.invalid' " +
        '({field} placeholders); such leads get consent.email=false',
    )
    .option('--concurrency <n>', 'rows in flight (default 16)', intOption('concurrency', 1))
    .option('--limit <n>', 'read only the first N data rows', intOption('limit', 1))
    .option(
      '--wait <seconds>',
      'leads and outcomes: wait until the ledger shows what was sent, giving up after ' +
        'this long without progress (default 120; 0: do not wait)',
      intOption('wait', 0),
    )
    .option('--dry-run', 'validate and report, send nothing (outcomes: the ledger checks need a real run)')
    .addHelpText('after', IMPORT_HELP)
    .action(
      action(async (ctx, json, kindArg: string, file: string, o: ImportOptions) => {
        const kind = importKind(kindArg, o);
        if (!existsSync(file) || !statSync(file).isFile()) throw new ImportSetupError(`${file}: no such file`);
        const checks: ImportCheck[] = [];
        const summary = await importFile(ctx, io, json, kind, file, o, checks);
        const wait = o.wait ?? 120;
        const waits = !o.dryRun && kind !== 'events' && wait > 0;
        const pending = waits ? await waitForImported(ctx, io, json, checks, wait, summary) : [];
        io.out(json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
        if (pending.length) {
          const first = pending
            .slice(0, 3)
            .map((p) => p.leadId)
            .join(', ');
          io.err(
            `error: the ledger does not show ${pending.length} of the ${checks.length} ${kind} sent ` +
              `(first: ${first}) after ${wait} s without progress: is a worker running on this task queue? ` +
              'What was sent is in Temporal and is applied once a worker runs it; import again to check ' +
              '(nothing is applied twice)',
          );
          return 1;
        }
        return summary.bad > 0 ? 2 : 0;
      }),
    );
}
