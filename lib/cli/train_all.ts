/** `deno task train-all [options]`: VGG16, ResNet50, DenseNet121 in turn, then the report. */
import { parseCli, usageError } from "./args.ts";
import { NET_NAMES } from "../models/registry.ts";
import { defaultWeightsChoice } from "../models/weights/resolve.ts";
import { resolveConfig, type TrainConfig } from "../training/config.ts";
import { COMMON_OPTIONS, COMMON_USAGE, configFromFlags } from "./train_flags.ts";
import { trainRun } from "../training/run.ts";
import type { BackendPreference } from "../tf/backend.ts";
import { writeReport } from "../reporting/report.ts";
import { buildEnsemble } from "../ensemble/build.ts";
import { ENSEMBLE_COMBINES, type EnsembleCombine } from "../inference/ensemble.ts";
import { writeGradcamExamples } from "../reporting/gradcam_examples.ts";
import { main as downloadDataset } from "./data_download.ts";
import { basename, dirname, join } from "node:path";
import { predictExternalSet } from "../evaluation/predict.ts";
import { evaluateRun } from "../evaluation/evaluate.ts";
import { exists, isDirectory } from "../util/fs.ts";
import { fitGuard, GUARD_FILE } from "../inference/guard.ts";
import { logToRunMlflow } from "../tracking/run_log.ts";
import { dataDir, outputsDir } from "../util/paths.ts";
import { runCli } from "./entry.ts";

/** Samples this process' resident memory once a second; stop() returns the peak in bytes. */
function peakMemorySampler(): { stop(): number } {
  let peak = Deno.memoryUsage().rss;
  const timer = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 1000);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, Deno.memoryUsage().rss);
    },
  };
}

/** The comparison report belongs to every run it compares: add it to their MLflow runs. */
async function logReportToRuns(runDirs: string[], files: string[]): Promise<void> {
  for (const dir of runDirs) {
    await logToRunMlflow(dir, "report", async (tracker) => {
      for (const f of files) await tracker.logArtifact(f, "report");
      const assets = join(dirname(files[0]), "report_files");
      if (await isDirectory(assets)) await tracker.logArtifact(assets, "report/report_files");
    });
  }
}

/** `--external [NAME=]DIR`: a name when the part before "=" is one and DIR exists beside it. */
function parseExternal(arg: string): { name?: string; dir: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)=(.+)$/.exec(arg);
  return m && !isDirectorySync(arg) ? { name: m[1], dir: m[2] } : { dir: arg };
}

function isDirectorySync(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The main job must work on a fresh machine: when the default dataset folder is missing, get
 * it (data:download) first. A folder named by --data must exist: that is the user's mistake.
 */
async function ensureDataset(root: string, explicit: boolean): Promise<boolean> {
  if (await isDirectory(join(root, "train"))) return true;
  if (explicit || root !== dataDir()) {
    console.error(`train-all: no ${join(root, "train")} (a Kaggle-layout chest_xray folder)`);
    return false;
  }
  console.error(`train-all: ${root} is missing; downloading the dataset (deno task data:download)`);
  return (await downloadDataset([])) === 0 && await isDirectory(join(root, "train"));
}

const USAGE = `usage: deno task train-all [options]   (trains ${NET_NAMES.join(", ")} in turn,
                                        then builds their ensemble)
${COMMON_USAGE}
  --ensemble-combine prob|logit   mean of member probabilities (default) or of their logits
  --no-ensemble               stop after the nets
  --external [NAME=]DIR       also evaluate every net (and the ensemble) on this labelled
                              folder (Kaggle layout, NORMAL/PNEUMONIA folders, or labels.csv);
                              repeatable; key NAME or the set's content hash
  --unfreeze-from applies to every net that fine-tunes; finished runs are skipped.`;

export async function main(args: string[]): Promise<number> {
  const cli = { usage: USAGE, prefix: "train-all" };
  const parsed = parseCli(args, {
    ...COMMON_OPTIONS,
    "ensemble-combine": { type: "string" },
    "no-ensemble": { type: "boolean" },
    external: { type: "string", multiple: true },
  }, cli);
  if (typeof parsed === "number") return parsed;
  const externals = ((parsed as { external?: string[] }).external ?? []).map(parseExternal);
  const v = parsed as Record<string, string | boolean | undefined>;
  let configs;
  try {
    const flags = configFromFlags(v);
    configs = NET_NAMES.map((net) =>
      resolveConfig({ net, weights: defaultWeightsChoice(), profile: "full", ...flags })
    );
  } catch (e) {
    return usageError(cli, (e as Error).message);
  }
  const combine = (v["ensemble-combine"] ?? "prob") as EnsembleCombine;
  if (!ENSEMBLE_COMBINES.includes(combine)) {
    return usageError(cli, `--ensemble-combine must be prob or logit, got "${combine}"`);
  }
  const t0 = performance.now();
  const loadAtStart = Deno.loadavg();
  const memory = peakMemorySampler();
  if (!(await ensureDataset(configs[0].dataRoot, v.data !== undefined))) return 1;
  const runDirs: string[] = [];
  const perRun: TimedRun[] = [];
  for (const config of configs) {
    const start = performance.now();
    const r = await trainRun(config, {
      force: v.force === true,
      progress: v.quiet !== true,
      backend: (v.backend as BackendPreference | undefined) ?? "auto",
    });
    runDirs.push(r.runDir);
    const seconds = Math.round((performance.now() - start) / 1000);
    perRun.push({
      run: basename(r.runDir),
      seconds,
      skipped: r.skipped,
      activations: r.activations,
    });
    const val = r.evaluation?.splits.val?.metrics;
    console.log(
      `${config.net}: ${
        r.skipped ? "skipped (finished)" : "trained"
      } in ${seconds} s, val ROC-AUC ${val ? val.rocAuc.toFixed(4) : "?"} (${
        r.evaluation?.weightsLabel ?? ""
      })`,
    );
  }
  for (const dir of runDirs) {
    try {
      await writeGradcamExamples(dir, { perCase: 2 });
    } catch (e) {
      console.error(`train-all: no Grad-CAM examples for ${dir}: ${(e as Error).message}`);
    }
  }
  // External sets before the ensemble, which combines every split all members have.
  for (const ext of externals) {
    for (const dir of runDirs) {
      try {
        const r = await predictExternalSet(dir, ext.dir, { name: ext.name, reuse: true });
        console.error(`train-all: ${basename(dir)}: external set ${r.key} (${r.predicted} images)`);
        await evaluateRun(dir);
      } catch (e) {
        console.error(
          `train-all: external set ${ext.dir} not evaluated for ${dir}: ${(e as Error).message}`,
        );
      }
    }
  }
  // The ensemble of the nets just trained: a model of its own, thresholded on validation only.
  const reported = [...runDirs];
  if (v["no-ensemble"] !== true && runDirs.length >= 2) {
    const e = await buildEnsemble(runDirs, {
      combine,
      force: v.force === true,
      mlflow: v["no-mlflow"] !== true && configs[0].mlflow,
      log: (line) => console.error(`train-all: ${line}`),
    });
    reported.push(e.runDir);
    const val = e.evaluation.splits.val.metrics;
    console.log(
      `ensemble (${combine} of ${runDirs.length}): val ROC-AUC ${val.rocAuc.toFixed(4)}, ` +
        `threshold ${e.evaluation.threshold.value.toFixed(3)} from validation`,
    );
  }
  await fitGuardOnce(configs[0].dataRoot, configs[0].seed);
  const report = await writeReport({ runDirs: reported });
  if (v["no-mlflow"] !== true) await logReportToRuns(reported, [report.md, report.html]);
  const timing = await recordTiming({
    args,
    config: configs[0],
    wallSeconds: Math.round((performance.now() - t0) / 1000),
    peakRssBytes: memory.stop(),
    loadAtStart,
    nets: perRun,
    runs: reported,
  });
  console.log(`train-all: peak RSS ${(timing.peakRssBytes / 2 ** 30).toFixed(2)} GiB`);
  console.log(
    `train-all: ${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s; report ${report.md}, ${report.html}`,
  );
  return 0;
}

/** One net's share of a train-all: its wall time and how many activations it computed. */
export interface TimedRun {
  run: string;
  seconds: number;
  skipped: boolean;
  activations?: { hits: number; computed: number };
}

/**
 * The job's own timing record, when it trained something (a re-run that skips is not a timing):
 * outputs/train-all.json (the last one) and a line of outputs/train-all-history.jsonl, which
 * `deno task bench` reads. The load averages say how busy the machine was; `coldCache` whether
 * every activation was computed in this run.
 */
export async function recordTiming(t: {
  args: string[];
  config: TrainConfig;
  wallSeconds: number;
  peakRssBytes: number;
  loadAtStart: number[];
  nets: TimedRun[];
  runs: string[];
}) {
  const trained = t.nets.filter((n) => !n.skipped);
  const timing = {
    finishedAt: new Date().toISOString(),
    args: t.args,
    profile: t.config.profile,
    intensity: t.config.intensity,
    augmentViews: t.config.augmentViews,
    coldCache: trained.length === t.nets.length && trained.every((n) => n.activations?.hits === 0),
    wallSeconds: t.wallSeconds,
    peakRssBytes: t.peakRssBytes,
    loadAverage: { start: t.loadAtStart, end: Deno.loadavg() },
    nets: t.nets,
    runs: t.runs,
  };
  if (trained.length > 0) {
    const json = JSON.stringify(timing, null, 1);
    await Deno.writeTextFile(join(outputsDir(), "train-all.json"), json);
    await Deno.writeTextFile(
      join(outputsDir(), "train-all-history.jsonl"),
      JSON.stringify(timing) + "\n",
      { append: true },
    );
  }
  return timing;
}

/** The serving guard (lib/inference/guard.ts) from the same data and split, unless one exists. */
async function fitGuardOnce(dataRoot: string, seed: number): Promise<void> {
  const path = join(outputsDir(), GUARD_FILE);
  if (await exists(path)) return;
  try {
    const g = await fitGuard({ data: dataRoot, seed, progress: true });
    await Deno.writeTextFile(path, JSON.stringify(g));
    console.log(
      `train-all: guard ${path}: ${g.falseAlarms.flagged}/${g.falseAlarms.n} held-out ` +
        `validation images flagged (${(100 * g.falseAlarms.rate).toFixed(1)}%)`,
    );
  } catch (e) {
    console.error(`train-all: no guard fitted: ${(e as Error).message}`);
  }
}

if (import.meta.main) Deno.exit(await runCli("train-all", main));
