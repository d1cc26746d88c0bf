/**
 * A lead's recorded life replayed through the lifecycle model (what-if, CONTRACT.md §Scoring
 * models): the same pure functions the workflow runs, fed what the ledger recorded, in the order
 * and at the times the workflow applied it.
 *
 * What the loop did, and how the replay does the same:
 * - Facts (events, profile changes, sales outcomes) apply at the moment the workflow applied them
 *   (`appliedAt`; an outcome at its own time, before the facts of the same moment), then the rules
 *   act (`advance`) at that moment, with deadlines acting only once their timer fired.
 * - A deadline's timer fires at the deadline (nextWake) plus the timer's latency. A timer firing
 *   that changed the stage was recorded as a transition; when the ledger holds that transition
 *   within TIMER_LATENCY_MS after the deadline, the replay fires there (its recorded moment), and a
 *   fact recorded between the deadline and that moment comes first, as it did. With no firing
 *   recorded, a fact within TIMER_LATENCY_MS after the deadline came first too; otherwise the
 *   timer fires at the deadline.
 * - An owner pick (a local activity) is taken at once: which owner does not change the score or
 *   the stage, only that there is one (the SLA timer runs from then).
 * - Mail results come back as recorded facts (a permanent bounce is a `hard_bounce` event).
 * - A rollout re-scored the lead at a recorded moment (a `rescored` transition): the replay
 *   switches to that config there, re-scoring the same way (`rescore`).
 */
import type { Config } from './config.js';
import type { LeadStart, Profile, SalesOutcome } from './lead.js';
import {
  advance,
  applyEvent,
  applyOutcome,
  applyProfile,
  type EventFact,
  type LeadCore,
  newLead,
  nextWake,
  rescore,
  RESCORED,
  scoreOf,
} from './lifecycle.js';
import type { Stage } from './stages.js';

/** How late a recorded timer transition may be after its deadline and still be that timer's. */
export const TIMER_LATENCY_MS = 60_000;

export type RecordedFact =
  | { kind: 'event'; at: number; seq: number; event: EventFact }
  | { kind: 'profile'; at: number; seq: number; patch: Profile }
  | { kind: 'outcome'; at: number; seq: number; outcome: SalesOutcome };

export interface RecordedTransition {
  at: number;
  from: Stage;
  to: Stage;
  reason: string;
}

/** One lead as the ledger holds it. */
export interface LeadHistory {
  leadId: string;
  createdAt: number;
  /** The profile the lead was created with (its run's start input). */
  start: Profile;
  campaign?: string;
  channel?: string;
  facts: RecordedFact[];
  transitions: RecordedTransition[];
}

/** The order the loop applied facts in: by moment, outcomes first, then as recorded (then by event id). */
const KIND_ORDER: Record<RecordedFact['kind'], number> = { outcome: 0, profile: 1, event: 1 };
const idOf = (f: RecordedFact) => (f.kind === 'event' ? f.event.eventId : '');
export const factOrder = (a: RecordedFact, b: RecordedFact) =>
  a.at - b.at ||
  KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
  a.seq - b.seq ||
  (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0);

/**
 * Replays a lead's history up to `until` (ms) from `configs.initial`, switching at each `rescored`
 * transition to the config `configs.at` gives for it (none given: the initial config throughout,
 * as a candidate is tried from the lead's start).
 */
export function replay(
  h: LeadHistory,
  until: number,
  configs: { initial: { config: Config; version: string }; at?: (t: RecordedTransition) => Config | undefined },
): LeadCore {
  let config = configs.initial.config;
  const start = { ...h.start, leadId: h.leadId, campaign: h.campaign, channel: h.channel } as LeadStart;
  let core = newLead(start, config, configs.initial.version, h.createdAt);
  let firedUntil = Number.NEGATIVE_INFINITY;
  const used = new Set<RecordedTransition>();
  const facts = [...h.facts].sort(factOrder);
  const switches = h.transitions.filter((t) => t.reason.startsWith(RESCORED)).sort((a, b) => a.at - b.at);
  const events: EventFact[] = [];

  /** The rules at `now` (deadlines up to `fired`), and an owner for a lead that needs one. */
  const act = (now: number, fired: number) => {
    const step = advance(core, config, now, fired);
    core = step.core;
    for (const e of step.effects) {
      if (e.kind !== 'assignOwner' || core.owner !== undefined) continue;
      core = advance({ ...core, owner: e.owners[0] }, config, now, fired).core;
    }
  };

  /** The recorded moment a timer for `deadline` fired, if the transition it made was recorded. */
  const recordedFiring = (deadline: number): number | undefined => {
    const next = advance(core, config, deadline, deadline).core;
    const made = next.transitions.length > core.transitions.length ? next.transitions.at(-1)! : undefined;
    if (!made) return undefined;
    const t = h.transitions.find(
      (r) =>
        !used.has(r) &&
        !r.reason.startsWith(RESCORED) &&
        r.from === made.from &&
        r.to === made.to &&
        r.at >= deadline &&
        r.at <= deadline + TIMER_LATENCY_MS,
    );
    if (t) used.add(t);
    return t?.at;
  };

  /** Fires the timers due before `t` (a fact's moment, or the end). */
  const fireUntil = (t: number, inclusive: boolean) => {
    for (let guard = 0; guard < 10_000; guard++) {
      const wake = nextWake(core, config);
      if (wake === undefined || wake > t || (!inclusive && wake === t) || wake <= firedUntil) return;
      const recorded = recordedFiring(wake);
      // No firing recorded, and a fact this soon after the deadline: the fact came first (a timer
      // that fired before it would have recorded what it did).
      if (recorded === undefined && !inclusive && t - wake <= TIMER_LATENCY_MS) return;
      const at = recorded ?? wake;
      if (at > t || (!inclusive && at === t)) return; // the fact came first
      firedUntil = Math.max(firedUntil, wake);
      act(at, firedUntil);
    }
  };

  // The run's first iteration applies what came with the start (the event that created the lead).
  if ((facts[0]?.at ?? Infinity) !== h.createdAt) act(h.createdAt, firedUntil);
  let i = 0;
  while (i < facts.length || switches.length) {
    const nextAt = Math.min(facts[i]?.at ?? Infinity, switches[0]?.at ?? Infinity);
    if (nextAt > until) break;
    fireUntil(nextAt, false);
    if (switches[0]?.at === nextAt && (facts[i]?.at ?? Infinity) >= nextAt) {
      const sw = switches.shift()!;
      const next = configs.at?.(sw);
      if (next) {
        const from = config;
        config = next;
        core = rescore(core, events, from, config, switchOf(sw).to ?? core.configVersion, sw.at);
        // The reload and the facts that came meanwhile were one iteration: the rules act after both.
        if ((facts[i]?.at ?? Infinity) !== sw.at) act(sw.at, firedUntil);
      }
      continue;
    }
    // Every fact of one moment, then the rules once (one loop iteration).
    for (; i < facts.length && facts[i]!.at === nextAt; i++) {
      const f = facts[i]!;
      if (f.kind === 'event') {
        core = applyEvent(core, f.event, config, f.at);
        events.push(f.event);
      } else if (f.kind === 'profile') core = applyProfile(core, f.patch, config, f.at);
      else core = applyOutcome(core, f.outcome, config, f.at);
    }
    act(nextAt, firedUntil);
  }
  fireUntil(until, true);
  return core;
}

/** The config versions a `rescored` transition names (`rescored under config <to> (was <from>): …`). */
export function switchOf(t: RecordedTransition): { to?: string; from?: string } {
  if (!t.reason.startsWith(RESCORED)) return {};
  return { to: /under config (\S+) /.exec(t.reason)?.[1], from: /\(was (\S+)\)/.exec(t.reason)?.[1] };
}

/** What the self-check compares: the replayed score and stage against the live ones, at `at`. */
export function replayedAt(core: LeadCore, config: Config, at: number): { stage: Stage; score: number } {
  return { stage: core.stage, score: scoreOf(core, config, at).total };
}
