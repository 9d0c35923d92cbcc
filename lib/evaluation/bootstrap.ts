/**
 * Seeded percentile bootstrap confidence intervals for every metric.
 *
 * With `groups` (patient ids), whole patients are resampled with replacement (cluster
 * bootstrap): images of one patient are correlated, so resampling images alone would give
 * intervals that are too narrow. The threshold stays fixed: it was chosen on validation.
 */
import { CI_METRICS, type CiMetric, sortScores, weightedMetrics } from "./metrics.ts";
import { mulberry32 } from "../util/random.ts";

/** Re-exported: tests and fixtures draw their synthetic scores from the same PRNG. */
export { mulberry32 };

/** Lower and upper bound of a 95% interval per metric (NaN when undefined in most resamples). */
export type MetricCIs = Record<CiMetric, [number, number]>;

export interface BootstrapOptions {
  /** Cluster ids (patients), one per example: resample clusters instead of examples. */
  groups?: string[];
  /** Number of resamples (default 1000). */
  iterations?: number;
  /** PRNG seed (default 42). */
  seed?: number;
  /** Confidence level (default 0.95). */
  level?: number;
}

/** Linear-interpolated quantile of sorted values (numpy's default "linear"). */
export function quantileSorted(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * The bootstrap distribution of every metric at a fixed threshold: one value per resample, in
 * resample order (NaN where the metric is undefined in that resample).
 */
export function bootstrapDistribution(
  labels: number[],
  probs: number[],
  threshold: number,
  opts: BootstrapOptions = {},
): Record<CiMetric, Float64Array> {
  const iterations = opts.iterations ?? 1000;
  if (!(iterations >= 1)) throw new Error(`bootstrap iterations must be >= 1, got ${iterations}`);
  const s = sortScores(labels, probs);
  const n = labels.length;
  const rand = mulberry32(opts.seed ?? 42);
  // Clusters in sorted order: members[c] = sorted positions of cluster c.
  let members: number[][];
  if (opts.groups) {
    if (opts.groups.length !== n) {
      throw new Error(`groups (${opts.groups.length}) and labels (${n}) differ in length`);
    }
    const byGroup = new Map<string, number[]>();
    for (let k = 0; k < n; k++) {
      const g = opts.groups[s.order[k]];
      let list = byGroup.get(g);
      if (!list) byGroup.set(g, list = []);
      list.push(k);
    }
    members = [...byGroup.values()];
  } else {
    members = Array.from({ length: n }, (_, k) => [k]);
  }
  const samples = Object.fromEntries(
    CI_METRICS.map((m) => [m, new Float64Array(iterations)]),
  ) as Record<CiMetric, Float64Array>;
  const weights = new Uint32Array(n);
  for (let it = 0; it < iterations; it++) {
    weights.fill(0);
    for (let c = 0; c < members.length; c++) {
      const pick = members[Math.floor(rand() * members.length)];
      for (const k of pick) weights[k]++;
    }
    const m = weightedMetrics(s, threshold, weights);
    for (const key of CI_METRICS) samples[key][it] = Number.isFinite(m[key]) ? m[key] : NaN;
  }
  return samples;
}

/**
 * Percentile interval of bootstrap values (NaN ones skipped); [NaN, NaN] when more than half
 * of the resamples had no value.
 */
export function percentileInterval(values: ArrayLike<number>, level = 0.95): [number, number] {
  const v = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  const alpha = (1 - level) / 2;
  return v.length * 2 < values.length
    ? [NaN, NaN]
    : [quantileSorted(v, alpha), quantileSorted(v, 1 - alpha)];
}

/**
 * 95% percentile bootstrap intervals of all metrics at a fixed threshold.
 * A metric is NaN in a resample when undefined there (e.g. AUC of a one-class resample); such
 * resamples are skipped for that metric, and the interval is [NaN, NaN] when more than half are.
 */
export function bootstrapCI(
  labels: number[],
  probs: number[],
  threshold: number,
  opts: BootstrapOptions = {},
): MetricCIs {
  const samples = bootstrapDistribution(labels, probs, threshold, opts);
  const out = {} as MetricCIs;
  for (const key of CI_METRICS) out[key] = percentileInterval(samples[key], opts.level ?? 0.95);
  return out;
}

/** Wilson score interval of a proportion k/n (95% by default); [NaN, NaN] when n = 0. */
export function wilsonInterval(k: number, n: number, z = 1.959964): [number, number] {
  if (n === 0) return [NaN, NaN];
  const p = k / n;
  const den = 1 + z * z / n;
  const center = (p + z * z / (2 * n)) / den;
  const half = (z / den) * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n));
  return [Math.max(0, center - half), Math.min(1, center + half)];
}
