/**
 * The comparison report (`outputs/report.md` + self-contained `outputs/report.html`): a table
 * like the original README's plus sensitivity/specificity with CIs, the operating point, the
 * provenance (split protocol, data and weights hashes, backend), per-model charts, Grad-CAM
 * examples when the runs have them, and an honest reading of what the numbers can tell.
 */
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import {
  evaluateRun,
  type Evaluation,
  listPredictionFiles,
  loadPredictions,
  readRunConfig,
  type RunConfigView,
  type SplitEvaluation,
  thresholdLabel,
  type WilsonMetric,
} from "../evaluation/evaluate.ts";
import { externalBlocks, profileBlocks, robustnessBlocks } from "./site_sections.ts";
import { wilsonInterval } from "../evaluation/bootstrap.ts";
import { type PairedComparison, pairedComparison, verdict } from "../evaluation/paired.ts";
import { displayName } from "../models/registry.ts";
import { comparisonChart, type ComparisonRow } from "../charts/specs.ts";
import { renderSvg, svgToPng } from "../charts/render.ts";
import { type Block, type Figure, toHtml, toMarkdown } from "./document.ts";
import { outputsDir, runsDir } from "../util/paths.ts";
import { exists } from "../util/fs.ts";
import { RunFolder } from "../runs/mod.ts";

/** Everything the report needs about one run. */
export interface RunSummary {
  runDir: string;
  runId: string;
  model: string;
  config: RunConfigView | null;
  evaluation: Evaluation;
  /** sha256 over the sorted image hashes (or paths) of each evaluated split. */
  imagesHash: Record<string, string>;
  gradcam: { file: string; caption: string }[];
}

export interface ReportOptions {
  runDirs: string[];
  /** Folder for report.md, report.html and report_files/ (default outputs/). */
  outDir?: string;
  /** Re-run evaluateRun even when evaluation.json exists (default: only when missing). */
  reevaluate?: boolean;
  title?: string;
}

/** NaN-safe number formatting (evaluation.json stores NaN as null). */
function num(v: number | null | undefined, digits = 3): string {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "n/a";
}

function pct(v: number | null | undefined, digits = 1): string {
  return typeof v === "number" && Number.isFinite(v) ? `${(100 * v).toFixed(digits)}%` : "n/a";
}

function withCi(
  s: SplitEvaluation,
  key:
    | "accuracy"
    | "rocAuc"
    | "prAuc"
    | "sensitivity"
    | "specificity"
    | "ppv"
    | "npv"
    | "f1"
    | "brier"
    | "loss",
  asPct: boolean,
): string {
  const v = s.metrics[key];
  const ci = s.ci?.[key];
  const f = (x: number | null | undefined) => asPct ? pct(x) : num(x);
  const lo = ci?.[0], hi = ci?.[1];
  const hasCi = typeof lo === "number" && Number.isFinite(lo) && typeof hi === "number" &&
    Number.isFinite(hi);
  // A percentile bootstrap collapses to a point when every resample agrees (e.g. 16/16
  // correct); a Wilson interval still says how little a small set shows.
  const w = s.wilson?.[key as WilsonMetric];
  if (hasCi && hi - lo < 1e-9 && w && Number.isFinite(w[0])) {
    return `${f(v)} [${f(w[0])}–${f(w[1])}]ᵂ`;
  }
  return hasCi ? `${f(v)} [${f(lo)}–${f(hi)}]` : f(v);
}

function splitName(key: string): string {
  return key === "val" ? "validation" : key;
}

function backendOf(config: RunConfigView | null): string {
  const b = config?.backend;
  if (!b) return "unknown";
  return typeof b === "string" ? b : b.name ?? "unknown";
}

function protocolOf(config: RunConfigView | null): string {
  const p = config?.split?.protocol ?? config?.protocol;
  if (!p) return "unknown";
  return p === "seed"
    ? "seed (original: official test folder as val, official val folder as test)"
    : p === "patient"
    ? "patient-disjoint val from train"
    : p;
}

/** Load a run (evaluating it first when evaluation.json is missing). */
export async function summarizeRun(runDir: string, reevaluate = false): Promise<RunSummary> {
  const saved = reevaluate ? null : await new RunFolder(runDir).readEvaluation<Evaluation>();
  const evaluation = saved ?? await evaluateRun(runDir);
  const config = await readRunConfig(runDir);
  const imagesHash: Record<string, string> = {};
  for (const [key, path] of Object.entries(await listPredictionFiles(runDir))) {
    const preds = await loadPredictions(path);
    const ids = preds.items.map((i) => i.sha256 ?? i.rel).sort();
    imagesHash[key] = createHash("sha256").update(ids.join("\n")).digest("hex");
  }
  return {
    runDir,
    runId: evaluation.runId,
    model: displayName(evaluation.net ?? config?.net),
    config,
    evaluation,
    imagesHash,
    gradcam: await listGradcam(runDir),
  };
}

/** Grad-CAM overlays of a run: gradcam/index.json captions when present, else file names. */
export async function listGradcam(runDir: string): Promise<{ file: string; caption: string }[]> {
  const run = new RunFolder(runDir);
  const dir = run.gradcamDir;
  if (!(await exists(dir))) return [];
  const captions = new Map<string, string>();
  const index = await run.readGradcamIndex();
  for (const it of index?.items ?? []) if (it.caption) captions.set(it.file, it.caption);
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.toLowerCase().endsWith(".png")) files.push(e.name);
  }
  files.sort();
  return files.map((f) => ({
    file: join(dir, f),
    caption: captions.get(f) ?? f.replace(/\.png$/i, "").replace(/[_-]+/g, " "),
  }));
}

/** For each net, the most recent finished run in outputs/runs (by run.json finishedAt). */
export async function latestRunsPerNet(root = runsDir()): Promise<string[]> {
  if (!(await exists(root))) return [];
  const best = new Map<string, { dir: string; at: string }>();
  for await (const e of Deno.readDir(root)) {
    if (!e.isDirectory) continue;
    const dir = join(root, e.name);
    const folder = new RunFolder(dir);
    if (!(await exists(folder.predictionsPath("val")))) continue;
    const run = await folder.readStatus();
    if (run?.status !== "finished") continue;
    const config = await readRunConfig(dir);
    const net = config?.net ?? e.name.split("-")[0];
    const at = run.finishedAt ?? run.startedAt ?? "";
    const prev = best.get(net);
    if (!prev || at > prev.at) best.set(net, { dir, at });
  }
  const order = ["vgg16", "resnet50", "densenet121", "ensemble"];
  return [...best.entries()]
    .sort((a, b) => (order.indexOf(a[0]) + 1 || 99) - (order.indexOf(b[0]) + 1 || 99))
    .map(([, v]) => v.dir);
}

/** The split a run is compared on: test when it exists, else validation (flagged). */
function primarySplit(r: RunSummary): string {
  return r.evaluation.splits.test ? "test" : "val";
}

function modelLabel(r: RunSummary): string {
  return r.evaluation.notImageNet ? `${r.model} ⚠ not ImageNet` : r.model;
}

function readingBullets(runs: RunSummary[]): string[] {
  const out: string[] = [];
  const shares = runs.map((r) => {
    const key = primarySplit(r);
    const m = r.evaluation.splits[key].metrics;
    return `${r.model} ${splitName(key)} ${pct(m.positives / m.n)} of ${m.n}`;
  });
  out.push(
    `**Class imbalance**: PNEUMONIA share ${shares.join("; ")}. A model that always answers ` +
      `PNEUMONIA scores that share as accuracy with 0% specificity: read sensitivity and ` +
      `specificity, not accuracy alone.`,
  );
  const noTest = runs.filter((r) => !r.evaluation.splits.test);
  if (noTest.length) {
    out.push(
      `**Validation is not test**: ${noTest.map((r) => r.model).join(", ")} ha${
        noTest.length > 1 ? "ve" : "s"
      } no test predictions, so the numbers shown for ${
        noTest.length > 1 ? "them" : "it"
      } are validation numbers. ` +
        `The validation images were used to stop training and to choose the threshold, and ` +
        `they come from the same source as the training images: expect lower numbers on an ` +
        `independent test set.`,
    );
  }
  for (const r of runs) {
    const t = r.evaluation.threshold;
    const test = r.evaluation.splits.test;
    if (test) {
      out.push(
        `**Operating point (${r.model})**: threshold ${num(t.value)} chosen on validation ` +
          `(${t.method}: sensitivity ${pct(t.val_sensitivity)}, specificity ` +
          `${pct(t.val_specificity)} there) and applied unchanged to test, where it gives ` +
          `sensitivity ${pct(test.metrics.sensitivity)} and specificity ` +
          `${pct(test.metrics.specificity)}.`,
      );
    }
  }
  const small = runs.flatMap((r) =>
    Object.entries(r.evaluation.splits)
      .filter(([, s]) => s.metrics.n <= 50)
      .map(([k, s]) => ({ r, k, s }))
  );
  for (const { r, k, s } of small) {
    const correct = s.metrics.confusion.tp + s.metrics.confusion.tn;
    const [lo, hi] = wilsonInterval(correct, s.metrics.n);
    out.push(
      `**Small ${splitName(k)} set (${r.model}, n = ${s.metrics.n})**: one image moves accuracy ` +
        `by ${pct(1 / s.metrics.n)}; ${correct}/${s.metrics.n} correct has a 95% Wilson interval ` +
        `of ${pct(lo)}–${pct(hi)}. Such a set can reveal a broken model, not rank good ones.`,
    );
  }
  for (const r of runs.filter((r) => r.config?.net === "ensemble")) {
    const c = r.config as { combine?: string; members?: { net?: string }[] };
    out.push(
      `**${r.model}** (\`${r.runId}\`): the ${
        c.combine === "logit" ? "sigmoid of the mean logit" : "mean probability"
      } of ${(c.members ?? []).map((m) => displayName(m.net)).join(", ")}, with its own ` +
        `threshold chosen on the combined validation scores only.`,
    );
  }
  const notImageNet = runs.filter((r) => r.evaluation.notImageNet);
  if (notImageNet.length) {
    out.push(
      `**Not ImageNet**: ${
        notImageNet.map((r) => `${r.model} (${r.evaluation.weightsLabel})`).join(", ")
      } started from non-ImageNet weights. Their numbers test the pipeline, not the transfer ` +
        `learning method, and are not comparable with the original project's figures.`,
    );
  }
  const clustered = runs.some((r) =>
    Object.values(r.evaluation.splits).some((s) => s.ciResampling === "patient")
  );
  out.push(
    `**Confidence intervals**: 95% percentile bootstrap (${
      runs[0]?.evaluation.bootstrap.iterations ?? 1000
    } resamples, seeded) at the fixed threshold` +
      (clustered
        ? `, resampling whole patients, because images of one patient are not independent.`
        : `, resampling images.`),
  );
  return out;
}

async function chartFigure(
  runDir: string,
  rel: string,
  caption: string,
  outDir: string,
): Promise<Figure | null> {
  const svgPath = join(runDir, `${rel}.svg`);
  const pngPath = join(runDir, `${rel}.png`);
  if (!(await exists(svgPath))) return null;
  return {
    caption,
    mdPath: relative(outDir, (await exists(pngPath)) ? pngPath : svgPath),
    content: await Deno.readTextFile(svgPath),
    mime: "image/svg+xml",
  };
}

const CHART_CAPTIONS: Record<string, string> = {
  training:
    "Training curves: loss, accuracy and AUC, train vs validation (dashed: fine-tuning starts)",
  roc: "ROC curves with the operating point",
  pr: "Precision-recall (PR-AUC = average precision)",
  calibration: "Calibration (reliability) plot",
  "threshold-sweep": "Sensitivity and specificity vs threshold on validation",
};

/** The split two runs are compared on: test when both have it, else validation, else none. */
function commonSplit(a: RunSummary, b: RunSummary): string | null {
  for (const key of ["test", "val"]) {
    if (a.evaluation.splits[key] && b.evaluation.splits[key]) return key;
  }
  return null;
}

function signed(v: number, asPct: boolean): string {
  if (!Number.isFinite(v)) return "n/a";
  const digits = asPct ? 1 : 3;
  const x = Number((asPct ? 100 * v : v).toFixed(digits));
  const s = `${Math.abs(x).toFixed(digits)}${asPct ? " pts" : ""}`;
  return x > 0 ? `+${s}` : x < 0 ? `−${s}` : s;
}

function deltaCell(d: PairedComparison["deltas"]["rocAuc"], asPct: boolean): string {
  const v = verdict(d);
  const mark = v === "no difference shown" ? "" : " ✱";
  return `${signed(d.delta, asPct)} [${signed(d.ci[0], asPct)}, ${signed(d.ci[1], asPct)}]${mark}`;
}

/**
 * "Paired comparison": every pair of runs on the images both evaluated (test when both have it),
 * B - A with paired patient-bootstrap CIs, so a ranking is a tested claim.
 */
async function pairedBlocks(runs: RunSummary[]): Promise<Block[]> {
  if (runs.length < 2) return [];
  const rows: string[][] = [];
  const claims: string[] = [];
  const skipped: string[] = [];
  for (let i = 0; i < runs.length; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const [a, b] = [runs[i], runs[j]];
      const key = commonSplit(a, b);
      if (!key) continue;
      const load = async (r: RunSummary) =>
        (await loadPredictions((await listPredictionFiles(r.runDir))[key])).items;
      let cmp: PairedComparison;
      try {
        cmp = pairedComparison(
          await load(a),
          await load(b),
          a.evaluation.threshold.value,
          b.evaluation.threshold.value,
          { iterations: a.evaluation.bootstrap.iterations, seed: a.evaluation.bootstrap.seed },
        );
      } catch (e) {
        skipped.push(`${b.model} vs ${a.model}: ${(e as Error).message}`);
        continue;
      }
      const d = cmp.deltas;
      rows.push([
        `**${b.model}** − **${a.model}**`,
        `${splitName(key)} (${cmp.n} images${cmp.patients ? `, ${cmp.patients} patients` : ""})`,
        `${a.config?.profile ?? "?"} / ${b.config?.profile ?? "?"}`,
        deltaCell(d.rocAuc, false),
        deltaCell(d.sensitivity, true),
        deltaCell(d.specificity, true),
      ]);
      for (
        const [m, label] of [["rocAuc", "ROC-AUC"], ["sensitivity", "sensitivity"], [
          "specificity",
          "specificity",
        ]] as const
      ) {
        const v = verdict(d[m]);
        if (v === "no difference shown") continue;
        const [hi, lo] = v === "better" ? [b.model, a.model] : [a.model, b.model];
        claims.push(
          `${hi} has a higher ${label} than ${lo} on the same ${cmp.n} ${splitName(key)} images ` +
            `(difference ${signed(Math.abs(d[m].delta), m !== "rocAuc")}, 95% CI excludes 0).`,
        );
      }
    }
  }
  const blocks: Block[] = [{ kind: "h2", text: "Paired comparison", id: "paired" }];
  if (rows.length === 0) {
    blocks.push({
      kind: "p",
      text: "No two runs were evaluated on the same images, so no paired comparison is possible." +
        (skipped.length ? ` (${skipped.join("; ")})` : ""),
    });
    return blocks;
  }
  blocks.push({
    kind: "table",
    header: [
      "Difference (B − A)",
      "Same images",
      "Profiles (A / B)",
      "Δ ROC-AUC [95% CI]",
      "Δ Sensitivity [95% CI]",
      "Δ Specificity [95% CI]",
    ],
    rows,
    caption: "Each model at its own validation-chosen threshold, on the images both evaluated " +
      "(matched by sha256). Paired bootstrap: each resample draws whole patients once and " +
      "scores both models on it. ✱: the 95% CI excludes 0. Differences in sensitivity and " +
      "specificity are in percentage points." +
      (rows.some((r) => r[1].startsWith("validation"))
        ? " On validation the thresholds were chosen on these same images: not a test estimate."
        : ""),
  });
  blocks.push({
    kind: "list",
    items: claims.length
      ? claims
      : ["No difference between any two models is shown at 95% on these images."],
  });
  return blocks;
}

/** "full · equalize · 1 view": what a run's training saw (an ensemble: its members' own). */
function trainingLabel(config: RunConfigView | null): string {
  if (!config) return "unknown";
  const profile = config.profile ?? "unknown";
  if (config.members) return `${profile} · members' own`;
  const views = config.augmentViews ?? 0;
  return `${profile} · ${config.intensity ?? "off"} · ${views} view${views === 1 ? "" : "s"}`;
}

/** "sens95, from validation", or the site profile the threshold came from. */
function profileNote(t: Evaluation["threshold"]): string {
  return t.profile && t.profile !== "validation"
    ? `profile ${t.profile}; validation ${num(t.validation_value)}`
    : `${t.method}, from validation`;
}

/** Build the report blocks (shared by Markdown and HTML). */
export async function buildReport(
  runs: RunSummary[],
  outDir: string,
  title: string,
): Promise<Block[]> {
  const blocks: Block[] = [{ kind: "h1", text: title }];
  blocks.push({
    kind: "p",
    text: `Generated ${new Date().toISOString()} from ${runs.length} run(s). Positive class: ` +
      `PNEUMONIA. Thresholds are chosen on validation and applied unchanged to test.`,
  });
  const flagged = runs.filter((r) => r.evaluation.notImageNet);
  if (flagged.length) {
    blocks.push({
      kind: "banner",
      level: "warning",
      text: `NOT IMAGENET: ${
        flagged.map((r) => `${r.model} (${r.evaluation.weightsLabel})`).join(", ")
      } did not start from ImageNet weights. These numbers check the pipeline; they are not ` +
        `results of the transfer-learning method.`,
    });
  }
  // Main comparison table, one row per model and evaluated split.
  const header = [
    "Model",
    "Weights",
    "Split (n: pneumonia/normal)",
    "Training (profile · intensity · views)",
    "Threshold (method)",
    "Accuracy [95% CI]",
    "ROC-AUC [95% CI]",
    "Sensitivity [95% CI]",
    "Specificity [95% CI]",
    "PPV",
    "NPV",
  ];
  const rows: string[][] = [];
  for (const r of runs) {
    for (const [key, s] of Object.entries(r.evaluation.splits)) {
      const m = s.metrics;
      rows.push([
        `**${modelLabel(r)}**`,
        r.evaluation.weightsLabel,
        `${splitName(key)}${
          key === "val" ? " (not a test estimate)" : ""
        } (${m.n}: ${m.positives}/${m.negatives})`,
        trainingLabel(r.config),
        `${num(r.evaluation.threshold.value)} (${profileNote(r.evaluation.threshold)})`,
        withCi(s, "accuracy", true),
        withCi(s, "rocAuc", false),
        withCi(s, "sensitivity", true),
        withCi(s, "specificity", true),
        pct(m.ppv),
        pct(m.npv),
      ]);
    }
  }
  blocks.push({ kind: "h2", text: "Comparison", id: "comparison" });
  blocks.push({
    kind: "table",
    header,
    rows,
    caption: "95% percentile bootstrap CIs (ᵂ: Wilson interval, shown where every bootstrap " +
      "resample gave the same value). PPV/NPV depend on the prevalence of the evaluated set.",
  });
  // Comparison chart on each run's primary split.
  const cmpRows: ComparisonRow[] = runs.flatMap((r) => {
    const key = primarySplit(r);
    const s = r.evaluation.splits[key];
    const label = `${r.model}${r.evaluation.notImageNet ? " (not ImageNet)" : ""} [${
      splitName(key)
    }]`;
    return ([["accuracy", "accuracy"], ["ROC-AUC", "rocAuc"], ["sensitivity", "sensitivity"], [
      "specificity",
      "specificity",
    ]] as const).map(([metric, k]) => ({
      model: label,
      metric,
      value: s.metrics[k] ?? NaN,
      lo: s.ci?.[k]?.[0] ?? undefined,
      hi: s.ci?.[k]?.[1] ?? undefined,
    }));
  });
  if (cmpRows.length) {
    const filesDir = join(outDir, "report_files");
    await Deno.mkdir(filesDir, { recursive: true });
    const svg = await renderSvg(comparisonChart(cmpRows, { title: "Model comparison (95% CI)" }));
    await Deno.writeTextFile(join(filesDir, "comparison.svg"), svg);
    await Deno.writeFile(join(filesDir, "comparison.png"), svgToPng(svg));
    blocks.push({
      kind: "figures",
      figures: [{
        caption: "Point estimate and 95% CI per model (test when available, else validation)",
        mdPath: "report_files/comparison.png",
        content: svg,
        mime: "image/svg+xml",
      }],
    });
  }
  blocks.push(...await pairedBlocks(runs));
  // Data from elsewhere: external sets, robustness to shifts, site thresholds.
  blocks.push(...externalBlocks(runs));
  blocks.push(...await robustnessBlocks(runs, outDir));
  blocks.push(...await profileBlocks(runs));
  // Provenance.
  blocks.push({ kind: "h2", text: "Provenance", id: "provenance" });
  blocks.push({
    kind: "table",
    header: [
      "Model",
      "Run",
      "Split protocol",
      "Images sha256 (per split)",
      "Weights (md5)",
      "Backend",
      "Commit",
      "CI resampling",
    ],
    rows: runs.map((r) => [
      r.model,
      `\`${r.runId}\``,
      protocolOf(r.config),
      Object.entries(r.imagesHash).map(([k, h]) => `${splitName(k)}: \`${h.slice(0, 12)}\``).join(
        ", ",
      ),
      `${r.evaluation.weightsLabel}${
        r.config?.weights?.md5 ? `: \`${r.config.weights.md5.slice(0, 12)}\`` : ""
      }`,
      backendOf(r.config),
      r.config?.gitCommit ? `\`${r.config.gitCommit.slice(0, 10)}\`` : "unknown",
      [...new Set(Object.values(r.evaluation.splits).map((s) => s.ciResampling))].join(", "),
    ]),
    caption: "Images sha256: over the sorted sha256 of the evaluated images, so two reports " +
      "with the same hash evaluated the same images.",
  });
  blocks.push({ kind: "h2", text: "Reading the numbers", id: "reading" });
  blocks.push({ kind: "list", items: readingBullets(runs) });
  // Per-model sections.
  for (const r of runs) {
    blocks.push({ kind: "h2", text: `${modelLabel(r)}`, id: r.runId });
    if (r.evaluation.notImageNet) {
      blocks.push({
        kind: "banner",
        level: "warning",
        text: `Not ImageNet: ${r.evaluation.weightsLabel}.`,
      });
    }
    const keys = Object.keys(r.evaluation.splits);
    const metricRows: [string, Parameters<typeof withCi>[1], boolean][] = [
      ["Accuracy", "accuracy", true],
      ["ROC-AUC", "rocAuc", false],
      ["PR-AUC (average precision)", "prAuc", false],
      ["Sensitivity (recall PNEUMONIA)", "sensitivity", true],
      ["Specificity", "specificity", true],
      ["PPV (precision)", "ppv", true],
      ["NPV", "npv", true],
      ["F1", "f1", false],
      ["Brier score", "brier", false],
      ["Loss (BCE)", "loss", false],
    ];
    blocks.push({
      kind: "table",
      header: ["Metric", ...keys.map(splitName)],
      rows: [
        ...metricRows.map((
          [label, k, p],
        ) => [label, ...keys.map((key) => withCi(r.evaluation.splits[key], k, p))]),
        [
          "Confusion (TP/FP/TN/FN)",
          ...keys.map((key) => {
            const c = r.evaluation.splits[key].metrics.confusion;
            return `${c.tp}/${c.fp}/${c.tn}/${c.fn}`;
          }),
        ],
      ],
      caption: `Run \`${r.runId}\`; threshold ${num(r.evaluation.threshold.value)} ` +
        `(${thresholdLabel(r.evaluation.threshold)}).`,
    });
    const figures: Figure[] = [];
    const charts = r.evaluation.charts ?? {};
    for (const [name, rel] of Object.entries(charts)) {
      const caption = CHART_CAPTIONS[name] ??
        (name.startsWith("confusion-") ? `Confusion matrix, ${splitName(name.slice(10))}` : name);
      const fig = await chartFigure(r.runDir, rel, caption, outDir);
      if (fig) figures.push(fig);
    }
    if (figures.length) blocks.push({ kind: "figures", figures });
    if (!r.gradcam.length) {
      blocks.push({
        kind: "p",
        text: (r.evaluation.net ?? r.config?.net) === "ensemble"
          ? `No Grad-CAM for ${r.model}: an ensemble has no single heatmap; see its members'.`
          : `No Grad-CAM examples for ${r.model}: \`deno task report --gradcam 2\` makes them ` +
            `from the run's classifier.onnx.`,
      });
    } else {
      blocks.push({ kind: "h3", text: `${r.model}: Grad-CAM examples` });
      blocks.push({
        kind: "p",
        text: "Where the network looked: Grad-CAM heatmaps over the X-ray for correct and wrong " +
          "cases per class. A heatmap outside the lungs (labels, edges, devices) is a warning sign.",
      });
      const figs: Figure[] = [];
      for (const g of r.gradcam) {
        figs.push({
          caption: g.caption,
          mdPath: relative(outDir, g.file),
          content: await Deno.readFile(g.file),
          mime: "image/png",
          width: 224,
        });
      }
      blocks.push({ kind: "figures", figures: figs });
    }
  }
  return blocks;
}

/** Write report.md and report.html (and report_files/) for the given run directories. */
export async function writeReport(opts: ReportOptions): Promise<{ md: string; html: string }> {
  if (opts.runDirs.length === 0) {
    throw new Error("writeReport: no runs given (train one with `deno task train` first)");
  }
  const outDir = opts.outDir ?? outputsDir();
  await Deno.mkdir(outDir, { recursive: true });
  const runs: RunSummary[] = [];
  for (const dir of opts.runDirs) runs.push(await summarizeRun(dir, opts.reevaluate));
  const title = opts.title ?? "cxr: pneumonia classifiers compared";
  const blocks = await buildReport(runs, outDir, title);
  const md = join(outDir, "report.md");
  const html = join(outDir, "report.html");
  await Deno.writeTextFile(md, toMarkdown(blocks));
  await Deno.writeTextFile(html, toHtml(blocks, title));
  return { md, html };
}
