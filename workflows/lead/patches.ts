/**
 * The patches (workflow.patched) that guard each change to the commands a lead's run emits. Every
 * one is evaluated once, at the start of a run, before its first local activity: a patched() call
 * next to a local activity later in a run failed replay after cache eviction (0303a59).
 */

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
export const MEMO_STATE_PATCH = 'issue-9-state-in-memo';
/**
 * Issue 10, the lead ledger: an iteration that changed the lead writes what it changed (events,
 * profile changes, transitions, outcomes, the latest state) with the `recordLead` local activity
 * instead of upserting the memo (one marker instead of one properties event: an event costs no
 * more history than before), and a run never completes: a lead in a closed stage (customer,
 * disqualified, dormant) sleeps with no timer until its next event. A fresh run (its workflow
 * deleted by retention or by hand) resumes from the ledger's latest state. Runs started before
 * keep the memo and complete as before until they continue as new.
 */
export const LEDGER_PATCH = 'issue-10-ledger';
/**
 * Issue 12, scoring models and rollout: the run keeps the LeadModel search attribute (one more
 * pair in an upsert it makes anyway), and a config reload re-scores the lead from its recorded
 * events (the reload's leadContext answer carries them) instead of keeping the engagement it
 * earned. Runs started before keep the old reload until they continue as new.
 */
export const MODELS_PATCH = 'issue-12-models';
/**
 * Issue 13 (found by the continue-as-new test in CI): a run hands over (continue-as-new) only when
 * its loop was resumed by a signal, an update or its timer, never straight after a local activity
 * returned. Replaying a task (after a cache eviction, or after the server refused a hand-over
 * because signals had come meanwhile), the SDK resolves the recorded local activity in an
 * activation of its own, before the activation with the task's new signals; a hand-over decided
 * there completed the run before those signals reached their handlers, and they were lost (the
 * new run started without them). Runs started before keep the old moment until they continue as new.
 */
export const HANDOVER_PATCH = 'issue-13-handover';
/**
 * Issue 15, less history per lead:
 * - A run started under it calls no earlier patch. Each patched() call costs its run a marker and
 *   an upsert of TemporalChangeVersion (the SDK's; measured: 8 of a new lead's history events for
 *   four patches, 0.8 per event in the bench), and this one implies all of them. A run started
 *   before it (no marker at its start) still reads each earlier patch from its history.
 * - LeadScore is upserted beside any other attribute that changed (a stage change above all), or
 *   when the lead's points moved by 5 or more since the last upsert, not on every change. The
 *   points compared are clock-free (fit plus what its events earned before decay, lifecycle.ts
 *   `earnedPoints`), so whether an upsert happens follows the facts applied, never the task's
 *   clock (see search-attributes.ts). Runs started before keep an upsert per change until they
 *   continue as new.
 */
export const LESS_HISTORY_PATCH = 'issue-15-less-history';
