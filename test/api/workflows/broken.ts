/**
 * A stand-in lead workflow for the API's fault tests: it answers the `state` query and takes
 * `event` signals until one arrives, then every workflow task fails (a bug, or a worker that dies
 * mid-task), so Temporal refuses the lead's queries and updates with FAILED_PRECONDITION.
 */
import { condition, setHandler } from '@temporalio/workflow';
import { eventSignal, salesOutcomeUpdate, stateQuery } from '../../../workflows/defs.js';
import type { LeadState } from '../../../src/domain/lead.js';

export async function leadWorkflow(input: { leadId: string }): Promise<void> {
  let broken = false;
  setHandler(stateQuery, () => ({ leadId: input.leadId, stage: 'sql' }) as LeadState);
  setHandler(eventSignal, () => {
    broken = true;
  });
  setHandler(salesOutcomeUpdate, () => ({ leadId: input.leadId, stage: 'opportunity' }) as LeadState);
  await condition(() => broken);
  throw new Error("simulated bug: this lead's workflow task fails every time");
}
