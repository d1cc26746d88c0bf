/**
 * The lead's lifecycle as pure functions over a serializable record (`LeadCore`). The workflow
 * records facts with `applyEvent`, `applyProfile` and `applyOutcome`, then calls `advance` to let
 * the stage rules and timeouts act, and asks `nextWake` when to look again. No Temporal import:
 * everything here is unit-tested and property-tested on its own.
 */
import type { Config, ScoringModel, Track } from './config.js';
import { formatDuration } from './duration.js';
import type { Consent, LeadEvent, LeadStart, LeadState, Profile, SalesOutcome, Transition } from './lead.js';
import { BUILTIN_EVENT_TYPES, HARD_BOUNCE, UNSUBSCRIBE } from './event-types.js';
import { profileLimitProblem } from './limits.js';
import { OUTCOME_STAGE, type Stage, TERMINAL_STAGES } from './stages.js';
import { nextSendSlot, pruneSent, timeZoneFor } from './schedule.js';
import {
  addEngagement,
  disqualifiedBy,
  emptyEngagement,
  type Engagement,
  fitScore,
  isScoredType,
  modelById,
  modelFor,
  modelsOf,
  rebase,
  scoreAt,
  scoreFactors,
} from './scoring.js';

const MAX_TRANSITIONS = 50;
const MAX_SCORE_LOG = 20;

export interface LeadCore {
  leadId: string;
  stage: Stage;
  /** When the lead entered its current stage (ms). */
  stageSince: number;
  profile: Profile;
  consent: Consent;
  campaign?: string;
  channel?: string;
  createdAt: number;
  lastEngagedAt?: number;
  becameMqlAt?: number;
  becameSqlAt?: number;
  owner?: string;
  /** Index of the routing rule that picked the owner. */
  routingRule?: number;
  slaDeadline?: number;
  escalations: number;
  recycleCount: number;
  eventsProcessed: number;
  /** A hand-raiser that has not yet moved the lead to sql (e.g. it came while the lead was in sales). */
  handRaised?: string;
  disqualifiedBySales?: boolean;
  fit: number;
  /** The id of the scoring model the profile picked (scoring.models); absent in cores from before models. */
  model?: string;
  engagement: Engagement;
  nurture: { track?: string; step: number; lastStepAt?: number; nextStepAt?: number };
  /** Nurture send times in the last week, for the frequency cap. */
  sentAt: number[];
  transitions: { at: number; from: Stage; to: Stage; reason: string }[];
  scoreLog: { at: number; eventId?: string; type: string; points: number; note?: string }[];
  configVersion: string;
}

/** The lead's model (by the id it carries) under a config. */
export function modelOf(core: LeadCore, config: Config): ScoringModel {
  return modelById(core.model, core.profile, config);
}

/** The model a profile picks and the fit it gets there. */
function scoredBy(profile: Profile, config: Config): { model: string; fit: number } {
  const model = modelFor(profile, config);
  return { model: model.id, fit: fitScore(profile, model) };
}

/** The lead's score at `now` under its model. */
export function scoreOf(core: LeadCore, config: Config, now: number) {
  return scoreAt(core.fit, core.engagement, now, modelOf(core, config));
}

/** The score as LeadState reports it: the total, its parts, the model and the factors. */
export function scoreStateOf(core: LeadCore, config: Config, now: number): LeadState['score'] {
  const model = modelOf(core, config);
  const score = scoreAt(core.fit, core.engagement, now, model);
  return { ...score, model: model.id, factors: scoreFactors(core.profile, core.engagement, now, model) };
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function newLead(input: LeadStart, config: Config, configVersion: string, now: number): LeadCore {
  const { leadId, campaign, channel, consent, ...profile } = input;
  const core: LeadCore = {
    leadId,
    stage: 'lead',
    stageSince: now,
    profile,
    consent: consent?.email === false ? 'unsubscribed' : 'subscribed',
    campaign,
    channel,
    createdAt: now,
    escalations: 0,
    recycleCount: 0,
    eventsProcessed: 0,
    ...scoredBy(profile, config),
    engagement: emptyEngagement(now),
    nurture: { step: 0 },
    sentAt: [],
    transitions: [],
    scoreLog: [],
    configVersion,
  };
  return enrol(core, config, now);
}

/**
 * How a run starts: from what an earlier run carried (continue-as-new, a run the ledger or a
 * closed run remembers), under the worker's config version, keeping what the start itself says (a
 * profile that came with the event that started it, a first campaign); else as a new lead.
 */
export function startRun(
  carried: LeadCore | undefined,
  input: LeadStart,
  config: Config,
  configVersion: string,
  now: number,
): LeadCore {
  if (!carried) return newLead(input, config, configVersion, now);
  let core: LeadCore = { ...carried, configVersion };
  const { leadId: _leadId, campaign, channel, consent: _consent, ...profile } = input;
  if (Object.keys(profile).length) core = applyProfile(core, profile, config, now);
  if (!core.campaign && campaign) core = { ...core, campaign, channel: core.channel ?? channel };
  return core;
}

/** A new config version reaches a running lead: fit is re-applied under the new rules; engagement keeps the points it earned. */
export function reconfigure(core: LeadCore, config: Config, configVersion: string, now: number): LeadCore {
  if (configVersion === core.configVersion) return core;
  return applyProfile({ ...core, configVersion }, {}, config, now);
}

/** The reason of the same-stage transition a rollout's re-score records (what-if switches config there). */
export const RESCORED = 'rescored';

/**
 * A rollout reaches the lead (`leadctl rollout`): from now on it scores under `config`, its fit
 * from its profile, its engagement earned again from its recorded events under the new behaviour
 * (decayed to now, the resets it went through kept). Its stage stays: what the new rules make of
 * it is up to the rules that act next. A same-stage transition says so, with the score before and
 * after. `events` in the order the lead applied them (the ledger's order, what-if's too).
 */
export function rescore(
  core: LeadCore,
  events: readonly Pick<EventFact, 'eventId' | 'type' | 'occurredAt'>[],
  from: Config,
  config: Config,
  configVersion: string,
  now: number,
): LeadCore {
  const before = scoreOf(core, from, now).total;
  const refit = applyProfile({ ...core, configVersion }, {}, config, now);
  const model = modelOf(refit, config);
  const halfLife = model.decay?.halfLife;
  const resetAt = core.engagement.resetAt;
  let engagement: Engagement = { ...emptyEngagement(now), ...(resetAt !== undefined ? { resetAt } : {}) };
  let counted = 0;
  for (const ev of events) {
    const behavior = model.behavior[ev.type];
    if (!behavior) continue;
    const r = addEngagement(engagement, { ...ev, occurredAt: Math.min(ev.occurredAt, now) }, behavior, halfLife);
    engagement = r.engagement;
    if (r.counted) counted++;
  }
  const next: LeadCore = { ...refit, engagement };
  const after = scoreOf(next, config, now).total;
  const reason = `${RESCORED} under config ${configVersion} (was ${core.configVersion}): ${counted} of ${events.length} recorded events count, score ${before} -> ${after}`;
  return {
    ...next,
    transitions: [...next.transitions, { at: now, from: core.stage, to: core.stage, reason }].slice(-MAX_TRANSITIONS),
  };
}

/** The public LeadState (CONTRACT.md) of a core at time `now`. */
export function toState(core: LeadCore, config: Config, now: number): LeadState {
  return {
    leadId: core.leadId,
    stage: core.stage,
    score: scoreStateOf(core, config, now),
    owner: core.owner,
    profile: core.profile,
    consent: core.consent,
    nurture: { track: core.nurture.track, step: core.nurture.step, nextStepAt: iso(core.nurture.nextStepAt) },
    createdAt: iso(core.createdAt)!,
    lastEngagedAt: iso(core.lastEngagedAt),
    becameMqlAt: iso(core.becameMqlAt),
    becameSqlAt: iso(core.becameSqlAt),
    slaDeadline: iso(core.slaDeadline),
    recycleCount: core.recycleCount,
    eventsProcessed: core.eventsProcessed,
    transitions: core.transitions.map((t): Transition => ({ ...t, at: iso(t.at)! })),
    campaign: core.campaign,
    configVersion: core.configVersion,
    scoreLog: core.scoreLog.map((s) => ({ ...s, at: iso(s.at)! })),
    escalations: core.escalations,
  };
}

/** Adds an entry to the lead's readable log (score changes, skipped or uncertain mail). */
export function logScore(core: LeadCore, entry: LeadCore['scoreLog'][number]): LeadCore {
  return { ...core, scoreLog: [...core.scoreLog, entry].slice(-MAX_SCORE_LOG) };
}

export function transition(core: LeadCore, to: Stage, reason: string, now: number, config: Config): LeadCore {
  if (core.stage === to) return core;
  let next: LeadCore = {
    ...core,
    stage: to,
    stageSince: now,
    transitions: [...core.transitions, { at: now, from: core.stage, to, reason }].slice(-MAX_TRANSITIONS),
  };
  if (to === 'mql') next.becameMqlAt = now;
  if (to === 'sql')
    next = {
      ...next,
      becameSqlAt: now,
      slaDeadline: now + config.timeouts.salesAcceptWithin,
      escalations: 0,
      handRaised: undefined,
    };
  if (to !== 'sql') next.slaDeadline = undefined;
  if (to === 'recycled') {
    // Sales or time said "not now": the lead earns its way back from zero engagement.
    next = {
      ...next,
      recycleCount: next.recycleCount + 1,
      owner: undefined,
      routingRule: undefined,
      handRaised: undefined,
      engagement: { ...emptyEngagement(now), resetAt: now },
    };
  }
  return enrol(next, config, now);
}

/** Puts the lead on its stage's nurture track (or none), unless it is already on it. */
function enrol(core: LeadCore, config: Config, now: number): LeadCore {
  const track = config.nurture.tracks.find((t) => t.for.includes(core.stage));
  if (track?.id === core.nurture.track) return core;
  if (!track) return { ...core, nurture: { step: 0 } };
  return { ...core, nurture: { track: track.id, step: 0, lastStepAt: now, nextStepAt: now + track.steps[0]!.after } };
}

export function isTerminal(core: LeadCore): boolean {
  return TERMINAL_STAGES.includes(core.stage);
}

export interface EventFact {
  eventId: string;
  type: string;
  occurredAt: number;
  campaign?: string;
  channel?: string;
  profile?: Profile;
  email?: string;
}

/**
 * Whether the lead takes an event of this type under this config: the types it scores and the
 * built-in consent events. Any other is ignored, not counted and not remembered as seen, so that a
 * redelivery counts once a config scores the type.
 */
export function isKnownEventType(type: string, config: Config): boolean {
  return isScoredType(type, config) || (BUILTIN_EVENT_TYPES as readonly string[]).includes(type);
}

/**
 * Records one (already de-duplicated, validated) event: consent, points, engagement time. An
 * event of a type the config does not know (isKnownEventType) leaves the lead as it was.
 */
export function applyEvent(core: LeadCore, ev: EventFact, config: Config, now: number): LeadCore {
  if (!isKnownEventType(ev.type, config)) return core;
  const occurredAt = Math.min(ev.occurredAt, now);
  let next: LeadCore = {
    ...core,
    eventsProcessed: core.eventsProcessed + 1,
    campaign: core.campaign ?? ev.campaign,
    channel: core.channel ?? ev.channel,
  };
  if (ev.profile || ev.email)
    next = applyProfile(next, { ...ev.profile, ...(ev.email ? { email: ev.email } : {}) }, config, now);
  if (ev.type === UNSUBSCRIBE || ev.type === HARD_BOUNCE) {
    const consent: Consent = ev.type === UNSUBSCRIBE ? 'unsubscribed' : 'bounced';
    return logScore(
      { ...next, consent: next.consent === 'bounced' ? 'bounced' : consent },
      { at: occurredAt, eventId: ev.eventId, type: ev.type, points: 0, note: 'consent: no more nurture email' },
    );
  }
  const model = modelOf(next, config);
  const halfLife = model.decay?.halfLife;
  const behavior = model.behavior[ev.type];
  if (!behavior) {
    const note = `not scored by model ${model.id}`;
    return logScore(next, { at: occurredAt, eventId: ev.eventId, type: ev.type, points: 0, note });
  }
  // A dormant lead that engages again comes back into the funnel, earning its way back from the
  // engagement it shows from its dormancy on: this event counts (and a hand-raise is kept).
  if (next.stage === 'dormant') {
    const dormantSince = next.stageSince;
    next = transition(next, 'recycled', `re-engaged (${ev.type}) after dormancy`, now, config);
    next = { ...next, engagement: { ...next.engagement, resetAt: Math.min(dormantSince, occurredAt) } };
  }
  const before = scoreOf(next, config, now).total;
  const { engagement, counted } = addEngagement(
    rebase(next.engagement, now, halfLife),
    { type: ev.type, eventId: ev.eventId, occurredAt },
    behavior,
    halfLife,
  );
  next = { ...next, engagement, lastEngagedAt: Math.max(next.lastEngagedAt ?? 0, occurredAt) };
  if (behavior.handRaiser && counted) next.handRaised = ev.type;
  const after = scoreOf(next, config, now).total;
  const note = counted
    ? occurredAt < now
      ? `late event, decayed from ${new Date(occurredAt).toISOString()}`
      : undefined
    : engagement.resetAt !== undefined && occurredAt < engagement.resetAt
      ? 'before the last recycle: not counted'
      : `capped at ${behavior.maxPerDay}/day`;
  return logScore(next, {
    at: occurredAt,
    eventId: ev.eventId,
    type: ev.type,
    points: counted ? after - before : 0,
    ...(note ? { note } : {}),
  });
}

/** Merges a partial profile and re-scores fit. */
export function applyProfile(core: LeadCore, patch: Profile, config: Config, now: number): LeadCore {
  const profile = { ...core.profile, ...patch };
  // Each patch is within the bound (the schemas check it); the merge of many may not be: refuse it whole.
  const tooBig = profileLimitProblem(profile);
  if (tooBig && Object.keys(patch).length)
    return logScore(core, { at: now, type: 'profile', points: 0, note: `profile change refused: ${tooBig}` });
  const { model, fit } = scoredBy(profile, config);
  const next = { ...core, profile, model };
  // A core from before models names none: taking the model its profile picks is no change to log.
  const switched = core.model !== undefined && core.model !== model;
  if (fit === core.fit && !switched) return next;
  const note = switched ? `model ${core.model} -> ${model}, fit ${core.fit} -> ${fit}` : `fit ${core.fit} -> ${fit}`;
  return logScore({ ...next, fit }, { at: now, type: 'profile', points: fit - core.fit, note });
}

/** Whether an outcome fits the lead's stage; the update validator rejects it otherwise. */
export function outcomeError(core: LeadCore, outcome: SalesOutcome): string | undefined {
  const stage = OUTCOME_STAGE[outcome.outcome];
  return core.stage === stage
    ? undefined
    : `outcome ${outcome.outcome} needs stage ${stage}, but the lead is in ${core.stage}`;
}

export function applyOutcome(core: LeadCore, o: SalesOutcome, config: Config, now: number): LeadCore {
  const by = o.rep ? ` by ${o.rep}` : '';
  const note = o.note ? `: ${o.note}` : '';
  switch (o.outcome) {
    case 'accepted':
      return transition(
        { ...core, owner: o.rep ?? core.owner },
        'opportunity',
        `sales accepted${by}${note}`,
        now,
        config,
      );
    case 'rejected':
      if (o.reason === 'bad_fit' || o.reason === 'duplicate') {
        return transition(
          { ...core, disqualifiedBySales: true },
          'disqualified',
          `sales rejected (${o.reason})${by}${note}`,
          now,
          config,
        );
      }
      return transition(core, 'recycled', `sales rejected (${o.reason})${by}${note}`, now, config);
    case 'won':
      return transition(core, 'customer', `won${by}${note}`, now, config);
    case 'lost':
      return transition(core, 'recycled', `lost${o.reason ? ` (${o.reason})` : ''}${by}${note}`, now, config);
  }
}

export type Effect =
  | { kind: 'assignOwner'; rule: number; owners: string[] }
  | { kind: 'handoff'; owner: string; escalation: number }
  | { kind: 'nurture'; track: string; step: number; template: string };

/** The routing rule (index) for a profile: the first whose `when` fields all match. */
export function routingRuleFor(profile: Profile, config: Config): number {
  const idx = config.routing.findIndex(
    (r) =>
      !r.when ||
      Object.entries(r.when).every(([field, values]) =>
        values.some((v) => String(v).toLowerCase() === String(profile[field] ?? '').toLowerCase()),
      ),
  );
  return idx < 0 ? config.routing.length - 1 : idx;
}

/**
 * Lets the rules act at time `now`: disqualification, qualification (mql, sql), MQL staleness,
 * the sales SLA, dormancy and due nurture steps. Returns the new core and the side effects the
 * workflow must carry out (in order).
 *
 * Deadlines (MQL staleness, dormancy, SLA expiry, a nurture step) act only once `firedUntil` has
 * reached them: the workflow passes the `at` of the latest durable timer that fired, so a deadline
 * acts in the iteration its timer fired in, whatever clock an iteration happens to run under (a
 * worker can apply new signals under an older task's clock; replay then groups them differently,
 * and commands that followed the clock would not match the history). Rules that read the clock
 * only to stamp what they do, or score with decay, still use `now`. The one exception is a track's
 * first step with no delay (the welcome mail, `after: 0s`): it is due the moment the lead is
 * enrolled, whatever the clock, so it goes out in the iteration that enrolled the lead.
 */
export function advance(
  core: LeadCore,
  config: Config,
  now: number,
  firedUntil = now,
): { core: LeadCore; effects: Effect[] } {
  let c = disqualifyRule(core, config, now);
  c = qualifyRule(c, config, now);
  c = staleMqlRule(c, config, now, firedUntil);
  c = dormancyRule(c, config, now, firedUntil);
  const sales = salesRule(c, config, now, firedUntil);
  const step = dueNurture(sales.core, config, now, firedUntil);
  return { core: step.core, effects: [...sales.effects, ...(step.effect ? [step.effect] : [])] };
}

/** Rule-based disqualification (any open stage), and its reversal when the profile changes. */
export function disqualifyRule(c: LeadCore, config: Config, now: number): LeadCore {
  const dq = disqualifiedBy(c.profile, modelOf(c, config));
  if (dq && !isTerminal(c)) return transition(c, 'disqualified', `disqualify rule: ${dq}`, now, config);
  if (!dq && c.stage === 'disqualified' && !c.disqualifiedBySales)
    return transition(c, 'lead', 'no disqualify rule matches any more', now, config);
  return c;
}

/**
 * Qualification: a lead (or recycled lead) becomes mql on the mql threshold with enough fit, an
 * mql becomes sql on the sql threshold; a hand-raiser takes it straight through to sql.
 */
export function qualifyRule(lead: LeadCore, config: Config, now: number): LeadCore {
  const th = modelOf(lead, config).thresholds;
  let c = lead;
  const score = () => scoreOf(c, config, now).total;
  if ((c.stage === 'lead' || c.stage === 'recycled') && (c.handRaised || (score() >= th.mql && c.fit >= th.minFit))) {
    c = transition(
      c,
      'mql',
      c.handRaised
        ? `hand-raiser: ${c.handRaised}`
        : `score ${score()} >= mql ${th.mql} and fit ${c.fit} >= ${th.minFit}`,
      now,
      config,
    );
  }
  if (c.stage === 'mql' && (c.handRaised || (score() >= th.sql && c.fit >= th.minFit))) {
    c = transition(
      c,
      'sql',
      c.handRaised ? `hand-raiser: ${c.handRaised}` : `score ${score()} >= sql ${th.sql}`,
      now,
      config,
    );
  }
  if (c.handRaised && c.stage !== 'lead' && c.stage !== 'recycled' && c.stage !== 'mql')
    c = { ...c, handRaised: undefined };
  return c;
}

/** An mql with no engagement for timeouts.mqlStaleAfter is recycled (once its timer fired). */
export function staleMqlRule(c: LeadCore, config: Config, now: number, firedUntil: number): LeadCore {
  if (c.stage !== 'mql' || firedUntil < mqlStaleAt(c, config)) return c;
  return transition(
    c,
    'recycled',
    `no engagement for ${formatDuration(config.timeouts.mqlStaleAfter)} as mql`,
    now,
    config,
  );
}

/** A lead or recycled lead with no engagement for timeouts.dormantAfter goes dormant. */
export function dormancyRule(c: LeadCore, config: Config, now: number, firedUntil: number): LeadCore {
  if ((c.stage !== 'lead' && c.stage !== 'recycled') || firedUntil < dormantAt(c, config)) return c;
  return transition(c, 'dormant', `no engagement for ${formatDuration(config.timeouts.dormantAfter)}`, now, config);
}

/**
 * The handoff: an sql lead with no owner is routed (an owner pick, then the handoff mail); an owner
 * who lets the SLA expire is escalated to the next owner of the rule, up to
 * timeouts.salesEscalations times, then the lead is recycled.
 */
export function salesRule(
  lead: LeadCore,
  config: Config,
  now: number,
  firedUntil: number,
): { core: LeadCore; effects: Effect[] } {
  const t = config.timeouts;
  const c = lead;
  if (c.stage !== 'sql') return { core: c, effects: [] };
  if (c.owner === undefined && c.routingRule === undefined) {
    const rule = routingRuleFor(c.profile, config);
    return {
      core: { ...c, routingRule: rule },
      effects: [{ kind: 'assignOwner', rule, owners: config.routing[rule]!.owners }],
    };
  }
  if (c.owner === undefined || c.slaDeadline === undefined || firedUntil < c.slaDeadline)
    return { core: c, effects: [] };
  const owners = config.routing[c.routingRule ?? routingRuleFor(c.profile, config)]!.owners;
  if (c.escalations < t.salesEscalations) {
    const owner = owners[(owners.indexOf(c.owner) + 1) % owners.length]!;
    const next: LeadCore = {
      ...c,
      owner,
      escalations: c.escalations + 1,
      slaDeadline: now + t.salesAcceptWithin,
      transitions: [
        ...c.transitions,
        {
          at: now,
          from: 'sql' as Stage,
          to: 'sql' as Stage,
          reason: `SLA expired; escalated from ${c.owner} to ${owner}`,
        },
      ].slice(-MAX_TRANSITIONS),
    };
    return { core: next, effects: [{ kind: 'handoff', owner, escalation: next.escalations }] };
  }
  const recycled = transition(
    c,
    'recycled',
    `sales SLA of ${formatDuration(t.salesAcceptWithin)} expired ${t.salesEscalations ? `after ${t.salesEscalations} escalation(s)` : ''}`.trim(),
    now,
    config,
  );
  return { core: recycled, effects: [] };
}

/** Records the owner picked for a lead entering sql; the handoff mail follows. */
export function assignOwner(core: LeadCore, owner: string): { core: LeadCore; effect: Effect } {
  return { core: { ...core, owner }, effect: { kind: 'handoff', owner, escalation: 0 } };
}

/**
 * An owner picked for the sql episode that began at `pickedFor` (becameSqlAt when the pick was
 * asked): taken only if the lead is still in that episode with no owner (it may have been accepted,
 * recycled or re-entered sql meanwhile); undefined otherwise.
 */
export function ownerPicked(
  core: LeadCore,
  owner: string,
  pickedFor: number | undefined,
): { core: LeadCore; effect: Effect } | undefined {
  if (core.stage !== 'sql' || core.becameSqlAt !== pickedFor || core.owner !== undefined) return undefined;
  return assignOwner(core, owner);
}

/**
 * The event a permanent bounce of a nurture step becomes (consent: bounced). Its id names the step
 * and the recycle, so a retried delivery's bounce counts once.
 */
export function bounceEvent(core: LeadCore, step: { track: string; step: number }): LeadEvent {
  return { leadId: core.leadId, eventId: `bounce:${step.track}:${step.step}:${core.recycleCount}`, type: HARD_BOUNCE };
}

/** The lead in one line for the Temporal UI's "current details" (cheap: runs after every change). */
export function summaryOf(core: LeadCore, config: Config, now: number): string {
  const score = scoreOf(core, config, now);
  const n = core.nurture;
  const models = modelsOf(config).length;
  return [
    `**${core.stage}** · score ${score.total} (fit ${score.fit}, engagement ${score.engagement}${models > 1 ? `, model ${modelOf(core, config).id}` : ''})`,
    core.owner ? `owner ${core.owner}` : undefined,
    core.slaDeadline !== undefined ? `SLA until ${iso(core.slaDeadline)}` : undefined,
    n.track
      ? `nurture ${n.track} step ${n.step}${n.nextStepAt !== undefined ? ` next ${iso(n.nextStepAt)}` : ''}`
      : undefined,
    `consent ${core.consent}`,
    `${core.eventsProcessed} events`,
  ]
    .filter(Boolean)
    .join(' · ');
}

function trackOf(core: LeadCore, config: Config): Track | undefined {
  return core.nurture.track ? config.nurture.tracks.find((t) => t.id === core.nurture.track) : undefined;
}

const mailable = (c: LeadCore) => c.consent === 'subscribed' && typeof c.profile.email === 'string';

/** Advances the nurture track: skips, defers to the send window or cap, or emits one send. */
function dueNurture(
  core: LeadCore,
  config: Config,
  now: number,
  firedUntil = now,
): { core: LeadCore; effect?: Effect } {
  const track = trackOf(core, config);
  const n = core.nurture;
  if (!track || n.nextStepAt === undefined || !(firedUntil >= n.nextStepAt || dueAtEnrolment(track, n)))
    return { core };
  // Not mailable (no address yet, or no consent): the step stays due; nextWake ignores it, and it
  // goes out as soon as an address arrives.
  if (!mailable(core)) return { core };
  const step = track.steps[n.step];
  if (!step) return { core: { ...core, nurture: { ...n, nextStepAt: undefined } } };
  const nextAfter = (c: LeadCore, stepIdx: number): LeadCore['nurture'] => {
    const following = track.steps[stepIdx + 1];
    return {
      track: track.id,
      step: stepIdx + 1,
      lastStepAt: now,
      nextStepAt: following ? now + following.after : undefined,
    };
  };
  if (
    step.skipIfEngagedWithin !== undefined &&
    core.lastEngagedAt !== undefined &&
    core.lastEngagedAt >= now - step.skipIfEngagedWithin
  ) {
    const skipped = logScore(
      { ...core, nurture: nextAfter(core, n.step) },
      {
        at: now,
        type: 'nurture',
        points: 0,
        note: `skipped ${track.id} step ${n.step + 1} (${step.template}): engaged recently`,
      },
    );
    return dueNurture(skipped, config, now, firedUntil);
  }
  const sentAt = pruneSent(core.sentAt, now);
  const slot = nextSendSlot(now, sentAt, config, timeZoneFor(core.profile, config));
  if (slot > now) return { core: { ...core, sentAt, nurture: { ...n, nextStepAt: slot } } };
  return {
    core: { ...core, sentAt: [...sentAt, now], nurture: nextAfter(core, n.step) },
    effect: { kind: 'nurture', track: track.id, step: n.step + 1, template: step.template },
  };
}

/** A track's first step with no delay, still unsent: due from the enrolment on, with no timer. */
function dueAtEnrolment(track: Track, n: LeadCore['nurture']): boolean {
  return n.step === 0 && track.steps[0]?.after === 0 && n.nextStepAt === n.lastStepAt;
}

export function mqlStaleAt(c: LeadCore, config: Config): number {
  return Math.max(c.lastEngagedAt ?? 0, c.stageSince) + config.timeouts.mqlStaleAfter;
}

export function dormantAt(c: LeadCore, config: Config): number {
  return Math.max(c.lastEngagedAt ?? 0, c.stageSince, c.createdAt) + config.timeouts.dormantAfter;
}

/** When the rules next need to look at this lead (ms), or undefined when only a signal can change it. */
export function nextWake(c: LeadCore, config: Config): number | undefined {
  const times: number[] = [];
  if (c.stage === 'mql') times.push(mqlStaleAt(c, config));
  if (c.stage === 'lead' || c.stage === 'recycled') times.push(dormantAt(c, config));
  if (c.stage === 'sql' && c.slaDeadline !== undefined && c.owner !== undefined) times.push(c.slaDeadline);
  if (c.nurture.nextStepAt !== undefined && mailable(c)) times.push(c.nurture.nextStepAt);
  return times.length ? Math.min(...times) : undefined;
}

/**
 * The lead's points without decay: its fit plus what its counted events earned (negative points
 * included). A function of the facts applied alone, never of the clock: the issue-15 rule for
 * upserting LeadScore compares it. Undefined for engagement carried from before it was kept by type.
 */
export function earnedPoints(c: LeadCore): number | undefined {
  const types = c.engagement.types;
  if (!types) return undefined;
  let earned = 0;
  for (const [, , e] of Object.values(types)) earned += e;
  return c.fit + earned;
}

/** Search attribute values that ops filter on (no PII). */
export function searchAttributesOf(c: LeadCore, config: Config, now: number) {
  return {
    stage: c.stage,
    score: scoreOf(c, config, now).total,
    model: modelOf(c, config).id,
    owner: c.owner,
    campaign: c.campaign,
    becameMqlAt: c.becameMqlAt,
    becameSqlAt: c.becameSqlAt,
  };
}
