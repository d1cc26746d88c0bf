/**
 * A lead's first workflow task writes the ledger (a local activity) and its worker dies before the
 * task completes: the retried task, on another worker, must not resume from what the failed
 * attempt wrote (its welcome step taken but never sent). On the dev server, with worker processes:
 * the first one SIGKILLs itself right after the write (test/helpers/worker-child.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useStack } from '../helpers/stack.js';
import { ev, waitForState } from '../helpers/leads.js';
import { eventSignal } from '../../workflows/defs.js';
import { testLedgerDatabase } from '../helpers/ledger.js';
import { LeadLedger } from '../../src/ledger/ledger.js';
import type { leadWorkflow } from '../../workflows/lead.js';

const stack = useStack();

test('a first task retried after its worker died mid-task resumes from before it: the welcome mail goes, each event counts once', async () => {
  const db = await testLedgerDatabase('postgres');
  const ledger = new LeadLedger(db.pool);
  const taskQueue = 'task-retry';
  const dying = await stack.workerProcess(taskQueue, db, { env: { DIE_AFTER_LEDGER_WRITE: '1' } });
  const exited = new Promise((r) => dying.once('exit', r));
  const leadId = 'retry-1';
  const handle = await stack.client.workflow.signalWithStart<typeof leadWorkflow, [ReturnType<typeof ev>]>(
    'leadWorkflow',
    {
      taskQueue,
      workflowId: `lead-${leadId}`,
      args: [{ leadId, email: 'retry-1@buyer.example', country: 'US' }, {}],
      signal: eventSignal,
      signalArgs: [ev(leadId, 'webinar_attended')],
    },
  );
  await handle.signal(eventSignal, ev(leadId, 'content_download'));
  await exited;
  assert.equal(dying.signalCode, 'SIGKILL');
  // The failed attempt's write is in the ledger: the lead's row, its events, its welcome step taken.
  const phantom = await ledger.lead(leadId);
  assert.ok(phantom, 'the dying worker wrote the lead before its task completed');
  assert.equal(stack.smtp.messages.length, 0, 'the dying worker sent nothing');

  await stack.workerProcess(taskQueue, db);
  await stack.smtp.waitFor(
    (m) => m.some((x) => x.messageId === `<nurture.${leadId}.welcome.1.0@acme.example>`),
    60_000,
  );
  const state = await waitForState(handle, (s) => s.eventsProcessed >= 2, 60_000);
  assert.equal(state.score.engagement, 25, 'webinar (15) and download (10), each once');
  assert.equal(state.eventsProcessed, 2);
  assert.equal(state.nurture?.step, 1);

  // The history shows the scenario: the first task timed out, a later attempt completed it.
  const history = await handle.fetchHistory();
  assert.ok(
    history.events!.some((e) => e.workflowTaskTimedOutEventAttributes),
    'the first workflow task timed out',
  );
  // The ledger holds what the completed task decided, once: two events, the retry's row.
  const rows = await db.pool.query(`SELECT event_id, run_id FROM lead_events WHERE lead_id = $1 ORDER BY event_id`, [
    leadId,
  ]);
  assert.equal(rows.rows.length, 2);
  const row = await ledger.lead(leadId);
  assert.ok(row && row.version > phantom.version);
  assert.equal(row.runOrigin, undefined, 'a new lead had nothing before its run');
  assert.equal((row.carried as { core: { eventsProcessed: number } }).core.eventsProcessed, 2);
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(
    stack.smtp.messages.filter((m) => m.messageId === `<nurture.${leadId}.welcome.1.0@acme.example>`).length,
    1,
    'the welcome mail once',
  );
});
