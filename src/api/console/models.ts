/**
 * The models view: the running config's scoring models, a what-if of a pasted or uploaded
 * candidate config (the same whatIfOnLedger `leadctl what-if` runs: stage counts before and
 * after, who moves, ROC curves where outcomes are known), and the rollout behind a confirmation
 * (the same rollOut as `leadctl rollout`, admin tokens only). A candidate that fails validation is
 * refused with every problem and its path before anything runs.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ConfigError, type LoadedConfig, parseConfigText } from '../../config-file.js';
import type { Rule, ScoringModel } from '../../domain/config.js';
import { LeadError, validate } from '../../lead-service.js';
import { rollOut, rolloutProgress } from '../../learn/rollout.js';
import { whatIfOnLedger } from '../../learn/what-if-ledger.js';
import { allows } from '../auth.js';
import { esc, jsonBlock, pct, problemList, table } from './layout.js';
import { leadHref } from './leads.js';
import type { ConsoleContext, Rendered } from './index.js';
import type { Session } from './session.js';

/** The largest candidate accepted (the API's body limit is 1 MiB; a config is a few KB). */
const MAX_CONFIG_CHARS = 512 * 1024;
const candidateSchema = z.object({
  config: z
    .string({ error: 'paste or upload a config file' })
    .max(MAX_CONFIG_CHARS, `must be at most ${MAX_CONFIG_CHARS} characters`)
    .refine((s) => s.trim() !== '', 'paste or upload a config file'),
  confirm: z.string().optional(),
});
const CANDIDATE = '(candidate config)';
/** Moved leads listed on the page; the rest are counted. */
const SHOW_MOVED = 200;

const ruleText = (r: Rule) =>
  Object.entries(r)
    .filter(([k]) => k !== 'field' && k !== 'points')
    .map(([k, v]) => `${r.field} ${k} ${Array.isArray(v) ? v.join('|') : String(v)}`)
    .join(', ');

function modelRows(models: ScoringModel[]): string[][] {
  return models.map((m) => [
    `<code>${esc(m.id)}</code>`,
    esc(m.when?.map(ruleText).join('; ') || 'every other lead'),
    `mql ${m.thresholds.mql}, sql ${m.thresholds.sql}`,
    String(m.fit.length),
    String(m.disqualify.length),
    esc(
      Object.entries(m.behavior)
        .map(([t, b]) => `${t} ${b.points > 0 ? '+' : ''}${b.points}`)
        .join(', '),
    ),
  ]);
}

function candidateForm(text: string, problems?: { path: string; message: string }[]): string {
  return (
    (problems
      ? `<div class="notice error" role="alert"><p>The candidate config is invalid; nothing ran.</p>${problemList(problems)}</div>`
      : '') +
    '<form method="post" action="/console/models/what-if" class="candidate">' +
    '<label>Candidate config (YAML, as for <code>leadctl --config FILE what-if</code>)' +
    `<textarea name="config" rows="16" spellcheck="false">${esc(text)}</textarea></label>` +
    '<label>or load a file <input type="file" accept=".yaml,.yml,.json,text/yaml" data-into="config"></label>' +
    '<button type="submit">Run what-if</button></form>'
  );
}

export function modelsView(x: ConsoleContext): Rendered {
  const running = x.config();
  return {
    title: 'Models',
    body:
      `<p>Running config <code>${esc(running.version)}</code> (${esc(running.file)}): the first model whose ` +
      '<em>when</em> matches a lead scores it.</p>' +
      table(
        ['Model', 'When', 'Thresholds', 'Fit rules', 'Disqualifiers', 'Behaviours'],
        modelRows(running.config.scoring.models),
      ) +
      '<h2>What if</h2><p>Replays every lead the ledger holds under the running configs and under a candidate.</p>' +
      candidateForm(''),
  };
}

/** The candidate of a what-if or rollout form, or the page that lists its problems (status 400). */
function candidateOf(
  x: ConsoleContext,
  req: FastifyRequest,
  reply: FastifyReply,
): { loaded: LoadedConfig; text: string; confirm?: string } | Rendered {
  const form = validate(candidateSchema, req.body ?? {}, 'form');
  try {
    return {
      loaded: parseConfigText(form.config, CANDIDATE, process.cwd()),
      text: form.config,
      ...(form.confirm ? { confirm: form.confirm } : {}),
    };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    reply.status(400);
    return { title: 'What if', body: candidateForm(form.config, err.problems) };
  }
}

const isRendered = (v: object): v is Rendered => 'body' in v;

export async function whatIfView(
  x: ConsoleContext,
  req: FastifyRequest,
  reply: FastifyReply,
  session: Session,
): Promise<Rendered> {
  const c = candidateOf(x, req, reply);
  if (isRendered(c)) return c;
  const pool = x.c.service.ledger?.pool;
  if (!pool) throw new LeadError(503, 'ledger_unavailable', 'what-if needs the lead ledger');
  const r = await whatIfOnLedger(pool, { config: c.loaded.config, version: c.loaded.version }, { now: x.c.now() });
  const checked = r.leads - r.imported;
  const stages = Object.keys(r.before).map((s) => {
    const before = r.before[s as keyof typeof r.before];
    const after = r.after[s as keyof typeof r.after];
    return [
      esc(s),
      String(before),
      String(after),
      after === before ? '' : `${after > before ? '+' : ''}${after - before}`,
    ];
  });
  const moved = r.moved
    .slice(0, SHOW_MOVED)
    .map((m) => [`<a href="${leadHref(m.leadId)}">${esc(m.leadId)}</a>`, esc(m.from), esc(m.to)]);
  const roc = r.roc;
  const outcomes = r.auc
    ? `<h2>Where sales said won or lost</h2><p>ROC AUC now <strong>${r.auc.current.toFixed(4)}</strong>, candidate <strong>${r.auc.candidate.toFixed(4)}</strong>.</p>` +
      (roc
        ? '<div class="chart"><canvas id="roc-chart" aria-label="ROC curves" role="img"></canvas></div>' +
          jsonBlock('roc-data', roc)
        : '') +
      table(
        ['Config', 'Score', 'Leads', 'Won', 'Won rate'],
        (r.bands ?? []).map((b) => [esc(b.config), esc(b.band), String(b.leads), String(b.won), pct(b.rate)]),
      )
    : '<p>No lead has a won or lost outcome yet, so there is no ROC curve.</p>';
  const rollout = allows(session.scope, 'admin')
    ? '<h2>Roll out</h2><form method="post" action="/console/models/rollout" class="rollout">' +
      `<textarea name="config" hidden>${esc(c.text)}</textarea>` +
      `<label><input type="checkbox" name="confirm" value="${esc(c.loaded.version)}" required> Make config <code>${esc(c.loaded.version)}</code> the running config: every live lead switches at its next safe point and is re-scored from its recorded events.</label>` +
      '<button type="submit" class="danger">Roll out</button></form>'
    : '<p>Rolling out needs an admin token.</p>';
  return {
    title: 'What if',
    charts: true,
    body:
      `<p>${r.leads} leads replayed in ${r.seconds.toFixed(1)} s under their own configs and under candidate <code>${esc(c.loaded.version)}</code>.</p>` +
      `<p class="${r.agreement === 1 ? 'ok' : 'error'}">Self-check: the replay gives ${Math.round(r.agreement * checked)} of ${checked} leads their live score and stage (${pct(r.agreement)})` +
      (r.imported ? `; ${r.imported} leads with imported history not checked` : '') +
      '.</p>' +
      table(['Stage', 'Now', 'Candidate', 'Change'], stages, 'stages-compare') +
      `<h2>${r.moved.length} lead${r.moved.length === 1 ? '' : 's'} would move</h2>` +
      (moved.length ? table(['Lead', 'From', 'To'], moved, 'moved') : '') +
      (r.moved.length > SHOW_MOVED
        ? `<p>… and ${r.moved.length - SHOW_MOVED} more (leadctl what-if --json lists all).</p>`
        : '') +
      outcomes +
      (r.disagreements.length
        ? '<h2>Leads the replay does not reproduce</h2>' +
          table(
            ['Lead', 'Why'],
            r.disagreements.slice(0, SHOW_MOVED).map((d) => [esc(d.leadId), esc(d.why)]),
          )
        : '') +
      rollout,
  };
}

export async function rolloutView(x: ConsoleContext, req: FastifyRequest, reply: FastifyReply): Promise<Rendered> {
  const c = candidateOf(x, req, reply);
  if (isRendered(c)) return c;
  if (c.confirm !== c.loaded.version) {
    reply.status(400);
    return {
      title: 'Roll out',
      body: problemList([
        { path: 'confirm', message: `tick the confirmation for config ${c.loaded.version} to roll it out` },
      ]),
    };
  }
  const pool = x.c.service.ledger?.pool;
  if (!pool) throw new LeadError(503, 'ledger_unavailable', 'a rollout needs the lead ledger');
  const r = await rollOut(
    pool,
    x.c.service.client,
    c.loaded,
    `console rollout (config ${c.loaded.version})`,
    'lead console',
  );
  const p = await rolloutProgress(pool, r.version);
  return {
    title: 'Rolled out',
    body:
      `<p class="ok">Config <code>${esc(r.version)}</code> is the running config. Batch job <code>${esc(r.batchJobId)}</code> tells every running lead.</p>` +
      `<p>${p.switched} of ${p.leads} leads score with it so far; the rest switch at their next safe point.</p>` +
      '<p><a href="/console/models">Back to the models</a></p>',
  };
}
