/**
 * The send ledger: what happened to each Message-ID, in the lead ledger's `mails` table, so every
 * worker on every host shares it.
 *
 * - `intent`: written by the email activity just before it ends the message's DATA (the SMTP
 *   server holds the whole body but cannot act on it before the terminator), never earlier: a
 *   message still waiting for a connection or in its envelope has none. A bare intent found by a
 *   later attempt means a worker died at the end of DATA, when the server may already hold it.
 * - `uncertain`: the connection failed after the terminator and before the server's reply, or a
 *   later attempt found a bare intent: SMTP cannot tell whether the message arrived. Nurture mail
 *   (at most once) is not resent; handoff mail (at least once) is resent with the same Message-ID.
 * - `sent`: the server accepted the message (`resent` when a resend did it).
 * - `suppressed`: not sent, the recipient's address is on the suppression list (checked before
 *   every nurture send); a later send of the same Message-ID, once the address is off the list,
 *   takes the row over with its intent.
 * - no row: never sent, or the server said no and the intent was withdrawn.
 *
 * The intent is one `INSERT … ON CONFLICT DO NOTHING`: of two attempts racing for one message
 * exactly one gets the row. A row holds the Message-ID, the lead, the kind, track and step, the
 * recipient and times (CONTRACT.md "The lead ledger": every mail sent).
 */
import type pg from 'pg';

export type LedgerState = 'sent' | 'intent' | 'uncertain' | 'suppressed' | undefined;
export interface LedgerEntry {
  state: LedgerState;
  resent?: boolean;
}
/** What a mail is, for its row. */
export interface MailRef {
  messageId: string;
  leadId: string;
  kind: 'nurture' | 'handoff';
  track?: string;
  step?: number;
  recipient?: string;
}

export interface SendLedger {
  state(messageId: string): Promise<LedgerEntry>;
  /** True when this call wrote the intent, false when one was already there (another attempt holds it). */
  markIntent(mail: MailRef): Promise<boolean>;
  withdrawIntent(messageId: string): Promise<void>;
  markUncertain(mail: MailRef, info: { at: string; reason: string }): Promise<void>;
  markSent(mail: MailRef, info: { at: string; resent?: boolean }): Promise<void>;
  /** Not sent: the address is suppressed (a row with no intent, or nothing, becomes `suppressed`). */
  markSuppressed(mail: MailRef, info: { at: string; reason: string }): Promise<void>;
}

const row = (m: MailRef) => [m.messageId, m.leadId, m.kind, m.track ?? null, m.step ?? null, m.recipient ?? null];

export function sqlSendLedger(pool: pg.Pool): SendLedger {
  return {
    async state(messageId) {
      const r = await pool.query('SELECT status, resent FROM mails WHERE message_id = $1', [messageId]);
      const x = r.rows[0] as { status: string; resent: boolean } | undefined;
      if (!x) return { state: undefined };
      const state = x.status as LedgerState;
      return state === 'sent' && x.resent ? { state, resent: true } : { state };
    },
    async markIntent(m) {
      const r = await pool.query(
        `INSERT INTO mails (message_id, lead_id, kind, track, step, recipient, status) VALUES ($1, $2, $3, $4, $5, $6, 'intent')
         ON CONFLICT (message_id) DO UPDATE SET status = 'intent', reason = NULL, updated_at = now() WHERE mails.status = 'suppressed'`,
        row(m),
      );
      return (r.rowCount ?? 0) === 1;
    },
    async withdrawIntent(messageId) {
      await pool.query("DELETE FROM mails WHERE message_id = $1 AND status = 'intent'", [messageId]);
    },
    async markUncertain(m, info) {
      // Only an intent (or nothing) becomes uncertain: a sent row stays sent.
      await pool.query(
        `INSERT INTO mails (message_id, lead_id, kind, track, step, recipient, status, reason, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'uncertain', $7, $8)
         ON CONFLICT (message_id) DO UPDATE SET status = 'uncertain', reason = excluded.reason, updated_at = excluded.updated_at WHERE mails.status = 'intent'`,
        [...row(m), info.reason, info.at],
      );
    },
    async markSent(m, info) {
      await pool.query(
        `INSERT INTO mails (message_id, lead_id, kind, track, step, recipient, status, resent, sent_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'sent', $7, $8, $8)
         ON CONFLICT (message_id) DO UPDATE SET status = 'sent', resent = excluded.resent, sent_at = excluded.sent_at, updated_at = excluded.updated_at
         WHERE mails.status <> 'sent'`,
        [...row(m), info.resent === true, info.at],
      );
    },
    async markSuppressed(m, info) {
      await pool.query(
        `INSERT INTO mails (message_id, lead_id, kind, track, step, recipient, status, reason, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'suppressed', $7, $8)
         ON CONFLICT (message_id) DO UPDATE SET reason = excluded.reason, updated_at = excluded.updated_at WHERE mails.status = 'suppressed'`,
        [...row(m), info.reason, info.at],
      );
    },
  };
}

/**
 * How many messages are in each state, for the chaos suite and ops (a sent message whose earlier
 * attempt was uncertain counts as sent; `resent` counts those sent again).
 */
export async function sendLedgerCounts(
  pool: pg.Pool,
): Promise<{ sent: number; resent: number; uncertain: number; intent: number }> {
  const r = await pool.query(
    `SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent, count(*) FILTER (WHERE status = 'sent' AND resent)::int AS resent,
            count(*) FILTER (WHERE status = 'uncertain')::int AS uncertain, count(*) FILTER (WHERE status = 'intent')::int AS intent FROM mails`,
  );
  return r.rows[0] as { sent: number; resent: number; uncertain: number; intent: number };
}
