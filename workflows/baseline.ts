/**
 * The benchmark's ceiling: a workflow that receives the same `event` signals as a lead and does
 * nothing else. Its signal rate on a server is what Temporal itself allows there.
 */
import { condition, defineQuery, setHandler } from '@temporalio/workflow';
import { eventSignal } from './defs.js';

export const baselineCountQuery = defineQuery<number>('count');

export async function baselineWorkflow(expected: number): Promise<number> {
  let count = 0;
  setHandler(eventSignal, () => void count++);
  setHandler(baselineCountQuery, () => count);
  await condition(() => count >= expected);
  return count;
}
