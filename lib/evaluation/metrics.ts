/**
 * Binary classification metrics for PNEUMONIA (label 1) vs NORMAL (label 0).
 *
 * Every metric is computed from scores sorted once, with an integer weight (multiplicity) per
 * example, so the bootstrap can reuse the same code by drawing weights instead of re-sorting.
 * Conventions:
 * - an example is predicted PNEUMONIA when `prob >= threshold`;
 * - ROC-AUC is the Mann-Whitney statistic: ties between a positive and a negative count 1/2;
 * - PR-AUC is the average precision (step-wise sum of precision times recall increments over
 *   the distinct scores, as scikit-learn's `average_precision_score`), not a trapezoid;
 * - loss is the binary cross-entropy with probabilities clipped to [1e-7, 1 - 1e-7] (Keras);
 * - a metric whose denominator is zero (e.g. sensitivity with no positives, AUC with one class)
 *   is NaN, never a made-up 0 or 1.
 */

/** Confusion matrix counts at a threshold (PNEUMONIA is the positive class). */
export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** All metrics of one split at one threshold. */
export interface Metrics {
  n: number;
  positives: number;
  negatives: number;
  threshold: number;
  accuracy: number;
  /** Binary cross-entropy (mean, natural log). */
  loss: number;
  /** Mann-Whitney ROC-AUC (ties count 1/2). */
  rocAuc: number;
  /** Average precision (scikit-learn definition). */
  prAuc: number;
  /** Recall of PNEUMONIA: tp / (tp + fn). */
  sensitivity: number;
  /** Recall of NORMAL: tn / (tn + fp). */
  specificity: number;
  /** Precision of PNEUMONIA: tp / (tp + fp). */
  ppv: number;
  /** tn / (tn + fn). */
  npv: number;
  f1: number;
  /** Mean squared error of the probability. */
  brier: number;
  confusion: Confusion;
}

/** The metrics that get a bootstrap confidence interval. */
export const CI_METRICS = [
  "accuracy",
  "loss",
  "rocAuc",
  "prAuc",
  "sensitivity",
  "specificity",
  "ppv",
  "npv",
  "f1",
  "brier",
] as const;
export type CiMetric = typeof CI_METRICS[number];

const EPS = 1e-7;

/** Check labels/probs and return them as arrays of numbers; errors name the offending field. */
export function validateInputs(labels: ArrayLike<number>, probs: ArrayLike<number>): void {
  if (labels.length !== probs.length) {
    throw new Error(`labels (${labels.length}) and probs (${probs.length}) differ in length`);
  }
  if (labels.length === 0) throw new Error("no examples: labels and probs are empty");
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) {
      throw new Error(`labels[${i}] = ${labels[i]}: labels must be 0 (NORMAL) or 1 (PNEUMONIA)`);
    }
    const p = probs[i];
    if (!Number.isFinite(p) || p < 0 || p > 1) {
      throw new Error(`probs[${i}] = ${p}: probabilities must be finite numbers in [0, 1]`);
    }
  }
}

/** Examples sorted by descending score, ready for weighted metric passes. */
export interface SortedScores {
  labels: Uint8Array;
  probs: Float64Array;
  /** Original index of each sorted position. */
  order: Uint32Array;
}

/** Sort once by descending probability (stable). */
export function sortScores(labels: ArrayLike<number>, probs: ArrayLike<number>): SortedScores {
  validateInputs(labels, probs);
  const idx = Array.from({ length: labels.length }, (_, i) => i);
  idx.sort((a, b) => probs[b] - probs[a] || a - b);
  const out: SortedScores = {
    labels: new Uint8Array(idx.length),
    probs: new Float64Array(idx.length),
    order: new Uint32Array(idx),
  };
  for (let k = 0; k < idx.length; k++) {
    out.labels[k] = labels[idx[k]];
    out.probs[k] = probs[idx[k]];
  }
  return out;
}

function ratio(num: number, den: number): number {
  return den === 0 ? NaN : num / den;
}

/**
 * Metrics over sorted scores where example k counts `weights[k]` times (all ones when omitted).
 * The bootstrap calls this with resampling multiplicities.
 */
export function weightedMetrics(
  s: SortedScores,
  threshold: number,
  weights?: ArrayLike<number>,
): Metrics {
  const n = s.labels.length;
  const w = (k: number) => (weights ? weights[k] : 1);
  let pos = 0, neg = 0, tp = 0, fp = 0, lossSum = 0, brierSum = 0;
  // One pass over groups of tied scores, descending: AUC (Mann-Whitney) and average precision.
  let negAbove = 0; // negative weight with a strictly higher score than the current group
  let aucSum = 0; // sum over positives of (negatives below + half the tied negatives)
  let cumPos = 0, cumNeg = 0;
  const apSteps: [number, number][] = []; // (cumulative positives, cumulative negatives) per group
  let k = 0;
  while (k < n) {
    let gPos = 0, gNeg = 0;
    const p = s.probs[k];
    let j = k;
    while (j < n && s.probs[j] === p) {
      const wj = w(j);
      if (wj !== 0) {
        const y = s.labels[j];
        if (y === 1) gPos += wj;
        else gNeg += wj;
        const pc = Math.min(Math.max(p, EPS), 1 - EPS);
        lossSum -= wj * (y === 1 ? Math.log(pc) : Math.log(1 - pc));
        brierSum += wj * (p - y) * (p - y);
      }
      j++;
    }
    // Positives in this group: negatives strictly above beat them, tied ones count half.
    aucSum += gPos * (negAbove + 0.5 * gNeg);
    negAbove += gNeg;
    cumPos += gPos;
    cumNeg += gNeg;
    if (gPos + gNeg > 0) apSteps.push([cumPos, cumNeg]);
    if (p >= threshold) {
      tp += gPos;
      fp += gNeg;
    }
    k = j;
  }
  pos = cumPos;
  neg = cumNeg;
  const total = pos + neg;
  // aucSum counted, for each positive, the negatives ranked ABOVE it; AUC is the complement.
  const rocAuc = pos > 0 && neg > 0 ? 1 - aucSum / (pos * neg) : NaN;
  let ap = 0;
  let prevRecall = 0;
  for (const [cp, cn] of apSteps) {
    const recall = cp / pos;
    ap += (recall - prevRecall) * (cp / (cp + cn));
    prevRecall = recall;
  }
  const fn = pos - tp;
  const tn = neg - fp;
  const sensitivity = ratio(tp, pos);
  const ppv = ratio(tp, tp + fp);
  return {
    n: total,
    positives: pos,
    negatives: neg,
    threshold,
    accuracy: ratio(tp + tn, total),
    loss: ratio(lossSum, total),
    rocAuc,
    prAuc: pos > 0 ? ap : NaN,
    sensitivity,
    specificity: ratio(tn, neg),
    ppv,
    npv: ratio(tn, tn + fn),
    f1: ratio(2 * tp, 2 * tp + fp + fn),
    brier: ratio(brierSum, total),
    confusion: { tp, fp, tn, fn },
  };
}

/** All metrics of `probs` against `labels` (0 NORMAL, 1 PNEUMONIA) at `threshold`. */
export function computeMetrics(labels: number[], probs: number[], threshold: number): Metrics {
  if (!Number.isFinite(threshold)) throw new Error(`threshold must be finite, got ${threshold}`);
  return weightedMetrics(sortScores(labels, probs), threshold);
}

/** Mann-Whitney ROC-AUC; NaN when only one class is present. */
export function rocAuc(labels: number[], probs: number[]): number {
  return weightedMetrics(sortScores(labels, probs), 0.5).rocAuc;
}

function requireBothClasses(labels: ArrayLike<number>, what: string): void {
  let pos = 0;
  for (let i = 0; i < labels.length; i++) pos += labels[i] === 1 ? 1 : 0;
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) {
    throw new Error(
      `${what} needs both classes: got ${pos} PNEUMONIA and ${neg} NORMAL examples`,
    );
  }
}

/** ROC curve points, one per distinct score (descending), starting at (0, 0) with threshold +Infinity. */
export interface RocCurve {
  fpr: number[];
  tpr: number[];
  thresholds: number[];
}

/** ROC curve; throws a clear error when only one class is present. */
export function rocCurve(labels: number[], probs: number[]): RocCurve {
  const s = sortScores(labels, probs);
  requireBothClasses(labels, "ROC curve");
  const pos = s.labels.reduce((a, y) => a + y, 0);
  const neg = s.labels.length - pos;
  const curve: RocCurve = { fpr: [0], tpr: [0], thresholds: [Infinity] };
  let tp = 0, fp = 0;
  for (let k = 0; k < s.labels.length; k++) {
    if (s.labels[k] === 1) tp++;
    else fp++;
    if (k === s.labels.length - 1 || s.probs[k + 1] !== s.probs[k]) {
      curve.fpr.push(fp / neg);
      curve.tpr.push(tp / pos);
      curve.thresholds.push(s.probs[k]);
    }
  }
  return curve;
}

/** Precision-recall points, one per distinct score (descending), starting at recall 0, precision 1. */
export interface PrCurve {
  precision: number[];
  recall: number[];
  thresholds: number[];
}

/** Precision-recall curve; throws a clear error when only one class is present. */
export function prCurve(labels: number[], probs: number[]): PrCurve {
  const s = sortScores(labels, probs);
  requireBothClasses(labels, "PR curve");
  const pos = s.labels.reduce((a, y) => a + y, 0);
  const curve: PrCurve = { precision: [1], recall: [0], thresholds: [Infinity] };
  let tp = 0, fp = 0;
  for (let k = 0; k < s.labels.length; k++) {
    if (s.labels[k] === 1) tp++;
    else fp++;
    if (k === s.labels.length - 1 || s.probs[k + 1] !== s.probs[k]) {
      curve.precision.push(tp / (tp + fp));
      curve.recall.push(tp / pos);
      curve.thresholds.push(s.probs[k]);
    }
  }
  return curve;
}

/** One reliability-diagram bin. */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  meanProb: number;
  fractionPositive: number;
}

/** Equal-width probability bins (empty bins omitted) for a calibration plot. */
export function calibrationBins(labels: number[], probs: number[], bins = 10): CalibrationBin[] {
  validateInputs(labels, probs);
  const count = new Array(bins).fill(0);
  const sumP = new Array(bins).fill(0);
  const sumY = new Array(bins).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const b = Math.min(bins - 1, Math.floor(probs[i] * bins));
    count[b]++;
    sumP[b] += probs[i];
    sumY[b] += labels[i];
  }
  const out: CalibrationBin[] = [];
  for (let b = 0; b < bins; b++) {
    if (count[b] === 0) continue;
    out.push({
      lo: b / bins,
      hi: (b + 1) / bins,
      count: count[b],
      meanProb: sumP[b] / count[b],
      fractionPositive: sumY[b] / count[b],
    });
  }
  return out;
}
