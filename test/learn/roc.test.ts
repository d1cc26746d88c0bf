/** The ROC curve (src/learn/roc.ts rocCurve) the what-if result carries next to its AUC. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rocAuc, rocCurve } from '../../src/learn/roc.js';

type Point = { fpr: number; tpr: number };
const area = (c: readonly Point[]) =>
  c.slice(1).reduce((a, p, i) => a + ((p.fpr - c[i]!.fpr) * (p.tpr + c[i]!.tpr)) / 2, 0);
const monotone = (c: readonly Point[]) => c.every((p, i) => !i || (p.fpr >= c[i - 1]!.fpr && p.tpr >= c[i - 1]!.tpr));

/** A fixed pseudo-random sequence (a linear congruential generator), so the test is the same every run. */
function lcg(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

describe('rocCurve', () => {
  it('a perfect ranking goes from (0,0) through (0,1) to (1,1)', () => {
    const c = rocCurve([0.9, 0.8, 0.3, 0.1], [true, true, false, false]);
    assert.deepEqual(c, [
      { fpr: 0, tpr: 0 },
      { fpr: 0, tpr: 0.5 },
      { fpr: 0, tpr: 1 },
      { fpr: 0.5, tpr: 1 },
      { fpr: 1, tpr: 1 },
    ]);
  });

  it('a known mixed ranking gives one step per score, by descending score', () => {
    // scores 5 4 3 2 1 with labels + - + - -: 2 positives, 3 negatives
    const c = rocCurve([3, 1, 5, 2, 4], [true, false, true, false, false]);
    assert.deepEqual(c, [
      { fpr: 0, tpr: 0 },
      { fpr: 0, tpr: 0.5 },
      { fpr: 1 / 3, tpr: 0.5 },
      { fpr: 1 / 3, tpr: 1 },
      { fpr: 2 / 3, tpr: 1 },
      { fpr: 1, tpr: 1 },
    ]);
    assert.ok(Math.abs(area(c) - rocAuc([3, 1, 5, 2, 4], [true, false, true, false, false])) < 1e-9);
  });

  it('tied scores move together, one diagonal step', () => {
    const c = rocCurve([2, 1, 1, 1, 0], [true, true, false, false, true]);
    // 3 positives, 2 negatives: 2 (+), then the tie at 1 (+ - -), then 0 (+)
    assert.deepEqual(c, [
      { fpr: 0, tpr: 0 },
      { fpr: 0, tpr: 1 / 3 },
      { fpr: 1, tpr: 2 / 3 },
      { fpr: 1, tpr: 1 },
    ]);
    const all = rocCurve([1, 1, 1], [true, false, false]);
    assert.deepEqual(all, [
      { fpr: 0, tpr: 0 },
      { fpr: 1, tpr: 1 },
    ]);
    assert.equal(area(all), 0.5);
  });

  it('is empty without both a positive and a negative', () => {
    assert.deepEqual(rocCurve([1, 2], [true, true]), []);
    assert.deepEqual(rocCurve([1, 2], [false, false]), []);
    assert.deepEqual(rocCurve([], []), []);
  });

  it('downsampling keeps (0,0) and (1,1), at most maxPoints points, monotone', () => {
    const r = lcg(7);
    const labels = Array.from({ length: 5000 }, () => r() < 0.3);
    const scores = labels.map((l) => r() + (l ? 0.3 : 0));
    const full = rocCurve(scores, labels, Infinity);
    assert.ok(full.length > 1000);
    for (const max of [2, 3, 10, 101, 1000]) {
      const c = rocCurve(scores, labels, max);
      assert.ok(c.length <= max, `${c.length} points for at most ${max}`);
      assert.equal(c.length, max);
      assert.deepEqual(c[0], { fpr: 0, tpr: 0 });
      assert.deepEqual(c.at(-1), { fpr: 1, tpr: 1 });
      assert.ok(monotone(c), `monotone with ${max} points`);
    }
    assert.equal(rocCurve(scores, labels).length, 101);
    assert.ok(monotone(full));
  });

  it('the trapezoid area under the full curve is rocAuc', () => {
    const r = lcg(42);
    for (let run = 0; run < 20; run++) {
      const n = 50 + Math.floor(r() * 500);
      const labels = Array.from({ length: n }, () => r() < 0.4);
      // Integer scores in a small range: many ties, which the area must count half as rocAuc does.
      const scores = labels.map((l) => Math.floor(r() * 20) + (l ? Math.floor(r() * 5) : 0));
      const c = rocCurve(scores, labels, 1e9);
      assert.ok(Math.abs(area(c) - rocAuc(scores, labels)) < 1e-9, `run ${run}`);
    }
  });
});
