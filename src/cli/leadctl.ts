/**
 * leadctl: the ops command line (CONTRACT.md §Commands), a thin shell over LeadService.
 * `npx leadctl --help` lists the commands; bin/leadctl.mjs runs this file through tsx.
 *
 * Exit codes: 0 done; 2 the engine refused the input (a bad field, an unknown event type, an
 * outcome that does not fit the stage, an unknown lead) or, for import, some rows were bad;
 * 1 anything else (Temporal unreachable, a bad config, an import that could not start or finish).
 */
import { Client, Connection } from '@temporalio/client';
import { SingleBar } from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { type ImportCheck, LeadError, LeadService, validate } from '../client.js';
import { dataConverter, payloadKeysForTools } from '../codec.js';
import { ConfigError, type LoadedConfig, loadConfigFile, validateConfig } from '../config-file.js';
import { knownEventTypes } from '../domain/config.js';
import { CONTROL_CHARS, type ImportedFact, type LeadEvent, leadIdSchema, leadInputSchema, type LeadState, salesOutcomeSchema } from '../domain/lead.js';
import { ROOT, settings } from '../env.js';
import { type Database, openLedgerDatabase } from '../ledger/database.js';
import { FUNNEL_GROUP_BYS, type Funnel } from '../ledger/funnel.js';
import { type FunnelGroupBy, LeadLedger, type TimelineEntry } from '../ledger/ledger.js';
import {
  type BadRow, coerceValue, DATE_FORMATS, type DateFormat, describeBadRow, formatSummary, IMPORT_KINDS, ImportFatalError, type ImportKind,
  ImportSetupError, type ImportSummary, parseDate, resolveField, runImport, type RunImportOptions, waitForLedger,
} from './import.js';
import { addWedgedCommand } from './wedged.js';

interface GlobalOptions { address: string; namespace: string; taskQueue: string; config?: string; json?: boolean }

export interface Io { out: (s: string) => void; err: (s: string) => void; stderrIsTTY: boolean }
const defaultIo: Io = {
  out: (s) => void process.stdout.write(`${s}\n`),
  err: (s) => void process.stderr.write(`${s}\n`),
  stderrIsTTY: !!process.stderr.isTTY,
};

/** An error the user caused on the command line: exit 2 like a refused input, with the field named. */
class UsageError extends LeadError {
  constructor(field: string, message: string) {
    super(400, 'invalid_input', `${field}: ${message}`, [{ path: field, message }]);
  }
}

/** The config: --config / LEAD_CONFIG, else ./config/default.yaml, else the one in this repo. */
function loadConfig(path?: string): LoadedConfig {
  if (path) return loadConfigFile(resolve(path));
  const local = resolve('config/default.yaml');
  if (existsSync(local)) return loadConfigFile(local);
  const file = join(ROOT, 'config', 'default.yaml');
  return validateConfig(parseYaml(readFileSync(file, 'utf8')), file, ROOT);
}

/**
 * The service on a lazy connection: commands validate their input first (no server needed, so
 * bad input is refused the same with Temporal down), then `connect()` before the first call.
 */
class Context {
  private connection?: Connection;
  private connecting?: Promise<void>;
  private svc?: LeadService;
  private loaded?: LoadedConfig;
  private database?: Database;
  private opening?: Promise<void>;
  constructor(readonly g: GlobalOptions) {}

  config(): LoadedConfig {
    return (this.loaded ??= loadConfig(this.g.config));
  }

  get service(): LeadService {
    if (this.svc) return this.svc;
    const config = this.config().config;
    this.connection = Connection.lazy({ address: this.g.address, connectTimeout: '5s' });
    const client = new Client({ connection: this.connection, namespace: this.g.namespace, dataConverter: dataConverter(payloadKeysForTools()) });
    return (this.svc = new LeadService(client, this.g.taskQueue, config));
  }

  /** The service, connected; a clear message when Temporal cannot be reached. */
  async connect(o: { ledger?: boolean } = {}): Promise<LeadService> {
    const svc = this.service;
    this.connecting ??= this.connection!.ensureConnected().catch((err) => {
      throw new Error(`cannot reach Temporal at ${this.g.address}: ${(err as Error).message} (set --address or TEMPORAL_ADDRESS)`);
    });
    await this.connecting;
    if (o.ledger === false) return svc;
    return this.ledgerOnly();
  }

  /**
   * The service with its ledger (state, search, funnel, timeline, imports): DATABASE_URL, else
   * the embedded database `npm start` shares under DATA_DIR. Without connect(), no Temporal
   * connection: searches, the funnel and timelines read the ledger alone, so they answer while
   * Temporal is away.
   */
  async ledgerOnly(): Promise<LeadService> {
    const svc = this.service;
    this.opening ??= (async () => {
      this.database = await openLedgerDatabase(settings());
      svc.ledger = new LeadLedger(this.database.pool);
    })();
    await this.opening;
    return svc;
  }

  async close() {
    await this.connection?.close().catch(() => undefined);
    await this.database?.close().catch(() => undefined);
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function intOption(field: string, min = 0) {
  return (value: string) => {
    if (!/^-?\d+$/.test(value.trim()) || Number(value) < min) throw new UsageError(field, `expected a whole number${min ? ` of at least ${min}` : ''}, got "${value}"`);
    return Number(value);
  };
}

function isoOption(field: string) {
  return (value: string) => {
    const r = parseDate(value, 'iso');
    if ('error' in r) throw new UsageError(field, r.error);
    return r.value;
  };
}

function byOption(value: string): FunnelGroupBy {
  if (!(FUNNEL_GROUP_BYS as readonly string[]).includes(value)) throw new UsageError('by', `must be one of ${FUNNEL_GROUP_BYS.join(', ')}, got "${value}"`);
  return value as FunnelGroupBy;
}

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

// ---- formatting --------------------------------------------------------------------------------

function table(rows: (string | number | undefined | null)[][], header: string[]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === undefined || c === null || c === '' ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ')).join('\n');
}

const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

/**
 * Terminal output shows control characters as `\uXXXX`: a lead's data (a profile recorded before
 * the schema refused them, a field name, a note) must not move the cursor, rewrite earlier lines
 * or reorder text on an operator's screen; `--json` escapes them the JSON way.
 */
const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
export const visible = (text: string) => text.replace(new RegExp(CONTROL_CHARS.source, 'g'), escapeChar);
/** JSON.stringify escapes C0 controls itself (and its own newlines are the layout); the rest are escaped here. */
const visibleJson = (value: unknown) => JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, escapeChar);

export function formatState(s: LeadState): string {
  const lines: string[] = [];
  const kv = (k: string, v: string | undefined) => v !== undefined && lines.push(`${k.padEnd(10)}${v}`);
  kv('lead', s.leadId);
  kv('stage', s.stage + (s.slaDeadline ? ` (sales SLA until ${s.slaDeadline})` : ''));
  kv('score', `${s.score.total} = fit ${s.score.fit} + engagement ${s.score.engagement}`);
  kv('owner', s.owner ?? '-');
  kv('consent', s.consent);
  kv('nurture', s.nurture.track ? `${s.nurture.track}, step ${s.nurture.step}${s.nurture.nextStepAt ? `, next at ${s.nurture.nextStepAt}` : ''}` : 'none');
  kv('campaign', s.campaign);
  kv('created', s.createdAt);
  kv('engaged', s.lastEngagedAt);
  kv('mql at', s.becameMqlAt);
  kv('sql at', s.becameSqlAt);
  kv('events', `${s.eventsProcessed} processed, recycled ${s.recycleCount} times${s.escalations ? `, ${s.escalations} escalations` : ''}`);
  kv('config', s.configVersion);
  const profile = Object.entries(s.profile ?? {}).filter(([, v]) => v !== undefined && v !== null);
  if (profile.length) kv('profile', profile.map(([k, v]) => `${k}=${v}`).join(', '));
  if (s.scoreLog?.length) {
    lines.push('', 'score changes (newest last):');
    for (const e of s.scoreLog) lines.push(`  ${e.at}  ${e.type.padEnd(18)} ${signed(e.points).padStart(4)}${e.note ? `  ${e.note}` : ''}`);
  }
  lines.push('', 'transitions:');
  if (!s.transitions.length) lines.push('  (none yet)');
  for (const t of s.transitions) lines.push(`  ${t.at}  ${t.from} -> ${t.to}  ${t.reason}`);
  return lines.map(visible).join('\n');
}

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const money = (x: number | undefined) => (x === undefined ? undefined : x.toFixed(2));

/** The Funnel as a reader wants it: stages now, the cohort's figures, a table of the groups. */
export function formatFunnel(f: Funnel): string {
  const range = f.since || f.until ? `${f.since ?? 'the start'} to ${f.until ?? 'now'}` : 'all time';
  const t = f.total;
  const lines = [
    'leads per stage now',
    table(Object.entries(f.stages).map(([st, n]) => [st, n]), ['STAGE', 'LEADS']),
    '',
    `cohort: leads that became MQL, ${range}`,
    `  MQLs ${t.mqls}, SQLs ${t.sqls}, opportunities ${t.opportunities}, customers ${t.customers}`,
    `  MQL-to-SQL ${pct(t.mqlToSqlRate)}, MQL-to-customer ${pct(t.mqlToCustomerRate)}`,
    `  median days MQL to SQL ${t.medianDaysMqlToSql ?? '-'}, MQL to customer ${t.medianDaysMqlToCustomer ?? '-'}`,
  ];
  if (t.cost !== undefined) lines.push(`  cost ${money(t.cost)}, cost per MQL ${money(t.costPerMql) ?? '-'}`);
  if (f.by) {
    lines.push('', `by ${f.by}`);
    lines.push(f.groups.length
      // A key is data (a campaign, a channel): shown escaped, so it cannot break the table.
      ? table(f.groups.map((g) => [visible(g.key), g.mqls, g.sqls, g.opportunities, g.customers, pct(g.mqlToSqlRate), pct(g.mqlToCustomerRate),
        g.medianDaysMqlToSql, g.medianDaysMqlToCustomer, money(g.cost), money(g.costPerMql)]),
      [f.by.toUpperCase(), 'MQLS', 'SQLS', 'OPPS', 'CUSTOMERS', 'MQL-SQL', 'MQL-CUST', 'DAYS TO SQL', 'DAYS TO CUST', 'COST', 'COST/MQL'])
      : '(no leads became MQL in the window)');
  }
  return lines.join('\n');
}

/** Entries per ledger read of `show --timeline` (it reads every page). */
const TIMELINE_PAGE_SIZE = 200;

/** One timeline entry as one line: when, what, the details. */
export function formatTimelineEntry(e: TimelineEntry): string {
  const kv = (o: Record<string, unknown>) => Object.entries(o).filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');
  let what: string;
  switch (e.kind) {
    case 'event': {
      const { points, note, ...rest } = e.attributes as { points?: number; note?: string } & Record<string, unknown>;
      what = [e.type, typeof points === 'number' ? signed(points) : undefined, `(id ${e.eventId}${e.occurredAt !== e.at ? `, occurred ${e.occurredAt}` : ''})`,
        kv(rest) || undefined].filter(Boolean).join(' ') + (note ? `: ${note}` : '');
      break;
    }
    case 'profile': what = kv(e.patch) || '(no fields)'; break;
    case 'transition': what = `${e.from} -> ${e.to}  ${e.reason}`; break;
    case 'mail': what = `${e.mailKind}${e.track ? ` ${e.track}` : ''}${e.step !== undefined ? ` step ${e.step}` : ''} ${e.status}  ${e.messageId}`; break;
    case 'outcome': what = `${e.outcome}${e.reason ? ` (${e.reason})` : ''}${e.rep ? ` by ${e.rep}` : ''}${e.note ? `: ${e.note}` : ''}${e.source !== 'live' ? ` [${e.source}]` : ''}`; break;
    default: what = JSON.stringify(e);
  }
  return visible(`${e.at}  ${(e as { kind: string }).kind.padEnd(10)}  ${what}`);
}

// ---- the program -------------------------------------------------------------------------------

export function buildProgram(io: Io = defaultIo, setExit: (code: number) => void = (c) => (process.exitCode = c)): Command {
  const program = new Command('leadctl');
  program
    .description('Operate the lead nurture engine on Temporal: create leads, send events, record sales outcomes, inspect, import CSV.')
    .addOption(new Option('--address <host:port>', 'Temporal frontend').env('TEMPORAL_ADDRESS').default('localhost:7233'))
    .addOption(new Option('--namespace <ns>', 'Temporal namespace').env('TEMPORAL_NAMESPACE').default('default'))
    .addOption(new Option('--task-queue <queue>', 'task queue of the lead workers').env('TEMPORAL_TASK_QUEUE').default('lead-nurture'))
    .addOption(new Option('--config <file>', 'engine config (event types, campaigns); default ./config/default.yaml').env('LEAD_CONFIG'))
    .option('--json', 'machine-readable output (errors as JSON on stderr)')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', '\nExit codes: 0 done; 2 input refused (bad field, unknown type, wrong stage, unknown lead) or some import rows bad; 1 other errors.')
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: (s) => io.err(s.replace(/\n$/, '')) })
    .exitOverride();

  const g = (cmd: Command) => cmd.optsWithGlobals<GlobalOptions>();
  const action = <A extends unknown[]>(fn: (ctx: Context, json: boolean, ...args: A) => Promise<number | void>) =>
    async (...args: A) => {
      const cmd = args[args.length - 1] as Command;
      const opts = g(cmd);
      const ctx = new Context(opts);
      try {
        const code = await fn(ctx, !!opts.json, ...args);
        setExit(typeof code === 'number' ? code : 0);
      } catch (err) {
        setExit(report(err, !!opts.json, io));
      } finally {
        await ctx.close();
      }
    };

  program.command('create')
    .description('create a lead, or update the profile of an existing one')
    .requiredOption('--lead-id <id>', "the caller's contact id (1-128 of A-Z a-z 0-9 . _ : @ + -)")
    .requiredOption('--email <email>', 'email address')
    .option('--first-name <name>').option('--last-name <name>').option('--company <name>').option('--job-title <title>')
    .option('--seniority <s>').option('--department <d>').option('--industry <i>')
    .option('--company-size <n>', 'employees (a whole number)')
    .option('--country <cc>', 'ISO-3166 alpha-2, e.g. US').option('--timezone <tz>', 'IANA zone, e.g. Europe/Berlin')
    .option('--campaign <id>', 'first-touch campaign').option('--channel <c>')
    .option('--set <field=value>', 'any other LeadInput field, e.g. consent.email=false or profile.plan=pro (repeatable)', collect, [])
    .action(action(async (ctx, json, o: Record<string, string | string[] | undefined>) => {
      const input: Record<string, unknown> = { leadId: o.leadId, email: o.email };
      for (const k of ['firstName', 'lastName', 'company', 'jobTitle', 'seniority', 'department', 'industry', 'country', 'timezone', 'campaign', 'channel']) {
        if (o[k] !== undefined) input[k] = o[k];
      }
      if (o.companySize !== undefined) {
        const r = coerceValue('companySize', String(o.companySize));
        if ('error' in r) throw new UsageError('companySize', r.error);
        input.companySize = r.value;
      }
      applySets(input, (o.set as string[]) ?? []);
      validate(leadInputSchema, input, 'lead');
      const r = await (await ctx.connect()).upsertLead(input);
      io.out(json ? JSON.stringify(r) : `${r.created ? 'created' : 'updated'} lead ${r.leadId}${r.created ? '' : ' (profile)'}`);
    }));

  program.command('event')
    .description('send an engagement event (starts the lead if it is unknown)')
    .argument('<leadId>').argument('<type>', 'an event type of the config (behavior keys), or unsubscribe / hard_bounce')
    .option('--event-id <id>', 'idempotency key (default: a random uuid)')
    .option('--occurred-at <iso>', 'when it happened (ISO 8601; default now)')
    .option('--campaign <id>').option('--channel <c>').option('--asset <a>').option('--email <email>', 'lets the event create an unknown lead with this address')
    .action(action(async (ctx, json, leadId: string, type: string, o: Record<string, string | undefined>) => {
      const ev: Record<string, unknown> = { leadId, type, eventId: o.eventId ?? crypto.randomUUID() };
      if (o.occurredAt !== undefined) {
        const d = parseDate(o.occurredAt, 'iso');
        ev.occurredAt = 'value' in d ? d.value : o.occurredAt;
      }
      for (const k of ['campaign', 'channel', 'asset', 'email']) if (o[k] !== undefined) ev[k] = o[k];
      const [valid] = ctx.service.validateEvents(ev);
      await (await ctx.connect()).sendEvent(valid!);
      io.out(json ? JSON.stringify({ accepted: 1, eventId: valid!.eventId }) : `sent ${valid!.type} for ${valid!.leadId} (event id ${valid!.eventId})`);
    }));

  program.command('outcome')
    .description('record a sales outcome: accepted|rejected (lead in sql), won|lost (opportunity)')
    .argument('<leadId>').argument('<outcome>', 'accepted, rejected, won or lost')
    .option('--reason <r>', 'rejected: not_ready, no_response, bad_fit, duplicate, other; lost: free text')
    .option('--note <text>').option('--rep <who>', 'the sales rep')
    .action(action(async (ctx, json, leadId: string, outcome: string, o: Record<string, string | undefined>) => {
      const raw: Record<string, unknown> = { outcome };
      for (const k of ['reason', 'note', 'rep']) if (o[k] !== undefined) raw[k] = o[k];
      validate(leadIdSchema, leadId, 'leadId', ['leadId']);
      validate(salesOutcomeSchema, raw, 'sales outcome');
      const svc = await ctx.connect();
      const before = await svc.getState(leadId);
      const s = await svc.salesOutcome(leadId, raw);
      io.out(json ? JSON.stringify(s, null, 2) : `lead ${s.leadId}: ${before.stage} -> ${s.stage}${s.owner ? ` (owner ${s.owner})` : ''}`);
    }));

  program.command('show')
    .description("a lead's state: stage, score breakdown, owner, consent, nurture, transitions (--json: the raw state); --timeline: everything recorded about it, in order")
    .argument('<leadId>')
    .option('--timeline', 'every event (with its points), profile change, transition, mail and outcome, in order, from the ledger (--json: the entries)')
    .action(action(async (ctx, json, leadId: string, o: { timeline?: boolean }) => {
      validate(leadIdSchema, leadId, 'leadId', ['leadId']);
      if (o.timeline) {
        const svc = await ctx.ledgerOnly();
        const entries: TimelineEntry[] = [];
        let pageToken: string | undefined;
        do {
          const page = await svc.timeline(leadId, { limit: TIMELINE_PAGE_SIZE, ...(pageToken ? { pageToken } : {}) });
          entries.push(...page.entries);
          pageToken = page.nextPageToken;
        } while (pageToken);
        if (json) io.out(visibleJson(entries));
        else io.out(entries.length ? entries.map(formatTimelineEntry).join('\n') : `lead ${visible(leadId)}: nothing recorded yet`);
        return;
      }
      const s = await (await ctx.connect()).getState(leadId);
      io.out(json ? visibleJson(s) : formatState(s));
    }));

  program.command('list')
    .description('leads by stage, owner, first-touch campaign and score, from the lead ledger (every lead ever recorded)')
    .option('--stage <stage>').option('--owner <email>').option('--campaign <id>')
    .option('--min-score <n>', 'score at least', intOption('minScore', -1_000_000))
    .option('--limit <n>', 'at most this many (default 50, at most 1000)', intOption('limit', 1))
    .option('--page-token <token>', 'the next page, as printed by a previous list with the same filters')
    .action(action(async (ctx, json, o: { stage?: string; owner?: string; campaign?: string; minScore?: number; limit?: number; pageToken?: string }) => {
      const q = { ...o, limit: o.limit ?? 50 };
      ctx.service.validateSearch(q);
      const r = await (await ctx.ledgerOnly()).search(q);
      if (json) {
        io.out(visibleJson(r));
        return;
      }
      const text = (v: string | undefined) => (v === undefined ? v : visible(v));
      io.out(table(r.leads.map((l) => [l.leadId, l.stage, l.score, text(l.owner), text(l.campaign), l.consent, l.becameMqlAt, l.becameSqlAt]),
        ['LEAD', 'STAGE', 'SCORE', 'OWNER', 'CAMPAIGN', 'CONSENT', 'MQL AT', 'SQL AT']));
      io.out(`${r.leads.length} lead${r.leads.length === 1 ? '' : 's'}${r.nextPageToken ? `; more with --page-token ${r.nextPageToken}` : ''}`);
    }));

  addWedgedCommand(program, action, io.out);

  program.command('funnel')
    .description('the cohort funnel from the lead ledger: leads per stage now; of the leads that became MQL in [since, until), how many reached sql, opportunity, customer, the rates, median days and cost per MQL; --by groups it')
    .option('--since <iso>', 'from (ISO 8601), on the first MQL date', isoOption('since'))
    .option('--until <iso>', 'until, exclusive (ISO 8601)', isoOption('until'))
    .option('--by <group>', `one of ${FUNNEL_GROUP_BYS.join(', ')}`, byOption)
    .action(action(async (ctx, json, o: { since?: string; until?: string; by?: FunnelGroupBy }) => {
      if (o.since && o.until && Date.parse(o.since) >= Date.parse(o.until)) throw new UsageError('until', 'since must be before until');
      const f = await (await ctx.ledgerOnly()).funnel(o);
      io.out(json ? visibleJson(f) : formatFunnel(f));
    }));

  program.command('import')
    .description('import a CSV of leads (LeadInput columns, with an optional imported history), events (LeadEvent columns) or sales outcomes (LeadOutcome columns)')
    .argument('<kind>', 'leads, events or outcomes')
    .argument('<file>', 'CSV with a header row')
    .option('--map <column=field>', "read another tool's column as a field, e.g. 'E-mail Address=email' (repeatable; field may be profile.<name>)", collect, [])
    .option('--set <field=value>', 'a value for every row that has none, e.g. consent.email=false or stage=mql (repeatable)', collect, [])
    .option('--type <type>', 'events: the event type of rows without one (same as --set type=T)')
    .addOption(new Option('--date-format <format>', 'how dates are written (occurredAt and fields ending in At; the dd/mm forms take an optional " HH:mm")').choices(DATE_FORMATS).default('iso'))
    .option('--email-template <template>', "leads: address for rows without an email, e.g. '{leadId}@import.invalid' ({field} placeholders); such leads get consent.email=false")
    .option('--concurrency <n>', 'rows in flight (default 16)', intOption('concurrency', 1))
    .option('--limit <n>', 'read only the first N data rows', intOption('limit', 1))
    .option('--wait <seconds>', 'leads and outcomes: wait until the ledger shows what was sent, giving up after this long without progress (default 120; 0: do not wait)', intOption('wait', 0))
    .option('--dry-run', 'validate and report, send nothing (outcomes: the ledger checks need a real run)')
    .addHelpText('after', `
Columns named like LeadInput / LeadEvent / LeadOutcome fields are read as they are; others are
ignored unless mapped (the summary lists them). Bad rows are reported by line number with the field
and reason; good rows still go in. Importing a file twice changes nothing: events without an
eventId get a deterministic id (a hash of lead id, type, occurredAt and the row), imported
histories and outcomes one of their own.

Leads may carry an imported history: stage, becameMqlAt, becameSqlAt, becameOpportunityAt,
becameCustomerAt. The lead enters each dated stage at its date (transitions with reason
"imported"); a bad stage, a date in the future or dates out of funnel order make the row bad.
Outcomes are { leadId, outcome, occurredAt?, reason?, note?, rep? } with outcome accepted, rejected
(reason: not_ready, no_response, bad_fit, duplicate, other), won or lost; applied at occurredAt
(default: now), skipping stages the history never recorded (a won mql becomes a customer). A row
for a lead the ledger does not have, or dated before the lead's MQL date, is bad.
Leads and outcomes wait until the ledger shows them, so the next import reads them (--wait).

Olist, as published (CONTRACT.md "Importing a real history"):
  leadctl import leads olist-marketing-qualified-leads.csv --map mql_id=leadId --map origin=channel \\
    --map first_contact_date=becameMqlAt --set stage=mql --date-format dd-mm-yyyy --email-template '{leadId}@import.invalid'
  leadctl import outcomes olist-closed-deals.csv --map mql_id=leadId --map won_date=occurredAt --set outcome=won --date-format dd-mm-yyyy
or the MQLs as form submissions on their first-contact date (anonymous leads):
  leadctl import events olist-marketing-qualified-leads.csv --type form_submit --map mql_id=leadId \\
    --map first_contact_date=occurredAt --map origin=campaign --map landing_page_id=asset --date-format dd-mm-yyyy`)
    .action(action(async (ctx, json, kindArg: string, file: string, o: {
      map: string[]; set: string[]; type?: string; dateFormat: DateFormat; emailTemplate?: string; concurrency?: number; limit?: number; wait?: number; dryRun?: boolean;
    }) => {
      if (!(IMPORT_KINDS as readonly string[]).includes(kindArg)) throw new UsageError('kind', `expected ${IMPORT_KINDS.join(' or ')}, got "${kindArg}"`);
      const kind = kindArg as ImportKind;
      if (o.type && kind !== 'events') throw new UsageError('--type', 'only for import events');
      if (o.emailTemplate && kind !== 'leads') throw new UsageError('--email-template', 'only for import leads');
      if (!existsSync(file) || !statSync(file).isFile()) throw new ImportSetupError(`${file}: no such file`);
      const knownTypes = kind === 'events' ? knownEventTypes(ctx.config().config) : undefined;
      const svc = o.dryRun ? undefined : ctx.service;
      const size = statSync(file).size;
      const bar = io.stderrIsTTY && !json
        ? new SingleBar({ stream: process.stderr, format: 'importing [{bar}] {percentage}% | {rows} rows | {imported} in | {bad} bad', hideCursor: true, clearOnComplete: true })
        : undefined;
      const held: string[] = [];
      const MAX_SHOWN = 100;
      let shown = 0;
      const onBadRow = (b: BadRow) => {
        if (json || shown >= MAX_SHOWN) return;
        shown++;
        if (bar) held.push(describeBadRow(b));
        else io.err(describeBadRow(b));
      };
      // What the ledger should show once each lead's workflow has applied its row.
      const checks: ImportCheck[] = [];
      const senders: Record<ImportKind, RunImportOptions['send']> = {
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
      bar?.start(Math.max(size, 1), 0, { rows: 0, imported: 0, bad: 0 });
      let summary: ImportSummary;
      try {
        summary = await runImport({
          kind, file, map: o.map, set: [...o.set, ...(o.type ? [`type=${o.type}`] : [])], dateFormat: o.dateFormat,
          emailTemplate: o.emailTemplate, knownTypes, concurrency: o.concurrency ?? 16, limit: o.limit, dryRun: !!o.dryRun,
          send: svc && senders[kind],
          onBadRow,
          onProgress: (p) => bar?.update(Math.min(p.bytesRead, size), { rows: p.rowsRead, imported: p.imported, bad: p.bad }),
        });
      } catch (err) {
        if (err instanceof ImportFatalError) {
          bar?.stop();
          held.forEach((l) => io.err(l));
          if (json) io.out(JSON.stringify({ ...err.summary, error: err.message }, null, 2));
          else io.out(formatSummary(err.summary));
        }
        throw err;
      } finally {
        bar?.stop();
      }
      held.forEach((l) => io.err(l));
      if (!json && summary.bad > shown) io.err(`... and ${summary.bad - shown} more bad rows (--json lists up to 1000)`);
      const wait = o.wait ?? 120;
      let pending: ImportCheck[] = [];
      if (svc && kind !== 'events' && wait > 0) {
        const waitBar = io.stderrIsTTY && !json
          ? new SingleBar({ stream: process.stderr, format: 'waiting for the ledger [{bar}] {value}/{total}', hideCursor: true, clearOnComplete: true })
          : undefined;
        waitBar?.start(checks.length, 0);
        try {
          const r = await waitForLedger({ items: checks, check: (batch) => svc.importedInLedger(batch), stallMs: wait * 1000, onProgress: (n) => waitBar?.update(n) });
          summary.ledger = { recorded: r.recorded, pending: r.pending.length, waitedMs: r.waitedMs };
          pending = r.pending;
        } finally {
          waitBar?.stop();
        }
      }
      io.out(json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
      if (pending.length) {
        io.err(`error: the ledger does not show ${pending.length} of the ${checks.length} ${kind} sent (first: ${pending.slice(0, 3).map((p) => p.leadId).join(', ')}) after ${wait} s without progress: ` +
          'is a worker running on this task queue? What was sent is in Temporal and is applied once a worker runs it; import again to check (nothing is applied twice)');
        return 1;
      }
      return summary.bad > 0 ? 2 : 0;
    }));

  return program;
}

/** Prints an error the way every command does and returns the exit code. */
function report(err: unknown, json: boolean, io: Io): number {
  if (err instanceof LeadError) {
    if (json) io.err(JSON.stringify({ error: { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) } }));
    else {
      io.err(`error: ${err.message}`);
      // Each issue on its own line (field: reason) when the message does not already say it.
      for (const i of err.issues ?? []) if (err.issues!.length > 1 || !err.message.includes(`${i.path}: `)) io.err(`  ${i.path}: ${i.message}`);
    }
    return 2;
  }
  const message = err instanceof ConfigError || err instanceof ImportSetupError || err instanceof ImportFatalError
    ? err.message : err instanceof Error ? err.message : String(err);
  if (json) io.err(JSON.stringify({ error: { code: err instanceof ConfigError ? 'bad_config' : 'error', message } }));
  else io.err(`error: ${message}`);
  if (process.env.LEADCTL_DEBUG && err instanceof Error) io.err(err.stack ?? '');
  return 1;
}

/** Runs leadctl with `argv` (as process.argv) and returns the exit code. */
export async function main(argv = process.argv, io: Io = defaultIo): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with exit code 0; usage errors are already printed.
      return err.exitCode;
    }
    // An option's value refused while parsing (--by, --since…): the action never ran, so the
    // --json it would have seen is read from the command line here.
    return report(err, argv.slice(2).includes('--json'), io);
  }
  return code;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((code) => process.exit(code));
}
