/** The file send ledger: its states, private files with no address in them, and its counts. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileLedger, fileLedgerCounts } from '../../activities/ledger.js';

const at = '2026-12-01T00:00:00.000Z';

describe('file send ledger', () => {
  it('goes from nothing to intent to sent, or to uncertain; a withdrawn intent is nothing again', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ledger-test-')), 'ledger');
    const l = fileLedger(dir);
    assert.deepEqual(await l.state('<a@x>'), { state: undefined });
    assert.equal(await l.markIntent('<a@x>'), true, 'this call wrote the intent');
    assert.equal(await l.markIntent('<a@x>'), false, 'a second attempt finds it taken');
    assert.deepEqual(await l.state('<a@x>'), { state: 'intent' });
    await l.withdrawIntent('<a@x>');
    assert.deepEqual(await l.state('<a@x>'), { state: undefined });

    await l.markIntent('<b@x>');
    await l.markSent('<b@x>', { at });
    assert.deepEqual(await l.state('<b@x>'), { state: 'sent' });

    await l.markIntent('<c@x>');
    await l.markUncertain('<c@x>', { at, reason: 'connection closed' });
    assert.deepEqual(await l.state('<c@x>'), { state: 'uncertain' });
    await l.markSent('<c@x>', { at, resent: true });
    assert.deepEqual(await l.state('<c@x>'), { state: 'sent', resent: true }, 'a resend that got through is sent, and says so');

    await l.markIntent('<d@x>');
    assert.deepEqual(await fileLedgerCounts(dir), { sent: 2, resent: 1, uncertain: 0, intent: 1 });
    await l.markUncertain('<d@x>', { at, reason: 'a worker died at the end of DATA' });
    assert.deepEqual(await fileLedgerCounts(dir), { sent: 2, resent: 1, uncertain: 1, intent: 0 });

    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of readdirSync(dir)) {
      assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is private`);
      assert.doesNotMatch(readFileSync(join(dir, f), 'utf8'), /buyer\.example/);
    }
  });
});
