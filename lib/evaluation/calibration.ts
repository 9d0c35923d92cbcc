/**
 * Site calibration of the operating point: re-choose the threshold on a labelled local sample so
 * it reaches a target sensitivity there, and say how far that can be trusted.
 *
 * The interval is for what the chosen rule will give on the site's population, not for the
 * sample it was fitted on (where sensitivity is >= the target by construction): each bootstrap
 * resample re-chooses the threshold, and the sample itself stands in for the population to
 * score it (the bootstrap world's truth). Whole patients are resampled when ids are known.
 */
import { quantileSorted, wilsonInterval } from "./bootstrap.ts";
import { chooseThreshold, rates } from "./threshold.ts";
import { mulberry32 } from "../util/random.ts";

export interface CalibrationOptions {
  /** Sensitivity the threshold must reach on the sample (default 0.95). */
  targetSensitivity?: number;
  /** The lower 95% bound sensitivity should clear for the sample to count as enough (0.90). */
  sensitivityFloor?: number;
  /** Patient (cluster) id per example. */
  groups?: string[];
  iterations?: number;
  seed?: number;
}

export interface CalibrationResult {
  value: number;
  targetSensitivity: number;
  /** On the sample (optimistic: chosen there). */
  sensitivity: number;
  specificity: number;
  /** 95% bootstrap intervals of what the rule gives (threshold re-chosen per resample). */
  ci: { sensitivity: [number, number]; specificity: [number, number] };
  n: number;
  positives: number;
  negatives: number;
  /** Positives needed so that, at the target, sensitivity's Wilson lower bound clears the floor. */
  positivesNeeded: number;
  warnings: string[];
}

/**
 * Smallest number of positives n such that a sensitivity of exactly the target (ceil(t n) of n)
 * has a Wilson 95% lower bound at or above `floor`; Infinity when even 100,000 is not enough.
 */
export function positivesNeeded(target: number, floor: number): number {
  for (let n = 1; n <= 100_000; n++) {
    if (wilsonInterval(Math.ceil(target * n - 1e-9), n)[0] >= floor) return n;
  }
  return Infinity;
}

function pct(v: number): string {
  return `${(100 * v).toFixed(1)}%`;
}

/** Choose the site threshold for `targetSensitivity` with bootstrap CIs and warnings. */
export function calibrateThreshold(
  labels: number[],
  probs: number[],
  opts: CalibrationOptions = {},
): CalibrationResult {
  const target = opts.targetSensitivity ?? 0.95;
  const floor = opts.sensitivityFloor ?? 0.9;
  if (!(target > 0 && target < 1)) {
    throw new Error(`target sensitivity must be in (0, 1), got ${target}`);
  }
  const positives = labels.filter((l) => l === 1).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) {
    throw new Error(
      `calibration needs both classes: ${positives} PNEUMONIA and ${negatives} NORMAL images`,
    );
  }
  const chosen = chooseThreshold(labels, probs, "sens95", { minSensitivity: target });
  // Bootstrap of the whole rule.
  const groups = opts.groups ?? labels.map((_, i) => String(i));
  const members = new Map<string, number[]>();
  groups.forEach((g, i) => {
    const m = members.get(g);
    if (m) m.push(i);
    else members.set(g, [i]);
  });
  const clusters = [...members.values()];
  const rand = mulberry32(opts.seed ?? 42);
  const iterations = opts.iterations ?? 1000;
  const sens: number[] = [];
  const spec: number[] = [];
  for (let it = 0; it < iterations; it++) {
    const l: number[] = [];
    const p: number[] = [];
    for (let c = 0; c < clusters.length; c++) {
      for (const i of clusters[Math.floor(rand() * clusters.length)]) {
        l.push(labels[i]);
        p.push(probs[i]);
      }
    }
    if (!l.includes(0) || !l.includes(1)) continue;
    const t = chooseThreshold(l, p, "sens95", { minSensitivity: target }).value;
    const [se, sp] = rates(labels, probs, t);
    sens.push(se);
    spec.push(sp);
  }
  const ci = (v: number[]): [number, number] => {
    const s = v.sort((a, b) => a - b);
    return [quantileSorted(s, 0.025), quantileSorted(s, 0.975)];
  };
  const result: CalibrationResult = {
    value: chosen.value,
    targetSensitivity: target,
    sensitivity: chosen.sensitivity,
    specificity: chosen.specificity,
    ci: { sensitivity: ci(sens), specificity: ci(spec) },
    n: labels.length,
    positives,
    negatives,
    positivesNeeded: positivesNeeded(target, floor),
    warnings: [],
  };
  if (positives < result.positivesNeeded) {
    result.warnings.push(
      `small sample: ${positives} PNEUMONIA images; at least ${result.positivesNeeded} are ` +
        `needed to bound sensitivity's lower 95% CI above ${pct(floor)} at a target of ` +
        `${pct(target)}. Treat this threshold as provisional.`,
    );
  }
  if (result.ci.sensitivity[0] < floor) {
    result.warnings.push(
      `sensitivity's lower 95% bound is ${pct(result.ci.sensitivity[0])}, below ${pct(floor)}: ` +
        `the threshold may miss more pneumonias than the target on new patients of this site.`,
    );
  }
  if (result.ci.specificity[1] - result.ci.specificity[0] > 0.25) {
    result.warnings.push(
      `specificity is poorly determined (95% CI ${pct(result.ci.specificity[0])}–` +
        `${pct(result.ci.specificity[1])}, ${negatives} NORMAL images): label more normal images.`,
    );
  }
  return result;
}
