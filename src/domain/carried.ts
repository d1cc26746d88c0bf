/**
 * What one run of a lead hands to the next (continue-as-new), leaves as its result (runs before
 * the ledger completed), or the ledger keeps for a fresh run: versioned, and checked when a run
 * reads it, so a worker never guesses at a shape it does not know.
 */
import type { ImportedFact, LeadEvent, Profile } from './lead.js';
import type { LeadCore } from './lifecycle.js';
import { STAGES } from './stages.js';

/** A fact a handler recorded, waiting for the loop to apply it. */
export type Fact =
  | { kind: 'event'; event: LeadEvent }
  | { kind: 'profile'; profile: Profile }
  | { kind: 'imported'; fact: ImportedFact };

/** The version this code writes and reads. A state written before versions existed is version 1. */
export const CARRIED_VERSION = 1;

export interface CarriedState {
  /** CARRIED_VERSION; absent in what runs before the version wrote (the same shape). */
  v?: number;
  core: LeadCore;
  /** Hashes of the most recent event ids, so a redelivered event is still counted once. */
  recentEventIds: string[];
  /** Facts that arrived while the run was handing over (continue-as-new only). */
  inbox?: Fact[];
}

const CONSENTS = ['subscribed', 'unsubscribed', 'bounced'];
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isArray = (x: unknown, each: (y: unknown) => boolean) => Array.isArray(x) && x.every(each);

/** What is wrong with a carried state (its first problem), or undefined. */
export function carriedProblem(raw: unknown): string | undefined {
  if (!isObject(raw)) return 'not an object';
  const v = raw.v ?? CARRIED_VERSION;
  if (v !== CARRIED_VERSION)
    return `version ${String(v)}, and this worker reads version ${CARRIED_VERSION} (a newer worker wrote it)`;
  const c = raw.core;
  if (!isObject(c)) return 'core: not an object';
  if (typeof c.leadId !== 'string' || !c.leadId) return 'core.leadId: not a lead id';
  if (!(STAGES as readonly unknown[]).includes(c.stage)) return `core.stage: ${String(c.stage)} is not a stage`;
  if (!CONSENTS.includes(c.consent as string)) return `core.consent: ${String(c.consent)} is not a consent`;
  for (const k of ['stageSince', 'createdAt', 'fit', 'escalations', 'recycleCount', 'eventsProcessed'] as const) {
    if (typeof c[k] !== 'number' || !Number.isFinite(c[k])) return `core.${k}: not a number`;
  }
  for (const k of ['profile', 'engagement', 'nurture'] as const) if (!isObject(c[k])) return `core.${k}: not an object`;
  for (const k of ['sentAt', 'transitions', 'scoreLog'] as const)
    if (!Array.isArray(c[k])) return `core.${k}: not a list`;
  if (typeof c.configVersion !== 'string') return 'core.configVersion: not a string';
  if (!isArray(raw.recentEventIds, (x) => typeof x === 'string')) return 'recentEventIds: not a list of strings';
  if (
    raw.inbox !== undefined &&
    !isArray(raw.inbox, (f) => isObject(f) && ['event', 'profile', 'imported'].includes(f.kind as string))
  ) {
    return 'inbox: not a list of facts';
  }
  return undefined;
}

/**
 * The carried state, checked; undefined when there is none. A state this worker cannot read is an
 * error (the workflow task fails and is retried, e.g. by a newer worker), never a guess.
 */
export function readCarried(raw: unknown, from: string): CarriedState | undefined {
  if (raw === undefined || raw === null) return undefined;
  const problem = carriedProblem(raw);
  if (problem) throw new Error(`the lead state carried from ${from} cannot be read: ${problem}`);
  return raw as CarriedState;
}
