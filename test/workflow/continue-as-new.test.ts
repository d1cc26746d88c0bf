/**
 * One lead taking 5,000 events across continue-as-new runs on a worker that caches it
 * (test/helpers/busy-lead.ts): each counted once, state carried.
 */
import { test } from 'node:test';
import { useStack } from '../helpers/stack.js';
import { busyLead } from '../helpers/busy-lead.js';

const h = useStack({ server: 'time-skipping', worker: true });

test('5,000 events across continue-as-new: each counted exactly once, state carried', async () => {
  await h.run(() => busyLead(h, 'issue-13/continued-as-new'));
});
