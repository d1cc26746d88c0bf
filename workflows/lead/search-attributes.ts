/** The lead's search attributes (CONTRACT.md), upserted only when a value changed. */
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { Config } from '../../src/domain/config.js';
import { earnedPoints, type LeadCore, searchAttributesOf } from '../../src/domain/lifecycle.js';
import { LeadBecameMqlAt, LeadBecameSqlAt, LeadCampaign, LeadModel, LeadOwner, LeadScore, LeadStage } from '../defs.js';

type Values = ReturnType<typeof searchAttributesOf>;

/** How far the clock-free points move before LeadScore is upserted on its own (issue-15 patch). */
export const SCORE_UPSERT_STEP = 5;

export class SearchAttributeSync {
  private readonly last: Record<keyof Values, unknown>;
  /** The issue-15 patch: LeadScore follows the clock-free points (`start` given, the run's first lead). */
  private readonly relaxed: boolean;
  /** The clock-free points at the last score upsert (the issue-15 patch). */
  private lastPoints: number | undefined;

  /**
   * Starts from what the run already has (set by the starter, or inherited on continue-as-new).
   * `withModel` (the issue-12 patch): LeadModel is kept too.
   */
  constructor(
    private readonly withModel: boolean,
    start?: LeadCore,
  ) {
    this.relaxed = start !== undefined;
    this.lastPoints = start && earnedPoints(start);
    const initial = workflowInfo().typedSearchAttributes;
    this.last = {
      stage: initial.get(LeadStage),
      score: initial.get(LeadScore),
      owner: initial.get(LeadOwner),
      campaign: initial.get(LeadCampaign),
      becameMqlAt: initial.get(LeadBecameMqlAt)?.getTime(),
      becameSqlAt: initial.get(LeadBecameSqlAt)?.getTime(),
      model: initial.get(LeadModel),
    };
  }

  /**
   * With the issue-9 patch (`changed` given), an iteration upserts exactly when it changed the
   * lead, the score always with the rest: whether an upsert happens then follows the facts applied,
   * not the decayed score under the iteration's clock (an iteration run under an older task's clock
   * would round differently). So LeadScore is the score as of the lead's last change, not decayed to
   * the minute. Older runs (`changed` false): an upsert whenever a value differs.
   *
   * With the issue-15 patch (`relaxed`), a changed iteration upserts the score only beside another
   * attribute that changed, or when the clock-free points moved by SCORE_UPSERT_STEP or more since
   * the last score upsert: the decision reads the facts applied, as before, and fewer of them.
   */
  sync(core: LeadCore, config: Config, now: number, changed: boolean): void {
    const sa = searchAttributesOf(core, config, now);
    const pairs: SearchAttributeUpdatePair[] = [];
    const put = (name: keyof Values, pair: SearchAttributeUpdatePair, force = false) => {
      const value = sa[name];
      if (this.last[name] === value && !force) return;
      this.last[name] = value;
      pairs.push(pair);
    };
    const date = (ms: number | undefined) => (ms === undefined ? null : new Date(ms));
    put('stage', { key: LeadStage, value: sa.stage });
    put('owner', { key: LeadOwner, value: sa.owner ?? null });
    put('campaign', { key: LeadCampaign, value: sa.campaign ?? null });
    put('becameMqlAt', { key: LeadBecameMqlAt, value: date(sa.becameMqlAt) });
    put('becameSqlAt', { key: LeadBecameSqlAt, value: date(sa.becameSqlAt) });
    if (this.withModel) put('model', { key: LeadModel, value: sa.model });
    const score = { key: LeadScore, value: sa.score };
    const points = earnedPoints(core);
    const before = pairs.length;
    if (this.relaxed && changed && points !== undefined && this.lastPoints !== undefined) {
      if (pairs.length > 0 || Math.abs(points - this.lastPoints) >= SCORE_UPSERT_STEP) put('score', score, true);
    } else put('score', score, changed);
    if (pairs.length > before) this.lastPoints = points;
    if (pairs.length) upsertSearchAttributes(pairs);
  }
}
