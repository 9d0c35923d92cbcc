/**
 * One training run end to end, headless and resumable: the steps of `steps.ts` in order (data,
 * net and weights, cut, cached activations, head, phase 1, phase 2, predictions), then the trained
 * model, classifier.onnx, evaluation and tracking, all in the run folder (`lib/runs`).
 * Status, history, checkpoints and MLflow metrics are Learner callbacks. Re-running the same
 * config continues from the last finished epoch; a finished run is skipped unless `force`.
 */
import { type BackendInfo, type BackendPreference, initBackend } from "../tf/backend.ts";
import { resolveConfig, runIdFor, type TrainConfig } from "./config.ts";
import type { Callback, EpochRecord } from "./learner.ts";
import type { HeadModel } from "./model.ts";
import { abortCallback, recordCallback, trackerCallback, TrainingAborted } from "./callbacks.ts";
import { saveTrainedModel } from "./export.ts";
import {
  type Activations,
  buildHead,
  buildNet,
  buildPhase2Model,
  chooseCut,
  computeActivations,
  type Cut,
  type FitOptions,
  fitPhase1,
  fitPhase2,
  loadData,
  type Net,
  type RunData,
  splitPredictions,
  type TrainingSetup,
  trainingSetup,
  weightsInfo,
} from "./steps.ts";
import { augmentPolicy } from "../features/views.ts";
import { evaluateRun, type Evaluation } from "../evaluation/evaluate.ts";
import { PROBABILITY_OUTPUT, writeClassifierPackage } from "../inference/package.ts";
import { openTracker } from "../tracking/tracker.ts";
import type { Tracker } from "../tracking/types.ts";
import { RunFolder, type RunStatus } from "../runs/mod.ts";
import { statusLine } from "../util/jupyter.ts";

export { TrainingAborted };

export interface TrainRunOptions {
  /** Called after every finished epoch. */
  onEpoch?: (record: EpochRecord) => void;
  /** Retrain even if the run finished (its directory is cleared). */
  force?: boolean;
  /** A tracker to use; null: none; undefined: openTracker when config.mlflow. */
  tracker?: Tracker | null;
  /** Progress bars (default true). */
  progress?: boolean;
  backend?: BackendPreference;
  /** Root of run directories (default outputs/runs). */
  runsRoot?: string;
  /** Feature cache root (default <cacheDir()>/features). */
  cacheRoot?: string;
  /** Test hook: throw after this global epoch is checkpointed (simulates a kill). */
  abortAfterEpoch?: number;
  /** Skip the ONNX classifier export (tests that only check training). */
  skipExport?: boolean;
  /** Skip evaluateRun (tests). */
  skipEvaluation?: boolean;
  /**
   * Stop after phase 1 (a notebook shows it before fine-tuning); the run stays "running" and
   * the next call continues with phase 2. Ignored for nets without phase 2.
   */
  untilPhase?: 1 | 2;
}

export interface TrainRunResult {
  runId: string;
  runDir: string;
  history: EpochRecord[];
  evaluation: Evaluation | null;
  /** True when the run had already finished and was not retrained. */
  skipped: boolean;
  /** Frozen activations read from the cache vs computed (a cold cache computes them all). */
  activations?: { hits: number; computed: number };
}

/** Everything a run's stages share once the run folder is open. */
interface RunContext {
  config: TrainConfig;
  runId: string;
  run: RunFolder;
  opts: TrainRunOptions;
  log: (msg: string) => void;
  backend: BackendInfo;
  data: RunData;
  net: Net;
  cut: Cut;
  tracker: Tracker | null;
  /** run.json as written; the record callback and the end of the run update it. */
  status: RunStatus;
  /** run.json of an earlier attempt being resumed (null: a first attempt, parameters logged). */
  previous: RunStatus | null;
}

/** Trains (or resumes, or skips) the run of `config`; see the module comment. */
export async function trainRun(
  input: TrainConfig,
  opts: TrainRunOptions = {},
): Promise<TrainRunResult> {
  const config = resolveConfig(input, input.profile);
  const backend = await initBackend(opts.backend ?? "auto");
  const runId = runIdFor(config);
  const run = RunFolder.of(runId, opts.runsRoot);
  const log = runLog(runId, opts);
  const found = await run.readStatus();
  if (found?.status === "finished" && !opts.force) {
    log(`already finished (use --force to retrain): ${run.dir}`);
    return await finishedResult(runId, run);
  }
  // --force starts over, MLflow included: a new run (the old one stays as it was)
  const previous = opts.force ? null : found;
  if (opts.force) await Deno.remove(run.dir, { recursive: true }).catch(() => {});
  log(`backend ${backend.name} (${backend.detail})`);
  const data = await loadData(config);
  for (const w of data.warnings) log(`data: ${w}`);
  const net = await buildNet(config);
  if (previous) await checkSameWeights(run, net.weights.md5, config.weights);
  const cut = chooseCut(net, config.phase2?.unfreezeFrom ?? null);
  const ctx = await openContext(config, { run, previous, backend, data, net, cut }, opts);
  try {
    return await trainAndExport(ctx);
  } catch (e) {
    if (!(e instanceof TrainingAborted)) await markFailed(ctx, e as Error);
    throw e;
  }
}

/**
 * A run resumes only from the weights it started from: the run id names a weights file by its
 * path, so a file replaced in place would otherwise mix two starting points in one run.
 */
async function checkSameWeights(run: RunFolder, md5: string, choice: string): Promise<void> {
  const started = await run.readConfig<{ weights?: { md5?: string } }>().catch(() => null);
  const before = started?.weights?.md5;
  if (before && before !== md5) {
    throw new Error(
      `${run.dir} started from weights md5 ${before}, but ${choice} now has md5 ${md5}: ` +
        `the file changed since; use --force to retrain from the new weights`,
    );
  }
}

function runLog(runId: string, opts: TrainRunOptions): (msg: string) => void {
  return (msg) => {
    if (opts.progress !== false) statusLine(`[train ${runId}] ${msg}`);
  };
}

/** The MLflow run (new or resumed) and run.json saying "running": a run open for training. */
async function openContext(
  config: TrainConfig,
  parts: Pick<RunContext, "run" | "previous" | "backend" | "data" | "net" | "cut">,
  opts: TrainRunOptions,
): Promise<RunContext> {
  const runId = runIdFor(config);
  const { run, previous } = parts;
  const tracker = await openRunTracker(config, runId, previous, opts.tracker);
  const status = startStatus(previous, tracker);
  // Created only now: a run failing on its data, weights or flags leaves no empty folder.
  await Deno.mkdir(run.checkpointsDir, { recursive: true }).catch((e) => {
    throw new Error(`cannot create the run folder ${run.dir} (CXR_OUTPUTS): ${e.message}`);
  });
  await run.writeStatus(status);
  return { ...parts, config, runId, opts, log: runLog(runId, opts), tracker, status };
}

/** A run folder opened for the steps a notebook calls one cell at a time. */
export interface OpenRun {
  readonly runId: string;
  readonly runDir: string;
  /** What `fitPhase1` / `fitPhase2` need to save, resume and record as `trainRun` does. */
  fitOptions(previousHistory?: EpochRecord[]): FitOptions;
  /** Predictions, trained model, evaluation, ONNX classifier, MLflow; status "finished". */
  finish(
    model: HeadModel,
    history: EpochRecord[],
    acts: Activations,
    setup: TrainingSetup,
  ): Promise<TrainRunResult>;
}

/**
 * Opens `config`'s run folder around steps already taken (data, net, cut, activations), as
 * `trainRun` does between them and the fits: run.json, config.json, the MLflow run.
 */
export async function openRun(
  input: TrainConfig,
  parts: { data: RunData; net: Net; cut: Cut; acts: Activations },
  opts: TrainRunOptions = {},
): Promise<OpenRun> {
  const config = resolveConfig(input, input.profile);
  const backend = await initBackend(opts.backend ?? "auto");
  const run = RunFolder.of(runIdFor(config), opts.runsRoot);
  // --force starts over, MLflow included, as for trainRun.
  const previous = opts.force ? null : await run.readStatus();
  if (opts.force) await Deno.remove(run.dir, { recursive: true }).catch(() => {});
  const { data, net, cut, acts } = parts;
  const ctx = await openContext(config, { run, previous, backend, data, net, cut }, opts);
  // run.json already says "running": a failure from here on must say so (as in trainRun).
  await recordStart(ctx, acts).catch(async (e) => {
    await markFailed(ctx, e as Error);
    throw e;
  });
  return {
    runId: ctx.runId,
    runDir: run.dir,
    fitOptions: (previousHistory = []) => fitOptions(ctx, previousHistory),
    finish: async (model, history, acts, setup) => {
      try {
        return await finishRun(ctx, acts, setup, model, history);
      } catch (e) {
        await markFailed(ctx, e as Error);
        throw e;
      }
    },
  };
}

/** config.json, and the run's MLflow parameters on its first attempt. */
async function recordStart(ctx: RunContext, acts: Activations): Promise<void> {
  for (const f of acts.features.stats.failed) ctx.log(`skipped ${f.item.rel}: ${f.error}`);
  await ctx.run.writeConfig(await runConfigRecord(ctx, acts));
  if (ctx.tracker && !ctx.previous) await logRunParams(ctx, ctx.tracker, acts);
}

/** What a finished run left: its history and evaluation (nothing is retrained). */
async function finishedResult(runId: string, run: RunFolder): Promise<TrainRunResult> {
  const history = await run.readHistory() ?? [];
  return { runId, runDir: run.dir, history, evaluation: await run.readEvaluation(), skipped: true };
}

/** run.json of a run (re)starting: the MLflow run in use, the first attempt's start time. */
function startStatus(previous: RunStatus | null, tracker: Tracker | null): RunStatus {
  const live = tracker && tracker.backend !== "off" ? tracker : null;
  return {
    status: "running",
    phase: 1,
    epoch: 0,
    mlflowRunId: live ? live.runId : previous?.mlflowRunId,
    mlflowUri: live ? live.uri : previous?.mlflowUri,
    startedAt: previous?.startedAt ?? new Date().toISOString(),
  };
}

/** opts.tracker when given (null: none), else a new or resumed MLflow run when config.mlflow. */
async function openRunTracker(
  config: TrainConfig,
  runId: string,
  previous: RunStatus | null,
  given: Tracker | null | undefined,
): Promise<Tracker | null> {
  if (given !== undefined) return given;
  if (!config.mlflow) return null;
  return await openTracker({
    runName: runId,
    resumeRunId: previous?.mlflowRunId,
    resumeUri: previous?.mlflowUri,
  });
}

/** Activations, both phases, predictions, the trained model, evaluation, export, tracking. */
async function trainAndExport(ctx: RunContext): Promise<TrainRunResult> {
  const { config, run, runId, opts } = ctx;
  const acts = await computeActivations(config, ctx.net, ctx.cut, ctx.data, {
    progress: opts.progress,
    cacheRoot: opts.cacheRoot,
  });
  await recordStart(ctx, acts);
  const setup = trainingSetup(config, acts);
  const trained = await trainPhases(ctx, acts, setup);
  const { model, history } = trained;
  if (trained.paused) {
    ctx.log("stopping after phase 1 as asked; run again to fine-tune (phase 2)");
    model.dispose();
    return { runId, runDir: run.dir, history, evaluation: null, skipped: false };
  }
  const result = await finishRun(ctx, acts, setup, model, history);
  model.dispose();
  const { hits, computed } = acts.features.stats;
  return { ...result, activations: { hits, computed } };
}

/** After the fits: predictions, trained model, evaluation, ONNX classifier, MLflow, finished. */
async function finishRun(
  ctx: RunContext,
  acts: Activations,
  setup: TrainingSetup,
  model: HeadModel,
  history: EpochRecord[],
): Promise<TrainRunResult> {
  const { config, run, runId, opts } = ctx;
  await run.writeHistory(history);
  for (const split of ["val", "test"] as const) {
    if (acts.idx[split].length > 0) {
      await run.writePredictions(split, splitPredictions(model, acts, split, setup));
    }
  }
  const weights = await saveTrainedModel(run, ctx.net, ctx.cut, model);
  const evaluation = opts.skipEvaluation
    ? null
    : await evaluateRun(run.dir, { method: config.thresholdMethod });
  if (!opts.skipExport) {
    await writeClassifierPackage(run.dir, {
      runId,
      spec: ctx.net.full,
      weights,
      weightsInfo: weightsInfo(ctx.net.weights),
      threshold: evaluation?.threshold,
      dropout: config.dropout,
      intensity: config.intensity,
    });
  }
  if (ctx.tracker) await endTracking(ctx, ctx.tracker, evaluation, history.length);
  ctx.status.status = "finished";
  ctx.status.finishedAt = new Date().toISOString();
  await run.writeStatus(ctx.status);
  return { runId, runDir: run.dir, history, evaluation, skipped: false };
}

/**
 * Phase 1 (or its saved result), then phase 2 when configured; `paused` after phase 1 when
 * `untilPhase` is 1. The returned model is the one to predict with.
 */
async function trainPhases(
  ctx: RunContext,
  acts: Activations,
  setup: TrainingSetup,
): Promise<{ model: HeadModel; history: EpochRecord[]; paused: boolean }> {
  const head = buildHead(ctx.config, acts);
  // A phase 1 a previous attempt finished is restored by fitPhase1 (its checkpoint).
  const { history: history1 } = await fitPhase1(head, acts, setup, fitOptions(ctx, []));
  if (!ctx.config.phase2) return { model: head, history: history1, paused: false };
  if (ctx.opts.untilPhase === 1) return { model: head, history: history1, paused: true };
  const model = buildPhase2Model(ctx.config, ctx.net, ctx.cut, head);
  const { history } = await fitPhase2(model, acts, setup, fitOptions(ctx, history1));
  head.dispose();
  return { model, history, paused: false };
}

/** The run's fit options: checkpoints to resume from, then status/history, MLflow, abort. */
function fitOptions(ctx: RunContext, previousHistory: EpochRecord[]): FitOptions {
  const { run, status, tracker, opts } = ctx;
  const callbacks: Callback[] = [
    recordCallback({ run, status, previousHistory, onEpoch: opts.onEpoch }),
    ...(tracker ? [trackerCallback(tracker)] : []),
    ...(opts.abortAfterEpoch !== undefined ? [abortCallback(opts.abortAfterEpoch)] : []),
  ];
  return {
    callbacks,
    checkpoints: run.checkpointsDir,
    previousHistory,
    progress: opts.progress,
    label: ctx.config.net,
    log: ctx.log,
  };
}

/** config.json: the resolved config, the weights (md5), the split, the frontier, the backend. */
async function runConfigRecord(ctx: RunContext, acts: Activations): Promise<unknown> {
  const { config, data } = ctx;
  return {
    ...config,
    runId: ctx.runId,
    weights: weightsInfo(ctx.net.weights),
    weightsChoice: config.weights,
    data: { root: data.root },
    split: {
      protocol: data.splits.protocol,
      counts: {
        train: acts.idx.train.length,
        val: acts.idx.val.length,
        test: acts.idx.test.length,
      },
      leaks: data.splits.leaks,
      notes: data.splits.notes,
    },
    frontier: ctx.cut.frontier,
    ...(config.augmentViews ? { augmentPolicy: augmentPolicy(config.augmentFlip) } : {}),
    backend: ctx.backend,
    gitCommit: await gitCommit(),
    createdAt: ctx.status.startedAt,
  };
}

/** The run's parameters and tags, sent once (first attempt). */
async function logRunParams(ctx: RunContext, tracker: Tracker, acts: Activations): Promise<void> {
  const { config } = ctx;
  await tracker.logParams({
    net: config.net,
    weights: config.weights,
    profile: config.profile,
    protocol: config.protocol,
    seed: config.seed,
    batch_size: config.batchSize,
    dropout: config.dropout,
    class_weight: config.classWeight,
    standardize: config.standardize,
    phase1_epochs: config.phase1.epochs,
    phase1_lr: config.phase1.lr,
    phase2_epochs: config.phase2?.epochs ?? 0,
    phase2_lr: config.phase2?.lr ?? 0,
    unfreeze_from: config.phase2?.unfreezeFrom ?? "none",
    intensity: config.intensity,
    augment_views: config.augmentViews,
    augment_flip: config.augmentFlip,
    n_train: acts.idx.train.length,
    n_val: acts.idx.val.length,
    n_test: acts.idx.test.length,
  });
  const w = ctx.net.weights;
  await tracker.setTags({
    "cxr.net": config.net,
    "cxr.backend": ctx.backend.name,
    "cxr.weights.label": w.label,
    "cxr.weights.md5": w.md5,
    "cxr.weights.imagenet": String(w.isImageNet),
    "cxr.split.protocol": ctx.data.splits.protocol,
    "mlflow.source.git.commit": await gitCommit(),
  });
}

/** Artifacts (files, charts, the ONNX model), final validation metrics, FINISHED. */
async function endTracking(
  ctx: RunContext,
  tracker: Tracker,
  evaluation: Evaluation | null,
  step: number,
): Promise<void> {
  const { run } = ctx;
  const files = [run.configPath, run.historyPath, run.evaluationPath, run.classifierMetaPath];
  for (const f of files) await tracker.logArtifact(f).catch(() => {});
  await tracker.logArtifact(run.chartsDir, "charts").catch(() => {});
  if (!ctx.opts.skipExport) {
    // pyfunc gets the probability only (classifier.onnx keeps the Grad-CAM map for serving)
    await tracker.logOnnxModel(run.classifierOnnxPath, "model", {
      outputs: { [PROBABILITY_OUTPUT]: "probability" },
    }).catch(() => {});
  }
  const v = evaluation?.splits.val?.metrics;
  if (v) {
    await tracker.logMetrics({
      final_val_auc: v.rocAuc,
      final_val_accuracy: v.accuracy,
      final_val_sensitivity: v.sensitivity,
      final_val_specificity: v.specificity,
    }, step);
  }
  await tracker.end("FINISHED");
}

/** run.json says failed (with the message); the MLflow run ends FAILED. */
async function markFailed(ctx: RunContext, e: Error): Promise<void> {
  ctx.status.status = "failed";
  ctx.status.error = e.message;
  await ctx.run.writeStatus(ctx.status).catch(() => {});
  await ctx.tracker?.end("FAILED").catch(() => {});
}

async function gitCommit(): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      cwd: new URL("../..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
  } catch {
    return "unknown";
  }
}
