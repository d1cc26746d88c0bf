/** ROC AUC and threshold helpers over scores and 0/1 outcomes. Pure, no dependencies. */

/** ROC AUC (the Mann-Whitney statistic, ties counted half): the chance a positive outscores a negative. */
export function rocAuc(scores: readonly number[], labels: readonly boolean[]): number {
  const order = scores.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const midRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!]) {
        pos++;
        rankSum += midRank;
      }
    }
    i = j + 1;
  }
  const neg = order.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/**
 * The ROC curve: (false positive rate, true positive rate) as the threshold falls from above the
 * top score to below the lowest, from (0,0) to (1,1); tied scores move together (one diagonal
 * step), so its trapezoid area is rocAuc. At most `maxPoints` points, evenly picked from the full
 * curve with its first and last kept. Empty without both a positive and a negative.
 */
export function rocCurve(
  scores: readonly number[],
  labels: readonly boolean[],
  maxPoints = 101,
): { fpr: number; tpr: number }[] {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const pos = order.filter((i) => labels[i]).length;
  const neg = order.length - pos;
  if (pos === 0 || neg === 0) return [];
  const full = [{ fpr: 0, tpr: 0 }];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1]!] === scores[order[i]!]) j++;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!]) tp++;
      else fp++;
    }
    full.push({ fpr: fp / neg, tpr: tp / pos });
    i = j + 1;
  }
  const max = Math.max(2, Math.floor(maxPoints));
  if (full.length <= max) return full;
  // Increasing indices from 0 to the last: the picked points stay in order, so the curve stays monotone.
  return Array.from({ length: max }, (_, k) => full[Math.round((k * (full.length - 1)) / (max - 1))]!);
}

/** The share of rows classified right when `score >= threshold` means positive. */
export function accuracyAt(scores: readonly number[], labels: readonly boolean[], threshold: number): number {
  let right = 0;
  scores.forEach((s, i) => (right += s >= threshold === labels[i] ? 1 : 0));
  return scores.length ? right / scores.length : NaN;
}

/** Precision and recall of `score >= threshold`. */
export function precisionRecallAt(
  scores: readonly number[],
  labels: readonly boolean[],
  threshold: number,
): { precision: number; recall: number } {
  let tp = 0;
  let fp = 0;
  let pos = 0;
  scores.forEach((s, i) => {
    if (labels[i]) pos++;
    if (s >= threshold && labels[i]) tp++;
    else if (s >= threshold) fp++;
  });
  return { precision: tp + fp ? tp / (tp + fp) : NaN, recall: pos ? tp / pos : NaN };
}

/**
 * The lowest threshold (one of the scores) at which `score >= threshold` has at least `target`
 * precision, scanning from the top; undefined when no threshold reaches it.
 */
export function thresholdForPrecision(
  scores: readonly number[],
  labels: readonly boolean[],
  target: number,
): number | undefined {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let tp = 0;
  let n = 0;
  let best: number | undefined;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1]!] === scores[order[i]!]) j++;
    for (let k = i; k <= j; k++) {
      n++;
      if (labels[order[k]!]) tp++;
    }
    if (tp / n >= target) best = scores[order[i]!];
    i = j + 1;
  }
  return best;
}
