/**
 * The side effects the model asks for (model.Effect), carried out as activities: the owner pick
 * (a local activity), handoff and nurture mail. What comes back is a fact about the lead (an
 * owner, an uncertain or resent delivery, a permanent bounce) and goes through the model too.
 */
import { ActivityFailure, ApplicationFailure, log } from '@temporalio/workflow';
import { PERMANENT_BOUNCE } from '../../activities/types.js';
import { mailLead } from '../../src/domain/mail.js';
import { bounceEvent, type Effect, logScore, ownerPicked } from '../../src/domain/lifecycle.js';
import { local, mail } from './activities.js';
import type { LeadRun } from './lead-run.js';

const UNCERTAIN = 'its worker or connection failed after the message was handed to SMTP';

export class Effects {
  private readonly pending = new Set<Promise<void>>();

  /** `publishState` (the issue-9 patch): a mail result that changed the lead wakes the loop to publish it. */
  constructor(
    private readonly run: LeadRun,
    private readonly now: () => number,
    private readonly publishState: boolean,
  ) {}

  /** No activity of this run is still running. */
  get idle(): boolean {
    return this.pending.size === 0;
  }

  start(effect: Effect): void {
    const run = this.run;
    const c = run.core;
    if (effect.kind === 'assignOwner') {
      const pickedFor = c.becameSqlAt;
      this.track(
        (async () => {
          const owner = await local.assignOwner({ leadId: c.leadId, rule: effect.rule, owners: effect.owners });
          run.afterLocal = true;
          const r = ownerPicked(run.core, owner, pickedFor);
          if (!r) return;
          run.core = r.core;
          this.start(r.effect);
          run.woken = true;
        })(),
      );
    } else if (effect.kind === 'handoff') {
      const lead = mailLead(c, run.config, this.now());
      this.track(
        mail.sendHandoffEmail({ lead, owner: effect.owner, escalation: effect.escalation }).then(
          (sent) => {
            if (!sent.resent) return;
            const note = `handoff to ${effect.owner} resent: the first attempt's delivery was uncertain (${UNCERTAIN})`;
            run.core = logScore(run.core, { at: this.now(), type: 'handoff', points: 0, note });
            if (this.publishState) run.woken = true;
          },
          (err) => log.error('handoff mail failed for good', { owner: effect.owner, error: String(err) }),
        ),
      );
    } else {
      const lead = mailLead(c, run.config, this.now());
      this.track(
        mail.sendNurtureEmail({ lead, track: effect.track, step: effect.step, template: effect.template }).then(
          (sent) => {
            if (!sent.uncertain) return;
            const note = `${effect.track} step ${effect.step}: delivery uncertain (${UNCERTAIN}); not resent`;
            run.core = logScore(run.core, { at: this.now(), type: 'nurture', points: 0, note });
            if (this.publishState) run.woken = true;
          },
          (err) => {
            if (
              err instanceof ActivityFailure &&
              err.cause instanceof ApplicationFailure &&
              err.cause.type === PERMANENT_BOUNCE
            ) {
              run.inbox.push({ kind: 'event', event: bounceEvent(c, effect) });
            } else {
              log.error('nurture mail failed for good', { track: effect.track, step: effect.step, error: String(err) });
            }
          },
        ),
      );
    }
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }
}
