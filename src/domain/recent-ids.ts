/**
 * The event ids a lead remembers (its idempotency keys), as compact 64-bit hashes, so a long id
 * costs no more than a short one. Pure and deterministic (no Node crypto: it runs in the workflow
 * sandbox too): the workflow keeps the set, a run recovered from the ledger gets its ids hashed
 * the same way by the activity.
 */

/** How many recent event ids a lead remembers. */
export const RECENT_EVENT_IDS = 10_000;

/** Two independent 32-bit FNV-1a hashes of the id: 64 bits, deterministic. */
export function digestEventId(id: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  return (a >>> 0).toString(36) + ':' + (b >>> 0).toString(36);
}

/** A bounded set of the most recent event ids, oldest dropped first. */
export class RecentIds {
  private readonly ids: Set<string>;
  /** `initial`: digests, oldest first (what `toArray` gave). */
  constructor(initial: string[]) {
    this.ids = new Set(initial.slice(-RECENT_EVENT_IDS));
  }
  has(id: string) {
    return this.ids.has(digestEventId(id));
  }
  add(id: string) {
    this.ids.add(digestEventId(id));
    if (this.ids.size > RECENT_EVENT_IDS) this.ids.delete(this.ids.values().next().value!);
  }
  toArray() {
    return [...this.ids];
  }
}
