/**
 * The fuzz suite's short form (`npm run fuzz` is the full run): a real stack (dev server, worker,
 * API), a few leads that have had their mail, then 300 seeded hostile requests over every route.
 * No answer may be a 5xx, nothing may change (leads, lead count, mail), and /healthz stays up.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFuzz } from '../../fuzz/run.js';

test('300 hostile requests: no 5xx, no state change, /healthz up', { timeout: 240_000 }, async () => {
  const res = await runFuzz({ requests: 300, seed: 9, log: () => undefined });
  assert.equal(res.requests, 300);
  // The requests reached the API and most were refused: the fuzzer is not testing thin air.
  const refused = Object.entries(res.byStatus)
    .filter(([k]) => /^4\d\d$/.test(k))
    .reduce((s, [, n]) => s + n, 0);
  assert.ok(refused > 150, `only ${refused} of 300 answers were 4xx: ${JSON.stringify(res.byStatus)}`);
  assert.equal(
    res.fiveXx,
    0,
    `5xx answers (reproduce: npm run fuzz -- --seed 9 --requests 300):\n${res.fiveXxSamples.map((s) => `${s.status} ${s.request} -> ${s.body}`).join('\n')}`,
  );
  assert.deepEqual(res.stateChanges, []);
  assert.equal(res.leadsAfter, res.leadsBefore);
  assert.equal(res.mailsAfter, res.mailsBefore);
  assert.equal(res.healthz, 200);
});
