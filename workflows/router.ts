/**
 * One long-lived workflow that hands out sales owners round robin, balanced across all leads and
 * all workers (a counter per owner list). Lead workflows reach it through the assignOwner
 * activity, which calls the `nextOwner` update with update-with-start.
 */
import { allHandlersFinished, condition, continueAsNew, defineUpdate, setHandler, workflowInfo } from '@temporalio/workflow';

export const ROUTER_WORKFLOW_ID = 'lead-router';
export const nextOwnerUpdate = defineUpdate<string, [{ owners: string[] }]>('nextOwner');

export async function routerWorkflow(counters: Record<string, number> = {}): Promise<void> {
  let served = 0;
  setHandler(nextOwnerUpdate, ({ owners }) => {
    const key = owners.join(',');
    const n = counters[key] ?? 0;
    counters[key] = n + 1;
    served++;
    return owners[n % owners.length]!;
  }, {
    validator: ({ owners }) => {
      if (!Array.isArray(owners) || owners.length === 0 || owners.some((o) => typeof o !== 'string')) {
        throw new Error('owners must be a non-empty list of strings');
      }
    },
  });
  await condition(() => served >= 500 || workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  await continueAsNew<typeof routerWorkflow>(counters);
}
