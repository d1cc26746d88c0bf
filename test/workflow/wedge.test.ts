/**
 * Issue 9 item 1, on the dev server with workers in child processes: the wedge reproduction (a
 * worker killed, a read landing before the next task, signals while no worker runs), and more
 * active leads than the worker's cache holds with reads during the load. Afterwards every lead has
 * applied every event and every history replays against today's code.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { LeadError, LeadService } from '../../src/lead-service.js';
import { main as leadctl } from '../../src/cli/leadctl.js';
import { wedgedLeads } from '../../src/cli/wedged.js';
import type { LeadState } from '../../src/domain/lead.js';
import { STATE_MEMO, stateQuery } from '../../workflows/defs.js';
import { testLedgerDatabase } from '../helpers/ledger.js';
import { LeadLedger } from '../../src/ledger/ledger.js';
import { useStack } from '../helpers/stack.js';
import { TEST_PAYLOAD_KEYS, testConfig, testDataConverter, workflowBundle } from '../helpers/temporal.js';
import { recordHistory } from '../helpers/leads.js';
import { killWorkerProcess } from '../helpers/worker-process.js';

// The server marks a run whose tasks keep failing with TemporalReportedProblems after this many.
const stack = useStack({
  serverArgs: ['--dynamic-config-value', 'system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute=2'],
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh embedded ledger for the test this is called in, and a LeadService on it and `taskQueue`. */
async function ledgerService(taskQueue: string) {
  const db = await testLedgerDatabase('embedded');
  const ledger = new LeadLedger(db.pool);
  return { db, ledger, service: new LeadService(stack.client, taskQueue, testConfig().config, ledger) };
}

const kill = killWorkerProcess;

/** Reads (the ledger, through getState) until `predicate` holds. */
async function until(
  service: LeadService,
  leadId: string,
  predicate: (s: LeadState) => boolean,
  timeoutMs = 60_000,
): Promise<LeadState> {
  let last: LeadState | undefined;
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(100)) {
    try {
      last = await service.getState(leadId);
    } catch (err) {
      if (err instanceof LeadError && err.status === 503) continue; // not yet answering: try again until the deadline
      throw err;
    }
    if (predicate(last)) return last;
  }
  throw new Error(
    `${leadId} never matched; last: ${JSON.stringify(last && { stage: last.stage, eventsProcessed: last.eventsProcessed, workflowTask: (last as { workflowTask?: unknown }).workflowTask })}`,
  );
}

/** Replays every given lead's full history (all its runs) with today's workflow code. */
async function replayAll(workflowIds: string[]) {
  const histories = [];
  for (const workflowId of workflowIds) {
    for await (const e of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      histories.push({
        workflowId: `${workflowId}/${e.runId}`,
        history: await stack.client.workflow.getHandle(workflowId, e.runId).fetchHistory(),
      });
    }
  }
  assert.ok(
    histories.length >= workflowIds.length,
    `every lead listed (${histories.length} runs of ${workflowIds.length} leads)`,
  );
  const failed: string[] = [];
  for await (const r of Worker.runReplayHistories(
    { workflowBundle: await workflowBundle(), dataConverter: testDataConverter },
    histories,
  ))
    if (r.error) failed.push(`${r.workflowId}: ${r.error}`);
  assert.deepEqual(failed, [], 'every history replays');
  return histories.length;
}

test('the reproduction of issue 9: kill, a read before the next task, signals with no worker, a fresh worker: not wedged', async () => {
  const taskQueue = 'wedge-repro';
  const { db, ledger, service } = await ledgerService(taskQueue);
  const leadId = 'wedge-strong';
  // The demo config's nurture (steps seconds apart, an mql step with no delay), as in the fault run.
  const fast = () => stack.workerProcess(taskQueue, db, { script: 'fast-nurture-worker.ts' });
  let worker = await fast();
  // fit 35 (vp 20, companySize 250 15): three opens make 38, a content download crosses mql 40.
  await service.upsertLead({
    leadId,
    email: 'wedge@buyer.example',
    firstName: 'Wes',
    country: 'US',
    seniority: 'vp',
    companySize: 250,
  });
  await stack.smtp.waitFor((m) => m.some((x) => x.to.includes('wedge@buyer.example')), 30_000);
  await until(service, leadId, (s) => s.nurture.step >= 1);
  await kill(worker);
  await sleep(200);
  const pendingRead = service.getState(leadId); // the GET of the reproduction, kept open
  await sleep(2_000);
  const sentAt: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i) await sleep(700);
    sentAt.push(Date.now());
    await service.sendEvents({ leadId, eventId: `open-${i}`, type: 'email_open' });
  }
  const read = await pendingRead;
  assert.equal(read.stage, 'lead', 'the read answered from the ledger, while no worker ran');
  assert.equal(read.eventsProcessed, 0);
  worker = await fast();
  await sleep(4_000);
  const mqlEventAt = Date.now();
  await service.sendEvents({ leadId, eventId: 'download-1', type: 'content_download' });
  const s = await until(service, leadId, (x) => x.eventsProcessed === 4 && x.stage === 'mql');
  const toMql = s.transitions.find((t) => t.to === 'mql')!;
  assert.ok(
    Date.parse(toMql.at) >= mqlEventAt - 1_000,
    `mql stamped ${toMql.at}, not before its event (${new Date(mqlEventAt).toISOString()})`,
  );
  assert.ok(Date.parse(s.lastEngagedAt!) >= sentAt[0]! - 1_000, 'the opens are stamped when they were sent or later');
  assert.equal((s as { workflowTask?: unknown }).workflowTask, undefined, 'no failing workflow task');
  // One more restart: the next task replays the whole history on a worker that never saw it.
  await kill(worker);
  worker = await fast();
  await service.sendEvents({ leadId, eventId: 'download-2', type: 'content_download' });
  const later = await until(service, leadId, (x) => x.eventsProcessed === 5);
  assert.equal(later.stage, 'mql');
  // Ops' query still answers (a cold query on a worker that replays the lead).
  const handle = stack.client.workflow.getHandle(`lead-${leadId}`);
  assert.equal((await handle.query(stateQuery)).eventsProcessed, 5);
  const d = await handle.describe();
  assert.equal(((await ledger.lead(leadId))!.state as LeadState).eventsProcessed, 5, 'the ledger holds the state');
  assert.equal(d.memo?.[STATE_MEMO], undefined, 'the memo is no longer written');
  // A task may be pending at this moment (a nurture step 4 s apart fires): never a retried one.
  assert.ok(
    (d.raw.pendingWorkflowTask?.attempt ?? 1) === 1,
    `no failing workflow task (attempt ${d.raw.pendingWorkflowTask?.attempt})`,
  );
  await replayAll([`lead-${leadId}`]);
  await recordHistory(stack.client, handle, 'wedge-reproduction');
  await kill(worker);
});

test('more active leads than the worker caches, with reads during the load: every event applied, every history replays', async () => {
  const taskQueue = 'wedge-cache';
  const { db, service } = await ledgerService(taskQueue);
  const worker = await stack.workerProcess(taskQueue, db, { env: { WORKER_MAX_CACHED_WORKFLOWS: '5' } });
  const LEADS = 24;
  const types = [
    'email_open',
    'content_download',
    'pricing_page_view',
    'webinar_attended',
    'careers_page_view',
    'demo_request',
  ];
  let seed = 9;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const plan = Array.from({ length: LEADS }, (_, i) => ({ leadId: `cache-${i}`, events: 3 + rand(10) }));
  for (const p of plan)
    await service.upsertLead({
      leadId: p.leadId,
      email: `${p.leadId}@buyer.example`,
      country: 'US',
      seniority: p.events % 2 ? 'vp' : 'staff',
    });
  // Events round-robin over the leads (so each is evicted between two of its events), with a read
  // of another lead after each send.
  const reads: Promise<unknown>[] = [];
  let transient = 0;
  for (let round = 0; round < 12; round++) {
    for (const [i, p] of plan.entries()) {
      if (round >= p.events) continue;
      await service.sendEvents({ leadId: p.leadId, eventId: `${p.leadId}-${round}`, type: types[rand(types.length)]! });
      // A task that timed out once under load (its successor then runs) reads as 503 for a moment;
      // wedged is a task that never recovers, asserted below.
      reads.push(
        service.getState(plan[(i + 7) % LEADS]!.leadId).catch((err: unknown) => {
          if (err instanceof LeadError && err.status === 503) return transient++;
          throw err;
        }),
      );
    }
  }
  await Promise.all(reads);
  for (const p of plan) {
    const s = await until(
      service,
      p.leadId,
      (x) => x.eventsProcessed === p.events && !(x as { workflowTask?: unknown }).workflowTask,
      120_000,
    );
    assert.equal((s as { workflowTask?: unknown }).workflowTask, undefined, `${p.leadId}: no failing workflow task`);
  }
  const runs = await replayAll(plan.map((p) => `lead-${p.leadId}`));
  console.log(
    `cache test: ${LEADS} leads, ${plan.reduce((n, p) => n + p.events, 0)} events, ${reads.length} reads (${transient} answered 503 for a moment), ${runs} runs replayed`,
  );
  await kill(worker);
});

test('a lead whose workflow task keeps failing is listed by leadctl wedged, and GET says so (503) instead of a 500', async () => {
  const taskQueue = 'wedge-broken';
  const bundle = await bundleWorkflowCode({
    workflowsPath: join(import.meta.dirname, '..', 'fixtures', 'broken-workflow', 'index.ts'),
    logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } as never,
  });
  const worker = await Worker.create({
    connection: stack.env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    dataConverter: testDataConverter,
  });
  const running = worker.run();
  try {
    const service = new LeadService(stack.client, taskQueue, testConfig().config);
    const healthy = 'cache-0'; // from the test before: running, not wedged
    await service.upsertLead({ leadId: 'broken-1', email: 'broken@buyer.example', country: 'US' });
    let listed = await wedgedLeads(stack.client);
    for (
      const end = Date.now() + 90_000;
      !listed.some((l) => l.leadId === 'broken-1') && Date.now() < end;
      await sleep(1_000)
    )
      listed = await wedgedLeads(stack.client);
    const wedged = listed.find((l) => l.leadId === 'broken-1');
    assert.ok(wedged, `broken-1 listed (got ${JSON.stringify(listed)})`);
    assert.ok(
      wedged.problems.some((p) => p.includes('WorkflowTaskFailed')),
      wedged.problems.join(' '),
    );
    assert.match(wedged.failure ?? '', /broken bundle/);
    assert.ok(!listed.some((l) => l.leadId === healthy), 'a healthy lead is not listed');
    // GET: the task is failing, the lead has no state to show: 503 naming the reason.
    await assert.rejects(
      service.getState('broken-1'),
      (err: unknown) => err instanceof LeadError && err.status === 503 && err.code === 'workflow_task_failing',
    );
    // The command ops run: lists it with the reset to run, exit code 3.
    const out: string[] = [];
    process.env.PAYLOAD_KEYS = TEST_PAYLOAD_KEYS; // leadctl's client decodes with the workers' keys
    const code = await leadctl(
      ['node', 'leadctl', '--address', stack.env.address, '--task-queue', taskQueue, 'wedged'],
      { out: (x) => out.push(x), err: (x) => out.push(x), stderrIsTTY: false },
    );
    assert.equal(code, 3, out.join('\n'));
    assert.match(out.join('\n'), /^broken-1 .*category=WorkflowTaskFailed/m);
    assert.match(out.join('\n'), /recover: temporal workflow reset --workflow-id lead-broken-1 /);
  } finally {
    worker.shutdown();
    await running;
  }
});
