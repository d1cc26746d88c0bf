/**
 * leadWorkflow: one durable run per lead (workflow id `lead-<leadId>`).
 *
 * Handlers only record facts (an event, a profile change, an imported fact, a sales outcome) in
 * the run's state (lead/lead-run.ts); one loop applies them through the pure lifecycle model,
 * lets the stage rules and timeouts act (model.advance), carries out the side effects
 * (lead/effects.ts), keeps the search attributes current (lead/search-attributes.ts), writes the
 * ledger (lead/ledger-journal.ts), and waits for the next fact or deadline on a single durable
 * timer (lead/timer.ts). Every business rule is a model function; see README "How it is built".
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  patched,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { readCarried } from '../src/domain/carried.js';
import { describeIssues, leadStartSchema, type LeadStart, type SalesOutcome } from '../src/domain/lead.js';
import { advance, isTerminal, nextWake, startRun, summaryOf, toState } from '../src/domain/lifecycle.js';
import {
  type CarriedState,
  configChangedSignal,
  eventSignal,
  historySignal,
  type LeadRunOptions,
  profileSignal,
  salesOutcomeUpdate,
  STATE_MEMO,
  stateQuery,
} from './defs.js';
import { local } from './lead/activities.js';
import { Effects } from './lead/effects.js';
import { LeadRun } from './lead/lead-run.js';
import { LedgerJournal } from './lead/ledger-journal.js';
import { HANDOVER_PATCH, LEDGER_PATCH, MEMO_STATE_PATCH, MODELS_PATCH, LESS_HISTORY_PATCH } from './lead/patches.js';
import { SearchAttributeSync } from './lead/search-attributes.js';
import { DeadlineTimer } from './lead/timer.js';

const DEFAULT_MAX_HISTORY = 2_000;

export async function leadWorkflow(input: LeadStart, options: LeadRunOptions = {}): Promise<CarriedState> {
  const start = leadStartSchema.safeParse(input);
  if (!start.success)
    throw ApplicationFailure.nonRetryable(`invalid lead input: ${describeIssues(start.error)}`, 'InvalidLeadInput');
  const run = new LeadRun(start.data.leadId);

  // Every handler is registered before the first await.
  setHandler(eventSignal, (raw) => run.recordEvent(raw));
  setHandler(profileSignal, (raw) => run.recordProfile(raw));
  setHandler(historySignal, (raw) => run.recordHistory(raw));
  setHandler(configChangedSignal, () => run.configChanged());
  setHandler(stateQuery, () => run.state(Date.now()));
  setHandler(
    salesOutcomeUpdate,
    async (outcome: SalesOutcome) => {
      const mine = run.recordOutcome(outcome, Date.now());
      await condition(() => run.outcomesSettled >= mine);
      return run.state(Date.now());
    },
    { validator: (raw: unknown) => run.checkOutcome(raw) },
  );

  // A run started under the issue-15 patch has that one marker, standing for every earlier patch.
  const lessHistory = patched(LESS_HISTORY_PATCH);
  const publishState = lessHistory || patched(MEMO_STATE_PATCH);
  const useLedger = lessHistory || patched(LEDGER_PATCH);
  const models = lessHistory || patched(MODELS_PATCH);
  const handOverAfterMessage = lessHistory || patched(HANDOVER_PATCH);
  const info = workflowInfo();
  const now = () => Date.now();
  const ctx = await local.leadContext({ workflowId: info.workflowId, runId: info.runId, recover: !options.carried });
  const carried = readCarried(options.carried ?? ctx.previous, options.carried ? 'the previous run' : 'the ledger');
  // With the issue-12 patch a continued run does not apply its first run's start input again: the
  // carried lead has it, and profile changes since (which it would undo).
  const startInput = models && options.carried ? { leadId: start.data.leadId } : start.data;
  // A lead carried from a run under another config version keeps its label until the loop's first
  // iteration re-scores it from its events, as a rollout's reload does (issue-12 patch).
  const carriedVersion = carried?.core.configVersion;
  const rescoreAtStart = models && carriedVersion !== undefined && carriedVersion !== ctx.configVersion;
  run.begin(
    startRun(carried?.core, startInput, ctx.config, rescoreAtStart ? carriedVersion : ctx.configVersion, now()),
    ctx.config,
    carried?.recentEventIds ?? [],
    useLedger ? new LedgerJournal(info.runId, carried?.core) : undefined,
  );
  if (models) run.journal?.started(startInput, carried === undefined, now());
  if (rescoreAtStart) run.reloadConfig = true;
  // Facts the previous run received while handing over come first, in order.
  if (options.carried?.inbox?.length) run.inbox.unshift(...options.carried.inbox);

  const effects = new Effects(run, now, publishState);
  const searchAttributes = new SearchAttributeSync(models, lessHistory ? run.core : undefined);
  const timer = new DeadlineTimer(() => run.wake(), useLedger);
  const maxHistory = options.maxHistoryEvents ?? DEFAULT_MAX_HISTORY;
  const handOverDue = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= maxHistory;
  // An update waiting for the loop to settle its outcome is served before handing over.
  const unsettled = () => run.outcomesRecorded > run.outcomesSettled;
  const handOver = () =>
    continueAsNew<typeof leadWorkflow>(start.data, {
      carried: run.carried(true),
      maxHistoryEvents: options.maxHistoryEvents,
    });
  let published: string | undefined;
  for (;;) {
    // With the issue-13 patch the hand-over happens here, when a message or the timer resumed the
    // loop (so every signal of the task has reached its handler), after mail activities and update
    // handlers finished; if what it waited for was a local activity, the loop goes on instead.
    if (handOverAfterMessage && !run.afterLocal && handOverDue()) {
      await condition(() => (effects.idle && allHandlersFinished()) || unsettled());
      if (!unsettled() && !run.afterLocal) return await handOver();
    }
    run.woken = false;
    if (run.reloadConfig) {
      run.reloadConfig = false;
      const from = models ? run.core.configVersion : undefined;
      const fresh = await local.leadContext({
        workflowId: info.workflowId,
        runId: info.runId,
        recover: false,
        ...(from !== undefined ? { rescoreFrom: from } : {}),
      });
      run.afterLocal = true;
      if (fresh.events) run.rescore(fresh.config, fresh.configVersion, fresh.events, now());
      else run.reconfigure(fresh.config, fresh.configVersion, now());
    }
    run.applyFacts(now);
    const settled = run.outcomesRecorded;
    const step = advance(run.core, run.config, now(), publishState ? timer.firedUntil : now());
    run.core = step.core;
    step.effects.forEach((effect) => effects.start(effect));
    // Whether this iteration changed the lead (the facts, not the clock). With the issue-9 patch:
    // one search attribute upsert and one ledger write (or memo upsert) per iteration that did,
    // none otherwise. An activation runs one iteration, or more when what it resolved wakes the loop
    // again (an update waiting to be settled, a mail result that changed the lead): each is decided
    // by that activation's jobs, not by the clock.
    if (publishState) {
      const snapshot = JSON.stringify(run.core);
      if (snapshot !== published) {
        published = snapshot;
        searchAttributes.sync(run.core, run.config, now(), true);
        if (run.journal) {
          await local.recordLead(run.journal.batch(run.core, run.config, now()));
          run.afterLocal = true;
        } else upsertMemo({ [STATE_MEMO]: toState(run.core, run.config, now()) });
      }
    } else {
      searchAttributes.sync(run.core, run.config, now(), false);
    }
    run.outcomesSettled = settled;
    setCurrentDetails(summaryOf(run.core, run.config, now()));

    // With the ledger a run never completes (a closed stage waits for the next event, no timer).
    const completes = !useLedger && isTerminal(run.core);
    if (handOverAfterMessage && !completes && !run.afterLocal && handOverDue()) continue;
    if (completes || (!handOverAfterMessage && handOverDue())) {
      // Let mail activities and update handlers finish first.
      await condition(() => (effects.idle && allHandlersFinished()) || unsettled());
      if (unsettled()) continue;
      if (completes) {
        // A completed run must not drop facts: apply what came meanwhile (it may reopen the lead).
        if (run.inbox.length > 0 || run.woken) continue;
        return run.carried(false);
      }
      // Under a steady stream of signals the inbox is never empty: hand it over with the state.
      return await handOver();
    }
    timer.arm(nextWake(run.core, run.config), now());
    await condition(
      () => run.woken || run.reloadConfig || run.inbox.length > 0 || run.outcomesRecorded > run.outcomesSettled,
    );
  }
}
