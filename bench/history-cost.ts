/**
 * What a workflow's history costs per processed event: history events and workflow tasks per
 * event, and history events by type, read from the histories of a sample of workflows.
 */
import type { Client } from '@temporalio/client';
import { round } from './measure.js';
import { runPool } from './workload.js';

export interface HistoryCost {
  workflows: number;
  eventsProcessed: number;
  historyEvents: number;
  workflowTasks: number;
  historyEventsPerEvent: number;
  workflowTasksPerEvent: number;
  /** History events of each type per processed event, largest first. */
  byType: Record<string, number>;
}

/** Reads the histories of `ids` and relates them to the events each one processed. */
export async function historyCost(
  client: Client,
  ids: { workflowId: string; processed: number }[],
): Promise<HistoryCost> {
  let historyEvents = 0;
  let workflowTasks = 0;
  let eventsProcessed = 0;
  const types = new Map<string, number>();
  await runPool(
    ids,
    8,
    async ({ workflowId, processed }) => {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      for (const e of history.events ?? []) {
        const type = eventTypeName(e as Record<string, unknown>);
        types.set(type, (types.get(type) ?? 0) + 1);
        if (type === 'WorkflowTaskCompleted') workflowTasks++;
        historyEvents++;
      }
      eventsProcessed += processed;
    },
    { what: 'reading histories', maxErrors: 0 },
  );
  const per = (x: number) => (eventsProcessed ? round(x / eventsProcessed, 2) : NaN);
  return {
    workflows: ids.length,
    eventsProcessed,
    historyEvents,
    workflowTasks,
    historyEventsPerEvent: per(historyEvents),
    workflowTasksPerEvent: per(workflowTasks),
    byType: Object.fromEntries([...types].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, per(v)])),
  };
}

/** `workflowTaskCompletedEventAttributes` -> `WorkflowTaskCompleted`: the one attributes field a history event has set. */
export function eventTypeName(e: Record<string, unknown>): string {
  for (const [k, v] of Object.entries(e)) {
    if (v != null && k.endsWith('EventAttributes')) return k[0]!.toUpperCase() + k.slice(1, -'EventAttributes'.length);
  }
  return `type${String(e.eventType)}`;
}
