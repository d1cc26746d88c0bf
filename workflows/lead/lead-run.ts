/**
 * The state of one lead's run, and one method per message: the handlers call these and only
 * record facts; the loop applies them (applyFacts) through the pure model.
 */
import { log } from '@temporalio/workflow';
import type { Config } from '../../src/domain/config.js';
import { CARRIED_VERSION, type CarriedState, type Fact } from '../../src/domain/carried.js';
import { applyImported } from '../../src/domain/imported.js';
import {
  describeIssues,
  importedFactSchema,
  leadEventSchema,
  type LeadState,
  profileSchema,
  salesOutcomeSchema,
  type SalesOutcome,
} from '../../src/domain/lead.js';
import {
  applyEvent,
  applyOutcome,
  applyProfile,
  type EventFact,
  isKnownEventType,
  type LeadCore,
  outcomeError,
  reconfigure,
  rescore,
  toState,
} from '../../src/domain/lifecycle.js';
import { RecentIds } from '../../src/domain/recent-ids.js';
import type { LedgerJournal } from './ledger-journal.js';

export class LeadRun {
  /** Facts recorded by the handlers, applied by the loop in the order they came. */
  readonly inbox: Fact[] = [];
  /**
   * Sales outcomes recorded by the update handler, not yet applied. They are applied before the
   * lead is next read by the loop or an effect's result, the moment the handler itself used to apply
   * them, so every recorded history replays unchanged; the query and the validators see them too,
   * without applying anything (peek).
   */
  private readonly outcomes: { outcome: SalesOutcome; at: number }[] = [];
  private current: LeadCore | undefined;
  private cfg: Config | undefined;
  private seen = new RecentIds([]);
  journal: LedgerJournal | undefined;
  /** Something the loop must look at: a timer fired, an owner was picked, a mail result changed the lead. */
  woken = false;
  /**
   * The loop was last resumed by a local activity's result, not by a message or the timer: in a
   * replayed task that result has an activation of its own, before the task's new signals, so the
   * run must not hand over there (the issue-13 patch; see patches.ts).
   */
  afterLocal = false;
  reloadConfig = false;
  outcomesRecorded = 0;
  /** Outcomes the loop has applied, decided and published (the update answers after that). */
  outcomesSettled = 0;

  constructor(private readonly leadId: string) {}

  /** The run's lead from its start on (startRun), with the config it runs under and the ids it remembers. */
  begin(core: LeadCore, config: Config, recentEventIds: string[], journal: LedgerJournal | undefined): void {
    this.current = core;
    this.cfg = config;
    this.seen = new RecentIds(recentEventIds);
    this.journal = journal;
  }

  get core(): LeadCore {
    for (const { outcome, at } of this.outcomes.splice(0)) {
      this.current = applyOutcome(this.current!, outcome, this.cfg!, at);
      this.journal?.liveOutcome(outcome, at);
    }
    return this.current!;
  }

  set core(core: LeadCore) {
    this.current = core;
  }

  get config(): Config {
    return this.cfg!;
  }

  // ---- messages ---------------------------------------------------------------------------------

  /** The deadline timer fired. */
  wake(): void {
    this.woken = true;
    this.afterLocal = false;
  }

  recordEvent(raw: unknown): void {
    this.afterLocal = false;
    const parsed = leadEventSchema.safeParse(raw);
    if (!parsed.success) return log.warn('event signal rejected', { issues: describeIssues(parsed.error) });
    if (parsed.data.leadId !== this.leadId)
      return log.warn('event signal for another lead rejected', { leadId: parsed.data.leadId });
    this.inbox.push({ kind: 'event', event: parsed.data });
  }

  recordProfile(raw: unknown): void {
    this.afterLocal = false;
    const parsed = profileSchema.safeParse(raw);
    if (!parsed.success) return log.warn('profile signal rejected', { issues: describeIssues(parsed.error) });
    this.inbox.push({ kind: 'profile', profile: parsed.data });
  }

  recordHistory(raw: unknown): void {
    this.afterLocal = false;
    const parsed = importedFactSchema.safeParse(raw);
    if (!parsed.success) return log.warn('history signal rejected', { issues: describeIssues(parsed.error) });
    this.inbox.push({ kind: 'imported', fact: parsed.data });
  }

  configChanged(): void {
    this.afterLocal = false;
    this.reloadConfig = true;
  }

  /** The update's validator: a well-formed outcome that fits the lead's stage, or an error saying why not. */
  checkOutcome(raw: unknown): void {
    const parsed = salesOutcomeSchema.safeParse(raw);
    if (!parsed.success) throw new Error(`invalid sales outcome: ${describeIssues(parsed.error)}`);
    if (!this.current || !this.cfg) throw new Error('lead is starting; try again in a moment');
    const wrong = outcomeError(this.peek(), parsed.data);
    if (wrong) throw new Error(wrong);
  }

  /** Records a sales outcome; returns the number the loop settles it under. */
  recordOutcome(outcome: SalesOutcome, at: number): number {
    this.afterLocal = false;
    this.outcomes.push({ outcome, at });
    return ++this.outcomesRecorded;
  }

  /** The public state (the query, an update's answer), without applying anything. */
  state(now: number): LeadState {
    if (!this.current || !this.cfg) throw new Error('lead is starting; query again in a moment');
    return toState(this.peek(), this.cfg, now);
  }

  // ---- the loop's steps -------------------------------------------------------------------------

  /** A rollout (the issue-12 patch): the lead scores under the new config, re-scored from its recorded events (model.rescore). */
  rescore(config: Config, configVersion: string, events: readonly EventFact[], now: number): void {
    const core = this.core;
    if (configVersion === core.configVersion) return;
    this.current = rescore(core, events, this.cfg!, config, configVersion, now);
    this.cfg = config;
  }

  /** A changed config version (runs from before issue 12): fit is re-applied under it (model.reconfigure). */
  reconfigure(config: Config, configVersion: string, now: number): void {
    const core = this.core;
    if (configVersion === core.configVersion) return;
    this.cfg = config;
    this.current = reconfigure(core, config, configVersion, now);
  }

  /** Applies the recorded events, profile changes and imported facts, in order, each once. */
  applyFacts(now: () => number): void {
    let core = this.core;
    const config = this.config;
    for (const fact of this.inbox.splice(0)) {
      const at = now();
      if (fact.kind === 'profile') {
        core = applyProfile(core, fact.profile, config, at);
        this.journal?.profileChange(fact.profile, at);
        continue;
      }
      if (fact.kind === 'imported') {
        if (this.seen.has(fact.fact.importId)) continue;
        this.seen.add(fact.fact.importId);
        const r = applyImported(core, fact.fact, config, at);
        if (r.problem) log.warn('imported history not applied', { importId: fact.fact.importId, problem: r.problem });
        core = r.core;
        if (r.outcome) this.journal?.importedOutcome(r.outcome);
        continue;
      }
      const ev = fact.event;
      if (this.seen.has(ev.eventId)) continue;
      if (!isKnownEventType(ev.type, config)) {
        log.warn('event of a type this config does not know was ignored', { type: ev.type, eventId: ev.eventId });
        continue;
      }
      this.seen.add(ev.eventId);
      const occurredAt = ev.occurredAt ? Date.parse(ev.occurredAt) : at;
      core = applyEvent(core, { ...ev, occurredAt }, config, at);
      this.journal?.event(ev, occurredAt, at, core.scoreLog.at(-1));
    }
    this.current = core;
  }

  /** What this run hands on: the lead, the ids it remembers and (handing over) the facts not yet applied. */
  carried(handOver: boolean): CarriedState {
    return {
      v: CARRIED_VERSION,
      core: this.core,
      recentEventIds: this.seen.toArray(),
      ...(handOver ? { inbox: this.inbox.splice(0) } : {}),
    };
  }

  private peek(): LeadCore {
    let core = this.current!;
    for (const { outcome, at } of this.outcomes) core = applyOutcome(core, outcome, this.cfg!, at);
    return core;
  }
}
