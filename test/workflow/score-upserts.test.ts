/**
 * LeadScore under the issue-15 patch, on the dev server with a real worker: a change that moves
 * the lead's points by less than 5 (three 1-point email opens) upserts no search attribute, one
 * that moves them by 5 or more (a 10-point download) upserts the score, and a stage change always
 * carries it. The `state` query stays exact throughout. With RECORD_HISTORIES=1 the lead's
 * history is recorded for the replay test (test/fixtures/histories/issue-15/).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import proto from '@temporalio/proto';
import { LeadScore, LeadStage, eventSignal } from '../../workflows/defs.js';
import { recordHistory, startLead, waitForState } from '../helpers/leads.js';
import { useStack } from '../helpers/stack.js';

const EventType = proto.temporal.api.enums.v1.EventType;
const s = useStack({ worker: true });

const upserts = async (handle: { fetchHistory(): Promise<{ events?: { eventType?: number | null }[] | null }> }) =>
  (await handle.fetchHistory()).events!.filter(
    (e) => e.eventType === EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
  ).length;

test('LeadScore is upserted with a stage change or when the points move by 5, not on every change', async () => {
  const leadId = 'score-upserts-1';
  // A director: fit 20, below the mql threshold of 40.
  const handle = await startLead(s.client, s.taskQueue, {
    leadId,
    email: 'score@buyer.example',
    country: 'US',
    seniority: 'director',
  });
  const start = await waitForState(handle, (x) => x.eventsProcessed === 0 && x.score.fit === 20);
  const saScore = async () => (await handle.describe()).typedSearchAttributes.get(LeadScore);
  assert.equal(await saScore(), start.score.total);
  const initial = await upserts(handle);

  // Three 1-point opens, one iteration each: the lead changes, its points move by 3.
  for (let i = 1; i <= 3; i++) {
    await handle.signal(eventSignal, { leadId, eventId: `open-${i}`, type: 'email_open' });
    await waitForState(handle, (x) => x.eventsProcessed === i);
  }
  const afterOpens = await waitForState(handle, (x) => x.eventsProcessed === 3);
  assert.equal(afterOpens.score.engagement, 3, 'the state query is exact');
  assert.equal(await upserts(handle), initial, 'no upsert for a move of less than 5 points');
  assert.equal(await saScore(), start.score.total, 'LeadScore keeps the last upserted total');

  // A 10-point download: 13 points since the last upsert.
  await handle.signal(eventSignal, { leadId, eventId: 'dl-1', type: 'content_download' });
  const afterDownload = await waitForState(handle, (x) => x.eventsProcessed === 4);
  assert.equal(await upserts(handle), initial + 1);
  assert.equal(await saScore(), afterDownload.score.total);

  // A webinar takes the lead past 40: the stage change carries the score.
  await handle.signal(eventSignal, { leadId, eventId: 'web-1', type: 'webinar_attended' });
  const mql = await waitForState(handle, (x) => x.stage === 'mql');
  const sa = (await handle.describe()).typedSearchAttributes;
  assert.equal(sa.get(LeadStage), 'mql');
  assert.equal(sa.get(LeadScore), mql.score.total);
  await recordHistory(s.client, handle, 'issue-15/score-upserts');
});
