/**
 * Paired comparison of two models on the same images: the difference in ROC-AUC, sensitivity and
 * specificity (B - A, each model at its own validation-chosen threshold) with a paired bootstrap
 * CI. Each resample draws whole patients once and scores both models on that same draw, so the
 * interval reflects the difference itself (the two models' errors are correlated), not two
 * independent intervals. "DenseNet121 beats VGG16" is then a claim with an interval: shown only
 * when the 95% CI excludes 0.
 */
import { quantileSorted } from "./bootstrap.ts";
import { sortScores, weightedMetrics } from "./metrics.ts";
import { mulberry32 } from "../util/random.ts";
import type { PredictionItem } from "./evaluate.ts";

export const PAIRED_METRICS = ["rocAuc", "sensitivity", "specificity"] as const;
export type PairedMetric = typeof PAIRED_METRICS[number];

export interface PairedDelta {
  /** B - A on the common images. */
  delta: number;
  /** 95% paired bootstrap interval of the difference. */
  ci: [number, number];
  a: number;
  b: number;
}

export interface PairedComparison {
  /** Images both models predicted (matched by sha256, else by path). */
  n: number;
  positives: number;
  patients: number | null;
  resampling: "patient" | "image";
  iterations: number;
  deltas: Record<PairedMetric, PairedDelta>;
}

export interface PairedOptions {
  iterations?: number;
  seed?: number;
  level?: number;
}

const keyOf = (i: PredictionItem) => i.sha256 ?? i.rel;

/** The items both lists hold (same key), in A's order; labels must agree. */
export function matchItems(
  a: readonly PredictionItem[],
  b: readonly PredictionItem[],
): { a: PredictionItem[]; b: PredictionItem[] } {
  const byKey = new Map(b.map((i) => [keyOf(i), i]));
  const outA: PredictionItem[] = [];
  const outB: PredictionItem[] = [];
  for (const ia of a) {
    const ib = byKey.get(keyOf(ia));
    if (!ib) continue;
    if (ib.label !== ia.label) {
      throw new Error(
        `image ${ia.rel} has label ${ia.label} in one run and ${ib.label} in the other`,
      );
    }
    outA.push(ia);
    outB.push(ib);
  }
  return { a: outA, b: outB };
}

/** B - A with paired (patient-cluster) bootstrap CIs; thresholds are each model's own. */
export function pairedComparison(
  itemsA: readonly PredictionItem[],
  itemsB: readonly PredictionItem[],
  thresholdA: number,
  thresholdB: number,
  opts: PairedOptions = {},
): PairedComparison {
  const { a, b } = matchItems(itemsA, itemsB);
  const n = a.length;
  if (n === 0) throw new Error("the two runs share no evaluated image");
  const labels = a.map((i) => i.label);
  const sa = sortScores(labels, a.map((i) => i.prob));
  const sb = sortScores(labels, b.map((i) => i.prob));
  const hasPatients = a.every((i) => typeof i.patient === "string" && i.patient);
  const clusters = new Map<string, number[]>();
  a.forEach((it, idx) => {
    const g = hasPatients ? it.patient! : String(idx);
    const list = clusters.get(g);
    if (list) list.push(idx);
    else clusters.set(g, [idx]);
  });
  const members = [...clusters.values()];
  const base = (s: typeof sa, t: number) => weightedMetrics(s, t);
  const ma = base(sa, thresholdA), mb = base(sb, thresholdB);
  const iterations = opts.iterations ?? 1000;
  const rand = mulberry32(opts.seed ?? 42);
  const w = new Uint32Array(n);
  const wa = new Uint32Array(n), wb = new Uint32Array(n);
  const samples: Record<PairedMetric, number[]> = { rocAuc: [], sensitivity: [], specificity: [] };
  for (let it = 0; it < iterations; it++) {
    w.fill(0);
    for (let c = 0; c < members.length; c++) {
      for (const idx of members[Math.floor(rand() * members.length)]) w[idx]++;
    }
    for (let k = 0; k < n; k++) {
      wa[k] = w[sa.order[k]];
      wb[k] = w[sb.order[k]];
    }
    const ra = weightedMetrics(sa, thresholdA, wa), rb = weightedMetrics(sb, thresholdB, wb);
    for (const m of PAIRED_METRICS) {
      const d = rb[m] - ra[m];
      if (Number.isFinite(d)) samples[m].push(d);
    }
  }
  const alpha = (1 - (opts.level ?? 0.95)) / 2;
  const deltas = {} as Record<PairedMetric, PairedDelta>;
  for (const m of PAIRED_METRICS) {
    const v = samples[m].sort((x, y) => x - y);
    deltas[m] = {
      delta: mb[m] - ma[m],
      ci: v.length * 2 < iterations
        ? [NaN, NaN]
        : [quantileSorted(v, alpha), quantileSorted(v, 1 - alpha)],
      a: ma[m],
      b: mb[m],
    };
  }
  return {
    n,
    positives: ma.positives,
    patients: hasPatients ? members.length : null,
    resampling: hasPatients ? "patient" : "image",
    iterations,
    deltas,
  };
}

/** "B better", "A better" or "no difference shown" from a difference's CI. */
export function verdict(d: PairedDelta): "better" | "worse" | "no difference shown" {
  if (!Number.isFinite(d.ci[0])) return "no difference shown";
  if (d.ci[0] > 0) return "better";
  if (d.ci[1] < 0) return "worse";
  return "no difference shown";
}
