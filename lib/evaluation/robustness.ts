/**
 * Shift-robustness suite: a model's validation images under fixed, seeded acquisition shifts
 * (lib/data/shifts.ts), each at three severities, through the run's ONNX classifier. Per shift
 * and severity: ROC-AUC, sensitivity and specificity at the run's threshold (profile) with
 * patient-level bootstrap CIs, and the mean predicted probability on NORMAL images (the drift
 * that moves a fixed threshold).
 *
 * Cost is forward passes: images x (1 + shifts x severities) per model. Images are decoded
 * once and shared by every model; each shifted batch goes through every model before the next.
 */
import { decodeImage } from "../data/images.ts";
import {
  applyShift,
  type ShiftKind,
  SUITE_KINDS,
  SUITE_SEVERITIES,
  suiteShift,
} from "../data/shifts.ts";
import { bootstrapCI } from "./bootstrap.ts";
import { computeMetrics } from "./metrics.ts";
import type { ThresholdProfile } from "./profiles.ts";
import { mulberry32, shuffled } from "../util/random.ts";
import { Progress } from "../util/progress.ts";

export { ROBUSTNESS_FILE } from "../runs/mod.ts";

/** Default images per model: class-balanced, one image per patient first. */
export const DEFAULT_SUITE_IMAGES = 48;

/** One validation image of the suite. */
export interface SuiteImage {
  path: string;
  rel: string;
  label: 0 | 1;
  patient?: string;
  sha256?: string;
}

/** A model under test: anything with the classifier's predict (tests pass small fakes). */
export interface SuiteModel {
  id: string;
  net: string | null;
  weightsLabel: string;
  notImageNet: boolean;
  threshold: ThresholdProfile;
  predict(images: Float32Array, n: number): Promise<{ prob: Float32Array }>;
  /**
   * An ensemble of other models of the same suite (indexes into its model list): its
   * probabilities are combined from theirs on each batch, with no forward pass of its own.
   */
  ensembleOf?: { members: number[]; combine: (probs: Float32Array[]) => Float32Array };
}

export interface SuiteOptions {
  kinds?: readonly ShiftKind[];
  severities?: readonly (1 | 2 | 3)[];
  /** Seeds the noise fields (with each image's hash) and the bootstrap. */
  seed?: number;
  batchSize?: number;
  /** Bootstrap resamples per condition (default 1000). */
  iterations?: number;
  quiet?: boolean;
}

type Interval = [number, number];

/** Results of one (shift, severity) condition; shift "none" is the unshifted baseline. */
export interface ConditionResult {
  shift: ShiftKind | "none";
  severity: 0 | 1 | 2 | 3;
  /** The shift's value in its unit (lib/data/shifts.ts); 0 for "none". */
  value: number;
  rocAuc: number;
  sensitivity: number;
  specificity: number;
  ci: { rocAuc: Interval; sensitivity: Interval; specificity: Interval };
  /** Mean P(pneumonia) on NORMAL images, and on PNEUMONIA images. */
  meanProbNormal: number;
  meanProbPneumonia: number;
}

export interface RobustnessResult {
  runId: string;
  net: string | null;
  weightsLabel: string;
  notImageNet: boolean;
  threshold: { profile: string; value: number; method: string };
  images: {
    n: number;
    positives: number;
    negatives: number;
    patients: number | null;
    selection: string;
    seed: number;
  };
  conditions: ConditionResult[];
  /** Lowest specificity among the real shifts (inversion, a sanity case, excluded). */
  worst: ConditionResult | null;
  forwardPasses: number;
  seconds: number;
  createdAt: string;
}

/**
 * Pick `n` images (all when n >= the set): half NORMAL, half PNEUMONIA (fewer of a class only
 * when it runs out), seeded; within a class one image per patient before any patient's second.
 */
export function selectSuiteImages<T extends { label: 0 | 1; patient?: string; rel: string }>(
  items: readonly T[],
  n: number | "all",
  seed = 42,
): T[] {
  if (n === "all" || n >= items.length) {
    return [...items].sort((a, b) => a.rel.localeCompare(b.rel));
  }
  const byClass = [0, 1].map((label) => {
    // Sorted first: the same images in any order give the same selection.
    const sorted = items.filter((i) => i.label === label).sort((a, b) =>
      a.rel.localeCompare(b.rel)
    );
    const cls = shuffled(sorted, mulberry32(seed + label));
    const seen = new Map<string, number>();
    const rank = cls.map((it) => {
      const p = it.patient ?? it.rel;
      const r = seen.get(p) ?? 0;
      seen.set(p, r + 1);
      return r;
    });
    return cls.map((it, i) => ({ it, r: rank[i], i })).sort((a, b) => a.r - b.r || a.i - b.i)
      .map((x) => x.it);
  });
  let take0 = Math.min(byClass[0].length, Math.floor(n / 2));
  const take1 = Math.min(byClass[1].length, n - take0);
  take0 = Math.min(byClass[0].length, n - take1);
  return [...byClass[0].slice(0, take0), ...byClass[1].slice(0, take1)]
    .sort((a, b) => a.rel.localeCompare(b.rel));
}

/** 32-bit seed of an image from its hash (or path), so noise does not depend on order. */
function imageSeed(seed: number, img: SuiteImage): number {
  const key = img.sha256 ?? img.rel;
  let h = 2166136261 ^ seed;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return h >>> 0;
}

function conditionList(opts: SuiteOptions) {
  const kinds = opts.kinds ?? SUITE_KINDS;
  const severities = opts.severities ?? [1, 2, 3];
  const list: { shift: ShiftKind | "none"; severity: 0 | 1 | 2 | 3 }[] = [
    { shift: "none", severity: 0 },
  ];
  for (const k of kinds) {
    // Inversion has one strength: its severities are the same image, run once.
    const seen = new Set<number>();
    for (const s of severities) {
      const v = SUITE_SEVERITIES[k][s - 1];
      if (!seen.has(v)) list.push({ shift: k, severity: s });
      seen.add(v);
    }
  }
  return list;
}

function finite(v: number): number {
  return Number.isFinite(v) ? v : NaN;
}

function summarize(
  labels: number[],
  probs: number[],
  groups: string[] | undefined,
  threshold: number,
  cond: { shift: ShiftKind | "none"; severity: 0 | 1 | 2 | 3 },
  opts: { iterations: number; seed: number },
): ConditionResult {
  const m = computeMetrics(labels, probs, threshold);
  const ci = bootstrapCI(labels, probs, threshold, {
    groups,
    iterations: opts.iterations,
    seed: opts.seed,
  });
  const mean = (cls: number) => {
    let s = 0, k = 0;
    labels.forEach((l, i) => {
      if (l === cls) (s += probs[i], k++);
    });
    return k ? s / k : NaN;
  };
  return {
    shift: cond.shift,
    severity: cond.severity,
    value: cond.shift === "none" ? 0 : suiteShift(cond.shift, cond.severity as 1 | 2 | 3).value,
    rocAuc: finite(m.rocAuc),
    sensitivity: finite(m.sensitivity),
    specificity: finite(m.specificity),
    ci: { rocAuc: ci.rocAuc, sensitivity: ci.sensitivity, specificity: ci.specificity },
    meanProbNormal: mean(0),
    meanProbPneumonia: mean(1),
  };
}

/** The lowest-specificity real shift (ties: lower AUC); inversion is a sanity case, not a shift. */
export function worstCondition(conditions: readonly ConditionResult[]): ConditionResult | null {
  let worst: ConditionResult | null = null;
  for (const c of conditions) {
    if (c.shift === "none" || c.shift === "invert" || !Number.isFinite(c.specificity)) continue;
    if (
      !worst || c.specificity < worst.specificity ||
      (c.specificity === worst.specificity && c.rocAuc < worst.rocAuc)
    ) worst = c;
  }
  return worst;
}

/**
 * Means over the acquisition shifts (every condition but "none" and the "invert" sanity case):
 * ROC-AUC says whether the ranking survives, specificity and the mean P(pneumonia) on NORMAL
 * images whether the validation threshold does.
 */
export function shiftedMeans(conditions: readonly ConditionResult[]) {
  const shifted = conditions.filter((c) => c.shift !== "none" && c.shift !== "invert");
  const mean = (f: (c: ConditionResult) => number) => {
    const xs = shifted.map(f).filter(Number.isFinite);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
  };
  return {
    conditions: shifted.length,
    rocAuc: mean((c) => c.rocAuc),
    sensitivity: mean((c) => c.sensitivity),
    specificity: mean((c) => c.specificity),
    meanProbNormal: mean((c) => c.meanProbNormal),
  };
}

/**
 * Run the suite: every model sees the same `images` under every condition. Unreadable images
 * are reported and left out (for every model alike).
 */
export async function runShiftSuite(
  images: readonly SuiteImage[],
  models: readonly SuiteModel[],
  opts: SuiteOptions = {},
): Promise<RobustnessResult[]> {
  const started = performance.now();
  const seed = opts.seed ?? 42;
  const batchSize = opts.batchSize ?? 16;
  const iterations = opts.iterations ?? 1000;
  const conditions = conditionList(opts);
  // Decode once.
  const decoded: Float32Array[] = [];
  const kept: SuiteImage[] = [];
  for (const img of images) {
    try {
      const d = await decodeImage(img.path);
      decoded.push(d.data);
      kept.push({ ...img, sha256: img.sha256 ?? d.sha256 });
    } catch (e) {
      console.error(`skipped ${img.path}: ${(e as Error).message}`);
    }
  }
  if (kept.length === 0) throw new Error("robustness: no image could be read");
  const per = decoded[0].length;
  const seeds = kept.map((img) => imageSeed(seed, img));
  const probs = models.map(() => conditions.map(() => new Array<number>(kept.length)));
  const progress = new Progress("robustness", {
    total: conditions.length * kept.length * models.length,
    unit: "pass",
    quiet: opts.quiet,
  });
  try {
    for (let c = 0; c < conditions.length; c++) {
      const cond = conditions[c];
      for (let start = 0; start < kept.length; start += batchSize) {
        const idx = Array.from(
          { length: Math.min(batchSize, kept.length - start) },
          (_, k) => start + k,
        );
        const shifted = await Promise.all(
          idx.map((i) =>
            cond.shift === "none"
              ? decoded[i]
              : applyShift(decoded[i], suiteShift(cond.shift, cond.severity as 1 | 2 | 3, seeds[i]))
          ),
        );
        const batch = new Float32Array(idx.length * per);
        shifted.forEach((s, k) => batch.set(s, k * per));
        const outs: Float32Array[] = new Array(models.length);
        const order = models.map((_, m) => m).sort((a, b) =>
          Number(!!models[a].ensembleOf) - Number(!!models[b].ensembleOf)
        );
        for (const m of order) {
          const e = models[m].ensembleOf;
          outs[m] = e
            ? e.combine(e.members.map((k) => outs[k]))
            : (await models[m].predict(batch, idx.length)).prob;
          idx.forEach((i, k) => probs[m][c][i] = Math.min(1, Math.max(0, outs[m][k])));
          progress.tick(idx.length, { shift: `${cond.shift}${cond.severity || ""}` });
        }
      }
    }
  } finally {
    progress.done();
  }
  const labels = kept.map((i) => i.label);
  const hasPatients = kept.every((i) => typeof i.patient === "string" && i.patient);
  const groups = hasPatients ? kept.map((i) => i.patient as string) : undefined;
  const seconds = (performance.now() - started) / 1000;
  return models.map((model, m) => {
    const results = conditions.map((cond, c) =>
      summarize(labels, probs[m][c], groups, model.threshold.value, cond, { iterations, seed })
    );
    return {
      runId: model.id,
      net: model.net,
      weightsLabel: model.weightsLabel,
      notImageNet: model.notImageNet,
      threshold: {
        profile: model.threshold.name,
        value: model.threshold.value,
        method: model.threshold.method,
      },
      images: {
        n: kept.length,
        positives: labels.filter((l) => l === 1).length,
        negatives: labels.filter((l) => l === 0).length,
        patients: groups ? new Set(groups).size : null,
        selection: "validation, class-balanced, one image per patient first (seeded)",
        seed,
      },
      conditions: results,
      worst: worstCondition(results),
      forwardPasses: model.ensembleOf ? 0 : conditions.length * kept.length,
      seconds,
      createdAt: new Date().toISOString(),
    };
  });
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${(100 * v).toFixed(0)}%` : "n/a";
}

/** One line per model: its worst shift and the specificity it leaves. */
export function robustnessSummaryLine(r: RobustnessResult, model = r.net ?? r.runId): string {
  const clean = r.conditions.find((c) => c.shift === "none");
  const w = r.worst;
  if (!w || !clean) return `${model}: no shift evaluated (inversion is a sanity case only)`;
  return `${model}: worst shift ${w.shift} (severity ${w.severity}, ${w.value}): specificity ` +
    `${pct(w.specificity)} [${pct(w.ci.specificity[0])}–${pct(w.ci.specificity[1])}] vs ` +
    `${pct(clean.specificity)} unshifted, sensitivity ${pct(w.sensitivity)}, AUC ` +
    `${w.rocAuc.toFixed(3)} (n=${r.images.n}, threshold ${r.threshold.value.toFixed(3)} ` +
    `${r.threshold.profile})`;
}

/** One line per model: its means over the shifted conditions (see `shiftedMeans`). */
export function robustnessMeansLine(r: RobustnessResult, model = r.net ?? r.runId): string {
  const m = shiftedMeans(r.conditions);
  if (m.conditions === 0) return `${model}: no shift evaluated`;
  return `${model}: mean over ${m.conditions} shifted conditions: AUC ${m.rocAuc.toFixed(3)}, ` +
    `sensitivity ${pct(m.sensitivity)}, specificity ${pct(m.specificity)}, ` +
    `P(pneumonia) on NORMAL ${m.meanProbNormal.toFixed(2)}`;
}

/** A fixed-width text table: one row per condition. */
export function formatRobustness(r: RobustnessResult): string {
  const lines = [
    `${r.runId}${r.notImageNet ? `  [NOT IMAGENET: ${r.weightsLabel}]` : ""}  n=${r.images.n} ` +
    `(${r.images.positives} pneumonia / ${r.images.negatives} normal), threshold ` +
    `${r.threshold.value.toFixed(3)} (${r.threshold.profile})`,
    `  ${"shift".padEnd(11)}sev  value   AUC [95% CI]          sens   spec [95% CI]     ` +
    `mean P(pneumonia) on NORMAL`,
  ];
  for (const c of r.conditions) {
    lines.push(
      `  ${c.shift.padEnd(11)}${String(c.severity).padEnd(5)}${String(c.value).padEnd(8)}` +
        `${c.rocAuc.toFixed(3)} [${c.ci.rocAuc[0].toFixed(3)}–${c.ci.rocAuc[1].toFixed(3)}]  ` +
        `${pct(c.sensitivity).padStart(5)}  ${pct(c.specificity).padStart(4)} ` +
        `[${pct(c.ci.specificity[0])}–${pct(c.ci.specificity[1])}]`.padEnd(15) +
        `  ${c.meanProbNormal.toFixed(3)}`,
    );
  }
  return lines.join("\n");
}
