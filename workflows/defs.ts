/**
 * The lead workflow's public surface (CONTRACT.md §Temporal): signals, update, query and search
 * attributes. Imported by the workflow and by every client (API, CLI, tests).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CarriedState } from '../src/domain/carried.js';
import type { ImportedFact, LeadEvent, LeadState, Profile, SalesOutcome } from '../src/domain/lead.js';

export const WORKFLOW_TYPE = 'leadWorkflow';

export const eventSignal = defineSignal<[LeadEvent]>('event');
export const profileSignal = defineSignal<[Profile]>('profile');
/** An imported stage history or sales outcome (`leadctl import leads|outcomes`), applied at its own dates. */
export const historySignal = defineSignal<[ImportedFact]>('history');
/** Tells a running lead to score with the worker's current configuration from now on. */
export const configChangedSignal = defineSignal<[]>('configChanged');
export const salesOutcomeUpdate = defineUpdate<LeadState, [SalesOutcome]>('salesOutcome');
/** For ops: the API reads the memo below instead (a query needs a worker and replays an evicted lead). */
export const stateQuery = defineQuery<LeadState>('state');
/** Memo key under which the loop publishes the lead's LeadState (encrypted by the payload codec; never a search attribute). */
export const STATE_MEMO = 'state';

export const LeadStage = defineSearchAttributeKey('LeadStage', SearchAttributeType.KEYWORD);
export const LeadScore = defineSearchAttributeKey('LeadScore', SearchAttributeType.INT);
export const LeadOwner = defineSearchAttributeKey('LeadOwner', SearchAttributeType.KEYWORD);
export const LeadCampaign = defineSearchAttributeKey('LeadCampaign', SearchAttributeType.KEYWORD);
export const LeadBecameMqlAt = defineSearchAttributeKey('LeadBecameMqlAt', SearchAttributeType.DATETIME);
export const LeadBecameSqlAt = defineSearchAttributeKey('LeadBecameSqlAt', SearchAttributeType.DATETIME);
export const LeadModel = defineSearchAttributeKey('LeadModel', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTES = [
  LeadStage,
  LeadScore,
  LeadOwner,
  LeadCampaign,
  LeadBecameMqlAt,
  LeadBecameSqlAt,
  LeadModel,
];

export { type CarriedState, type Fact } from '../src/domain/carried.js';
/** Second workflow argument: state carried from an earlier run, and tuning for tests. */
export interface LeadRunOptions {
  carried?: CarriedState;
  /** Continue-as-new once history reaches this many events (default 2,000), or when Temporal suggests it. */
  maxHistoryEvents?: number;
}
