/**
 * Evaluate a saved run directory: choose the operating point on validation, apply it unchanged
 * to every other split (test, external folders), attach bootstrap CIs, and write
 * `evaluation.json` and the charts (`charts/*.svg|png`).
 */
import { basename } from "node:path";
import {
  bootstrapCI,
  bootstrapDistribution,
  type MetricCIs,
  percentileInterval,
  wilsonInterval,
} from "./bootstrap.ts";
import { calibrationBins, computeMetrics, type Metrics, prCurve, rocCurve } from "./metrics.ts";
import {
  chooseThreshold,
  type ChosenThreshold,
  parseThresholdMethod,
  type ThresholdMethod,
  thresholdSweep,
} from "./threshold.ts";
import {
  calibrationChart,
  confusionChart,
  prChart,
  rocChart,
  thresholdSweepChart,
  trainingCurves,
  type VlSpec,
} from "../charts/specs.ts";
import { writeChart } from "../charts/render.ts";
import { readJson } from "../util/fs.ts";
import { displayName } from "../models/registry.ts";
import { chartRef, predictionsFileName, RunFolder, splitKeyOf } from "../runs/mod.ts";

/** Re-exported: reporting and notebooks read run files through it. */
export { readJson, splitKeyOf };

/** One prediction as stored in `predictions-<split>.json`. */
export interface PredictionItem {
  rel: string;
  sha256?: string;
  patient?: string;
  label: 0 | 1;
  prob: number;
}

/** `predictions-<split>.json`. `source` says where images came from when not the run's data. */
export interface PredictionsFile {
  split: string;
  items: PredictionItem[];
  source?: PredictionsSource;
}

/** Where a predictions file's images came from (external sets carry their provenance). */
export interface PredictionsSource {
  dataRoot?: string;
  split?: string;
  createdAt?: string;
  /** External sets: the name given (--name) or the content hash's prefix. */
  name?: string;
  /** The labels CSV, for folders not in Kaggle layout. */
  labels?: string;
  /** Content hash of the set (lib/data/labelled.ts setHash). */
  sha256?: string;
  counts?: { n: number; positives: number; negatives: number; unreadable: number };
}

/** A split's difference from validation (split minus validation) with a 95% bootstrap CI. */
export type ShiftFromValidation = Record<
  "rocAuc" | "sensitivity" | "specificity",
  { delta: number; ci: [number, number] }
>;

/** The parts of config.json the evaluation reads (everything optional: older runs). */
export interface RunConfigView {
  runId?: string;
  net?: string;
  profile?: string;
  protocol?: string;
  thresholdMethod?: string;
  /** Absent in runs made before these options (then off and 0). */
  intensity?: string;
  augmentViews?: number;
  /** An ensemble's members (each carries its own preprocessing). */
  members?: { runId: string; net?: string; intensity?: string; augmentViews?: number }[];
  weights?: {
    choice?: string;
    source?: string;
    md5?: string;
    label?: string;
    isImageNet?: boolean;
  };
  data?: { root?: string; manifestSha256?: string; sha256?: string };
  split?: { protocol?: string; counts?: Record<string, number>; leaks?: unknown };
  backend?: string | { name?: string; detail?: string };
  gitCommit?: string;
  createdAt?: string;
}

/** Proportions that also get a Wilson interval (image-level; robust for tiny sets). */
export type WilsonMetric = "accuracy" | "sensitivity" | "specificity" | "ppv" | "npv";

/** Metrics and intervals of one split at the validation-chosen threshold. */
export interface SplitEvaluation {
  metrics: Metrics;
  ci: MetricCIs;
  wilson: Record<WilsonMetric, [number, number]>;
  /** "patient" when whole patients were resampled, "image" otherwise. */
  ciResampling: "patient" | "image";
  patients: number | null;
  predictionsFile: string;
  source?: PredictionsFile["source"];
  /** Every split but validation: the change from validation, with CIs. */
  fromValidation?: ShiftFromValidation;
}

/** `evaluation.json` (NaN metrics are written as null). */
export interface Evaluation {
  runId: string;
  net: string | null;
  threshold: {
    method: ThresholdMethod;
    value: number;
    val_sensitivity: number;
    val_specificity: number;
    /** The threshold profile applied: "validation" or "site:<name>" (lib/evaluation/profiles.ts). */
    profile: string;
    /** When a site profile was applied: the validation threshold it replaced here. */
    validation_value?: number;
  };
  splits: Record<string, SplitEvaluation>;
  notImageNet: boolean;
  weightsLabel: string;
  prAucDefinition: "average precision";
  bootstrap: { iterations: number; seed: number; level: 0.95 };
  /** Chart name -> path relative to the run directory, without extension (.svg and .png exist). */
  charts: Record<string, string>;
  createdAt: string;
}

export interface EvaluateOptions {
  /** Threshold method; default: config.json's thresholdMethod, else "sens95". */
  method?: ThresholdMethod;
  iterations?: number;
  seed?: number;
  /** Render charts (default true). */
  charts?: boolean;
  /** Apply this profile's threshold instead of the one chosen on validation now. */
  profile?: { name: string; value: number };
}

/** Load and validate a predictions file; errors name the file and the bad field. */
export async function loadPredictions(path: string): Promise<PredictionsFile> {
  const raw = await readJson<Partial<PredictionsFile>>(path);
  if (!raw || !Array.isArray(raw.items)) throw new Error(`${path}: missing "items" array`);
  raw.items.forEach((it, i) => {
    if (it.label !== 0 && it.label !== 1) {
      throw new Error(`${path}: items[${i}].label = ${JSON.stringify(it.label)}, expected 0 or 1`);
    }
    if (typeof it.prob !== "number" || !(it.prob >= 0 && it.prob <= 1)) {
      throw new Error(`${path}: items[${i}].prob = ${JSON.stringify(it.prob)}, expected [0, 1]`);
    }
  });
  if (raw.items.length === 0) throw new Error(`${path}: no predictions`);
  return { split: raw.split ?? splitKeyOf(path), items: raw.items, source: raw.source };
}

/** All `predictions-*.json` files of a run, val first, then test, then the rest by name. */
export function listPredictionFiles(runDir: string): Promise<Record<string, string>> {
  return new RunFolder(runDir).listPredictions();
}

function splitTitle(key: string): string {
  return key === "val" ? "validation" : key;
}

/** Evaluate one split at a fixed threshold, with patient-level CIs when patient ids exist. */
export function evaluateSplit(
  preds: PredictionsFile,
  threshold: number,
  opts: { iterations?: number; seed?: number; predictionsFile?: string } = {},
): SplitEvaluation {
  const labels = preds.items.map((it) => it.label);
  const probs = preds.items.map((it) => it.prob);
  const hasPatients = preds.items.every((it) => typeof it.patient === "string" && it.patient);
  const groups = hasPatients ? preds.items.map((it) => it.patient as string) : undefined;
  const metrics = computeMetrics(labels, probs, threshold);
  const { tp, fp, tn, fn } = metrics.confusion;
  return {
    metrics,
    wilson: {
      accuracy: wilsonInterval(tp + tn, metrics.n),
      sensitivity: wilsonInterval(tp, tp + fn),
      specificity: wilsonInterval(tn, tn + fp),
      ppv: wilsonInterval(tp, tp + fp),
      npv: wilsonInterval(tn, tn + fn),
    },
    ci: bootstrapCI(labels, probs, threshold, {
      groups,
      iterations: opts.iterations ?? 1000,
      seed: opts.seed ?? 42,
    }),
    ciResampling: groups ? "patient" : "image",
    patients: groups ? new Set(groups).size : null,
    predictionsFile: opts.predictionsFile ?? "",
    ...(preds.source ? { source: preds.source } : {}),
  };
}

function groupsOf(p: PredictionsFile): string[] | undefined {
  return p.items.every((it) => typeof it.patient === "string" && it.patient)
    ? p.items.map((it) => it.patient as string)
    : undefined;
}

/**
 * `other` minus validation for ROC-AUC, sensitivity and specificity at one threshold, with a
 * 95% CI from independent bootstraps of the two sets (patients resampled when known).
 */
export function shiftFromValidation(
  val: PredictionsFile,
  other: PredictionsFile,
  threshold: number,
  opts: { iterations?: number; seed?: number } = {},
): ShiftFromValidation {
  const dist = (p: PredictionsFile, seed: number) =>
    bootstrapDistribution(p.items.map((i) => i.label), p.items.map((i) => i.prob), threshold, {
      groups: groupsOf(p),
      iterations: opts.iterations ?? 1000,
      seed,
    });
  const seed = opts.seed ?? 42;
  const a = dist(val, seed);
  const b = dist(other, seed + 1);
  const ma = computeMetrics(val.items.map((i) => i.label), val.items.map((i) => i.prob), threshold);
  const mb = computeMetrics(
    other.items.map((i) => i.label),
    other.items.map((i) => i.prob),
    threshold,
  );
  const out = {} as ShiftFromValidation;
  for (const k of ["rocAuc", "sensitivity", "specificity"] as const) {
    const diff = a[k].map((x, i) => b[k][i] - x);
    out[k] = { delta: mb[k] - ma[k], ci: percentileInterval(diff) };
  }
  return out;
}

/** "threshold sens95 chosen on validation" or "threshold of profile site:x" (older files: no profile). */
export function thresholdLabel(t: { method: string; profile?: string }): string {
  return t.profile && t.profile !== "validation"
    ? `threshold of profile ${t.profile}`
    : `threshold ${t.method} chosen on validation`;
}

/** Title suffix that keeps "not ImageNet" next to every number drawn. */
export function weightsTag(config: RunConfigView | null): { notImageNet: boolean; label: string } {
  const w = config?.weights;
  const notImageNet = w?.isImageNet !== true;
  const label = w?.label ?? (w?.choice ? `${w.choice}` : "unknown weights");
  return {
    notImageNet,
    label: notImageNet && !/not ImageNet/i.test(label) ? `${label} (not ImageNet)` : label,
  };
}

/** Read config.json of a run, or null when absent. */
export function readRunConfig(runDir: string): Promise<RunConfigView | null> {
  return new RunFolder(runDir).readConfig<RunConfigView>();
}

/** The operating threshold chosen on validation predictions (never on test). */
export function thresholdOnValidation(
  val: PredictionsFile,
  method: ThresholdMethod,
): ChosenThreshold {
  return chooseThreshold(val.items.map((i) => i.label), val.items.map((i) => i.prob), method);
}

/** Evaluate a run directory and write evaluation.json (+ charts). */
export async function evaluateRun(runDir: string, opts: EvaluateOptions = {}): Promise<Evaluation> {
  const config = await readRunConfig(runDir);
  const method = opts.method ??
    (config?.thresholdMethod ? parseThresholdMethod(config.thresholdMethod) : "sens95");
  const files = await listPredictionFiles(runDir);
  if (!files.val) {
    throw new Error(
      `no ${
        predictionsFileName("val")
      } in ${runDir}: the threshold is chosen on validation, so it is required`,
    );
  }
  const preds: Record<string, PredictionsFile> = {};
  for (const [key, path] of Object.entries(files)) preds[key] = await loadPredictions(path);
  const val = preds.val;
  const valLabels = val.items.map((i) => i.label);
  const valProbs = val.items.map((i) => i.prob);
  const chosen = thresholdOnValidation(val, method);
  const threshold = opts.profile?.value ?? chosen.value;
  const atThreshold = computeMetrics(valLabels, valProbs, threshold);
  const iterations = opts.iterations ?? 1000;
  const seed = opts.seed ?? 42;
  const splits: Record<string, SplitEvaluation> = {};
  for (const [key, p] of Object.entries(preds)) {
    splits[key] = evaluateSplit(p, threshold, {
      iterations,
      seed,
      predictionsFile: basename(files[key]),
    });
    if (key !== "val") {
      splits[key].fromValidation = shiftFromValidation(val, p, threshold, { iterations, seed });
    }
  }
  const tag = weightsTag(config);
  const runId = config?.runId ?? basename(runDir);
  const evaluation: Evaluation = {
    runId,
    net: config?.net ?? null,
    threshold: {
      method,
      value: threshold,
      val_sensitivity: atThreshold.sensitivity,
      val_specificity: atThreshold.specificity,
      profile: opts.profile?.name ?? "validation",
      ...(opts.profile ? { validation_value: chosen.value } : {}),
    },
    splits,
    notImageNet: tag.notImageNet,
    weightsLabel: tag.label,
    prAucDefinition: "average precision",
    bootstrap: { iterations, seed, level: 0.95 },
    charts: {},
    createdAt: new Date().toISOString(),
  };
  if (opts.charts ?? true) {
    evaluation.charts = await writeRunCharts(runDir, evaluation, preds, config);
  }
  await new RunFolder(runDir).writeEvaluation(evaluation);
  return evaluation;
}

/** Build every chart spec of a run (also used by notebooks to display them inline). */
export async function runChartSpecs(
  runDir: string,
  evaluation: Evaluation,
  preds: Record<string, PredictionsFile>,
  config: RunConfigView | null,
): Promise<Record<string, VlSpec>> {
  const model = displayName(evaluation.net ?? config?.net);
  const suffix = evaluation.notImageNet ? ` — ${evaluation.weightsLabel}` : "";
  const t = evaluation.threshold;
  const specs: Record<string, VlSpec> = {};
  const history = await new RunFolder(runDir).readHistory();
  if (history?.length) {
    specs.training = trainingCurves(history, {
      title: `${model}: training vs validation${suffix}`,
    });
  }
  const rocSeries = [];
  const prSeries = [];
  const rocPoints = [];
  const prPoints = [];
  const calib = [];
  for (const [key, p] of Object.entries(preds)) {
    const labels = p.items.map((i) => i.label);
    const probs = p.items.map((i) => i.prob);
    const m = evaluation.splits[key].metrics;
    const name = `${splitTitle(key)} (n=${m.n})`;
    calib.push({ name, bins: calibrationBins(labels, probs) });
    if (m.positives === 0 || m.negatives === 0) continue; // no curve with one class
    const roc = rocCurve(labels, probs);
    const pr = prCurve(labels, probs);
    rocSeries.push({ name, fpr: roc.fpr, tpr: roc.tpr, auc: m.rocAuc });
    prSeries.push({ name, precision: pr.precision, recall: pr.recall, ap: m.prAuc });
    rocPoints.push({
      fpr: 1 - m.specificity,
      tpr: m.sensitivity,
      label: `${splitTitle(key)} @ ${t.value.toFixed(3)}`,
    });
    if (Number.isFinite(m.ppv)) {
      prPoints.push({
        recall: m.sensitivity,
        precision: m.ppv,
        label: `${splitTitle(key)} @ ${t.value.toFixed(3)}`,
      });
    }
  }
  if (rocSeries.length) {
    specs.roc = rocChart(rocSeries, {
      title: `${model}: ROC — ${thresholdLabel(t)}${suffix ? ";" + suffix.slice(2) : ""}`,
      operatingPoints: rocPoints,
    });
    const ref = evaluation.splits.test ?? evaluation.splits.val;
    specs.pr = prChart(prSeries, {
      title: `${model}: precision-recall${suffix}`,
      prevalence: ref.metrics.positives / ref.metrics.n,
      operatingPoints: prPoints,
    });
  }
  for (const [key, s] of Object.entries(evaluation.splits)) {
    specs[`confusion-${key}`] = confusionChart(s.metrics.confusion, {
      title: `${model}: ${splitTitle(key)}, threshold ${t.value.toFixed(3)} (${
        t.profile && t.profile !== "validation" ? t.profile : t.method
      })`,
    });
  }
  specs.calibration = calibrationChart(calib, { title: `${model}: calibration${suffix}` });
  specs["threshold-sweep"] = thresholdSweepChart(
    thresholdSweep(preds.val.items.map((i) => i.label), preds.val.items.map((i) => i.prob)),
    {
      title: `${model}: validation sensitivity/specificity vs threshold`,
      chosen: { value: t.value, method: t.method },
    },
  );
  return specs;
}

async function writeRunCharts(
  runDir: string,
  evaluation: Evaluation,
  preds: Record<string, PredictionsFile>,
  config: RunConfigView | null,
): Promise<Record<string, string>> {
  const run = new RunFolder(runDir);
  await Deno.mkdir(run.chartsDir, { recursive: true });
  const specs = await runChartSpecs(runDir, evaluation, preds, config);
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) {
    await writeChart(spec, run.chartStem(name));
    await Deno.writeTextFile(run.chartSpecPath(name), JSON.stringify(spec));
    out[name] = chartRef(name);
  }
  return out;
}
