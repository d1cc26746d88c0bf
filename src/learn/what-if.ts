/**
 * What-if (CONTRACT.md §Scoring models): every lead's recorded life replayed through the model
 * (src/domain/replay.ts) under the configs it lived with (the self-check: the replay must give
 * its live score and stage) and under a candidate config from its start; leads per stage before
 * and after, who moves, and with known outcomes each config's ROC AUC and conversion per score
 * band. Pure: the command feeds it pages of histories from the ledger.
 */
import type { Config } from '../domain/config.js';
import { replay, replayedAt, type RecordedTransition, switchOf } from '../domain/replay.js';
import { nextWake, RESCORED } from '../domain/lifecycle.js';
import { STAGES, type Stage } from '../domain/stages.js';
import type { HistoryPage, LiveLead } from '../ledger/histories.js';
import { rocAuc, rocCurve } from './roc.js';

export interface Versioned {
  config: Config;
  version: string;
}

/** Where a lead's replay under its own configs did not give its live score or stage. */
export interface Disagreement {
  leadId: string;
  live: { stage: Stage; score: number };
  replayed?: { stage: Stage; score: number };
  why: string;
}

export interface WhatIf {
  leads: number;
  /** Share of the leads whose replay under their own configs gives their live score and stage (0..1). */
  agreement: number;
  before: Record<Stage, number>;
  after: Record<Stage, number>;
  moved: { leadId: string; from: Stage; to: Stage }[];
  auc?: { current: number; candidate: number };
  /** The ROC curves behind `auc` (src/learn/roc.ts rocCurve), for a chart; present when `auc` is. */
  roc?: { current: { fpr: number; tpr: number }[]; candidate: { fpr: number; tpr: number }[] };
  /** With known outcomes: per score band (under each config), leads with an outcome and the share won. */
  bands?: { config: 'current' | 'candidate'; band: string; leads: number; won: number; rate: number }[];
  disagreements: Disagreement[];
  /** Leads with imported history (not re-applied by the replay), counted apart from the agreement. */
  imported: number;
}

const zero = (): Record<Stage, number> => Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
const WON = 'won';
const wasIn = (t: RecordedTransition) => switchOf(t).from;
const nowIn = (t: RecordedTransition) => switchOf(t).to;

/** The known outcome of a lead: won (true) or lost/rejected (false); undefined when sales never said. */
export function outcomeLabel(live: LiveLead): boolean | undefined {
  if (live.outcomes.includes(WON)) return true;
  if (live.outcomes.some((o) => o === 'lost' || o === 'rejected')) return false;
  return undefined;
}

/** Score bands of `width` points, e.g. `40..59`. */
const bandOf = (score: number, width: number) => {
  const lo = Math.floor(score / width) * width;
  return `${lo}..${lo + width - 1}`;
};

export class WhatIfRun {
  private leads = 0;
  private agreeing = 0;
  private imported = 0;
  private readonly before = zero();
  private readonly after = zero();
  private readonly moved: WhatIf['moved'] = [];
  private readonly disagreements: Disagreement[] = [];
  private readonly scored: { current: number; candidate: number; label: boolean }[] = [];

  /**
   * `configs` gives a config by version (the ledger's configs table), `candidate` the config to
   * try. The comparison is at each lead's last write (`live.at`); `now` dates the candidate's stages.
   */
  constructor(
    private readonly configs: (version: string) => Config | undefined,
    private readonly candidate: Versioned,
    private readonly now: number,
    private readonly bandWidth = 20,
  ) {}

  add(page: HistoryPage): void {
    for (const { history, live } of page.leads) {
      this.leads++;
      const switches = history.transitions.filter((t) => t.reason.startsWith(RESCORED));
      const firstVersion = (switches[0] && wasIn(switches[0])) ?? live.configVersion;
      const first = this.configs(firstVersion);
      let current: { stage: Stage; score: number } | undefined;
      // Where the lead is now under its own configs: a deadline due since its last recorded moment
      // (its timer not fired yet) acts, as it does for the candidate below.
      let currentNow: Stage | undefined;
      const missing = [firstVersion, ...switches.map(nowIn)].find((v) => !v || !this.configs(v));
      if (!first || missing !== undefined) {
        this.disagree(
          history.leadId,
          live,
          undefined,
          `config version ${missing ?? firstVersion} is not in the ledger`,
        );
      } else {
        const core = replay(history, live.at, {
          initial: { config: first, version: firstVersion },
          at: (t) => this.configs(nowIn(t) ?? ''),
        });
        const own = this.configs(core.configVersion) ?? first;
        current = replayedAt(core, own, live.at);
        const until = Math.max(this.now, live.at);
        const wake = nextWake(core, own);
        currentNow =
          wake !== undefined && wake <= until
            ? replay(history, until, {
                initial: { config: first, version: firstVersion },
                at: (t) => this.configs(nowIn(t) ?? ''),
              }).stage
            : core.stage;
        if (live.imported) this.imported++;
        else if (current.stage === live.stage && current.score === live.score) this.agreeing++;
        else this.disagree(history.leadId, live, current, 'the replay differs');
      }
      // The candidate from the lead's start, to now (its timers run on).
      const cand = replay(history, Math.max(this.now, live.at), { initial: this.candidate });
      const after = replayedAt(cand, this.candidate.config, Math.max(this.now, live.at));
      const beforeStage = live.stage;
      // An imported history's stages are not re-applied by the replay, so the candidate cannot
      // place that lead: it stays where it is in both counts and never moves (its candidate score
      // still counts for the AUC: the profile and events are scored as recorded).
      const afterStage = live.imported ? beforeStage : after.stage;
      this.before[beforeStage]++;
      this.after[afterStage]++;
      const from = live.imported ? beforeStage : (currentNow ?? beforeStage);
      if (afterStage !== from) this.moved.push({ leadId: history.leadId, from, to: afterStage });
      const label = outcomeLabel(live);
      if (label !== undefined)
        this.scored.push({ current: current?.score ?? live.score, candidate: after.score, label });
    }
  }

  private disagree(leadId: string, live: LiveLead, replayed: Disagreement['replayed'], why: string) {
    if (live.imported) {
      this.imported++;
      return;
    }
    this.disagreements.push({
      leadId,
      live: { stage: live.stage, score: live.score },
      ...(replayed ? { replayed } : {}),
      why,
    });
  }

  result(): WhatIf {
    const checked = this.leads - this.imported;
    const labels = this.scored.map((s) => s.label);
    const both = labels.some(Boolean) && labels.some((l) => !l);
    const current = this.scored.map((s) => s.current);
    const candidate = this.scored.map((s) => s.candidate);
    const bands: NonNullable<WhatIf['bands']> = [];
    if (both) {
      for (const which of ['current', 'candidate'] as const) {
        const by = new Map<string, { lo: number; leads: number; won: number }>();
        for (const s of this.scored) {
          const key = bandOf(s[which], this.bandWidth);
          const b = by.get(key) ?? { lo: Math.floor(s[which] / this.bandWidth), leads: 0, won: 0 };
          b.leads++;
          if (s.label) b.won++;
          by.set(key, b);
        }
        for (const [band, b] of [...by].sort((x, y) => x[1].lo - y[1].lo))
          bands.push({ config: which, band, leads: b.leads, won: b.won, rate: b.won / b.leads });
      }
    }
    return {
      leads: this.leads,
      agreement: checked ? this.agreeing / checked : 1,
      before: this.before,
      after: this.after,
      moved: this.moved,
      ...(both
        ? {
            auc: { current: rocAuc(current, labels), candidate: rocAuc(candidate, labels) },
            roc: { current: rocCurve(current, labels), candidate: rocCurve(candidate, labels) },
            bands,
          }
        : {}),
      disagreements: this.disagreements,
      imported: this.imported,
    };
  }
}
