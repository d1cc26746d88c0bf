/**
 * The pages a person reads behind a mail link: the unsubscribe confirmation, and the owner's sales
 * page that accepts or rejects a handed-off lead. Registered by the link plugin
 * (src/api/routes/links.ts), whose hook has verified the link before a handler runs.
 */
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { LeadError } from '../../lead-service.js';
import { type LeadState, REJECT_REASONS } from '../../domain/lead.js';
import { factorWords } from '../../domain/mail.js';
import { type LinkPayload, salesLinkStatus } from '../../links.js';
import { esc, htmlPage, page } from '../html.js';
import { type ApiContext, cleanQuery } from '../http.js';
import { type LinkRoute, linkQuerySchema, tamperedOrExpired } from './links.js';

const salesPageQuerySchema = linkQuerySchema.extend({ action: z.enum(['accept', 'reject']).optional() });
const salesFormSchema = z.object({
  action: z.enum(['accept', 'reject']),
  reason: z.enum(REJECT_REASONS).optional(),
  note: z.string().max(2000).optional(),
});

/** The lead as the owner sees it: who, where it stands, its last changes. */
function summary(s: LeadState): string {
  const pr = s.profile;
  const rows: [string, unknown][] = [
    ['Lead', s.leadId],
    ['Name', [pr.firstName, pr.lastName].filter(Boolean).join(' ') || '-'],
    ['Email', pr.email ?? '-'],
    ['Company', pr.company ?? '-'],
    ['Title', pr.jobTitle ?? '-'],
    ['Country', pr.country ?? '-'],
    ['Campaign', s.campaign ?? '-'],
    ['Stage', s.stage],
    ['Score', `${s.score.total} (fit ${s.score.fit}, engagement ${s.score.engagement})`],
    ['Owner', s.owner ?? '-'],
    ['Decide by', s.slaDeadline ?? '-'],
  ];
  const why = s.transitions
    .slice(-5)
    .map((t) => `<li>${esc(t.at)}: ${esc(t.from)} &rarr; ${esc(t.to)} (${esc(t.reason)})</li>`)
    .join('');
  const table = `<table>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>`;
  const factors = factorWords(s.score.factors ?? [])
    .map((f) => `<li>${esc(f)}</li>`)
    .join('');
  return `${table}${factors ? `<h2>Why this score</h2><ul>${factors}</ul>` : ''}${why ? `<h2>Recent changes</h2><ul>${why}</ul>` : ''}`;
}

/** The lead of a sales link, or a 404 page (undefined). */
async function leadOf(c: ApiContext, reply: FastifyReply, leadId: string): Promise<LeadState | undefined> {
  const state = await c
    .temporal(() => c.service.getState(leadId))
    .catch((err) => {
      if (err instanceof LeadError && err.status === 404) return undefined;
      throw err;
    });
  if (!state) htmlPage(reply, 404, 'Lead not found', `<p>There is no lead ${esc(leadId)}.</p>`);
  return state;
}

/**
 * A sales link that is not current answers here: 409 when the lead was decided, 403 when it moved on to
 * another owner or episode.
 */
function staleSalesPage(reply: FastifyReply, p: LinkPayload, state: LeadState, action: 'page' | 'form') {
  const status = salesLinkStatus(p, state);
  if (status === 'current') return undefined;
  if (status === 'moved_on') {
    const to = state.owner && state.owner !== p.o ? 'another owner' : 'sales again';
    const changed = action === 'form' ? '; nothing was changed' : '';
    const why = `This handoff link is no longer yours to act on: the lead was handed to ${to} since it was sent`;
    return htmlPage(reply, 403, 'This lead has moved on', `<p id="moved-on">${why}${changed}.</p>`);
  }
  const now = `This lead is now <strong>${esc(state.stage)}</strong>`;
  return htmlPage(
    reply,
    409,
    'Nothing to decide',
    action === 'form'
      ? `<p>${now}; nothing was changed.</p>${summary(state)}`
      : `<p>${now}; this handoff link is no longer current.</p>${summary(state)}`,
  );
}

/** The accept and reject forms of the sales page; `action` (from the mail's button) shows one. */
function salesForms(token: string, action: 'accept' | 'reject' | undefined): string {
  const target = `/l/sales?t=${esc(encodeURIComponent(token))}`;
  const form = (id: 'accept' | 'reject', ...fields: string[]) =>
    [
      `<form method="post" action="${target}" id="${id}"><input type="hidden" name="action" value="${id}">`,
      ...fields,
      '<label>Note (optional)<br><textarea name="note" rows="2" cols="40" maxlength="2000"></textarea></label>',
      `<button type="submit">${id === 'accept' ? 'Accept' : 'Reject'} lead</button></form>`,
    ].join('\n');
  const reasons = REJECT_REASONS.map((r) => `<option value="${r}">${r.replace('_', ' ')}</option>`).join('');
  const accept = form('accept');
  const reject = form(
    'reject',
    '<label>Reason <select name="reason" required>' +
      `<option value="" disabled selected>choose a reason</option>${reasons}</select></label>`,
  );
  return action === 'accept' ? accept : action === 'reject' ? reject : accept + reject;
}

export const PAGE_ROUTES: readonly LinkRoute[] = [
  {
    method: 'GET',
    url: '/l/unsubscribe',
    link: 'unsubscribe',
    query: linkQuerySchema,
    summary: 'Unsubscribe page with a confirm button',
    responses: { 200: { description: 'HTML' }, 403: tamperedOrExpired },
    async handle(_c, link, _req, reply) {
      return reply.type('text/html; charset=utf-8').send(
        page(
          'Unsubscribe',
          `
<p>Stop receiving our marketing email at this address?</p>
<form method="post" action="/l/unsubscribe?t=${esc(encodeURIComponent(link.token))}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>`,
        ),
      );
    },
  },
  {
    method: 'GET',
    url: '/l/sales',
    link: 'sales',
    query: salesPageQuerySchema,
    summary: "The owner's accept/reject page",
    responses: {
      200: { description: 'HTML' },
      403: { description: 'tampered or expired' },
      409: { description: 'no longer in sql' },
    },
    async handle(c, link, req, reply) {
      const q = salesPageQuerySchema.safeParse(req.query);
      if (!q.success) return htmlPage(reply, 400, 'This link does not work', '<p>action must be accept or reject.</p>');
      const state = await leadOf(c, reply, link.l);
      if (!state || staleSalesPage(reply, link, state, 'page')) return reply;
      const verb = q.data.action === 'reject' ? 'Reject' : q.data.action === 'accept' ? 'Accept' : 'Accept or reject';
      const title = `${verb} this lead`;
      return htmlPage(reply, 200, title, summary(state) + salesForms(link.token, q.data.action));
    },
  },
  {
    method: 'POST',
    url: '/l/sales',
    link: 'sales',
    query: linkQuerySchema,
    summary: "Submit the owner's decision",
    body: { schema: salesFormSchema, contentType: 'application/x-www-form-urlencoded' },
    responses: {
      200: { description: 'HTML result' },
      400: { description: 'bad form' },
      403: { description: 'tampered or expired' },
      409: { description: 'wrong stage' },
    },
    async handle(c, link, req, reply) {
      if (!/^application\/x-www-form-urlencoded\b/i.test(String(req.headers['content-type'] ?? ''))) {
        return htmlPage(reply, 415, 'Not a form', '<p>Submit the form on the sales page.</p>');
      }
      const form = salesFormSchema.safeParse(cleanQuery(req.body));
      if (!form.success) {
        const issues = form.error.issues.map((i) => `<li>${esc(i.path.join('.'))}: ${esc(i.message)}</li>`).join('');
        return htmlPage(reply, 400, 'Please check the form', `<ul>${issues}</ul>`);
      }
      const state = await leadOf(c, reply, link.l);
      if (!state || staleSalesPage(reply, link, state, 'form')) return reply;
      const rep = link.o ?? state.owner;
      const { action, reason, note } = form.data;
      const outcome = {
        outcome: action === 'accept' ? 'accepted' : 'rejected',
        ...(action === 'reject' ? { reason } : {}),
        ...(note ? { note } : {}),
        ...(rep ? { rep } : {}),
      };
      try {
        const after = await c.temporal(() => c.service.salesOutcome(link.l, outcome));
        return htmlPage(
          reply,
          200,
          `Lead ${outcome.outcome}`,
          `<p id="result">Thank you. The lead is now <strong>${esc(after.stage)}</strong>.</p>${summary(after)}`,
        );
      } catch (err) {
        if (!(err instanceof LeadError)) throw err;
        const title =
          err.status === 409 ? 'Nothing to decide' : err.status === 404 ? 'Lead not found' : 'Please check the form';
        return htmlPage(reply, err.status, title, `<p>${esc(err.message)}</p>`);
      }
    },
  },
];
