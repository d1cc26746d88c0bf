/** The activities a lead's workflow calls, with their timeouts and retries. */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { LeadActivities } from '../../activities/types.js';
import { PERMANENT_BOUNCE } from '../../activities/types.js';

/** Config and recovery at a run's start, the owner pick, the ledger write: in the workflow task. */
export const local = proxyLocalActivities<LeadActivities>({
  startToCloseTimeout: '30s',
  // No attempt limit: a database that is away makes the write wait and retry, never lose a row.
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

export const mail = proxyActivities<LeadActivities>({
  // A send takes well under a second; a worker that dies mid-send is noticed by the missing
  // heartbeat and the send retried (the ledger and the Message-ID keep it from going out twice).
  startToCloseTimeout: '1m',
  heartbeatTimeout: '10s',
  // SMTP outages are retried with backoff for up to a day; a 5xx on the recipient is final.
  scheduleToCloseTimeout: '1d',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '5m',
    nonRetryableErrorTypes: [PERMANENT_BOUNCE],
  },
});
