/**
 * The send ledger: which Message-IDs reached the SMTP server. An email activity checks it before
 * sending and records into it right after the server accepted the message, so a retried activity
 * (worker crash, timeout) does not mail the same step twice. A file per message under one folder:
 * atomic `wx` creation, safe for several workers sharing a volume.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface SendLedger {
  wasSent(messageId: string): Promise<boolean>;
  markSent(messageId: string, info: object): Promise<void>;
}

export function fileLedger(dir: string): SendLedger {
  mkdirSync(dir, { recursive: true });
  const path = (id: string) => join(dir, `${createHash('sha256').update(id).digest('hex').slice(0, 40)}.json`);
  return {
    async wasSent(messageId) {
      try {
        await access(path(messageId));
        return true;
      } catch {
        return false;
      }
    },
    async markSent(messageId, info) {
      try {
        await writeFile(path(messageId), JSON.stringify({ messageId, ...info }), { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    },
  };
}
