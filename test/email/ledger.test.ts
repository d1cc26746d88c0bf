/** The send ledger in the lead ledger's `mails` table, on both backends: its states, one intent per message, its counts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type MailRef, sendLedgerCounts, sqlSendLedger } from '../../activities/ledger.js';
import { BACKENDS, useLedgerDatabase } from '../helpers/ledger.js';

const at = '2026-12-01T00:00:00.000Z';
const mail = (id: string): MailRef => ({
  messageId: `<${id}@x>`,
  leadId: `lead-${id}`,
  kind: 'nurture',
  track: 'welcome',
  step: 1,
  recipient: `${id}@buyer.example`,
});

for (const backend of BACKENDS) {
  describe(`send ledger (${backend})`, () => {
    const db = useLedgerDatabase(backend);

    it('goes from nothing to intent to sent, or to uncertain; a withdrawn intent is nothing again', async () => {
      const l = sqlSendLedger(db.pool);
      const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(mail) as [MailRef, MailRef, MailRef, MailRef];
      assert.deepEqual(await l.state(a.messageId), { state: undefined });
      assert.equal(await l.markIntent(a), true, 'this call wrote the intent');
      assert.equal(await l.markIntent(a), false, 'a second attempt finds it taken');
      assert.deepEqual(await l.state(a.messageId), { state: 'intent' });
      await l.withdrawIntent(a.messageId);
      assert.deepEqual(await l.state(a.messageId), { state: undefined });

      await l.markIntent(b);
      await l.markSent(b, { at });
      assert.deepEqual(await l.state(b.messageId), { state: 'sent' });
      await l.withdrawIntent(b.messageId);
      await l.markUncertain(b, { at, reason: 'late' });
      assert.deepEqual(await l.state(b.messageId), { state: 'sent' }, 'a sent message stays sent');

      await l.markIntent(c);
      await l.markUncertain(c, { at, reason: 'connection closed' });
      assert.deepEqual(await l.state(c.messageId), { state: 'uncertain' });
      await l.markSent(c, { at, resent: true });
      assert.deepEqual(
        await l.state(c.messageId),
        { state: 'sent', resent: true },
        'a resend that got through is sent, and says so',
      );

      await l.markIntent(d);
      assert.deepEqual(await sendLedgerCounts(db.pool), { sent: 2, resent: 1, uncertain: 0, intent: 1 });
      await l.markUncertain(d, { at, reason: 'a worker died at the end of DATA' });
      assert.deepEqual(await sendLedgerCounts(db.pool), { sent: 2, resent: 1, uncertain: 1, intent: 0 });

      const row = (
        await db.pool.query(
          'SELECT lead_id, kind, track, step, recipient, status, sent_at FROM mails WHERE message_id = $1',
          [b.messageId],
        )
      ).rows[0];
      assert.deepEqual(
        { ...row, sent_at: row.sent_at.toISOString() },
        {
          lead_id: 'lead-b',
          kind: 'nurture',
          track: 'welcome',
          step: 1,
          recipient: 'b@buyer.example',
          status: 'sent',
          sent_at: at,
        },
      );
    });

    it('of many attempts racing for one message, exactly one gets the intent', async () => {
      const l = sqlSendLedger(db.pool);
      const results = await Promise.all(Array.from({ length: 8 }, () => l.markIntent(mail('race'))));
      assert.equal(results.filter(Boolean).length, 1);
    });
  });
}
