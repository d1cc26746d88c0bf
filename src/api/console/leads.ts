/**
 * The leads views: the ledger's search (the same query schema and sealed page tokens as
 * `GET /v1/leads`, src/api/routes/v1.ts searchPage) and a lead's page: its profile, its score as a
 * bar of factors, and its whole timeline from the ledger (events with the points they scored,
 * profile changes, transitions, mails, outcomes).
 */
import type { FastifyRequest } from 'fastify';
import { LeadError, validate } from '../../lead-service.js';
import { STAGES, type LeadState } from '../../domain/lead.js';
import { factorWords } from '../../domain/mail.js';
import type { TimelineEntry } from '../../ledger/ledger.js';
import { cleanQuery } from '../http.js';
import { leadParamsSchema, searchPage, searchQuerySchema } from '../routes/v1.js';
import { esc, jsonBlock, table } from './layout.js';
import type { ConsoleContext, Rendered } from './index.js';

export const leadHref = (leadId: string) => `/console/leads/${encodeURIComponent(leadId)}`;
/** A date as the console shows it: UTC, to the minute (the time element keeps the exact instant). */
export const when = (iso: string | undefined) =>
  iso ? `<time datetime="${esc(iso)}">${esc(iso.slice(0, 16).replace('T', ' '))} UTC</time>` : '–';

function searchForm(q: Record<string, unknown>, models: string[]): string {
  const v = (k: string) => esc(typeof q[k] === 'string' ? q[k] : '');
  const select = (name: string, values: readonly string[]) =>
    `<select name="${name}"><option value="">any</option>${values
      .map((s) => `<option${q[name] === s ? ' selected' : ''}>${esc(s)}</option>`)
      .join('')}</select>`;
  return (
    '<form method="get" action="/console/leads" class="filters">' +
    `<label>Stage ${select('stage', STAGES)}</label>` +
    `<label>Owner <input name="owner" type="email" value="${v('owner')}"></label>` +
    `<label>Campaign <input name="campaign" value="${v('campaign')}"></label>` +
    `<label>Model ${select('model', models)}</label>` +
    `<label>Score at least <input name="minScore" type="number" value="${v('minScore')}"></label>` +
    '<button type="submit">Search</button></form>'
  );
}

export async function leadsView(x: ConsoleContext, req: FastifyRequest): Promise<Rendered> {
  const raw = cleanQuery(req.query);
  const models = x.c.service.config.scoring.models.map((m) => m.id);
  const q = validate(searchQuerySchema, raw, 'query');
  const r = await searchPage(x.c, { ...q, limit: q.limit ?? 25 });
  const rows = r.leads.map((l) => [
    `<a href="${leadHref(l.leadId)}">${esc(l.leadId)}</a>`,
    esc(l.stage),
    String(l.score),
    esc(l.owner ?? '–'),
    esc(l.campaign ?? '–'),
    esc(l.consent),
    when(l.becameMqlAt),
  ]);
  const next = r.nextPageToken
    ? `<p><a rel="next" href="/console/leads?${new URLSearchParams({
        ...(Object.fromEntries(Object.entries(raw).filter(([k]) => k !== 'pageToken')) as Record<string, string>),
        pageToken: r.nextPageToken,
      }).toString()}">Next page</a></p>`
    : '';
  return {
    title: 'Leads',
    body:
      searchForm(raw, models) +
      (rows.length
        ? table(['Lead', 'Stage', 'Score', 'Owner', 'Campaign', 'Consent', 'Became MQL'], rows, 'leads')
        : '<p>No lead matches.</p>') +
      next,
  };
}

/** A profile field's name in words: `companySize` → "Company size". */
const label = (field: string) => {
  const words = field.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
};

/** What a timeline entry says, in words. */
function entryText(e: TimelineEntry): [string, string] {
  switch (e.kind) {
    case 'event': {
      const points = e.attributes.points;
      return [
        `event ${e.type}`,
        `${esc(e.eventId)}${typeof points === 'number' ? ` · ${points >= 0 ? '+' : ''}${points} points` : ''}`,
      ];
    }
    case 'profile':
      return ['profile change', esc(Object.keys(e.patch).join(', '))];
    case 'transition':
      return [`${e.from} → ${e.to}`, esc(e.reason)];
    case 'outcome':
      return [
        `sales: ${e.outcome}`,
        esc([e.reason, e.note, e.rep && `by ${e.rep}`, e.source !== 'live' && e.source].filter(Boolean).join(' · ')),
      ];
    case 'mail':
      return [
        `mail ${e.mailKind}`,
        esc([e.track && `${e.track} step ${e.step}`, e.status].filter(Boolean).join(' · ')),
      ];
  }
}

/** The whole timeline (pages of 1000, at most 10 of them: a lead with more shows its first 10,000 entries). */
async function wholeTimeline(x: ConsoleContext, leadId: string): Promise<{ entries: TimelineEntry[]; more: boolean }> {
  const entries: TimelineEntry[] = [];
  let pageToken: string | undefined;
  for (let i = 0; i < 10; i++) {
    const r = await x.c.service.timeline(leadId, { limit: 1000, ...(pageToken ? { pageToken } : {}) });
    entries.push(...r.entries);
    pageToken = r.nextPageToken;
    if (!pageToken) return { entries, more: false };
  }
  return { entries, more: true };
}

/** The score's factors for the bar: each rule or behaviour with its points. */
export const factorBars = (s: LeadState['score']) =>
  s.factors.filter((f) => f.points !== 0).map((f) => ({ label: f.rule, points: f.points }));

export async function leadView(x: ConsoleContext, req: FastifyRequest): Promise<Rendered> {
  const { leadId } = validate(leadParamsSchema, req.params, 'path');
  const state = await x.c.temporal(() => x.c.service.getState(leadId));
  const tl = await wholeTimeline(x, leadId).catch((err) => {
    if (err instanceof LeadError && err.status === 404) return { entries: [], more: false };
    throw err;
  });
  const p = state.profile as Record<string, unknown>;
  const profile = Object.entries(p)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `<tr><th>${esc(label(k))}</th><td>${esc(v)}</td></tr>`)
    .join('');
  const facts: [string, string][] = [
    ['Stage', esc(state.stage)],
    ['Owner', esc(state.owner ?? '–')],
    ['Campaign', esc(state.campaign ?? '–')],
    ['Consent', esc(state.consent)],
    ['Created', when(state.createdAt)],
    ['Last engaged', when(state.lastEngagedAt)],
    ['Became MQL', when(state.becameMqlAt)],
    ['Became SQL', when(state.becameSqlAt)],
    ['Sales decides by', when(state.slaDeadline)],
    ['Config', esc(state.configVersion)],
  ];
  const s = state.score;
  const words = factorWords(s.factors, s.factors.length);
  const timeline = tl.entries.map((e) => {
    const [what, detail] = entryText(e);
    return [when(e.at), esc(e.kind), esc(what), detail];
  });
  return {
    title: `Lead ${leadId}`,
    charts: true,
    body:
      `<section class="facts"><table>${facts.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</table>` +
      `<table class="profile">${profile || '<tr><td>No profile fields.</td></tr>'}</table></section>` +
      `<h2>Score ${s.total}</h2><p>Model <code>${esc(s.model)}</code>: fit ${s.fit}, engagement ${s.engagement}.</p>` +
      (words.length
        ? '<div class="chart factors"><canvas id="factors-chart" aria-label="Score factors" role="img"></canvas></div>' +
          jsonBlock('factors-data', factorBars(s)) +
          `<ul class="factor-words">${words.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>`
        : '<p>No rule or behaviour contributes yet.</p>') +
      `<h2>Timeline</h2>` +
      (timeline.length
        ? table(['When', 'Kind', 'What', 'Detail'], timeline, 'timeline')
        : '<p>The ledger holds no entry for this lead yet.</p>') +
      (tl.more ? '<p>Only the first 10,000 entries are shown (leadctl show --timeline pages through all).</p>' : ''),
  };
}
