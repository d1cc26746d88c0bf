/**
 * One durable timer for the lead's earliest deadline. Engagement usually moves deadlines later;
 * then the running timer is kept (it wakes the loop, which re-arms it), so an ordinary event adds
 * no timer events to history.
 */
import { CancellationScope, isCancellation, sleep } from '@temporalio/workflow';

export class DeadlineTimer {
  private timer: { at: number; scope: CancellationScope } | undefined;
  /**
   * The `at` of the latest timer that fired: with the issue-9 patch, deadlines act once it reaches
   * them (model.advance), so what the loop does follows history (a TimerFired event), not the
   * clock an iteration runs under.
   */
  firedUntil = Number.NEGATIVE_INFINITY;

  /** `sleepsWithoutTimer` (the ledger patch): with nothing to wait for, a running timer is cancelled. */
  constructor(
    private readonly onFire: () => void,
    private readonly sleepsWithoutTimer: boolean,
  ) {}

  /** Waits for `at` (ms), unless a timer for that moment or earlier runs already. */
  arm(at: number | undefined, now: number): void {
    if (at === undefined && this.sleepsWithoutTimer && this.timer) {
      // Nothing left to wait for (a closed stage): the run sleeps with no timer until its next event.
      this.timer.scope.cancel();
      this.timer = undefined;
    }
    if (at === undefined || (this.timer && this.timer.at <= at)) return;
    this.timer?.scope.cancel();
    const scope = new CancellationScope();
    const mine = { at, scope };
    this.timer = mine;
    scope
      .run(() => sleep(Math.max(1, at - now)))
      .then(
        () => {
          if (this.timer === mine) this.timer = undefined;
          this.firedUntil = Math.max(this.firedUntil, at);
          this.onFire();
        },
        (err) => {
          if (!isCancellation(err)) throw err;
        },
      );
  }
}
