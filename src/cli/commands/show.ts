/** `leadctl show [--timeline]`: a lead's state, or everything the ledger recorded about it. */
import type { Command } from 'commander';
import { validate } from '../../lead-service.js';
import { leadIdSchema, type LeadState } from '../../domain/lead.js';
import { factorWords } from '../../domain/mail.js';
import type { TimelineEntry } from '../../ledger/ledger.js';
import { signed, visible, visibleJson } from '../output.js';
import type { Cli, Context } from '../shared.js';

export function formatState(s: LeadState): string {
  const lines: string[] = [];
  const kv = (k: string, v: string | undefined) => v !== undefined && lines.push(`${k.padEnd(10)}${v}`);
  const nextStep = s.nurture.nextStepAt ? `, next at ${s.nurture.nextStepAt}` : '';
  const escalations = s.escalations ? `, ${s.escalations} escalations` : '';
  kv('lead', s.leadId);
  kv('stage', s.stage + (s.slaDeadline ? ` (sales SLA until ${s.slaDeadline})` : ''));
  kv('score', `${s.score.total} = fit ${s.score.fit} + engagement ${s.score.engagement}`);
  kv('model', s.score.model);
  // Older states (before factors) have none.
  if (s.score.factors?.length) kv('why', factorWords(s.score.factors, 10).join(', '));
  kv('owner', s.owner ?? '-');
  kv('consent', s.consent);
  kv('nurture', s.nurture.track ? `${s.nurture.track}, step ${s.nurture.step}${nextStep}` : 'none');
  kv('campaign', s.campaign);
  kv('created', s.createdAt);
  kv('engaged', s.lastEngagedAt);
  kv('mql at', s.becameMqlAt);
  kv('sql at', s.becameSqlAt);
  kv('events', `${s.eventsProcessed} processed, recycled ${s.recycleCount} times${escalations}`);
  kv('config', s.configVersion);
  const profile = Object.entries(s.profile ?? {}).filter(([, v]) => v !== undefined && v !== null);
  if (profile.length) kv('profile', profile.map(([k, v]) => `${k}=${v}`).join(', '));
  if (s.scoreLog?.length) {
    lines.push('', 'score changes (newest last):');
    for (const e of s.scoreLog) {
      lines.push(`  ${e.at}  ${e.type.padEnd(18)} ${signed(e.points).padStart(4)}${e.note ? `  ${e.note}` : ''}`);
    }
  }
  lines.push('', 'transitions:');
  if (!s.transitions.length) lines.push('  (none yet)');
  for (const t of s.transitions) lines.push(`  ${t.at}  ${t.from} -> ${t.to}  ${t.reason}`);
  return lines.map(visible).join('\n');
}

/** Entries per ledger read of `show --timeline` (it reads every page). */
const TIMELINE_PAGE_SIZE = 200;

/** One timeline entry as one line: when, what, the details. */
export function formatTimelineEntry(e: TimelineEntry): string {
  const kv = (o: Record<string, unknown>) =>
    Object.entries(o)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(' ');
  const optional = (cond: unknown, text: string) => (cond ? text : '');
  let what: string;
  switch (e.kind) {
    case 'event': {
      const { points, note, ...rest } = e.attributes as { points?: number; note?: string } & Record<string, unknown>;
      const id = `(id ${e.eventId}${optional(e.occurredAt !== e.at, `, occurred ${e.occurredAt}`)})`;
      what =
        [e.type, typeof points === 'number' ? signed(points) : undefined, id, kv(rest) || undefined]
          .filter(Boolean)
          .join(' ') + (note ? `: ${note}` : '');
      break;
    }
    case 'profile':
      what = kv(e.patch) || '(no fields)';
      break;
    case 'transition':
      what = `${e.from} -> ${e.to}  ${e.reason}`;
      break;
    case 'mail':
      what =
        `${e.mailKind}${optional(e.track, ` ${e.track}`)}${optional(e.step !== undefined, ` step ${e.step}`)}` +
        ` ${e.status}  ${e.messageId}`;
      break;
    case 'outcome':
      what =
        `${e.outcome}${optional(e.reason, ` (${e.reason})`)}${optional(e.rep, ` by ${e.rep}`)}` +
        `${optional(e.note, `: ${e.note}`)}${optional(e.source !== 'live', ` [${e.source}]`)}`;
      break;
    default:
      what = JSON.stringify(e);
  }
  return visible(`${e.at}  ${(e as { kind: string }).kind.padEnd(10)}  ${what}`);
}

/** Every page of the lead's timeline, from the ledger alone. */
async function wholeTimeline(ctx: Context, leadId: string): Promise<TimelineEntry[]> {
  const svc = await ctx.ledgerOnly();
  const entries: TimelineEntry[] = [];
  let pageToken: string | undefined;
  do {
    const page = await svc.timeline(leadId, { limit: TIMELINE_PAGE_SIZE, ...(pageToken ? { pageToken } : {}) });
    entries.push(...page.entries);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return entries;
}

export function addShowCommand(program: Command, { io, action }: Cli) {
  program
    .command('show')
    .description(
      "a lead's state: stage, score breakdown, owner, consent, nurture, transitions " +
        '(--json: the raw state); --timeline: everything recorded about it, in order',
    )
    .argument('<leadId>')
    .option(
      '--timeline',
      'every event (with its points), profile change, transition, mail and outcome, in order, ' +
        'from the ledger (--json: the entries)',
    )
    .action(
      action(async (ctx, json, leadId: string, o: { timeline?: boolean }) => {
        validate(leadIdSchema, leadId, 'leadId', ['leadId']);
        if (o.timeline) {
          const entries = await wholeTimeline(ctx, leadId);
          if (json) io.out(visibleJson(entries));
          else if (!entries.length) io.out(`lead ${visible(leadId)}: nothing recorded yet`);
          else io.out(entries.map(formatTimelineEntry).join('\n'));
          return;
        }
        const s = await (await ctx.connect()).getState(leadId);
        io.out(json ? visibleJson(s) : formatState(s));
      }),
    );
}
