/**
 * Choosing the operating point on validation, to be applied unchanged to test.
 *
 * Candidate thresholds are the distinct predicted probabilities (predict PNEUMONIA when
 * `prob >= threshold`), so every reachable (sensitivity, specificity) pair is considered.
 */
import { rocCurve } from "./metrics.ts";

/**
 * - `sens95`: highest specificity with sensitivity >= 0.95 (default: a missed pneumonia is
 *   worse than a false alarm);
 * - `youden`: maximises sensitivity + specificity - 1;
 * - `0.5`: the usual fixed cut.
 */
export type ThresholdMethod = "sens95" | "youden" | "0.5";
export const THRESHOLD_METHODS: ThresholdMethod[] = ["sens95", "youden", "0.5"];

export interface ChosenThreshold {
  method: ThresholdMethod;
  value: number;
  /** Sensitivity and specificity at `value` on the data it was chosen on. */
  sensitivity: number;
  specificity: number;
}

/** Parse a method name; clear error listing the valid ones. */
export function parseThresholdMethod(s: string): ThresholdMethod {
  const v = s.trim().toLowerCase();
  if ((THRESHOLD_METHODS as string[]).includes(v)) return v as ThresholdMethod;
  throw new Error(`unknown threshold method "${s}"; use one of ${THRESHOLD_METHODS.join(", ")}`);
}

/** Sensitivity/specificity at a fixed threshold (NaN when a class is absent). */
export function rates(labels: number[], probs: number[], t: number): [number, number] {
  let tp = 0, pos = 0, tn = 0, neg = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === 1) {
      pos++;
      if (probs[i] >= t) tp++;
    } else {
      neg++;
      if (probs[i] < t) tn++;
    }
  }
  return [pos ? tp / pos : NaN, neg ? tn / neg : NaN];
}

/** Pick the decision threshold on (validation) labels and probabilities. */
export function chooseThreshold(
  labels: number[],
  probs: number[],
  method: ThresholdMethod = "sens95",
  opts: { minSensitivity?: number } = {},
): ChosenThreshold {
  if (method === "0.5") {
    if (labels.length !== probs.length) {
      throw new Error(`labels (${labels.length}) and probs (${probs.length}) differ in length`);
    }
    const [sensitivity, specificity] = rates(labels, probs, 0.5);
    return { method, value: 0.5, sensitivity, specificity };
  }
  // rocCurve validates inputs and requires both classes.
  const roc = rocCurve(labels, probs);
  let best = -1;
  if (method === "sens95") {
    const minSens = opts.minSensitivity ?? 0.95;
    // Points run from high to low threshold: tpr and fpr never decrease. The first point
    // reaching the target sensitivity has the lowest fpr among those that reach it; points
    // after it with the same fpr gain sensitivity for free, so take the last of those.
    for (let k = 1; k < roc.fpr.length; k++) {
      if (roc.tpr[k] + 1e-12 < minSens) continue;
      if (best < 0 || roc.fpr[k] === roc.fpr[best]) best = k;
      else break;
    }
  } else if (method === "youden") {
    let bestJ = -Infinity;
    for (let k = 1; k < roc.fpr.length; k++) {
      const j = roc.tpr[k] - roc.fpr[k];
      if (j > bestJ + 1e-12) {
        bestJ = j;
        best = k;
      }
    }
  } else {
    throw new Error(`unknown threshold method "${method}"`);
  }
  return {
    method,
    value: roc.thresholds[best],
    sensitivity: roc.tpr[best],
    specificity: 1 - roc.fpr[best],
  };
}

/** One point of a threshold sweep. */
export interface SweepPoint {
  threshold: number;
  sensitivity: number;
  specificity: number;
}

/** Sensitivity and specificity at `steps + 1` evenly spaced thresholds in [0, 1]. */
export function thresholdSweep(labels: number[], probs: number[], steps = 100): SweepPoint[] {
  const out: SweepPoint[] = [];
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    const [sensitivity, specificity] = rates(labels, probs, t);
    out.push({ threshold: t, sensitivity, specificity });
  }
  return out;
}
