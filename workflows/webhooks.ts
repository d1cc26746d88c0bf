/**
 * webhookDeliveryWorkflow: one per (endpoint, lead), id `webhooks-<endpointId>-<leadId>`, started
 * or woken by signalWithStart after a lead's ledger write added deliveries for it (and by the
 * worker's sweep). It sends the lead's pending deliveries to the endpoint strictly in order: the
 * next one goes only when the one before is delivered or given up (`failed`, 3 days after its
 * first attempt), so a receiver that is down for an hour gets every change afterwards, in order.
 * Each delivery is one activity with a retry policy (exponential backoff from
 * `retry.initialInterval`, default 1 s, doubling up to an hour, for up to 3 days); every attempt
 * signs the same stored body under the same `webhook-id` and is logged in the ledger.
 */
import {
  ActivityFailure,
  condition,
  continueAsNew,
  defineSignal,
  proxyActivities,
  setHandler,
  sleep,
} from '@temporalio/workflow';
import type { WebhookActivities } from '../activities/webhooks.js';

export const WEBHOOK_WORKFLOW_TYPE = 'webhookDeliveryWorkflow';
export const webhookWakeSignal = defineSignal<[]>('wake');
export const webhookWorkflowId = (endpointId: string, leadId: string) => `webhooks-${endpointId}-${leadId}`;

/** How long a delivery is retried: from its first attempt, 3 days (the bound). */
export const WEBHOOK_RETRY_FOR = '3 days';
export const WEBHOOK_MAX_INTERVAL = '1 hour';

export interface WebhookDeliveryInput {
  endpointId: string;
  leadId: string;
  /** The first retry's delay in ms (the endpoint's `retry.initialInterval`; default 1 s). */
  initialIntervalMs?: number;
}

/** Iterations before handing over to a fresh run (bounded history). */
const MAX_ITERATIONS = 200;
/** How long an idle run waits for more before it completes (a later change starts a new one). */
const IDLE = '1 minute';

export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<void> {
  let woken = false;
  setHandler(webhookWakeSignal, () => {
    woken = true;
  });
  const control = proxyActivities<WebhookActivities>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '30s' },
  });
  const deliver = proxyActivities<WebhookActivities>({
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: WEBHOOK_RETRY_FOR,
    retry: {
      initialInterval: input.initialIntervalMs ?? 1000,
      backoffCoefficient: 2,
      maximumInterval: WEBHOOK_MAX_INTERVAL,
      nonRetryableErrorTypes: ['WebhookEndpointGone'],
    },
  });
  for (let i = 0; i < MAX_ITERATIONS; i++) {
    woken = false;
    const next = await control.nextWebhook({ endpointId: input.endpointId, leadId: input.leadId });
    if (next.kind === 'none') {
      await condition(() => woken, IDLE);
      if (!woken) return;
      continue;
    }
    if (next.kind === 'unsettled') {
      // The lead's workflow task that wrote it has not completed yet: it may be a failed attempt's.
      await sleep(next.retryInMs);
      continue;
    }
    try {
      await deliver.deliverWebhook({ endpointId: input.endpointId, webhookId: next.webhookId });
    } catch (err) {
      const why = err instanceof ActivityFailure ? (err.cause?.message ?? err.message) : String(err);
      await control.giveUpWebhook({ endpointId: input.endpointId, webhookId: next.webhookId, error: why });
    }
  }
  await continueAsNew<typeof webhookDeliveryWorkflow>(input);
}
