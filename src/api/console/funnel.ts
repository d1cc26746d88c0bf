/**
 * The funnel view: `GET /v1/funnel`'s figures (the same LeadService.funnel over the ledger, the
 * same query schema) as a chart and a table, for a date range and a grouping.
 */
import type { FastifyRequest } from 'fastify';
import { validate } from '../../lead-service.js';
import { FUNNEL_GROUP_BYS, type Cohort, type Funnel } from '../../ledger/funnel.js';
import { cleanQuery } from '../http.js';
import { funnelQuerySchema } from '../routes/v1.js';
import { esc, jsonBlock, pct, table } from './layout.js';
import type { ConsoleContext, Rendered } from './index.js';

const days = (d: number | null) => (d === null ? '–' : `${d.toFixed(1)} d`);
const money = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(2));

function cohortRow(label: string, c: Cohort): string[] {
  return [
    esc(label),
    String(c.mqls),
    String(c.sqls),
    String(c.opportunities),
    String(c.customers),
    pct(c.mqlToSqlRate),
    pct(c.mqlToCustomerRate),
    days(c.medianDaysMqlToSql),
    days(c.medianDaysMqlToCustomer),
    money(c.cost),
    money(c.costPerMql),
  ];
}

function form(q: Record<string, unknown>): string {
  const v = (k: string) => esc(typeof q[k] === 'string' ? q[k] : '');
  const options = ['', ...FUNNEL_GROUP_BYS]
    .map((b) => `<option value="${b}"${q.by === b ? ' selected' : ''}>${b ? `by ${b}` : 'total only'}</option>`)
    .join('');
  return (
    '<form method="get" action="/console/funnel" class="filters">' +
    `<label>Became MQL from <input type="date" name="since" value="${v('since')}"></label>` +
    `<label>until <input type="date" name="until" value="${v('until')}"></label>` +
    `<label>Group <select name="by">${options}</select></label>` +
    '<button type="submit">Show</button></form>'
  );
}

/** The chart's data: MQL, SQL, opportunity and customer counts for the total or each group. */
export function funnelChart(f: Funnel) {
  const rows = f.by ? f.groups : [{ key: 'all MQLs', ...f.total }];
  return {
    labels: ['MQL', 'SQL', 'Opportunity', 'Customer'],
    series: rows.map((r) => ({ label: r.key, data: [r.mqls, r.sqls, r.opportunities, r.customers] })),
  };
}

export async function funnelView(x: ConsoleContext, req: FastifyRequest): Promise<Rendered> {
  const raw = cleanQuery(req.query);
  const q = validate(funnelQuerySchema, raw, 'query');
  const iso = (s: string) => new Date(s).toISOString();
  const f = await x.c.service.funnel({
    ...(q.since ? { since: iso(q.since) } : {}),
    ...(q.until ? { until: iso(q.until) } : {}),
    ...(q.by ? { by: q.by } : {}),
  });
  const head = [
    f.by ?? 'cohort',
    'MQLs',
    'SQLs',
    'Opportunities',
    'Customers',
    'MQL→SQL',
    'MQL→customer',
    'Median to SQL',
    'Median to customer',
    'Cost',
    'Cost per MQL',
  ];
  const rows = [cohortRow('all', f.total), ...f.groups.map((g) => cohortRow(g.key, g))];
  const stages = table(Object.keys(f.stages), [Object.values(f.stages).map(String)], 'stages');
  const window =
    f.since || f.until
      ? `Leads that became MQL from ${esc(f.since?.slice(0, 10) ?? 'the start')} until ${esc(f.until?.slice(0, 10) ?? 'now')}.`
      : 'Every lead that ever became MQL.';
  return {
    title: 'Funnel',
    charts: true,
    body:
      form(raw) +
      `<p>${window} Rates and medians follow each MQL cohort to SQL and to customer.</p>` +
      '<div class="chart"><canvas id="funnel-chart" aria-label="Funnel chart" role="img"></canvas></div>' +
      jsonBlock('funnel-data', funnelChart(f)) +
      table(head, rows, 'funnel') +
      '<h2>Leads per stage now</h2>' +
      stages,
  };
}
