/**
 * Erasure and export of one lead (GDPR articles 17 and 15; CONTRACT.md "Integrations":
 * `DELETE /v1/leads/:leadId`, `GET /v1/leads/:leadId/export`, `leadctl erase|export`), the rules
 * behind LeadService.erase and LeadService.exportLead.
 *
 * An erasure, in this order: (1) records it by salted hash (the lead id in `erasures`, each of its
 * addresses as a hashed suppression entry: src/ledger/erasure.ts), so from then on a late event is
 * refused and the address is never mailed under any lead id; (2) deletes every run of the lead's
 * workflow `lead-<leadId>` and of its webhook delivery workflows `webhooks-<endpoint>-<leadId>`
 * (Temporal terminates a running one first) and waits until Temporal has removed them; (3) deletes
 * the lead's ledger rows in one transaction (and again 2 s later when a run was running: what it
 * had in flight, a ledger write or a mail send past its check, has landed by then). Each step is
 * idempotent: erasing an erased lead again is a 200 with `alreadyErased` that repeats what is left
 * to do (nothing, normally).
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { leadIdSchema, workflowIdFor } from './domain/lead.js';
import {
  addressesOf,
  deleteLeadRows,
  erasedAt,
  exportLeadRows,
  type LedgerExport,
  recordErasure,
} from './ledger/erasure.js';
import type { LeadLedger } from './ledger/ledger.js';
import { LeadError, type LeadService, type LeadStateRead, validate } from './lead-service.js';
import { webhookWorkflowId } from '../workflows/webhooks.js';

/** How long an erasure waits for Temporal to have removed the runs it deleted (deletion is asynchronous there). */
const DELETION_WAIT_MS = 30_000;
/** How long after the first delete of the ledger rows the second one runs (a deleted run's writes in flight). */
const SWEEP_AGAIN_MS = 2_000;

export interface ErasureResult {
  leadId: string;
  erased: true;
  /** The lead had been erased before: this call only repeated what was left to do. */
  alreadyErased: boolean;
  /** Workflow runs deleted from Temporal (the lead's and its webhook deliveries'). */
  runsDeleted: number;
  /** Ledger rows deleted. */
  rowsDeleted: number;
}

/** A workflow run as the export lists it (no payloads: those are in the ledger's rows and the state). */
export interface RunSummary {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  startTime: string;
  closeTime?: string;
  historyLength: number;
}

export interface LeadExport {
  leadId: string;
  exportedAt: string;
  /** The lead's state as GET /v1/leads/:leadId answers it (null when it has none). */
  state: LeadStateRead | null;
  ledger: LedgerExport;
  temporal: { runs: RunSummary[] };
}

/** The 410 of an erased lead id: every entry point says so naming the field. */
export function erasedError(leadId: string, at: string): LeadError {
  const message = `lead ${leadId} was erased at ${at}; only a new lead with consent can use this id again`;
  return new LeadError(410, 'erased', message, [{ path: 'leadId', message }]);
}

/** Refuses an erased lead id with erasedError; a service without a ledger cannot tell and refuses nothing. */
export async function refuseErased(ledger: LeadLedger | undefined, leadIds: Iterable<string>): Promise<void> {
  if (!ledger) return;
  for (const leadId of new Set(leadIds)) {
    const at = await erasedAt(ledger.pool, leadId);
    if (at) throw erasedError(leadId, at);
  }
}

/** Every run of the lead's workflows, the visibility store's and the current one's (visibility may lag). */
async function runsOf(client: Client, svc: LeadService, leadId: string): Promise<WorkflowExecutionInfo[]> {
  const endpoints = new Set(svc.config.webhooks.map((w) => w.id));
  if (svc.ledger) {
    const r = await svc.ledger.pool.query('SELECT DISTINCT endpoint_id FROM webhook_deliveries WHERE lead_id = $1', [
      leadId,
    ]);
    for (const row of r.rows) endpoints.add(row.endpoint_id as string);
  }
  const ids = [workflowIdFor(leadId), ...[...endpoints].map((e) => webhookWorkflowId(e, leadId))];
  const runs = new Map<string, WorkflowExecutionInfo>();
  for (const workflowId of ids) {
    for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId.replace(/'/g, "\\'")}'` }))
      runs.set(`${w.workflowId}/${w.runId}`, w);
    try {
      const d = await client.workflow.getHandle(workflowId).describe();
      runs.set(`${d.workflowId}/${d.runId}`, { ...d, raw: d.raw.workflowExecutionInfo ?? {} });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return [...runs.values()];
}

const isNotFound = (err: unknown) =>
  (err as { name?: string })?.name === 'WorkflowNotFoundError' || (err as { code?: number })?.code === 5;

async function deleteRun(client: Client, workflowId: string, runId: string): Promise<void> {
  try {
    await client.workflowService.deleteWorkflowExecution({
      namespace: client.options.namespace,
      workflowExecution: { workflowId, runId },
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** Deletes the runs, then waits until Temporal has removed each. */
async function deleteRuns(client: Client, runs: readonly WorkflowExecutionInfo[]): Promise<void> {
  for (const r of runs) await deleteRun(client, r.workflowId, r.runId);
  for (const r of runs) await waitGone(client, r.workflowId, r.runId);
}

/** Waits until describing the run says not found: Temporal deletes asynchronously. */
async function waitGone(client: Client, workflowId: string, runId: string): Promise<void> {
  const deadline = Date.now() + DELETION_WAIT_MS;
  for (;;) {
    try {
      await client.workflow.getHandle(workflowId, runId).describe();
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    if (Date.now() > deadline)
      throw new LeadError(
        503,
        'erasure_pending',
        `Temporal has not removed ${workflowId} run ${runId} yet; erase again`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

function requireLedger(svc: LeadService): LeadLedger {
  if (!svc.ledger) throw new Error('erasure and export need the lead ledger');
  return svc.ledger;
}

/** The addresses the lead's state holds that the ledger may not (a run that never wrote its row). */
async function stateAddress(svc: LeadService, leadId: string): Promise<string[]> {
  const s = await svc.getState(leadId).catch(() => undefined);
  const email = s?.profile?.email;
  return typeof email === 'string' && email ? [email] : [];
}

export async function eraseLead(svc: LeadService, leadId: string): Promise<ErasureResult> {
  validate(leadIdSchema, leadId, 'leadId', ['leadId']);
  const ledger = requireLedger(svc);
  const pool = ledger.pool;
  const before = await svc.fromLedger(() => erasedAt(pool, leadId));
  const runs = await runsOf(svc.client, svc, leadId);
  const addresses = [
    ...new Set([...(await svc.fromLedger(() => addressesOf(pool, leadId))), ...(await stateAddress(svc, leadId))]),
  ].map((a) => a.trim().toLowerCase());
  const known = (await svc.fromLedger(() => ledger.lead(leadId))) !== undefined || runs.length > 0;
  if (!known && !before)
    throw new LeadError(404, 'not_found', `lead ${leadId} not found (no workflow and nothing in the ledger)`);

  await svc.fromLedger(() => recordErasure(pool, leadId, [...new Set(addresses)]));
  await deleteRuns(svc.client, runs);
  // After the runs are gone; then once more a moment later: what a terminated run had in flight
  // (its ledger write, a mail send past its suppression check, the wake-up of a webhook delivery
  // workflow after that write) lands within moments of it.
  let rowsDeleted = await svc.fromLedger(() => deleteLeadRows(pool, leadId, addresses));
  let runsDeleted = runs.length;
  if (runs.some((r) => r.status.name === 'RUNNING')) {
    await new Promise((r) => setTimeout(r, SWEEP_AGAIN_MS));
    const gone = new Set(runs.map((r) => r.runId));
    // (Visibility may still list a deleted run for a moment: only runs not deleted above count.)
    const late = (await runsOf(svc.client, svc, leadId)).filter((r) => !gone.has(r.runId));
    await deleteRuns(svc.client, late);
    runsDeleted += late.length;
    rowsDeleted += await svc.fromLedger(() => deleteLeadRows(pool, leadId, addresses));
  }
  return { leadId, erased: true, alreadyErased: !!before, runsDeleted, rowsDeleted };
}

export async function exportLead(svc: LeadService, leadId: string): Promise<LeadExport> {
  validate(leadIdSchema, leadId, 'leadId', ['leadId']);
  const ledger = requireLedger(svc);
  const at = await svc.fromLedger(() => erasedAt(ledger.pool, leadId));
  const rows = await svc.fromLedger(() => exportLeadRows(ledger.pool, leadId));
  const runs = await runsOf(svc.client, svc, leadId);
  if (!rows.lead && runs.length === 0) {
    if (at) throw erasedError(leadId, at);
    throw new LeadError(404, 'not_found', `lead ${leadId} not found (no workflow and nothing in the ledger)`);
  }
  const state = await svc.getState(leadId).catch((err) => {
    if (err instanceof LeadError && (err.status === 404 || err.status === 410)) return null;
    throw err;
  });
  return {
    leadId,
    exportedAt: new Date().toISOString(),
    state,
    ledger: rows,
    temporal: {
      runs: runs.map((r) => ({
        workflowId: r.workflowId,
        runId: r.runId,
        type: r.type,
        status: r.status.name,
        startTime: r.startTime.toISOString(),
        ...(r.closeTime ? { closeTime: r.closeTime.toISOString() } : {}),
        historyLength: r.historyLength,
      })),
    },
  };
}
