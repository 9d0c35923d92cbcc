/**
 * One training run end to end, headless and resumable: data split, weights, cached frozen
 * activations (ONNX Runtime), phase 1 (head on pooled features), phase 2 (unfrozen tail + head
 * on frontier activations, tfjs), predictions, classifier.onnx, evaluation, tracking.
 * Re-running the same config continues from the last finished epoch; a finished run is skipped
 * unless `force`.
 */
import { join } from "node:path";
import { tf } from "../tf/backend.ts";
import { type BackendPreference, initBackend } from "../tf/backend.ts";
import { resolveConfig, runIdFor, type TrainConfig } from "./config.ts";
import {
  arraySource,
  type Callback,
  EarlyStopping,
  type EpochRecord,
  epochSource,
  type FeatureSource,
  Learner,
  progressCallback,
  trackerCallback,
} from "./learner.ts";
import { computeStandardization, HeadModel } from "./model.ts";
import {
  checkpointCallback,
  readCheckpointState,
  restoreCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
import { balancedClassWeights } from "./metrics.ts";
import { type ImageItem, scanDataset } from "../data/dataset.ts";
import { makeSplits } from "../data/splits.ts";
import { getNetSpec, NET_INFO } from "../models/registry.ts";
import { withHead } from "../models/head.ts";
import { cutAt, subgraph } from "../models/graph.ts";
import { weightLayout } from "../models/layout.ts";
import { buildTfModel } from "../models/tfjs.ts";
import type { NetWeights } from "../models/spec.ts";
import { resolveWeights } from "../models/weights/resolve.ts";
import { loadWeights, saveWeights } from "../models/weights/io.ts";
import { extractFeatures, POOLED_LAYER } from "../features/extract.ts";
import { AUGMENT_POLICY, pickView, viewItems, viewRows } from "../features/views.ts";
import { evaluateRun, type Evaluation } from "../evaluation/evaluate.ts";
import { writeClassifierPackage } from "../inference/package.ts";
import { openTracker } from "../tracking/tracker.ts";
import type { Tracker } from "../tracking/types.ts";
import { runsDir } from "../util/paths.ts";

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
}

export class TrainingAborted extends Error {}

interface RunStatus {
  status: "running" | "finished" | "failed";
  phase: number;
  epoch: number;
  mlflowRunId?: string;
  startedAt: string;
  finishedAt?: string;
  error?: string;
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(value, null, 1) + "\n");
  await Deno.rename(`${path}.tmp`, path);
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

/** A FeatureSource reading cached activations of `indices` (into the FeatureSet) per output. */
function cacheSource(
  fs: { batch(indices: number[], output: number): Float32Array; shapes: number[][] },
  indices: number[],
  outputs: number[],
  labels: number[],
): FeatureSource {
  return {
    size: indices.length,
    labels: Float32Array.from(labels),
    batch(local) {
      const global = local.map((i) => indices[i]);
      return outputs.map((o) => ({
        data: fs.batch(global, o),
        shape: [global.length, ...fs.shapes[o]],
      }));
    },
  };
}

/**
 * Training images with their augmented views (rows[i]: the image's row, then its views'): each
 * epoch reads one of them per image, drawn from (seed, epoch, image) (lib/features/views.ts).
 */
function augmentedSource(
  rows: number[][],
  labels: number[],
  seed: number,
  base: (flatRows: number[]) => Pick<FeatureSource, "batch">,
): FeatureSource {
  const flat = rows.flat();
  const at = new Map(flat.map((r, k) => [r, k]));
  const src = base(flat);
  return epochSource(src, labels, (i, epoch) => at.get(pickView(rows, i, epoch, seed))!);
}

function abortCallback(after: number | undefined): Callback {
  return {
    onEpochEnd(_l, r) {
      if (after !== undefined && r.epoch >= after) {
        throw new TrainingAborted(`aborted after epoch ${r.epoch} (test hook)`);
      }
    },
  };
}

/** Trains (or resumes, or skips) the run of `config`; see the module comment. */
export async function trainRun(
  input: TrainConfig,
  opts: TrainRunOptions = {},
): Promise<TrainRunResult> {
  const config = resolveConfig(input, input.profile);
  const backend = await initBackend(opts.backend ?? "auto");
  const runId = runIdFor(config);
  const runDir = join(opts.runsRoot ?? runsDir(), runId);
  const ckptDir = join(runDir, "checkpoints");
  const log = (msg: string) => {
    if (opts.progress !== false) console.error(`[train ${runId}] ${msg}`);
  };

  const previous = await readJson<RunStatus>(join(runDir, "run.json"));
  if (previous?.status === "finished" && !opts.force) {
    const history = (await readJson<{ epochs: EpochRecord[] }>(join(runDir, "history.json")))
      ?.epochs ?? [];
    const evaluation = await readJson<Evaluation>(join(runDir, "evaluation.json"));
    log(`already finished (use --force to retrain): ${runDir}`);
    return { runId, runDir, history, evaluation, skipped: true };
  }
  if (opts.force) await Deno.remove(runDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(ckptDir, { recursive: true });
  log(`backend ${backend.name} (${backend.detail})`);

  // Data and split.
  const scanned = await scanDataset(config.dataRoot);
  for (const w of scanned.warnings) log(`data: ${w}`);
  const splits = makeSplits(scanned.items, {
    protocol: config.protocol,
    valFraction: config.valFraction,
    seed: config.seed,
    subset: config.subset,
  });
  if (splits.train.length === 0 || splits.val.length === 0) {
    throw new Error(
      `${config.dataRoot}: need train and val images (got train ${splits.train.length}, ` +
        `val ${splits.val.length})`,
    );
  }

  // Weights and the cut.
  const base = getNetSpec(config.net);
  const full = withHead(base, { dropout: config.dropout });
  const layout = weightLayout(base);
  const resolved = await resolveWeights(config.net, config.weights, layout, { seed: config.seed });
  const cut = config.phase2 ? cutAt(base, config.phase2.unfreezeFrom) : null;
  const featureOutputs = [POOLED_LAYER, ...(cut?.frontier ?? [])];

  const status: RunStatus = {
    status: "running",
    phase: 1,
    epoch: 0,
    mlflowRunId: previous?.mlflowRunId,
    startedAt: previous?.startedAt ?? new Date().toISOString(),
  };
  const tracker = opts.tracker !== undefined ? opts.tracker : config.mlflow
    ? await openTracker({
      experiment: "cxr",
      runName: runId,
      resumeRunId: previous?.mlflowRunId,
    })
    : null;
  if (tracker && tracker.backend !== "off") status.mlflowRunId = tracker.runId;
  await writeJson(join(runDir, "run.json"), status);

  try {
    // Frozen activations, computed once (cached) for every split and every augmented view.
    const allItems: ImageItem[] = [
      ...splits.train,
      ...splits.val,
      ...splits.test,
      ...viewItems(splits.train, config),
    ];
    const fs = await extractFeatures({
      net: config.net,
      weights: resolved,
      outputs: featureOutputs,
      items: allItems,
      progress: opts.progress !== false,
      cacheRoot: opts.cacheRoot,
      intensity: config.intensity,
    });
    for (const f of fs.stats.failed) log(`skipped ${f.item.rel}: ${f.error}`);
    const indexOf = new Map(fs.items.map((item, i) => [item, i]));
    const splitIdx = (items: ImageItem[]) =>
      items.filter((it) => indexOf.has(it)).map((it) => indexOf.get(it)!);
    const idx = {
      train: splitIdx(splits.train),
      val: splitIdx(splits.val),
      test: splitIdx(splits.test),
    };
    const labelsOf = (ids: number[]) => ids.map((i) => fs.items[i].label);
    const trainRows = config.augmentViews > 0 ? viewRows(fs.items, idx.train) : null;

    await writeJson(join(runDir, "config.json"), {
      ...config,
      runId,
      weights: {
        choice: resolved.choice,
        source: resolved.source,
        md5: resolved.md5,
        label: resolved.label,
        isImageNet: resolved.isImageNet,
      },
      weightsChoice: config.weights,
      data: { root: scanned.root },
      split: {
        protocol: splits.protocol,
        counts: { train: idx.train.length, val: idx.val.length, test: idx.test.length },
        leaks: splits.leaks,
        notes: splits.notes,
      },
      frontier: cut?.frontier ?? [],
      ...(config.augmentViews ? { augmentPolicy: AUGMENT_POLICY } : {}),
      backend,
      gitCommit: await gitCommit(),
      createdAt: status.startedAt,
    });
    if (tracker && !previous) {
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
        n_train: idx.train.length,
        n_val: idx.val.length,
        n_test: idx.test.length,
      });
      await tracker.setTags({
        "cxr.net": config.net,
        "cxr.backend": backend.name,
        "cxr.weights.label": resolved.label,
        "cxr.weights.md5": resolved.md5,
        "cxr.weights.imagenet": String(resolved.isImageNet),
        "cxr.split.protocol": splits.protocol,
        "mlflow.source.git.commit": await gitCommit(),
      });
    }

    // Phase 1: head on the pooled features (standardised with train statistics).
    const dim = fs.shapes[0].reduce((a, b) => a * b, 1);
    const pooledTrain = fs.batch(idx.train, 0);
    const standardization = config.standardize ? computeStandardization(pooledTrain, dim) : null;
    const trainLabels = labelsOf(idx.train);
    const classWeights = config.classWeight === "balanced"
      ? balancedClassWeights(trainLabels)
      : null;
    const common = (
      model: HeadModel,
      phase: 1 | 2,
      lr: number,
      train: FeatureSource,
      val: FeatureSource,
    ) => ({
      model,
      train,
      val,
      phase,
      lr,
      batchSize: config.batchSize,
      seed: config.seed,
      classWeights,
    });

    const phase1Model = new HeadModel({
      dim,
      dropout: config.dropout,
      standardization,
      seed: config.seed,
    });
    let phase1History: EpochRecord[];
    let finalModel = phase1Model;
    let finalSources = {
      val: arraySource(fs.batch(idx.val, 0), [dim], labelsOf(idx.val)),
      test: arraySource(fs.batch(idx.test, 0), [dim], labelsOf(idx.test)),
    };
    const phase1Done = await readCheckpointState(ckptDir, "phase1");
    const runPhase = async (
      learner: Learner,
      epochs: number,
      previousHistory: EpochRecord[],
    ): Promise<EpochRecord[]> => {
      const es = new EarlyStopping(config.earlyStopping);
      const last = await readCheckpointState(ckptDir, "last");
      if (last && last.phase === learner.phase) {
        await restoreCheckpoint(ckptDir, "last", learner, es);
        log(`resuming phase ${learner.phase} after epoch ${learner.epoch}`);
        if (last.stopped) learner.stopRequested = true;
      } else {
        learner.epoch = previousHistory.length;
      }
      learner.callbacks.push(
        progressCallback({ quiet: opts.progress === false, label: config.net }),
        es,
        checkpointCallback(ckptDir, { earlyStopping: es, previousHistory: () => previousHistory }),
        {
          onEpochEnd: async (_l, r) => {
            status.phase = r.phase;
            status.epoch = r.epoch;
            await writeJson(join(runDir, "run.json"), status);
            await writeJson(join(runDir, "history.json"), {
              epochs: [...previousHistory, ..._l.history],
            });
            opts.onEpoch?.(r);
          },
        },
        ...(tracker ? [trackerCallback(tracker)] : []),
        abortCallback(opts.abortAfterEpoch),
      );
      if (!(last && last.phase === learner.phase && last.stopped)) await learner.fit(epochs);
      else es.onFitEnd(learner);
      return [...previousHistory, ...learner.history];
    };

    if (phase1Done) {
      phase1Model.setWeights(await loadWeights(join(ckptDir, "phase1")));
      phase1History = phase1Done.history;
      log(`phase 1 already done (${phase1History.length} epochs)`);
    } else {
      const learner = new Learner(common(
        phase1Model,
        1,
        config.phase1.lr,
        trainRows
          ? augmentedSource(
            trainRows,
            trainLabels,
            config.seed,
            (flat) => arraySource(fs.batch(flat, 0), [dim], flat.map(() => 0)),
          )
          : arraySource(pooledTrain, [dim], trainLabels),
        finalSources.val,
      ));
      phase1History = await runPhase(learner, config.phase1.epochs, []);
      await saveCheckpoint(ckptDir, "phase1", learner, {
        earlyStopping: null,
        history: phase1History,
      });
    }
    let history = phase1History;
    if (opts.untilPhase === 1 && config.phase2) {
      log("stopping after phase 1 as asked; run again to fine-tune (phase 2)");
      phase1Model.dispose();
      return { runId, runDir, history, evaluation: null, skipped: false };
    }

    // Phase 2: unfrozen tail + head on the frontier activations.
    let tailWeights: NetWeights = new Map();
    if (config.phase2 && cut) {
      const tailSpec = cut.tail;
      const tail = buildTfModel(tailSpec, resolved.weights);
      const model2 = new HeadModel({
        dim,
        dropout: config.dropout,
        standardization,
        tail,
        tailSpecs: tailSpec.layers.filter((l) => l.kind !== "InputLayer"),
        tailTraining: config.phase2.bnMode === "batch",
        seed: config.seed,
      });
      model2.setWeights(phase1Model.getWeights());
      const outs = cut.frontier.map((_, j) => j + 1);
      const src = (ids: number[]) => cacheSource(fs, ids, outs, labelsOf(ids));
      const train = trainRows
        ? augmentedSource(trainRows, trainLabels, config.seed, (flat) => src(flat))
        : src(idx.train);
      const learner = new Learner(common(model2, 2, config.phase2.lr, train, src(idx.val)));
      history = await runPhase(learner, config.phase2.epochs, phase1History);
      finalModel = model2;
      finalSources = { val: src(idx.val), test: src(idx.test) };
      tailWeights = model2.getWeights();
      tailWeights.delete("head_dense");
    }
    await writeJson(join(runDir, "history.json"), { epochs: history });

    // Predictions (val, and test when the split exists).
    const predict = async (split: "val" | "test", ids: number[], source: FeatureSource) => {
      if (ids.length === 0) return;
      const learner = new Learner(common(finalModel, 1, 1e-3, source, source));
      const probs = learner.predict(source);
      await writeJson(join(runDir, `predictions-${split}.json`), {
        split,
        items: ids.map((i, k) => ({
          rel: fs.items[i].rel,
          sha256: fs.sha256[i],
          patient: fs.items[i].patient,
          label: fs.items[i].label,
          prob: probs[k],
        })),
      });
    };
    await predict("val", idx.val, finalSources.val);
    await predict("test", idx.test, finalSources.test);

    // Trained weights: tail + folded head (Keras layout), and the whole classifier merged.
    const head = finalModel.foldedHead();
    const trained: NetWeights = new Map(tailWeights);
    trained.set("head_dense", head);
    const modelDir = join(runDir, "model");
    await Deno.mkdir(modelDir, { recursive: true });
    await saveWeights(join(modelDir, "trained"), trained);
    const merged: NetWeights = new Map(resolved.weights);
    for (const [k, v] of trained) merged.set(k, v);
    await saveTfjsModel(full, cut?.frontier ?? [base.output], merged, modelDir);

    const evaluation = opts.skipEvaluation ? null : await evaluateRun(runDir, {
      method: config.thresholdMethod,
    });
    if (!opts.skipExport) {
      await writeClassifierPackage(runDir, {
        runId,
        spec: full,
        weights: merged,
        weightsInfo: {
          label: resolved.label,
          md5: resolved.md5,
          isImageNet: resolved.isImageNet,
          source: resolved.source,
          choice: resolved.choice,
        },
        threshold: evaluation?.threshold,
        dropout: config.dropout,
        intensity: config.intensity,
      });
    }
    finalModel.dispose();
    if (finalModel !== phase1Model) phase1Model.dispose();

    if (tracker) {
      for (const f of ["config.json", "history.json", "evaluation.json", "classifier.json"]) {
        await tracker.logArtifact(join(runDir, f)).catch(() => {});
      }
      await tracker.logArtifact(join(runDir, "charts"), "charts").catch(() => {});
      if (!opts.skipExport) {
        await tracker.logOnnxModel(join(runDir, "classifier.onnx"), "model").catch(() => {});
      }
      const v = evaluation?.splits.val?.metrics;
      if (v) {
        await tracker.logMetrics({
          final_val_auc: v.rocAuc,
          final_val_accuracy: v.accuracy,
          final_val_sensitivity: v.sensitivity,
          final_val_specificity: v.specificity,
        }, history.length);
      }
      await tracker.end("FINISHED");
    }
    status.status = "finished";
    status.finishedAt = new Date().toISOString();
    await writeJson(join(runDir, "run.json"), status);
    return { runId, runDir, history, evaluation, skipped: false };
  } catch (e) {
    if (!(e instanceof TrainingAborted)) {
      status.status = "failed";
      status.error = (e as Error).message;
      await writeJson(join(runDir, "run.json"), status).catch(() => {});
      await tracker?.end("FAILED").catch(() => {});
    }
    throw e;
  }
}

/** model/model.json + model/weights.bin: the tfjs-layers model of tail + head (trained). */
async function saveTfjsModel(
  full: ReturnType<typeof withHead>,
  inputs: string[],
  weights: NetWeights,
  dir: string,
): Promise<void> {
  const spec = subgraph(full, inputs, ["head_dense"]);
  const model = buildTfModel(spec, weights, { trainable: false });
  try {
    await model.save(tf.io.withSaveHandler(async (artifacts) => {
      const { weightData, ...rest } = artifacts;
      const bytes = weightData instanceof ArrayBuffer
        ? new Uint8Array(weightData)
        : new Uint8Array(await new Blob(weightData as ArrayBuffer[]).arrayBuffer());
      await Deno.writeFile(join(dir, "weights.bin"), bytes);
      await writeJson(join(dir, "model.json"), {
        modelTopology: rest.modelTopology,
        format: rest.format ?? "layers-model",
        generatedBy: rest.generatedBy,
        convertedBy: rest.convertedBy ?? null,
        weightsManifest: [{ paths: ["weights.bin"], weights: rest.weightSpecs }],
      });
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }));
  } finally {
    model.dispose();
  }
}

export { NET_INFO };
