/**
 * `leadctl what-if --config FILE` and `leadctl rollout --config FILE` (CONTRACT.md §Scoring
 * models): a candidate config tried on every lead's recorded life, then made the running one.
 * The candidate is the global --config; a file that fails validation stops both before anything
 * runs, with every problem and its path.
 */
import type { Command } from 'commander';
import type { WhatIf } from '../../learn/what-if.js';
import { whatIfOnLedger } from '../../learn/what-if-ledger.js';
import { rollOut, rolloutProgress } from '../../learn/rollout.js';
import { table, visible } from '../output.js';
import { type Cli, type Context, intOption } from '../shared.js';

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

function formatWhatIf(r: WhatIf & { seconds: number }, candidate: string, show: number): string[] {
  const checked = r.leads - r.imported;
  const lines = [
    `${r.leads} leads replayed in ${r.seconds.toFixed(1)} s under their own configs and under ${candidate}`,
    `self-check: the replay gives ${Math.round(r.agreement * checked)} of ${checked} leads their live score and stage (agreement ${pct(r.agreement)})` +
      (r.imported ? `; ${r.imported} leads with imported history not checked` : ''),
    '',
    table(
      Object.keys(r.before).map((s) => [s, r.before[s as keyof typeof r.before], r.after[s as keyof typeof r.after]]),
      ['STAGE', 'NOW', 'CANDIDATE'],
    ),
    '',
    `${r.moved.length} leads would move${r.moved.length ? ':' : ''}`,
    ...r.moved.slice(0, show).map((m) => `  ${visible(m.leadId)}: ${m.from} -> ${m.to}`),
    ...(r.moved.length > show ? [`  ... and ${r.moved.length - show} more (--show or --json for all)`] : []),
  ];
  if (r.auc) {
    lines.push(
      '',
      `with known outcomes (won vs lost or rejected): ROC AUC now ${r.auc.current.toFixed(4)}, candidate ${r.auc.candidate.toFixed(4)}`,
    );
    lines.push(
      table(
        r.bands!.map((b) => [b.config, b.band, b.leads, b.won, pct(b.rate)]),
        ['CONFIG', 'SCORE', 'LEADS', 'WON', 'RATE'],
      ),
    );
  }
  if (r.disagreements.length) {
    lines.push('', 'leads the replay does not reproduce (a bug in the ledger or the model):');
    for (const d of r.disagreements.slice(0, show))
      lines.push(
        `  ${visible(d.leadId)}: live ${d.live.stage} ${d.live.score}` +
          (d.replayed ? `, replayed ${d.replayed.stage} ${d.replayed.score}` : '') +
          ` (${d.why})`,
      );
  }
  return lines;
}

/** Makes the candidate the running config, then tells every running lead (a batch signal). */
async function rollout(ctx: Context, json: boolean, o: { wait: number }, print: (s: string) => void) {
  const loaded = ctx.config();
  const ledger = await ctx.ledger();
  const svc = await ctx.connect({ ledger: false });
  const { batchJobId: jobId } = await rollOut(
    ledger.pool,
    svc.client,
    loaded,
    `leadctl rollout ${loaded.file} (config ${loaded.version})`,
    'leadctl rollout',
  );
  const count = () => rolloutProgress(ledger.pool, loaded.version);
  const deadline = Date.now() + o.wait * 1000;
  let c = await count();
  while (c.switched < c.leads && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    c = await count();
  }
  if (json) print(JSON.stringify({ version: loaded.version, batchJobId: jobId, ...c }));
  else {
    print(
      `config ${loaded.version} (${loaded.file}) is the running config; batch job ${jobId} signals every running lead`,
    );
    print(
      c.switched === c.leads
        ? `all ${c.leads} leads score with it`
        : `${c.switched} of ${c.leads} leads score with it so far; the rest switch at their next safe point (leadctl show <id> says which version)`,
    );
  }
  return 0;
}

export function addWhatIfCommands(program: Command, { io, action }: Cli) {
  program
    .command('what-if')
    .description(
      'replay every lead recorded in the ledger under the configs it lived with (the self-check: its live ' +
        'score and stage) and under --config: leads per stage, who moves, ROC AUC and conversion per score band',
    )
    .option('--show <n>', 'moved leads and disagreements to list', intOption('show'), 20)
    .action(
      action(async (ctx, json, o: { show: number }) => {
        const candidate = ctx.config();
        const r = await whatIfOnLedger((await ctx.ledger()).pool, candidate);
        if (json) {
          const { disagreements, bands, imported: _i, seconds: _s, ...contract } = r;
          io.out(JSON.stringify({ ...contract, bands, disagreements }));
        } else for (const l of formatWhatIf(r, candidate.version, o.show)) io.out(l);
        return 0;
      }),
    );
  program
    .command('rollout')
    .description(
      'make --config the running config of every worker: each live lead switches at its next safe point, ' +
        're-scored from its recorded events (a "rescored" transition says so)',
    )
    .option('--wait <seconds>', 'how long to wait for the leads to switch', intOption('wait'), 60)
    .action(action((ctx, json, o: { wait: number }) => rollout(ctx, json, o, io.out)));
}
