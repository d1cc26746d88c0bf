/**
 * The sales queue: the signed-in owner's sql leads with the time left to decide (the SLA), accept
 * and reject with a reason (the same salesOutcome update as `POST /v1/leads/:id/sales-outcome`,
 * with the owner as `rep`), and the owner's recent decisions from the ledger.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LeadError, validate } from '../../lead-service.js';
import { type LeadState, leadIdSchema, REJECT_REASONS, type SalesOutcome } from '../../domain/lead.js';
import { personName, timeLeft } from '../../domain/handoff-view.js';
import { factorWords } from '../../domain/mail.js';
import { allows } from '../auth.js';
import { searchPage } from '../routes/v1.js';
import { esc, problemList, table } from './layout.js';
import { leadHref, when } from './leads.js';
import type { ConsoleContext, Rendered } from './index.js';
import type { Session } from './session.js';

const decisionSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('accept'), note: z.string().trim().max(2000).optional() }),
  z.object({
    action: z.literal('reject'),
    reason: z.enum(REJECT_REASONS, { error: `must be one of ${REJECT_REASONS.join(', ')}` }),
    note: z.string().trim().max(2000).optional(),
  }),
]);
const queueQuerySchema = z.object({ done: z.string().max(400).optional() });

function decisionForm(leadId: string): string {
  const reasons = REJECT_REASONS.map((r) => `<option value="${r}">${r.replace('_', ' ')}</option>`).join('');
  const action = `/console/queue/${encodeURIComponent(leadId)}`;
  return (
    `<form method="post" action="${action}" class="decide"><input type="hidden" name="action" value="accept">` +
    '<button type="submit" class="accept">Accept</button></form>' +
    `<form method="post" action="${action}" class="decide"><input type="hidden" name="action" value="reject">` +
    `<select name="reason" aria-label="Reason">${reasons}</select>` +
    '<input name="note" placeholder="note (optional)" maxlength="2000" aria-label="Note">' +
    '<button type="submit" class="reject">Reject</button></form>'
  );
}

function queueRow(s: LeadState, now: number, canRead: boolean): string[] {
  const who = personName(s.profile) ?? s.profile.email ?? s.leadId;
  const name = canRead ? `<a href="${leadHref(s.leadId)}">${esc(who)}</a>` : esc(who);
  return [
    `${name}<br><small>${esc(s.profile.company ?? '')}</small>`,
    `${s.score.total}<br><small>${esc(factorWords(s.score.factors, 3).join(', '))}</small>`,
    `<span class="countdown" data-deadline="${esc(s.slaDeadline ?? '')}">${s.slaDeadline ? esc(timeLeft(Date.parse(s.slaDeadline), now)) : '–'}</span>` +
      `<br><small>${when(s.slaDeadline)}</small>`,
    decisionForm(s.leadId),
  ];
}

export async function queueView(
  x: ConsoleContext,
  query: unknown,
  session: Session,
  refused?: { leadId: string; message: string; issues?: { path: string; message: string }[] },
): Promise<Rendered> {
  if (!session.owner)
    return {
      title: 'Sales queue',
      body:
        '<p>The queue is an owner&rsquo;s: sign out and sign in again with your owner address ' +
        '(the one the routing rules hand leads to).</p>',
    };
  const { done } = validate(queueQuerySchema, query ?? {}, 'query');
  const now = x.c.now();
  const page = await searchPage(x.c, { stage: 'sql', owner: session.owner, limit: 200 });
  // The published states of the page's leads, in one ledger read (what GET /v1/leads/:id answers).
  const ledger = x.c.service.ledger;
  const ids = page.leads.map((l) => l.leadId);
  const states = (ledger ? await x.c.service.fromLedger(() => ledger.states(ids)) : []) as LeadState[];
  // Soonest deadline first: what needs deciding now is on top.
  const open = states
    .filter((s) => s.stage === 'sql')
    .sort((a, b) => (a.slaDeadline ?? '').localeCompare(b.slaDeadline ?? ''));
  const canRead = allows(session.scope, 'read');
  const decisions = ledger ? await x.c.service.fromLedger(() => ledger.decisionsBy(session.owner!)) : [];
  const notice = refused
    ? `<div class="notice error" role="alert"><p>${esc(refused.leadId)}: ${esc(refused.message)}</p>${
        refused.issues?.length ? problemList(refused.issues) : ''
      }</div>`
    : done
      ? `<div class="notice" role="status">Recorded: ${esc(done)}</div>`
      : '';
  return {
    title: 'Sales queue',
    body:
      notice +
      `<p>Leads handed to <strong>${esc(session.owner)}</strong> waiting for a decision, soonest deadline first.</p>` +
      (open.length
        ? table(
            ['Lead', 'Score and why', 'Decide by', ''],
            open.map((s) => queueRow(s, now, canRead)),
            'queue',
          )
        : '<p>Nothing waits for you.</p>') +
      (page.nextPageToken ? '<p>Showing the first 200; more wait.</p>' : '') +
      '<h2>Your recent decisions</h2>' +
      (decisions.length
        ? table(
            ['When', 'Lead', 'Decision', 'Reason', 'Note'],
            decisions.map((d) => [
              when(d.at),
              canRead ? `<a href="${leadHref(d.leadId)}">${esc(d.leadId)}</a>` : esc(d.leadId),
              esc(d.outcome),
              esc(d.reason ?? ''),
              esc(d.note ?? ''),
            ]),
            'decisions',
          )
        : '<p>None yet.</p>'),
  };
}

/** POST /console/queue/:leadId: the decision, then back to the queue (303), or the queue with the refusal. */
export async function decide(
  x: ConsoleContext,
  req: FastifyRequest,
  reply: FastifyReply,
  session: Session,
): Promise<Rendered | undefined> {
  const { leadId } = validate(z.object({ leadId: leadIdSchema }), req.params, 'path');
  try {
    const d = validate(decisionSchema, req.body ?? {}, 'form');
    const outcome: SalesOutcome =
      d.action === 'accept'
        ? { outcome: 'accepted', ...(d.note ? { note: d.note } : {}), ...(session.owner ? { rep: session.owner } : {}) }
        : {
            outcome: 'rejected',
            reason: d.reason,
            ...(d.note ? { note: d.note } : {}),
            ...(session.owner ? { rep: session.owner } : {}),
          };
    const state = await x.c.temporal(() => x.c.service.salesOutcome(leadId, outcome));
    const done = `${leadId} ${d.action === 'accept' ? 'accepted' : `rejected (${outcome.outcome === 'rejected' ? outcome.reason : ''})`}, now ${state.stage}`;
    await reply.redirect(`/console/queue?${new URLSearchParams({ done }).toString()}`, 303);
    return undefined;
  } catch (err) {
    if (!(err instanceof LeadError) || err.status >= 500) throw err;
    reply.status(err.status);
    return queueView(x, {}, session, {
      leadId,
      message: err.message,
      ...(err.issues ? { issues: err.issues } : {}),
    });
  }
}
