/**
 * Replays the recorded histories of every stage path (test/fixtures/histories, written by the path
 * tests with RECORD_HISTORIES=1) against today's workflow code: a change that would break running
 * leads fails here. A deliberate change of command order needs `patched()`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { recordedHistories } from '../helpers/leads.js';
import { testDataConverter, workflowBundle } from '../helpers/temporal.js';

const REQUIRED = ['won', 'hand-raiser', 'rejected-not-ready', 'rejected-bad-fit', 'lost', 'mql-stale', 'sla-expired', 'disqualified-rule', 'dormant', 'unsubscribed', 'continued-as-new'];

test('recorded histories of every stage path replay without non-determinism', async () => {
  const histories = recordedHistories();
  for (const name of REQUIRED) assert.ok(histories.some((x) => x.workflowId === name), `fixture ${name}.binpb is recorded`);
  // With the tests' payload codec, as the harness's workers run: the recorded fixtures are plaintext
  // (recorded before encryption) and pass through it; a history recorded since is encrypted with the test key.
  const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle(), dataConverter: testDataConverter }, histories);
  let replayed = 0;
  for await (const r of results) {
    assert.equal(r.error, undefined, `${r.workflowId}: ${r.error}`);
    replayed++;
  }
  assert.equal(replayed, histories.length);
});
