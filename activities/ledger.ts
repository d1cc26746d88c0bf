/**
 * The send ledger: what happened to each Message-ID.
 *
 * - `intent`: written by the email activity just before it ends the message's DATA (the SMTP
 *   server holds the whole body but cannot act on it before the terminator), never earlier: a
 *   message still waiting for a connection or in its envelope has none. A bare intent found by a
 *   later attempt means a worker died at the end of DATA, when the server may already hold it.
 * - `uncertain`: the connection failed after the terminator and before the server's reply, or a
 *   later attempt found a bare intent: SMTP cannot tell whether the message arrived. Nurture mail
 *   (at most once) is not resent; handoff mail (at least once) is resent with the same Message-ID.
 * - `sent`: the server accepted the message (`resent` when a resend did it).
 * - nothing: never sent, or the server said no and the intent was withdrawn.
 *
 * Small on purpose (a database replaces the files later, issue 10). Files per message under one
 * folder, created atomically (`wx`): safe for several workers sharing a volume. They are private
 * (0600, folder 0700) and hold no address: a Message-ID, a time, whether it was resent.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { access, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type LedgerState = 'sent' | 'intent' | 'uncertain' | undefined;
export interface LedgerEntry { state: LedgerState; resent?: boolean }

export interface SendLedger {
  state(messageId: string): Promise<LedgerEntry>;
  /** True when this call wrote the intent, false when one was already there (another attempt holds it). */
  markIntent(messageId: string): Promise<boolean>;
  withdrawIntent(messageId: string): Promise<void>;
  markUncertain(messageId: string, info: { at: string; reason: string }): Promise<void>;
  markSent(messageId: string, info: { at: string; resent?: boolean }): Promise<void>;
}

export function fileLedger(dir: string): SendLedger {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const base = (id: string) => join(dir, createHash('sha256').update(id).digest('hex').slice(0, 40));
  const exists = (p: string) => access(p).then(() => true, () => false);
  const create = async (p: string, content: string): Promise<boolean> => {
    try {
      await writeFile(p, content, { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return false;
    }
  };
  return {
    async state(messageId) {
      const sent = await readFile(`${base(messageId)}.json`, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (sent !== undefined) {
        let resent = false;
        try {
          resent = (JSON.parse(sent) as { resent?: boolean }).resent === true;
        } catch {
          // a torn write of an older entry: it was sent all the same
        }
        return resent ? { state: 'sent', resent } : { state: 'sent' };
      }
      if (await exists(`${base(messageId)}.uncertain`)) return { state: 'uncertain' };
      if (await exists(`${base(messageId)}.intent`)) return { state: 'intent' };
      return { state: undefined };
    },
    markIntent: (messageId) => create(`${base(messageId)}.intent`, messageId),
    withdrawIntent: (messageId) => rm(`${base(messageId)}.intent`, { force: true }),
    markUncertain: async (messageId, info) => {
      await create(`${base(messageId)}.uncertain`, JSON.stringify({ messageId, ...info }));
    },
    markSent: async (messageId, info) => {
      await create(`${base(messageId)}.json`, JSON.stringify({ messageId, ...info }));
    },
  };
}

/**
 * How many messages of a file ledger are in each state, for the chaos suite and ops (a sent
 * message whose earlier attempt was uncertain counts as sent; `resent` counts those sent again).
 */
export async function fileLedgerCounts(dir: string): Promise<{ sent: number; resent: number; uncertain: number; intent: number }> {
  const names = await readdir(dir);
  const by = new Map<string, Set<string>>();
  for (const n of names) {
    const dot = n.indexOf('.');
    if (dot < 0) continue;
    const set = by.get(n.slice(0, dot)) ?? new Set<string>();
    set.add(n.slice(dot + 1));
    by.set(n.slice(0, dot), set);
  }
  const counts = { sent: 0, resent: 0, uncertain: 0, intent: 0 };
  for (const [base, kinds] of by) {
    if (kinds.has('json')) {
      counts.sent++;
      const entry = await readFile(join(dir, `${base}.json`), 'utf8').catch(() => '{}');
      if (/"resent":true/.test(entry)) counts.resent++;
    } else if (kinds.has('uncertain')) counts.uncertain++;
    else if (kinds.has('intent')) counts.intent++;
  }
  return counts;
}
