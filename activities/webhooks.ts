/**
 * The webhook delivery activities (workflows/webhooks.ts) and how a ledger write wakes delivery.
 *
 * - `nextWebhook`: the lead's oldest pending delivery to the endpoint, once the workflow task of
 *   the lead's run that wrote it has completed (a failed task attempt's write is a phantom, and
 *   the retried task's write removes the phantom's never-attempted deliveries: see
 *   migrations/1796200000000_run-attempts.sql). While the run has a workflow task pending, the
 *   answer is `unsettled` and the delivery workflow looks again shortly.
 * - `deliverWebhook`: one attempt (src/webhooks/send.ts), logged; throws on anything but a 2xx,
 *   so the activity's retry policy backs off and tries again with the same id and body.
 * - `giveUpWebhook`: the delivery's retries are over (3 days): `failed`, and the next one goes.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { WebhookEndpoint } from '../src/domain/config.js';
import { workflowIdFor } from '../src/domain/lead.js';
import { WebhookLog } from '../src/ledger/webhooks.js';
import type { LeadLedger } from '../src/ledger/ledger.js';
import { attemptDelivery, endpointSecret } from '../src/webhooks/send.js';
import {
  WEBHOOK_WORKFLOW_TYPE,
  webhookWakeSignal,
  webhookWorkflowId,
  type WebhookDeliveryInput,
} from '../workflows/webhooks.js';

export type NextWebhook =
  { kind: 'none' } | { kind: 'unsettled'; retryInMs: number } | { kind: 'ready'; webhookId: string; seq: number };

export interface WebhookActivities {
  nextWebhook(input: { endpointId: string; leadId: string }): Promise<NextWebhook>;
  deliverWebhook(input: { endpointId: string; webhookId: string }): Promise<{ statusCode?: number }>;
  giveUpWebhook(input: { endpointId: string; webhookId: string; error: string }): Promise<void>;
}

export interface WebhookDeps {
  client: Client;
  ledger: LeadLedger;
  /** The endpoints as configured now (the running config's). */
  endpoints: () => readonly WebhookEndpoint[];
}

/** Starts (or wakes) the delivery workflow of each endpoint for the lead. Never throws: the sweep catches what this misses. */
export async function wakeDeliveries(
  client: Client,
  taskQueue: string,
  endpoints: readonly WebhookEndpoint[],
  leadId: string,
  endpointIds: Iterable<string>,
): Promise<void> {
  const ids = new Set(endpointIds);
  await Promise.all(
    endpoints
      .filter((e) => ids.has(e.id))
      .map(async (e) => {
        const args: [WebhookDeliveryInput] = [
          {
            endpointId: e.id,
            leadId,
            ...(e.retry?.initialInterval ? { initialIntervalMs: e.retry.initialInterval } : {}),
          },
        ];
        try {
          await client.workflow.signalWithStart(WEBHOOK_WORKFLOW_TYPE, {
            workflowId: webhookWorkflowId(e.id, leadId),
            taskQueue,
            args,
            signal: webhookWakeSignal,
            signalArgs: [],
          });
        } catch (err) {
          log.warn('webhook delivery not woken; the sweep will', { endpointId: e.id, leadId, error: String(err) });
        }
      }),
  );
}

/**
 * Wakes the delivery of every (endpoint, lead) with a delivery pending since before `olderThanMs`
 * ago: a worker that died between a ledger write's commit and its wake-up, a signal that failed.
 */
export async function sweepWebhooks(
  client: Client,
  taskQueue: string,
  log: WebhookLog,
  endpoints: readonly WebhookEndpoint[],
  olderThanMs: number,
): Promise<number> {
  const pairs = await log.pendingPairs(new Date(Date.now() - olderThanMs));
  for (const p of pairs) await wakeDeliveries(client, taskQueue, endpoints, p.leadId, [p.endpointId]);
  return pairs.length;
}

/** Whether the lead's run that wrote a delivery has no workflow task in flight (its write is no failed attempt's). */
async function runSettled(client: Client, leadId: string, runId: string | undefined): Promise<boolean> {
  if (!runId) return true;
  try {
    const d = await client.workflow.getHandle(workflowIdFor(leadId), runId).describe();
    if (d.status.name !== 'RUNNING') return true;
    return !d.raw.pendingWorkflowTask;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return true; // the run is gone (retention, erasure)
    throw err;
  }
}

export function createWebhookActivities(deps: WebhookDeps): WebhookActivities {
  const webhooks = new WebhookLog(deps.ledger.pool);
  const endpoint = (id: string) => deps.endpoints().find((e) => e.id === id);
  return {
    async nextWebhook({ endpointId, leadId }) {
      const next = await webhooks.nextPending(endpointId, leadId);
      if (!next) return { kind: 'none' };
      if (!(await runSettled(deps.client, leadId, next.runId))) return { kind: 'unsettled', retryInMs: 500 };
      // Read again: the completed task's write may have removed it as a failed attempt's.
      const again = await webhooks.nextPending(endpointId, leadId);
      if (!again) return { kind: 'none' };
      if (again.webhookId !== next.webhookId) return { kind: 'unsettled', retryInMs: 0 };
      return { kind: 'ready', webhookId: again.webhookId, seq: again.seq };
    },

    async deliverWebhook({ endpointId, webhookId }) {
      const row = await webhooks.get(endpointId, webhookId);
      if (!row || row.status !== 'pending') return {};
      const e = endpoint(endpointId);
      if (!e)
        throw ApplicationFailure.nonRetryable(
          `webhook endpoint ${endpointId} is no longer configured`,
          'WebhookEndpointGone',
        );
      const secret = endpointSecret(e);
      const attempt = Context.current().info.attempt;
      const r = await attemptDelivery(e.url, secret, webhookId, row.payload);
      await webhooks.recordAttempt(endpointId, webhookId, {
        attempt,
        ...(r.statusCode !== undefined ? { statusCode: r.statusCode } : {}),
        ...(r.error ? { error: r.error } : {}),
        durationMs: r.durationMs,
        delivered: r.ok,
      });
      if (!r.ok) throw ApplicationFailure.retryable(`${e.url}: ${r.error}`, 'WebhookAttemptFailed');
      return { statusCode: r.statusCode };
    },

    async giveUpWebhook({ endpointId, webhookId, error }) {
      await webhooks.markFailed(endpointId, webhookId, error);
    },
  };
}
