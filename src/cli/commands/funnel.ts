/** `leadctl funnel`: the cohort funnel from the lead ledger, the same Funnel GET /v1/funnel answers. */
import type { Command } from 'commander';
import { FUNNEL_GROUP_BYS, type Funnel } from '../../ledger/funnel.js';
import type { FunnelGroupBy } from '../../ledger/ledger.js';
import { table, visible, visibleJson } from '../output.js';
import { type Cli, isoOption, UsageError } from '../shared.js';

function byOption(value: string): FunnelGroupBy {
  if (!(FUNNEL_GROUP_BYS as readonly string[]).includes(value)) {
    throw new UsageError('by', `must be one of ${FUNNEL_GROUP_BYS.join(', ')}, got "${value}"`);
  }
  return value as FunnelGroupBy;
}

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const money = (x: number | undefined) => (x === undefined ? undefined : x.toFixed(2));

const GROUP_COLUMNS = [
  'MQLS',
  'SQLS',
  'OPPS',
  'CUSTOMERS',
  'MQL-SQL',
  'MQL-CUST',
  'DAYS TO SQL',
  'DAYS TO CUST',
  'COST',
  'COST/MQL',
];

/** The Funnel as a reader wants it: stages now, the cohort's figures, a table of the groups. */
export function formatFunnel(f: Funnel): string {
  const range = f.since || f.until ? `${f.since ?? 'the start'} to ${f.until ?? 'now'}` : 'all time';
  const t = f.total;
  const lines = [
    'leads per stage now',
    table(
      Object.entries(f.stages).map(([st, n]) => [st, n]),
      ['STAGE', 'LEADS'],
    ),
    '',
    `cohort: leads that became MQL, ${range}`,
    `  MQLs ${t.mqls}, SQLs ${t.sqls}, opportunities ${t.opportunities}, customers ${t.customers}`,
    `  MQL-to-SQL ${pct(t.mqlToSqlRate)}, MQL-to-customer ${pct(t.mqlToCustomerRate)}`,
    `  median days MQL to SQL ${t.medianDaysMqlToSql ?? '-'}, MQL to customer ${t.medianDaysMqlToCustomer ?? '-'}`,
  ];
  if (t.cost !== undefined) lines.push(`  cost ${money(t.cost)}, cost per MQL ${money(t.costPerMql) ?? '-'}`);
  if (f.by) {
    lines.push('', `by ${f.by}`);
    // A key is data (a campaign, a channel): shown escaped, so it cannot break the table.
    const rows = f.groups.map((g) => [
      visible(g.key),
      g.mqls,
      g.sqls,
      g.opportunities,
      g.customers,
      pct(g.mqlToSqlRate),
      pct(g.mqlToCustomerRate),
      g.medianDaysMqlToSql,
      g.medianDaysMqlToCustomer,
      money(g.cost),
      money(g.costPerMql),
    ]);
    const header = [f.by.toUpperCase(), ...GROUP_COLUMNS];
    lines.push(f.groups.length ? table(rows, header) : '(no leads became MQL in the window)');
  }
  return lines.join('\n');
}

export function addFunnelCommand(program: Command, { io, action }: Cli) {
  program
    .command('funnel')
    .description(
      'the cohort funnel from the lead ledger: leads per stage now; of the leads that became MQL in ' +
        '[since, until), how many reached sql, opportunity, customer, the rates, median days and cost per MQL; ' +
        '--by groups it',
    )
    .option('--since <iso>', 'from (ISO 8601), on the first MQL date', isoOption('since'))
    .option('--until <iso>', 'until, exclusive (ISO 8601)', isoOption('until'))
    .option('--by <group>', `one of ${FUNNEL_GROUP_BYS.join(', ')}`, byOption)
    .action(
      action(async (ctx, json, o: { since?: string; until?: string; by?: FunnelGroupBy }) => {
        if (o.since && o.until && Date.parse(o.since) >= Date.parse(o.until)) {
          throw new UsageError('until', 'since must be before until');
        }
        const f = await (await ctx.ledgerOnly()).funnel(o);
        io.out(json ? visibleJson(f) : formatFunnel(f));
      }),
    );
}
