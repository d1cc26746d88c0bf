/**
 * Rollout (CONTRACT.md §Scoring models): a config made the running one in the ledger, then every
 * running lead told by a Temporal batch signal; each switches at its next safe point. Shared by
 * `leadctl rollout` and the console.
 */
import type { Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { LoadedConfig } from '../config-file.js';
import { storeConfig } from '../ledger/configs.js';
import { storedForm } from '../running-config.js';
import { WORKFLOW_TYPE } from '../../workflows/defs.js';

/** Stores `loaded` as the running config, then starts the batch signal; `reason` and `identity` name who asked. */
export async function rollOut(
  pool: pg.Pool,
  client: Client,
  loaded: LoadedConfig,
  reason: string,
  identity: string,
): Promise<{ version: string; batchJobId: string }> {
  await storeConfig(pool, storedForm(loaded), { rollOut: true });
  const batchJobId = `rollout-${loaded.version}-${randomUUID()}`;
  await client.workflowService.startBatchOperation({
    namespace: client.options.namespace,
    jobId: batchJobId,
    reason,
    visibilityQuery: `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`,
    signalOperation: { signal: 'configChanged', identity },
  });
  return { version: loaded.version, batchJobId };
}

/** Leads in the ledger and how many of them score with `version` already. */
export async function rolloutProgress(pool: pg.Pool, version: string): Promise<{ leads: number; switched: number }> {
  const r = await pool.query(
    `SELECT count(*)::int AS leads, count(*) FILTER (WHERE state->>'configVersion' = $1)::int AS switched FROM leads`,
    [version],
  );
  return r.rows[0] as { leads: number; switched: number };
}
