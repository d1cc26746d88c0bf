/**
 * SMTP faults at the points that decide what a send's failure means, on the dev server with a real
 * SMTP server on loopback (test/email/faulty-smtp.ts):
 * - before the end of DATA (a recipient refused with 4xx, a worker killed while the server has not
 *   answered RCPT TO): a clean failure, retried, the mail sent once;
 * - after the end of DATA and before the 250 (the server took the message, then the connection
 *   dropped; or the worker was killed waiting for the reply): uncertain. Nurture mail (at most
 *   once) is reported and not resent, so it arrives once; handoff mail (at least once) is resent
 *   with the same Message-ID and the ledger says resent, so an owner never misses a hand-raiser.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sendLedgerCounts, sqlSendLedger } from '../../activities/ledger.js';
import { testLedgerDatabase } from '../helpers/ledger.js';
import { useStack } from '../helpers/stack.js';
import { ev, signal, startLead, waitForState } from '../helpers/leads.js';
import { stateQuery } from '../../workflows/defs.js';
import { startFaultySmtp } from './faulty-smtp.js';

// The worker in this process serves the describe below; the last test starts worker processes.
const h = useStack({ smtp: startFaultySmtp, worker: true });

const lead = (leadId: string) => ({
  leadId,
  email: `${leadId}@buyer.example`,
  firstName: 'Noor',
  company: 'Globex',
  country: 'US',
  seniority: 'director',
  companySize: 300,
});
const to = (addr: string) => h.smtp.messages.filter((m) => m.to.includes(addr));
const handoffsOf = (leadId: string) =>
  h.smtp.messages.filter((m) => m.headers.get('x-lead-id') === leadId && m.headers.get('x-lead-handoff') === '1');
const isHandoffOf = (leadId: string) => (m: { headers: Map<string, unknown> }) =>
  m.headers.get('x-lead-id') === leadId && m.headers.get('x-lead-handoff') === '1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uncertainNoted = (s: { scoreLog: { note?: string }[] }) =>
  s.scoreLog.some((l) => /uncertain/i.test(l.note ?? ''));

describe('a worker in this process', () => {
  test('nurture: the server takes the message and drops the connection before its 250: uncertain, reported, not resent', async () => {
    const addr = 'drop-n@buyer.example';
    h.smtp.dataFault = (m, nth) => (m.to.includes(addr) && nth === 1 ? 'take-and-drop' : 'accept');
    const handle = await startLead(h.client, h.taskQueue, lead('drop-n'));
    const s = await waitForState(handle, uncertainNoted, 30_000);
    assert.ok(uncertainNoted(s), 'the lead says its welcome mail is uncertain');
    await sleep(7_000); // the activity's retries start after 2 s: a resend would have arrived by now
    assert.equal(to(addr).length, 1, 'the mail arrived once: an error after the body was handed over is not retried');
    assert.deepEqual(
      await sqlSendLedger(h.database.pool).state(to(addr)[0]!.messageId),
      { state: 'uncertain' },
      'the ledger counts it uncertain',
    );
  });

  test('handoff: the server takes the message and drops the connection before its 250: resent, same Message-ID, the ledger says resent', async () => {
    h.smtp.dataFault = (m, nth) => (isHandoffOf('drop-h')(m) && nth === 1 ? 'take-and-drop' : 'accept');
    const handle = await startLead(h.client, h.taskQueue, lead('drop-h'));
    await h.smtp.waitFor(() => to('drop-h@buyer.example').length === 1);
    await signal(handle, ev('drop-h', 'demo_request'));
    await h.smtp.waitFor(() => handoffsOf('drop-h').length === 2, 30_000);
    const [first, second] = handoffsOf('drop-h');
    assert.equal(second!.messageId, first!.messageId, 'resent with the same Message-ID (a receiver can drop the copy)');
    assert.deepEqual(second!.to, first!.to);
    // The capture has the copy once its DATA ends; the activity records `sent` when the 250 reaches it, a moment later.
    const ledger = sqlSendLedger(h.database.pool);
    let recorded = await ledger.state(first!.messageId);
    for (const until = Date.now() + 10_000; recorded?.state !== 'sent' && Date.now() < until;) {
      await sleep(50);
      recorded = await ledger.state(first!.messageId);
    }
    assert.deepEqual(recorded, { state: 'sent', resent: true });
    await waitForState(handle, (s) => s.scoreLog.some((l) => /handoff to .* resent/.test(l.note ?? '')));
    await sleep(3_000);
    assert.equal(handoffsOf('drop-h').length, 2, 'sent again once, not again and again');
    assert.equal((await handle.query(stateQuery)).stage, 'sql');
  });

  test('a recipient refused with 4xx (before DATA ends) is a clean failure: retried with backoff, sent once', async () => {
    const addr = 'rcpt-4xx@buyer.example';
    h.smtp.dataFault = () => 'accept';
    h.smtp.rcptFault = (rcpt, nth) => (rcpt === addr && nth <= 2 ? 451 : undefined);
    const handle = await startLead(h.client, h.taskQueue, lead('rcpt-4xx'));
    await h.smtp.waitFor(() => to(addr).length === 1, 30_000);
    await sleep(3_000);
    assert.equal(to(addr).length, 1);
    const s = await handle.query(stateQuery);
    assert.ok(!uncertainNoted(s), 'a failure before DATA ends is never uncertain');
    assert.deepEqual(await sqlSendLedger(h.database.pool).state(to(addr)[0]!.messageId), { state: 'sent' });
  });
});

test('a worker SIGKILLed mid-send: a handoff waiting for its 250 is resent (same Message-ID); a mail waiting for RCPT is sent once, not left uncertain', async () => {
  const taskQueue = 'faults-kill';
  const db = await testLedgerDatabase('embedded');
  const ledger = sqlSendLedger(db.pool);
  const rcptAddr = 'kill-r@buyer.example';
  h.smtp.rcptFault = (rcpt, nth) => (rcpt === rcptAddr && nth === 1 ? 'hold' : undefined);
  h.smtp.dataFault = (m, nth) => (isHandoffOf('kill-h')(m) && nth === 1 ? 'hold' : 'accept');
  const first = await h.workerProcess(taskQueue, db);
  const handoffLead = await startLead(h.client, taskQueue, lead('kill-h'));
  await h.smtp.waitFor(() => to('kill-h@buyer.example').length === 1, 30_000);
  await signal(handoffLead, ev('kill-h', 'demo_request'));
  await startLead(h.client, taskQueue, lead('kill-r'));
  // The handoff's whole message is at the server (its DATA ended), the reply withheld; the welcome
  // mail of the other lead waits for the server's answer to RCPT TO.
  for (
    const until = Date.now() + 30_000;
    !(h.smtp.held.some(isHandoffOf('kill-h')) && h.smtp.heldRcpts.includes(rcptAddr));
  ) {
    if (Date.now() > until)
      throw new Error(
        `sends never reached the server: held ${h.smtp.held.length}, held RCPT ${h.smtp.heldRcpts.join(', ')}`,
      );
    await sleep(50);
  }
  const inFlight = h.smtp.held.find(isHandoffOf('kill-h'))!;
  assert.deepEqual(
    await ledger.state(inFlight.messageId),
    { state: 'intent' },
    'the intent was written before the end of DATA',
  );
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  assert.equal(handoffsOf('kill-h').length, 0, 'the killed attempt delivered nothing');
  await h.workerProcess(taskQueue, db);

  // The retries come once the dead worker's heartbeats are missed (10 s).
  await h.smtp.waitFor(() => handoffsOf('kill-h').length === 1 && to(rcptAddr).length === 1, 60_000);
  await sleep(3_000);
  const [handoff] = handoffsOf('kill-h');
  assert.equal(handoffsOf('kill-h').length, 1);
  assert.equal(
    handoff!.messageId,
    inFlight.messageId,
    'the handoff is resent with the Message-ID of the killed attempt',
  );
  assert.deepEqual(
    await ledger.state(handoff!.messageId),
    { state: 'sent', resent: true },
    'the ledger says it was resent',
  );
  await waitForState(handoffLead, (st) => st.scoreLog.some((l) => /handoff to .* resent/.test(l.note ?? '')));

  assert.equal(to(rcptAddr).length, 1, 'the mail the kill caught before DATA ended is sent, once');
  assert.deepEqual(
    await ledger.state(to(rcptAddr)[0]!.messageId),
    { state: 'sent' },
    'no intent was written before the end of DATA, so nothing is uncertain',
  );
  const s = await h.client.workflow.getHandle('lead-kill-r').query(stateQuery);
  assert.ok(!uncertainNoted(s), 'the lead says nothing uncertain');
  assert.deepEqual(
    await sendLedgerCounts(db.pool),
    { sent: 3, resent: 1, uncertain: 0, intent: 0 },
    'two welcome mails and the handoff, resent once',
  );
});
