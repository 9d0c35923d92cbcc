/**
 * The story around training in the three teaching notebooks, each one call that returns
 * something to look at: settings, the data and its imbalance, preprocessing, then (after the
 * training steps of lib/training, shown by ./training.ts) the clinical evaluation, Grad-CAM,
 * the MLflow record and a reading of the numbers.
 */
import sharp from "sharp";
import { join } from "node:path";
import { countByClass, type ImageItem, scanDataset, SPLITS } from "../data/dataset.ts";
import { leakCount, makeSplits, type SplitProtocol, type Splits } from "../data/splits.ts";
import { decodeImage } from "../data/images.ts";
import { NET_INFO } from "../models/registry.ts";
import { getNetSpec } from "../models/registry.ts";
import { preprocessInput } from "../models/preprocess.ts";
import type { NetName } from "../models/spec.ts";
import { vegaDisplayWithSvg } from "../charts/render.ts";
import type { VlSpec } from "../charts/specs.ts";
import {
  evaluateRun,
  type Evaluation,
  listPredictionFiles,
  loadPredictions,
  type PredictionsFile,
  readRunConfig,
  runChartSpecs,
} from "../evaluation/evaluate.ts";
import { RunFolder } from "../runs/mod.ts";
import { writeGradcamExamples } from "../reporting/gradcam_examples.ts";
import { dataDir, outputsDir, resolveUserPath } from "../util/paths.ts";
import { DEFAULT_INTENSITY, type IntensityMode, parseIntensityMode } from "../data/intensity.ts";
import { PROFILES } from "../training/config.ts";
import { redactUri } from "../tracking/uri.ts";
import { type Displayable, esc, html, imageGrid, markdown, show, table } from "./display.ts";

/** What a reader changes in a notebook's first cell; CXR_* variables override the defaults. */
export interface NotebookSettings {
  net: NetName;
  /** "quick": small stratified subset, a few epochs (≤ 3 min here); "full": all of train. */
  profile: "quick" | "full";
  /** Kaggle-layout chest_xray folder. */
  data: string;
  /** "imagenet" (Keras' files), "formula" or "none" (not ImageNet), or a .h5 path. */
  weights: string;
  /** MLflow tracking URI; "" = the server-less file store outputs/mlruns; "off" = no tracking. */
  mlflow: string;
  protocol: SplitProtocol;
  /** Intensity normalisation: "off" | "equalize" | "clahe" (lib/data/intensity.ts). */
  intensity?: IntensityMode;
  /** Augmented views per training image, cached through the frozen base (0: none; unset: the
   * profile's default). */
  augmentViews?: number;
}

function optionalNumber(v: string | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

function env(name: string): string | undefined {
  const v = Deno.env.get(name);
  return v === undefined || v === "" ? undefined : v;
}

/** Settings for `net`, from CXR_PROFILE, CXR_DATA, CXR_WEIGHTS, MLFLOW_TRACKING_URI, CXR_PROTOCOL. */
export function notebookSettings(
  net: NetName,
  defaults: Partial<Omit<NotebookSettings, "net">> = {},
): NotebookSettings {
  const profile = env("CXR_PROFILE") ?? defaults.profile ?? "quick";
  if (profile !== "quick" && profile !== "full") {
    throw new Error(`CXR_PROFILE must be quick or full, got '${profile}'`);
  }
  const protocol = env("CXR_PROTOCOL") ?? defaults.protocol ?? "patient";
  if (protocol !== "patient" && protocol !== "seed") {
    throw new Error(`CXR_PROTOCOL must be patient or seed, got '${protocol}'`);
  }
  const mlflow = env("MLFLOW_TRACKING_URI") ?? defaults.mlflow ?? "";
  // Training opens its tracker from the environment: a URL set in the notebook goes there.
  if (mlflow !== "" && mlflow !== "off") Deno.env.set("MLFLOW_TRACKING_URI", mlflow);
  return {
    net,
    profile,
    data: resolveUserPath(env("CXR_DATA") ?? defaults.data ?? dataDir()),
    weights: env("CXR_WEIGHTS") ?? defaults.weights ?? "imagenet",
    mlflow,
    protocol,
    intensity: parseIntensityMode(
      env("CXR_INTENSITY") ?? defaults.intensity ?? DEFAULT_INTENSITY,
      "CXR_INTENSITY",
    ),
    // Unset: the profile's default (lib/training/config.ts PROFILES).
    augmentViews: optionalNumber(env("CXR_AUGMENT_VIEWS")) ?? defaults.augmentViews,
  };
}

/** The settings as a small table (printed at the top of each notebook). */
export function settingsView(s: NotebookSettings): Displayable {
  const notImageNet = s.weights !== "imagenet";
  return table([
    ["setting", "value"],
    ["net", NET_INFO[s.net].displayName],
    ["profile", s.profile],
    ["data", s.data],
    ["weights", notImageNet ? `${s.weights} (not ImageNet)` : "imagenet (Keras)"],
    ["split protocol", s.protocol],
    ["intensity normalisation", s.intensity ?? DEFAULT_INTENSITY],
    [
      "augmented views per image",
      s.augmentViews ?? `${PROFILES[s.profile].augmentViews} (the ${s.profile} profile's)`,
    ],
    [
      "MLflow",
      s.mlflow === "" ? `file store ${join(outputsDir(), "mlruns")}` : redactUri(s.mlflow),
    ],
  ], "Settings");
}

export interface DataOverview {
  splits: Splits;
  items: ImageItem[];
  missingSplits: string[];
  view: Displayable[];
}

/** Scans the data, makes the split protocol's splits and shows counts, patients and imbalance. */
export async function exploreData(s: NotebookSettings): Promise<DataOverview> {
  const ds = await scanDataset(s.data);
  const splits = makeSplits(ds.items, { protocol: s.protocol });
  const official = countByClass(ds.items);
  const rows: unknown[][] = [["split", "NORMAL", "PNEUMONIA", "patients", "PNEUMONIA : NORMAL"]];
  const chartValues: { split: string; class: string; images: number }[] = [];
  for (const split of SPLITS) {
    const items = splits[split];
    const normal = items.filter((i) => i.label === 0).length;
    const pneu = items.length - normal;
    const patients = new Set(items.map((i) => i.patient)).size;
    rows.push([
      `${split} (${s.protocol})`,
      normal,
      pneu,
      patients,
      normal ? `${(pneu / normal).toFixed(2)} : 1` : "–",
    ]);
    chartValues.push({ split, class: "NORMAL", images: normal });
    chartValues.push({ split, class: "PNEUMONIA", images: pneu });
  }
  const [on, op] = official.train;
  const notes = [
    `Official train folder: ${on} NORMAL / ${op} PNEUMONIA (${
      (op / Math.max(on, 1)).toFixed(2)
    } : 1).`,
    ds.missingSplits.length
      ? `Absent on disk: ${ds.missingSplits.join(", ")} (reported, the rest still works).`
      : "All three official splits are present.",
    `Patients shared across splits: ${leakCount(splits)}.`,
    ...splits.notes,
  ];
  const chart: VlSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: "Images per class and split",
    data: { values: chartValues },
    mark: "bar",
    encoding: {
      x: { field: "split", type: "nominal", sort: [...SPLITS] },
      xOffset: { field: "class" },
      y: { field: "images", type: "quantitative" },
      color: {
        field: "class",
        type: "nominal",
        scale: { range: ["#1f77b4", "#d62728"] },
      },
      tooltip: [{ field: "split" }, { field: "class" }, { field: "images" }],
    },
    width: 300,
    height: 200,
  };
  return {
    splits,
    items: ds.items,
    missingSplits: ds.missingSplits,
    view: [
      table(rows, "Images and patients per split"),
      markdown(notes.map((n) => `- ${n}`).join("\n")),
      await vegaDisplayWithSvg(chart),
    ],
  };
}

async function toPng(rgb: Float32Array, size: number): Promise<Uint8Array> {
  const bytes = Uint8Array.from(rgb, (v) => Math.max(0, Math.min(255, Math.round(v))));
  return new Uint8Array(
    await sharp(bytes, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer(),
  );
}

/** A few example X-rays per class (seeded pick), shown as a captioned grid. */
export async function exampleImages(
  items: ImageItem[],
  opts: { perClass?: number; seed?: number } = {},
): Promise<Displayable> {
  const per = opts.perClass ?? 4;
  const picked: ImageItem[] = [];
  for (const label of [0, 1]) {
    const cls = items.filter((i) => i.label === label);
    const step = Math.max(1, Math.floor(cls.length / per));
    const offset = (opts.seed ?? 7) % step;
    for (let k = 0; k < per && offset + k * step < cls.length; k++) {
      picked.push(cls[offset + k * step]);
    }
  }
  const images = [];
  for (const item of picked) {
    const img = await decodeImage(item.path);
    images.push({
      png: await toPng(img.data, 224),
      caption: `${item.className} · ${item.patient}`,
    });
  }
  return imageGrid(images, { width: 160, title: "Examples (224x224 as the nets see them)" });
}

/** Per-channel statistics of one image before and after the net's preprocess_input. */
export async function preprocessingView(net: NetName, item: ImageItem): Promise<Displayable> {
  const spec = getNetSpec(net);
  const img = await decodeImage(item.path);
  const pre = preprocessInput(img.data, spec.preprocessing);
  const stats = (a: Float32Array, c: number) => {
    let min = Infinity, max = -Infinity, sum = 0;
    for (let i = c; i < a.length; i += 3) {
      min = Math.min(min, a[i]);
      max = Math.max(max, a[i]);
      sum += a[i];
    }
    return [min, sum / (a.length / 3), max].map((v) => Number(v.toFixed(3)));
  };
  const inNames = ["R", "G", "B"];
  const outNames = spec.preprocessing === "caffe" ? ["B", "G", "R"] : ["R", "G", "B"];
  const rows: unknown[][] = [["tensor", "channel", "min", "mean", "max"]];
  for (let c = 0; c < 3; c++) rows.push(["input (0..255)", inNames[c], ...stats(img.data, c)]);
  for (let c = 0; c < 3; c++) {
    rows.push([`after '${spec.preprocessing}'`, outNames[c], ...stats(pre, c)]);
  }
  return table(rows, `${item.rel} through ${NET_INFO[net].displayName}'s preprocess_input`);
}

async function predictions(runDir: string): Promise<Record<string, PredictionsFile>> {
  const files = await listPredictionFiles(runDir);
  const out: Record<string, PredictionsFile> = {};
  for (const [k, p] of Object.entries(files)) out[k] = await loadPredictions(p);
  return out;
}

function fmtMetric(v: number | null | undefined, ci?: [number, number]): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return "n/a";
  const c = ci && Number.isFinite(ci[0]) ? ` [${ci[0].toFixed(3)}–${ci[1].toFixed(3)}]` : "";
  return `${v.toFixed(3)}${c}`;
}

/** Metrics with 95% CIs at the validation-chosen threshold, then the clinical charts. */
export async function evaluationView(runDir: string): Promise<Displayable[]> {
  const evaluation = await evaluateRun(runDir);
  const t = evaluation.threshold;
  const keys = [
    ["accuracy", "accuracy"],
    ["rocAuc", "ROC-AUC"],
    ["prAuc", "PR-AUC (AP)"],
    ["sensitivity", "sensitivity"],
    ["specificity", "specificity"],
    ["ppv", "PPV"],
    ["npv", "NPV"],
    ["f1", "F1"],
    ["brier", "Brier"],
    ["loss", "loss"],
  ] as const;
  const splitKeys = Object.keys(evaluation.splits);
  const rows: unknown[][] = [["metric", ...splitKeys.map((k) => k === "val" ? "validation" : k)]];
  for (const [key, name] of keys) {
    rows.push([
      name,
      ...splitKeys.map((k) =>
        fmtMetric(evaluation.splits[k].metrics[key], evaluation.splits[k].ci?.[key])
      ),
    ]);
  }
  for (const k of splitKeys) {
    const c = evaluation.splits[k].metrics.confusion;
    rows.push([
      `confusion (${k})`,
      ...splitKeys.map((kk) => kk === k ? `TP ${c.tp} FP ${c.fp} TN ${c.tn} FN ${c.fn}` : ""),
    ]);
  }
  const label = evaluation.notImageNet ? ` — ${evaluation.weightsLabel}` : "";
  const specs = await runChartSpecs(
    runDir,
    evaluation,
    await predictions(runDir),
    await readRunConfig(runDir),
  );
  const charts: Displayable[] = [];
  for (
    const name of ["confusion", "roc", "pr", "calibration"]
  ) {
    const found = Object.keys(specs).filter((k) => k === name || k.startsWith(`${name}-`));
    for (const k of found) charts.push(await vegaDisplayWithSvg(specs[k]));
  }
  return [
    markdown(
      `**Threshold** ${t.value.toFixed(3)} (${t.method}), chosen on validation ` +
        `(sensitivity ${t.val_sensitivity.toFixed(3)}, specificity ${
          t.val_specificity.toFixed(3)
        }) ` +
        `and applied unchanged to test.${label ? ` Weights: **${evaluation.weightsLabel}**.` : ""}`,
    ),
    table(rows, `95% bootstrap CIs (${evaluation.bootstrap.iterations} resamples)${label}`),
    ...charts,
  ];
}

/** Grad-CAM overlays for the most confident right and wrong cases of each class. */
export async function gradcamView(
  runDir: string,
  opts: { perCase?: number } = {},
): Promise<Displayable> {
  await writeGradcamExamples(runDir, { perCase: opts.perCase ?? 2 });
  const run = new RunFolder(runDir);
  const index = await run.readGradcamIndex();
  if (!index) throw new Error(`no ${run.gradcamIndexPath}`);
  const images = [];
  for (const e of index.items) {
    images.push({ png: await Deno.readFile(join(run.gradcamDir, e.file)), caption: e.caption });
  }
  return imageGrid(images, {
    width: 170,
    title: "Grad-CAM: where the evidence for the predicted class lies",
  });
}

/** Where the run was logged and how to look at it in MLflow's UI. */
export async function mlflowView(runDir: string): Promise<Displayable> {
  const run: { mlflowRunId?: string; mlflowUri?: string } =
    await new RunFolder(runDir).readStatus() ?? {};
  const store = join(outputsDir(), "mlruns");
  const uri = redactUri(run.mlflowUri ?? (Deno.env.get("MLFLOW_TRACKING_URI") || store));
  return markdown(
    run.mlflowRunId
      ? `Logged to MLflow run \`${run.mlflowRunId}\` at \`${uri}\` (params, per-epoch metrics, ` +
        `charts, evaluation and the ONNX model). Browse it with ` +
        `\`mlflow ui --backend-store-uri ${store}\` when using the file store.`
      : "This run was not logged to MLflow (tracking off).",
  );
}

/** A short, honest reading of the run's numbers (all computed from the run). */
export async function readingView(runDir: string): Promise<Displayable> {
  const run = new RunFolder(runDir);
  const evaluation = await run.readEvaluation<Evaluation>();
  if (!evaluation) throw new Error(`no ${run.evaluationPath}: evaluate the run first`);
  const config = await readRunConfig(runDir);
  const val = evaluation.splits.val?.metrics;
  const test = evaluation.splits.test?.metrics;
  const lines = [
    val
      ? `- Validation (${config?.split?.protocol ?? "patient"} protocol, n=${val.n}): ROC-AUC ${
        val.rocAuc.toFixed(3)
      }, sensitivity ${val.sensitivity.toFixed(3)}, specificity ${val.specificity.toFixed(3)}.`
      : "- No validation predictions.",
    test
      ? `- Test (n=${test.n}): ROC-AUC ${test.rocAuc.toFixed(3)}, accuracy ${
        test.accuracy.toFixed(3)
      }.`
      : "- No test split here: validation figures are **not** test figures; these images chose " +
        "the stopping epoch and the threshold and come from the same source as the training " +
        "images, so expect lower numbers on an independent test set.",
    evaluation.notImageNet
      ? `- Weights: **${evaluation.weightsLabel}** — these numbers say the pipeline works, not ` +
        "what ImageNet transfer learning reaches."
      : "- Weights: ImageNet (Keras).",
    val
      ? `- PNEUMONIA is ${(100 * val.positives / val.n).toFixed(0)}% of validation: accuracy ` +
        "alone flatters a model that leans to PNEUMONIA; read sensitivity (missed pneumonias are " +
        "the costly error) with specificity."
      : "",
  ].filter(Boolean);
  return markdown(lines.join("\n"));
}

export { esc, html, markdown, show, table };
