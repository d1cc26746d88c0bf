/**
 * What the loop applied since its last ledger write (with the issue-10 patch), and the write itself:
 * the events, profile changes and outcomes, the transitions not yet written (all of them on a
 * run's first write: rewriting one is a no-op), and the latest state under a version that only
 * moves forward (the run's clock, then a sequence within one moment).
 */
import type { Config } from '../../src/domain/config.js';
import type { LeadEvent, SalesOutcome } from '../../src/domain/lead.js';
import { type LeadCore, toState } from '../../src/domain/lifecycle.js';
import type { LedgerBatch, LedgerEvent, LedgerOutcome, LedgerProfileChange } from '../../src/ledger/ledger.js';

const iso = (ms: number) => new Date(ms).toISOString();

export class LedgerJournal {
  private events: LedgerEvent[] = [];
  private profileChanges: LedgerProfileChange[] = [];
  private outcomes: LedgerOutcome[] = [];
  private seq = 0;
  /** The order of this run's events and profile changes (what a replay and a re-score apply them in). */
  private order = 0;
  /** This run's previous write: the last one a completed workflow task stands behind. */
  private version = 0;
  private readonly written = new WeakSet<object>();
  /** The consent and owner the previous write said (the run's start: what it carried): what a webhook reports as changed. */
  private previous: { consent: string; owner?: string } | undefined;

  constructor(
    private readonly runId: string,
    carried?: Pick<LeadCore, 'consent' | 'owner'>,
  ) {
    if (carried) this.previous = { consent: carried.consent, ...(carried.owner ? { owner: carried.owner } : {}) };
  }

  /** An applied event with the points its score log entry gave it (if the entry is its own). */
  event(ev: LeadEvent, occurredAt: number, at: number, logged: LeadCore['scoreLog'][number] | undefined): void {
    const { leadId: _leadId, eventId, type, occurredAt: _occurredAt, ...attributes } = ev;
    this.events.push({
      eventId,
      type,
      occurredAt: iso(Math.min(occurredAt, at)),
      appliedAt: iso(at),
      attributes: {
        ...attributes,
        seq: ++this.order,
        ...(logged?.eventId === eventId
          ? { points: logged.points, ...(logged.note ? { note: logged.note } : {}) }
          : {}),
      },
    });
  }

  /**
   * The run's start input: for a new lead its creation profile (seq 0 at createdAt, what a replay
   * creates the lead with); for a lead resumed from the ledger a profile change like any other.
   */
  started(input: Record<string, unknown>, isNew: boolean, at: number): void {
    const { leadId: _l, campaign: _c, channel: _ch, consent: _co, ...profile } = input;
    if (!Object.keys(profile).length) return;
    if (isNew) this.profileChanges.push({ appliedAt: iso(at), seq: 0, patch: profile });
    else this.profileChange(profile, at);
  }

  profileChange(patch: Record<string, unknown>, at: number): void {
    this.profileChanges.push({ appliedAt: iso(at), seq: ++this.order, patch });
  }

  liveOutcome(o: SalesOutcome, at: number): void {
    this.outcomes.push({
      outcome: o.outcome,
      occurredAt: iso(at),
      source: 'live',
      ...('reason' in o && o.reason ? { reason: o.reason } : {}),
      ...(o.note ? { note: o.note } : {}),
      ...(o.rep ? { rep: o.rep } : {}),
    });
  }

  importedOutcome(o: Omit<LedgerOutcome, 'occurredAt' | 'source'> & { at: number }): void {
    const { at, ...rest } = o;
    this.outcomes.push({ ...rest, occurredAt: iso(at), source: 'imported' });
  }

  /** The write for the lead as it is now; what it carries is no longer pending. */
  batch(c: LeadCore, config: Config, at: number): LedgerBatch {
    const transitions = c.transitions.filter((t) => !this.written.has(t));
    transitions.forEach((t) => this.written.add(t));
    const state = toState(c, config, at);
    const version = at * 1000 + (++this.seq % 1000);
    const batch: LedgerBatch = {
      leadId: c.leadId,
      events: this.events.splice(0),
      profileChanges: this.profileChanges.splice(0),
      outcomes: this.outcomes.splice(0),
      transitions: transitions.map((t) => ({ ...t, at: iso(t.at) })),
      lead: {
        leadId: c.leadId,
        stage: c.stage,
        consent: c.consent,
        score: state.score.total,
        owner: c.owner,
        campaign: c.campaign,
        channel: c.channel,
        model: state.score.model,
        createdAt: state.createdAt,
        state,
        carried: { v: 1, core: c },
        version,
      },
      run: { id: this.runId, after: this.version },
      ...(this.previous ? { previous: this.previous } : {}),
    };
    this.version = version;
    this.previous = { consent: c.consent, ...(c.owner ? { owner: c.owner } : {}) };
    return batch;
  }
}
