/**
 * leadWorkflow: one durable run per lead (workflow id `lead-<leadId>`).
 *
 * Handlers only record facts (an event, a profile change, a sales outcome); one loop applies
 * them through the pure domain model, lets the stage rules and timeouts act, carries out the side
 * effects (owner assignment, mail) as activities, keeps the search attributes current, and waits
 * for the next signal or deadline on a single durable timer.
 */
import {
  ApplicationFailure, CancellationScope, ActivityFailure, allHandlersFinished, condition, continueAsNew, isCancellation,
  log, patched, proxyActivities, proxyLocalActivities, setCurrentDetails, setHandler, sleep, upsertMemo, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { LeadActivities } from '../activities/types.js';
import type { LedgerBatch, LedgerEvent, LedgerOutcome, LedgerProfileChange } from '../src/ledger/ledger.js';
import { PERMANENT_BOUNCE } from '../activities/types.js';
import type { Config } from '../src/domain/config.js';
import { scoreAt } from '../src/domain/scoring.js';
import { mailLead } from '../src/domain/mail.js';
import { describeIssues, importedFactSchema, leadEventSchema, leadStartSchema, profileSchema, salesOutcomeSchema, type LeadStart, type SalesOutcome } from '../src/domain/lead.js';
import { applyImported } from '../src/domain/imported.js';
import { RecentIds } from '../src/domain/recent-ids.js';
import {
  advance, applyEvent, applyOutcome, applyProfile, assignOwner, type Effect, isTerminal, type LeadCore, logScore, newLead, nextWake,
  outcomeError, searchAttributesOf, toState,
} from '../src/domain/model.js';
import {
  type Carried, eventSignal, type Fact, LeadBecameMqlAt, LeadBecameSqlAt, LeadCampaign, LeadOwner, type LeadRunOptions, LeadScore,
  LeadStage, profileSignal, salesOutcomeUpdate, stateQuery, configChangedSignal, STATE_MEMO, historySignal,
} from './defs.js';

const DEFAULT_MAX_HISTORY = 2_000;
/**
 * Issue 9, one patch for three changes to the commands a run emits: the loop publishes the public
 * state in the memo (an upsert per iteration that changed the lead), decides its search attribute
 * upsert from the same change, and lets deadlines act only once their timer fired (`firedUntil`).
 * Runs started before it (no marker) keep the old sequence until they continue as new.
 *
 * Why the deadline rule is behind the patch too (checked, not assumed): every recorded path
 * replays with the rule unconditional, but a running lead's history written by the old rule need
 * not. The old rule sent a step in whatever iteration first ran past it (e.g. the profile signal
 * that brought the address of a lead whose step was overdue, or a signal landing between a
 * deadline and its TimerFired task), where the new one waits for the timer: such a history would
 * stop replaying on deploy. And the lead it was meant to heal cannot be healed by any rule: in
 * test/fixtures/histories/wedged-no-fault.json the task after the step's own TimerFired (event 41)
 * started a 0.832 s timer instead of sending, i.e. it ran under the clock of the task before
 * (25.962 s, the step due at 26.794 s); after that timer fired the step went out. No rule that
 * reads history alone sends nothing right after the step's timer fired, so that history fails at
 * event 45 with either rule, and such a lead is recovered with `temporal workflow reset`
 * (docs/operations.md).
 */
const MEMO_STATE_PATCH = 'issue-9-state-in-memo';
/**
 * Issue 10, the lead ledger: an iteration that changed the lead writes what it changed (events,
 * profile changes, transitions, outcomes, the latest state) with the `recordLead` local activity
 * instead of upserting the memo (one marker instead of one properties event: an event costs no
 * more history than before), and a run never completes: a lead in a closed stage (customer,
 * disqualified, dormant) sleeps with no timer until its next event. A fresh run (its workflow
 * deleted by retention or by hand) resumes from the ledger's latest state. Runs started before
 * keep the memo and complete as before until they continue as new.
 */
const LEDGER_PATCH = 'issue-10-ledger';

const { leadContext, assignOwner: pickOwner, recordLead } = proxyLocalActivities<LeadActivities>({
  startToCloseTimeout: '30s',
  // No attempt limit: a database that is away makes the write wait and retry, never lose a row.
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

const mail = proxyActivities<LeadActivities>({
  // A send takes well under a second; a worker that dies mid-send is noticed by the missing
  // heartbeat and the send retried (the ledger and the Message-ID keep it from going out twice).
  startToCloseTimeout: '1m',
  heartbeatTimeout: '10s',
  // SMTP outages are retried with backoff for up to a day; a 5xx on the recipient is final.
  scheduleToCloseTimeout: '1d',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '5m', nonRetryableErrorTypes: [PERMANENT_BOUNCE] },
});

export async function leadWorkflow(input: LeadStart, options: LeadRunOptions = {}): Promise<Carried> {
  const start = leadStartSchema.safeParse(input);
  if (!start.success) throw ApplicationFailure.nonRetryable(`invalid lead input: ${describeIssues(start.error)}`, 'InvalidLeadInput');

  const inbox: Fact[] = [];
  let useLedger = false; // set with the patches, before any handler can run against a lead
  // What the loop applied since its last ledger write (with the ledger patch).
  const journal: { events: LedgerEvent[]; profileChanges: LedgerProfileChange[]; outcomes: LedgerOutcome[] } = { events: [], profileChanges: [], outcomes: [] };
  let core: LeadCore | undefined;
  let config: Config | undefined;
  let outcomesApplied = 0;
  let outcomesSettled = 0;

  // Every handler is registered before the first await.
  setHandler(eventSignal, (raw) => {
    const parsed = leadEventSchema.safeParse(raw);
    if (!parsed.success) return log.warn('event signal rejected', { issues: describeIssues(parsed.error) });
    if (parsed.data.leadId !== start.data.leadId) return log.warn('event signal for another lead rejected', { leadId: parsed.data.leadId });
    inbox.push({ kind: 'event', event: parsed.data });
  });
  setHandler(profileSignal, (raw) => {
    const parsed = profileSchema.safeParse(raw);
    if (!parsed.success) return log.warn('profile signal rejected', { issues: describeIssues(parsed.error) });
    inbox.push({ kind: 'profile', profile: parsed.data });
  });
  setHandler(historySignal, (raw) => {
    const parsed = importedFactSchema.safeParse(raw);
    if (!parsed.success) return log.warn('history signal rejected', { issues: describeIssues(parsed.error) });
    inbox.push({ kind: 'imported', fact: parsed.data });
  });
  let reloadConfig = false;
  setHandler(configChangedSignal, () => {
    reloadConfig = true;
  });
  setHandler(stateQuery, () => {
    if (!core || !config) throw new Error('lead is starting; query again in a moment');
    return toState(core, config, Date.now());
  });
  setHandler(salesOutcomeUpdate, async (outcome: SalesOutcome) => {
    core = applyOutcome(core!, outcome, config!, Date.now());
    if (useLedger) journal.outcomes.push({
      outcome: outcome.outcome, occurredAt: new Date(Date.now()).toISOString(), source: 'live',
      ...('reason' in outcome && outcome.reason ? { reason: outcome.reason } : {}), ...(outcome.note ? { note: outcome.note } : {}), ...(outcome.rep ? { rep: outcome.rep } : {}),
    });
    const mine = ++outcomesApplied;
    await condition(() => outcomesSettled >= mine);
    return toState(core, config!, Date.now());
  }, {
    validator: (raw: unknown) => {
      const parsed = salesOutcomeSchema.safeParse(raw);
      if (!parsed.success) throw new Error(`invalid sales outcome: ${describeIssues(parsed.error)}`);
      if (!core || !config) throw new Error('lead is starting; try again in a moment');
      const wrong = outcomeError(core, parsed.data);
      if (wrong) throw new Error(wrong);
    },
  });

  // Evaluated once, before the first local activity, and kept: a patched() call next to a local
  // activity later in a run failed replay after cache eviction (0303a59).
  const publishState = patched(MEMO_STATE_PATCH);
  useLedger = patched(LEDGER_PATCH);
  const info = workflowInfo();
  const ctx = await leadContext({ workflowId: info.workflowId, runId: info.runId, recover: !options.carried });
  config = ctx.config;
  const carried = options.carried ?? ctx.previous;
  // Facts the previous run received while handing over come first, in order.
  if (options.carried?.inbox?.length) inbox.unshift(...options.carried.inbox);
  const seen = new RecentIds(carried?.recentEventIds ?? []);
  const now = () => Date.now();
  if (carried) {
    core = { ...carried.core, configVersion: ctx.configVersion };
    const { leadId: _leadId, campaign, channel, consent: _consent, ...profile } = start.data;
    // A new run that was started with a profile (e.g. an event that carried one) keeps what it says.
    if (Object.keys(profile).length) core = applyProfile(core, profile, config, now());
    if (!core.campaign && campaign) core = { ...core, campaign, channel: core.channel ?? channel };
  } else {
    core = newLead(start.data, config, ctx.configVersion, now());
  }

  // ---- side effects --------------------------------------------------------------------------
  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const runEffect = (effect: Effect) => {
    const c = core!;
    if (effect.kind === 'assignOwner') {
      const sqlAt = c.becameSqlAt;
      track((async () => {
        const owner = await pickOwner({ leadId: c.leadId, rule: effect.rule, owners: effect.owners });
        // Only if the lead is still in the same sql episode.
        if (core!.stage !== 'sql' || core!.becameSqlAt !== sqlAt || core!.owner !== undefined) return;
        const r = assignOwner(core!, owner);
        core = r.core;
        runEffect(r.effect);
        wake = true;
      })());
    } else if (effect.kind === 'handoff') {
      const lead = mailLead(c, config!, now());
      track(mail.sendHandoffEmail({ lead, owner: effect.owner, escalation: effect.escalation }).then(
        (sent) => {
          if (!sent.resent) return;
          core = logScore(core!, { at: now(), type: 'handoff', points: 0, note: `handoff to ${effect.owner} resent: the first attempt's delivery was uncertain (its worker or connection failed after the message was handed to SMTP)` });
          if (publishState) wake = true;
        },
        (err) => log.error('handoff mail failed for good', { owner: effect.owner, error: String(err) }),
      ));
    } else {
      const lead = mailLead(c, config!, now());
      track(mail.sendNurtureEmail({ lead, track: effect.track, step: effect.step, template: effect.template }).then(
        (sent) => {
          if (!sent.uncertain) return;
          core = logScore(core!, { at: now(), type: 'nurture', points: 0, note: `${effect.track} step ${effect.step}: delivery uncertain (its worker or connection failed after the message was handed to SMTP); not resent` });
          if (publishState) wake = true;
        },
        (err) => {
          if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === PERMANENT_BOUNCE) {
            inbox.push({ kind: 'event', event: { leadId: c.leadId, eventId: `bounce:${effect.track}:${effect.step}:${c.recycleCount}`, type: 'hard_bounce' } });
          } else {
            log.error('nurture mail failed for good', { track: effect.track, step: effect.step, error: String(err) });
          }
        },
      ));
    }
  };

  // ---- search attributes, upserted only when a value changed ------------------------------------
  // Start from what the run already has (set by the starter, or inherited on continue-as-new).
  const initialSa = workflowInfo().typedSearchAttributes;
  const lastSa: Record<string, unknown> = {
    stage: initialSa.get(LeadStage), score: initialSa.get(LeadScore), owner: initialSa.get(LeadOwner),
    campaign: initialSa.get(LeadCampaign), becameMqlAt: initialSa.get(LeadBecameMqlAt)?.getTime(),
    becameSqlAt: initialSa.get(LeadBecameSqlAt)?.getTime(),
  };
  // With the patch, an iteration upserts exactly when it changed the lead, the score always with
  // the rest: whether an upsert happens then follows the facts applied, not the decayed score under
  // the iteration's clock (an iteration run under an older task's clock would round differently).
  // So LeadScore is the score as of the lead's last change, not decayed to the minute.
  const syncSearchAttributes = (changed: boolean) => {
    const sa = searchAttributesOf(core!, config!, now());
    const pairs: SearchAttributeUpdatePair[] = [];
    const put = (name: keyof typeof sa, pair: SearchAttributeUpdatePair) => {
      const value = sa[name];
      if (lastSa[name] === value && !(changed && name === 'score')) return;
      lastSa[name] = value;
      pairs.push(pair);
    };
    put('stage', { key: LeadStage, value: sa.stage });
    put('score', { key: LeadScore, value: sa.score });
    put('owner', { key: LeadOwner, value: sa.owner ?? null });
    put('campaign', { key: LeadCampaign, value: sa.campaign ?? null });
    put('becameMqlAt', { key: LeadBecameMqlAt, value: sa.becameMqlAt === undefined ? null : new Date(sa.becameMqlAt) });
    put('becameSqlAt', { key: LeadBecameSqlAt, value: sa.becameSqlAt === undefined ? null : new Date(sa.becameSqlAt) });
    if (pairs.length) upsertSearchAttributes(pairs);
  };

  // ---- one durable timer for the earliest deadline ----------------------------------------------
  // Engagement usually moves deadlines later; then the running timer is kept (it wakes the loop,
  // which re-arms it), so an ordinary event adds no timer events to history.
  let wake = false;
  let timer: { at: number; scope: CancellationScope } | undefined;
  // The `at` of the latest timer that fired: with the patch, deadlines act once it reaches them
  // (model.advance), so what the loop does follows history (a TimerFired event), not the clock an
  // iteration runs under.
  let firedUntil = Number.NEGATIVE_INFINITY;
  const armTimer = (at: number | undefined) => {
    if (at === undefined && useLedger && timer) {
      // Nothing left to wait for (a closed stage): the run sleeps with no timer until its next event.
      timer.scope.cancel();
      timer = undefined;
    }
    if (at === undefined || (timer && timer.at <= at)) return;
    timer?.scope.cancel();
    const scope = new CancellationScope();
    const mine = { at, scope };
    timer = mine;
    scope.run(() => sleep(Math.max(1, at - now()))).then(
      () => {
        if (timer === mine) timer = undefined;
        firedUntil = Math.max(firedUntil, at);
        wake = true;
      },
      (err) => {
        if (!isCancellation(err)) throw err;
      },
    );
  };

  // ---- the ledger (with the ledger patch) ------------------------------------------------------
  // Each write carries what the loop applied since the last one, the transitions not yet written
  // (all of them on a run's first write: rewriting one is a no-op), and the latest state under a
  // version that only moves forward (the run's clock, then a sequence within one moment).
  let ledgerSeq = 0;
  let ledgerVersion = 0; // this run's previous write: the last one a completed task stands behind
  const written = new WeakSet<object>();
  const ledgerBatch = (c: LeadCore, cfg: Config, at: number): LedgerBatch => {
    const transitions = c.transitions.filter((t) => !written.has(t));
    transitions.forEach((t) => written.add(t));
    const state = toState(c, cfg, at);
    const batch: LedgerBatch = {
      leadId: c.leadId,
      events: journal.events.splice(0),
      profileChanges: journal.profileChanges.splice(0),
      outcomes: journal.outcomes.splice(0),
      transitions: transitions.map((t) => ({ ...t, at: new Date(t.at).toISOString() })),
      lead: {
        leadId: c.leadId, stage: c.stage, consent: c.consent, score: state.score.total, owner: c.owner, campaign: c.campaign, channel: c.channel,
        createdAt: state.createdAt, state, carried: { v: 1, core: c }, version: at * 1000 + (++ledgerSeq % 1000),
      },
      run: { id: info.runId, after: ledgerVersion },
    };
    ledgerVersion = batch.lead!.version;
    return batch;
  };

  // ---- the loop -----------------------------------------------------------------------------
  const maxHistory = options.maxHistoryEvents ?? DEFAULT_MAX_HISTORY;
  let published: string | undefined;
  for (;;) {
    wake = false;
    if (reloadConfig) {
      reloadConfig = false;
      const fresh = await leadContext({ workflowId: info.workflowId, runId: info.runId, recover: false });
      if (fresh.configVersion !== core.configVersion) {
        config = fresh.config;
        // Fit is re-applied under the new rules; engagement keeps the points it earned.
        core = applyProfile({ ...core, configVersion: fresh.configVersion }, {}, config, now());
      }
    }
    for (const fact of inbox.splice(0)) {
      const at = now();
      if (fact.kind === 'profile') {
        core = applyProfile(core, fact.profile, config, at);
        if (useLedger) journal.profileChanges.push({ appliedAt: new Date(at).toISOString(), seq: ++ledgerSeq, patch: fact.profile });
        continue;
      }
      if (fact.kind === 'imported') {
        if (seen.has(fact.fact.importId)) continue;
        seen.add(fact.fact.importId);
        const r = applyImported(core, fact.fact, config, at);
        if (r.problem) log.warn('imported history not applied', { importId: fact.fact.importId, problem: r.problem });
        core = r.core;
        if (r.outcome && useLedger) {
          const { at: when, ...o } = r.outcome;
          journal.outcomes.push({ ...o, occurredAt: new Date(when).toISOString(), source: 'imported' });
        }
        continue;
      }
      const ev = fact.event;
      if (seen.has(ev.eventId)) continue;
      if (!(ev.type in config.scoring.behavior) && ev.type !== 'unsubscribe' && ev.type !== 'hard_bounce') {
        log.warn('event of a type this config does not know was ignored', { type: ev.type, eventId: ev.eventId });
        continue;
      }
      seen.add(ev.eventId);
      const occurredAt = ev.occurredAt ? Date.parse(ev.occurredAt) : at;
      core = applyEvent(core, { ...ev, occurredAt }, config, at);
      if (useLedger) {
        const logged = core.scoreLog.at(-1);
        const { leadId: _l, eventId, type, occurredAt: _o, ...attributes } = ev;
        journal.events.push({
          eventId, type, occurredAt: new Date(Math.min(occurredAt, at)).toISOString(), appliedAt: new Date(at).toISOString(),
          attributes: { ...attributes, ...(logged?.eventId === eventId ? { points: logged.points, ...(logged.note ? { note: logged.note } : {}) } : {}) },
        });
      }
    }
    const settled = outcomesApplied;
    const step = advance(core, config, now(), publishState ? firedUntil : now());
    core = step.core;
    step.effects.forEach(runEffect);
    // Whether this iteration changed the lead (the facts, not the clock). With the patch: one
    // search attribute upsert and one memo upsert per iteration that did, none otherwise. An
    // activation runs one iteration, or more when what it resolved wakes the loop again (an update
    // waiting to be settled, a mail result that changed the lead): each is decided by that
    // activation's jobs, not by the clock. Older runs: an upsert whenever a value differs.
    if (publishState) {
      const snapshot = JSON.stringify(core);
      if (snapshot !== published) {
        published = snapshot;
        syncSearchAttributes(true);
        if (useLedger) await recordLead(ledgerBatch(core, config, now()));
        else upsertMemo({ [STATE_MEMO]: toState(core, config, now()) });
      }
    } else {
      syncSearchAttributes(false);
    }
    outcomesSettled = settled;
    setCurrentDetails(describe(core, config, now()));

    // With the ledger a run never completes (a closed stage waits for the next event, no timer).
    const completes = !useLedger && isTerminal(core);
    if (completes || workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= maxHistory) {
      // Let mail activities and update handlers finish first; an update waiting for the loop to
      // settle its outcome is served before handing over.
      await condition(() => (pending.size === 0 && allHandlersFinished()) || outcomesApplied > outcomesSettled);
      if (outcomesApplied > outcomesSettled) continue;
      if (completes) {
        // A completed run must not drop facts: apply what came meanwhile (it may reopen the lead).
        if (inbox.length > 0 || wake) continue;
        return { core, recentEventIds: seen.toArray() };
      }
      // Under a steady stream of signals the inbox is never empty: hand it over with the state.
      return await continueAsNew<typeof leadWorkflow>(start.data, {
        carried: { core, recentEventIds: seen.toArray(), inbox: inbox.splice(0) },
        maxHistoryEvents: options.maxHistoryEvents,
      });
    }
    armTimer(nextWake(core, config));
    await condition(() => wake || reloadConfig || inbox.length > 0 || outcomesApplied > outcomesSettled);
  }
}

/** The lead in one line for the Temporal UI's "current details" (cheap: runs after every change). */
function describe(core: LeadCore, config: Config, now: number): string {
  const score = scoreAt(core.fit, core.engagement, now, config);
  const iso = (ms: number) => new Date(ms).toISOString();
  const n = core.nurture;
  return [
    `**${core.stage}** · score ${score.total} (fit ${score.fit}, engagement ${score.engagement})`,
    core.owner ? `owner ${core.owner}` : undefined,
    core.slaDeadline !== undefined ? `SLA until ${iso(core.slaDeadline)}` : undefined,
    n.track ? `nurture ${n.track} step ${n.step}${n.nextStepAt !== undefined ? ` next ${iso(n.nextStepAt)}` : ''}` : undefined,
    `consent ${core.consent}`,
    `${core.eventsProcessed} events`,
  ].filter(Boolean).join(' · ');
}
