/**
 * Replays the recorded histories of every stage path (test/fixtures/histories, written by the path
 * tests with RECORD_HISTORIES=1) against today's workflow code: a change that would break running
 * leads fails here. A deliberate change of command order needs `patched()`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { FIXTURES, recordedHistories } from '../helpers/leads.js';
import { testDataConverter, workflowBundle } from '../helpers/temporal.js';

const REQUIRED = [
  'won',
  'hand-raiser',
  'rejected-not-ready',
  'rejected-bad-fit',
  'lost',
  'mql-stale',
  'sla-expired',
  'disqualified-rule',
  'dormant',
  'unsubscribed',
  'continued-as-new',
  'wedge-reproduction',
];

test('recorded histories of every stage path replay without non-determinism', async () => {
  const histories = recordedHistories();
  for (const name of REQUIRED)
    assert.ok(
      histories.some((x) => x.workflowId === name),
      `fixture ${name}.binpb is recorded`,
    );
  // With the tests' payload codec, as the harness's workers run: the recorded fixtures are plaintext
  // (recorded before encryption) and pass through it; a history recorded since is encrypted with the test key.
  const results = Worker.runReplayHistories(
    { workflowBundle: await workflowBundle(), dataConverter: testDataConverter },
    histories,
  );
  let replayed = 0;
  for await (const r of results) {
    assert.equal(r.error, undefined, `${r.workflowId}: ${r.error}`);
    replayed++;
  }
  assert.equal(replayed, histories.length);
});

/**
 * A `temporal workflow show -o json` history, decoded with the protobufjs copy that
 * @temporalio/proto's types were built with. (`historyFromJSON` of @temporalio/common fails here
 * with "type must be a Type": common and proto each resolve their own protobufjs 8.8.1.)
 */
function historyFromJsonFile(file: string) {
  const req = createRequire(createRequire(import.meta.url).resolve('@temporalio/proto'));
  const { fromJson } = req('protobufjs/ext/protojson') as {
    fromJson(type: unknown, json: unknown, opts: unknown): { events: { eventId: unknown }[] };
  };
  const { patchProtobufRoot } = req('@temporalio/proto/lib/patch-protobuf-root') as {
    patchProtobufRoot(root: unknown): { lookupType(name: string): unknown };
  };
  const type = patchProtobufRoot(req('@temporalio/proto')).lookupType('temporal.api.history.v1.History');
  return fromJson(type, JSON.parse(readFileSync(file, 'utf8')), { ignoreUnknownFields: true });
}

/**
 * The wedged lead main produced with no fault (../shared/data/histories/wedged-no-fault.json): the
 * task after the step's TimerFired (event 41) ran under the previous task's clock and started a
 * timer instead of the step's mail (event 45). No rule reading history alone reproduces that, so it
 * cannot replay with any code (see MEMO_STATE_PATCH in workflows/lead.ts): new runs do not write
 * such histories, and a lead wedged like this is reset to the task that went wrong
 * (docs/operations.md). This test pins both halves: where it fails, and that the reset point does
 * replay (a reset keeps the history up to that task's WorkflowTaskStarted and runs it again).
 */
test('the wedged history fails at the command the stale clock produced, and replays up to its reset point', async () => {
  const history = historyFromJsonFile(join(FIXTURES, 'wedged-no-fault.json'));
  const workflowBundle_ = await workflowBundle();
  await assert.rejects(
    Worker.runReplayHistory({ workflowBundle: workflowBundle_ }, history as never, 'wedged-no-fault'),
    /Nondeterminism error: .*HistoryEvent\(id: 45, TimerStarted\)/,
  );
  // WorkflowTaskCompleted 44 issued event 45: `temporal workflow reset --event-id 44` keeps 1-43.
  const upToReset = { ...history, events: history.events.filter((e) => Number(e.eventId) <= 43) };
  await Worker.runReplayHistory({ workflowBundle: workflowBundle_ }, upToReset as never, 'wedged-no-fault-reset');
});
