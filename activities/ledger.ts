/**
 * The send ledger: what happened to each Message-ID. An email activity records its intent before
 * talking to the SMTP server, and the outcome right after: `sent` when the server accepted the
 * message, nothing (the intent is withdrawn) when the server or the network said no. A retried
 * activity (worker crash, timeout) that finds `sent` does not mail again; one that finds a bare
 * intent knows a worker died mid-send, when the server may already hold the message — SMTP cannot
 * tell — and does not resend either: a step is never mailed twice, and the rare step whose
 * delivery is uncertain is reported as such instead of silently doubled.
 *
 * Two files per message under one folder, created atomically (`wx`): safe for several workers
 * sharing a volume.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { access, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type LedgerState = 'sent' | 'intent' | undefined;

export interface SendLedger {
  state(messageId: string): Promise<LedgerState>;
  markIntent(messageId: string): Promise<void>;
  withdrawIntent(messageId: string): Promise<void>;
  markSent(messageId: string, info: object): Promise<void>;
}

export function fileLedger(dir: string): SendLedger {
  mkdirSync(dir, { recursive: true });
  const base = (id: string) => join(dir, createHash('sha256').update(id).digest('hex').slice(0, 40));
  const exists = (p: string) => access(p).then(() => true, () => false);
  const create = async (p: string, content: string) => {
    try {
      await writeFile(p, content, { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  };
  return {
    async state(messageId) {
      if (await exists(`${base(messageId)}.json`)) return 'sent';
      if (await exists(`${base(messageId)}.intent`)) return 'intent';
      return undefined;
    },
    markIntent: (messageId) => create(`${base(messageId)}.intent`, messageId),
    withdrawIntent: (messageId) => rm(`${base(messageId)}.intent`, { force: true }),
    markSent: (messageId, info) => create(`${base(messageId)}.json`, JSON.stringify({ messageId, ...info })),
  };
}
