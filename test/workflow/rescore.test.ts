/**
 * A lead carried into a run under another config version (a redeploy with a new LEAD_CONFIG, then
 * continue-as-new) is re-scored from its recorded events there, as a rollout's reload re-scores it
 * (issue-12 patch): its engagement is what the new behaviour points give its events, with a
 * `rescored` transition, instead of the old points under the new version's label.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLead, waitForState } from '../helpers/leads.js';
import { useStack } from '../helpers/stack.js';
import { testConfig } from '../helpers/temporal.js';
import { eventSignal } from '../../workflows/defs.js';

const behavior = (downloadPoints: number) => ({
  content_download: { points: downloadPoints },
  email_open: { points: 1 },
  demo_request: { points: 30, handRaiser: true },
});
const scoring = (downloadPoints: number) => ({
  thresholds: { mql: 4000, sql: 5000, minFit: 0 },
  fit: [{ field: 'seniority', in: ['vp'], points: 20 }],
  behavior: behavior(downloadPoints),
});
const v1 = testConfig({ scoring: scoring(10) });
const v2 = testConfig({ scoring: scoring(25) });

const s = useStack({ worker: { loaded: v1 } });

test('a continued run under a new config version re-scores the lead from its recorded events', async () => {
  const leadId = 'rescore-1';
  const handle = await startLead(
    s.client,
    s.taskQueue,
    { leadId, email: 're@buyer.example', country: 'US', seniority: 'vp' },
    { maxHistoryEvents: 60 },
  );
  const firstRun = (await handle.describe()).runId;
  for (let i = 0; i < 4; i++) await handle.signal(eventSignal, { leadId, eventId: `d${i}`, type: 'content_download' });
  const before = await waitForState(handle, (x) => x.eventsProcessed === 4);
  assert.equal(before.score.engagement, 40);
  assert.equal(before.configVersion, v1.version);

  // Redeploy: the same ledger, a worker with the new file (no rollout: its file is the running config).
  await s.worker.close();
  await s.startWorker({ loaded: v2, taskQueue: s.taskQueue, sameLedger: true });
  let n = 4;
  for (; n < 40 && (await handle.describe()).runId === firstRun; n++) {
    await handle.signal(eventSignal, { leadId, eventId: `d${n}`, type: 'content_download' });
    await waitForState(handle, (x) => x.eventsProcessed === n + 1);
  }
  assert.notEqual((await handle.describe()).runId, firstRun, 'the lead continued as new');
  const after = await waitForState(handle, (x) => x.configVersion === v2.version && x.eventsProcessed === n);
  const t = after.transitions.find((x) =>
    x.reason.startsWith(`rescored under config ${v2.version} (was ${v1.version})`),
  );
  assert.ok(t, JSON.stringify(after.transitions));
  // Every recorded download at the new 25 points (decay over these seconds rounds away).
  assert.equal(after.score.engagement, 25 * n);
  assert.equal(after.score.fit, 20);
});
