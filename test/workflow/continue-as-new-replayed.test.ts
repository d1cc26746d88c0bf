/**
 * The busy lead of test/helpers/busy-lead.ts on a worker that caches no workflow, so every task is
 * a replay of the run's whole history: the case CI hit once under load (a worker evicting the
 * lead, or the server refusing a hand-over because signals came meanwhile). Before the issue-13
 * patch the replayed task resolved the last ledger write (a local activity) in an activation of
 * its own, handed over there, and the task's new signals never reached the run: 250 events lost.
 */
import { test } from 'node:test';
import { useStack } from '../helpers/stack.js';
import { busyLead } from '../helpers/busy-lead.js';

// Read by the stack's worker (src/env.ts workerTuning) when it starts, after this module ran.
process.env.WORKER_MAX_CACHED_WORKFLOWS = '0';
const h = useStack({ server: 'time-skipping', worker: true });

test('5,000 events across continue-as-new on a worker replaying every task: none lost, none counted twice', async () => {
  await h.run(() => busyLead(h, 'issue-13/continued-as-new-replayed'));
});
