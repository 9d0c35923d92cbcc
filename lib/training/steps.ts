/**
 * Training, one step at a time: the public API that notebook cells call one by one and that
 * `trainRun` (`cxr.train`) chains, so both take the same code path. In order:
 *
 *  1. `loadData(config)`               scan the dataset, split it (patient-disjoint validation)
 *  2. `buildNet(config)`               base net + head, starting weights (which ones, md5)
 *  3. `netSummary(net, unfreezeFrom)`  layers and parameters, frozen vs trainable
 *  4. `chooseCut(net, unfreezeFrom)`   where phase 2 unfreezes: frontier tensors and shapes
 *  5. `computeActivations(config, …)`  frozen activations of every image (cached, progress bar)
 *  6. `buildHead(config, acts)`        head_dense on the standardised pooled features
 *  7. `trainingSetup(config, acts)`    loss, optimiser, learning rates, class weights (printable)
 *  8. `fitPhase1(head, acts, setup)`   the head on the frozen base (early stopping, best epoch)
 *  9. `buildPhase2Model(...)`, then `fitPhase2(...)`: unfrozen tail + phase 1's head
 * 10. `splitPredictions(model, acts, "val", setup)`   probabilities per image
 * 11. `chooseValThreshold(predictions, method)`   the operating threshold, on validation only
 *
 * A run folder (checkpoints, run.json, history.json, MLflow) is added by `trainRun` through
 * `FitOptions.checkpoints` and `FitOptions.callbacks`; the steps themselves write nothing.
 */
import { type Callback, EarlyStopping, type EpochRecord, type FeatureSource } from "./learner.ts";
import { arraySource, epochSource, Learner, predict } from "./learner.ts";
import { progressCallback } from "./callbacks.ts";
import {
  checkpointCallback,
  discardCheckpoint,
  readCheckpointState,
  restoreCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
import { loadWeights } from "../models/weights/io.ts";
import { checkpointFiles } from "../runs/mod.ts";
import type { TrainConfig } from "./config.ts";
import { computeStandardization, HeadModel } from "./model.ts";
import { balancedClassWeights } from "./metrics.ts";
import type { ImageItem, SplitName } from "../data/dataset.ts";
import { scanDataset } from "../data/dataset.ts";
import { makeSplits, type Splits } from "../data/splits.ts";
import { cutAt, inferShapes, type MultiOutputSpec, type Shape } from "../models/graph.ts";
import { withHead } from "../models/head.ts";
import { weightLayout } from "../models/layout.ts";
import { getNetSpec } from "../models/registry.ts";
import type { NetName, NetSpec } from "../models/spec.ts";
import { summarize, type Summary } from "../models/summary.ts";
import { buildTfModel } from "../models/tfjs.ts";
import { type ResolvedWeights, resolveWeights } from "../models/weights/resolve.ts";
import { extractFeatures, type FeatureSet, POOLED_LAYER } from "../features/extract.ts";
import { pickView, viewItems, viewRows } from "../features/views.ts";
import type { ChosenThreshold } from "../evaluation/threshold.ts";
import { type PredictionsFile, thresholdOnValidation } from "../evaluation/evaluate.ts";
import type { WeightsInfo } from "../inference/meta.ts";

/** Step 1's result: the dataset root and its split. */
export interface RunData {
  root: string;
  splits: Splits;
  /** Dataset scan warnings (unreadable files, odd folders). */
  warnings: string[];
}

/** 1. Scans `config.dataRoot` and splits it; throws when train or val would be empty. */
export async function loadData(config: TrainConfig): Promise<RunData> {
  const scanned = await scanDataset(config.dataRoot);
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
  return { root: scanned.root, splits, warnings: scanned.warnings };
}

/** Step 2's result: the base net, the whole classifier (base + head) and the base's weights. */
export interface Net {
  name: NetName;
  base: NetSpec;
  /** Base + GlobalAveragePooling + Dropout + Dense(1, sigmoid), Keras layer names. */
  full: NetSpec;
  weights: ResolvedWeights;
}

/** 2. Builds the net and loads its starting weights (`config.weights`; md5 in `weightsInfo`). */
export async function buildNet(
  config: Pick<TrainConfig, "net" | "weights" | "seed" | "dropout">,
): Promise<Net> {
  const base = getNetSpec(config.net);
  const full = withHead(base, { dropout: config.dropout });
  const weights = await resolveWeights(config.net, config.weights, weightLayout(base), {
    seed: config.seed,
  });
  return { name: config.net, base, full, weights };
}

/** Which weights a net started from (printable; stored in config.json and classifier.json). */
export function weightsInfo(w: ResolvedWeights): Required<WeightsInfo> {
  return {
    label: w.label,
    md5: w.md5,
    isImageNet: w.isImageNet,
    source: w.source,
    choice: w.choice,
  };
}

/** Step 3's result: parameter counts with layers from `trainableFrom` on trainable. */
export interface NetSummary {
  trainableFrom: string;
  layers: { total: number; trainable: number; frozen: number };
  params: { total: number; trainable: number; frozen: number };
  /** Keras-style per-layer rows (models/summary.ts `formatSummary` prints them). */
  summary: Summary;
}

/** 3. Frozen vs trainable counts of the classifier when unfreezing from `unfreezeFrom`. */
export function netSummary(net: Net, unfreezeFrom: string | null): NetSummary {
  const trainableFrom = unfreezeFrom ?? POOLED_LAYER;
  const summary = summarize(net.full, trainableFrom);
  const trainable = summary.rows.filter((r) => r.trainable).length;
  return {
    trainableFrom,
    layers: { total: summary.rows.length, trainable, frozen: summary.rows.length - trainable },
    params: {
      total: summary.totalParams,
      trainable: summary.trainableParams,
      frozen: summary.nonTrainableParams,
    },
    summary,
  };
}

/** Step 4's result: the activations to cache and the tail phase 2 trains. */
export interface Cut {
  /** First trainable layer of phase 2; null: head only (no phase 2). */
  unfreezeFrom: string | null;
  /** Frozen layers feeding the trainable tail, Keras order. */
  frontier: string[];
  /** Layers whose activations are cached: the pooled features, then the frontier. */
  outputs: string[];
  /** Per output, its shape without the batch dimension (null: unknown). */
  shapes: { layer: string; shape: Shape }[];
  /** The trainable tail (frontier -> net output); null without phase 2. */
  tail: MultiOutputSpec | null;
}

/** 4. Cuts the net at `unfreezeFrom` (null: no phase 2) and names the frontier tensors. */
export function chooseCut(net: Net, unfreezeFrom: string | null): Cut {
  const cut = unfreezeFrom ? cutAt(net.base, unfreezeFrom) : null;
  const frontier = cut?.frontier ?? [];
  const outputs = [POOLED_LAYER, ...frontier];
  const all = inferShapes(net.full);
  const shapes = outputs.map((layer) => ({ layer, shape: all.get(layer) ?? [] }));
  return { unfreezeFrom, frontier, outputs, shapes, tail: cut?.tail ?? null };
}

/** Step 5's result: cached activations and each split's positions in them. */
export interface Activations {
  features: FeatureSet<ImageItem>;
  /** Per split, indices into `features.items` (images that failed to decode are left out). */
  idx: Record<SplitName, number[]>;
  /** Pooled feature size (head_dense's input). */
  dim: number;
  /**
   * With augmented views: per training image its rows [image, view 1..K] and the seed that
   * picks one per epoch (lib/features/views.ts); null without augmentation.
   */
  augment: { rows: number[][]; seed: number } | null;
}

/**
 * 5. Computes (or reads from the cache) the frozen activations of every split's images, after
 * the config's intensity normalisation, and of the training images' augmented views.
 */
export async function computeActivations(
  config: Pick<TrainConfig, "intensity" | "seed" | "augmentViews" | "augmentFlip">,
  net: Net,
  cut: Cut,
  data: RunData,
  opts: { progress?: boolean; cacheRoot?: string } = {},
): Promise<Activations> {
  const { splits } = data;
  const features = await extractFeatures({
    net: net.name,
    weights: net.weights,
    outputs: cut.outputs,
    items: [...splits.train, ...splits.val, ...splits.test, ...viewItems(splits.train, config)],
    progress: opts.progress !== false,
    cacheRoot: opts.cacheRoot,
    intensity: config.intensity,
  });
  const indexOf = new Map(features.items.map((item, i) => [item, i]));
  const positions = (items: ImageItem[]) =>
    items.filter((it) => indexOf.has(it)).map((it) => indexOf.get(it)!);
  const train = positions(splits.train);
  return {
    features,
    idx: { train, val: positions(splits.val), test: positions(splits.test) },
    dim: features.shapes[0].reduce((a, b) => a * b, 1),
    augment: config.augmentViews > 0
      ? { rows: viewRows(features.items, train), seed: config.seed }
      : null,
  };
}

/** Labels (0 normal, 1 pneumonia) of the items at `ids`. */
export function labelsOf(acts: Activations, ids: number[]): number[] {
  return ids.map((i) => acts.features.items[i].label);
}

/**
 * The model inputs of a split: pooled features for the phase 1 head, frontier activations
 * (read from the cache batch by batch) for the phase 2 tail. With augmented views, each
 * training image reads one of its rows per epoch, drawn from (seed, epoch, image).
 */
export function splitInputs(acts: Activations, split: SplitName, phase: 1 | 2): FeatureSource {
  const ids = acts.idx[split];
  const labels = labelsOf(acts, ids);
  const augment = split === "train" ? acts.augment : null;
  if (!augment) return rowInputs(acts, ids, phase);
  const flat = augment.rows.flat();
  const at = new Map(flat.map((r, k) => [r, k]));
  const pick = (i: number, epoch: number) =>
    at.get(pickView(augment.rows, i, epoch, augment.seed))!;
  return epochSource(rowInputs(acts, flat, phase), labels, pick);
}

/** The model inputs of the FeatureSet rows `ids` (see splitInputs). */
function rowInputs(acts: Activations, ids: number[], phase: 1 | 2): FeatureSource {
  const labels = labelsOf(acts, ids);
  if (phase === 1) return arraySource(acts.features.batch(ids, 0), [acts.dim], labels);
  const fs = acts.features;
  const outputs = fs.outputs.slice(1).map((_, j) => j + 1);
  return {
    size: ids.length,
    labels: Float32Array.from(labels),
    batch(local) {
      const global = local.map((i) => ids[i]);
      return outputs.map((o) => ({
        data: fs.batch(global, o),
        shape: [global.length, ...fs.shapes[o]],
      }));
    },
  };
}

/** 6. The head (dropout + dense(1)) on pooled features standardised with train statistics. */
export function buildHead(
  config: Pick<TrainConfig, "standardize" | "dropout" | "seed">,
  acts: Activations,
): HeadModel {
  const standardization = config.standardize
    ? computeStandardization(acts.features.batch(acts.idx.train, 0), acts.dim)
    : null;
  return new HeadModel({
    dim: acts.dim,
    dropout: config.dropout,
    standardization,
    seed: config.seed,
  });
}

/** Step 7's result: everything the fits need besides the model and the data (printable). */
export interface TrainingSetup {
  loss: string;
  optimizer: "adam";
  batchSize: number;
  seed: number;
  phase1: { epochs: number; lr: number };
  phase2: { epochs: number; lr: number; unfreezeFrom: string; bnMode: string } | null;
  /** [weight of normal, weight of pneumonia] (balanced: n / (2 n_class)); null: unweighted. */
  classWeights: [number, number] | null;
  earlyStopping: TrainConfig["earlyStopping"];
}

/** 7. Loss, optimiser, learning rates and class weights (from the train split's labels). */
export function trainingSetup(config: TrainConfig, acts: Activations): TrainingSetup {
  return {
    loss: "binary cross-entropy on logits, class-weighted mean",
    optimizer: "adam",
    batchSize: config.batchSize,
    seed: config.seed,
    phase1: { epochs: config.phase1.epochs, lr: config.phase1.lr },
    phase2: config.phase2 ? { ...config.phase2 } : null,
    classWeights: config.classWeight === "balanced"
      ? balancedClassWeights(labelsOf(acts, acts.idx.train))
      : null,
    earlyStopping: { ...config.earlyStopping },
  };
}

/** How a fit reports and saves; all optional (a notebook may pass nothing). */
export interface FitOptions {
  /** Extra callbacks (run status, tracking, ...), run in their `order`. */
  callbacks?: Callback[];
  /** Progress bar per epoch (default true). */
  progress?: boolean;
  /** Checkpoint folder: resume from its `last` state of this phase, save `last`/`best` there. */
  checkpoints?: string;
  /** Earlier phases' history (global epoch numbers continue from it). */
  previousHistory?: EpochRecord[];
  /** Progress bar label (default "train"). */
  label?: string;
  log?: (msg: string) => void;
  /** Warnings (a damaged checkpoint); default console.error, even when `log` is quiet. */
  warn?: (msg: string) => void;
}

/** Step 8/9's result: the whole history so far (earlier phases included) and the learner. */
export interface PhaseResult {
  history: EpochRecord[];
  learner: Learner;
}

function learnerFor(
  model: HeadModel,
  acts: Activations,
  setup: TrainingSetup,
  phase: 1 | 2,
  lr: number,
): Learner {
  return new Learner({
    model,
    train: splitInputs(acts, "train", phase),
    val: splitInputs(acts, "val", phase),
    phase,
    lr,
    batchSize: setup.batchSize,
    seed: setup.seed,
    classWeights: setup.classWeights,
  });
}

/** 8. Phase 1: fits the head on the frozen base's pooled features. */
export async function fitPhase1(
  head: HeadModel,
  acts: Activations,
  setup: TrainingSetup,
  opts: FitOptions = {},
): Promise<PhaseResult> {
  const learner = learnerFor(head, acts, setup, 1, setup.phase1.lr);
  return { history: await fitPhase(learner, setup.phase1.epochs, setup, opts), learner };
}

/** 9a. Phase 2's model: the cut's tail (starting weights) + a copy of phase 1's head. */
export function buildPhase2Model(
  config: Pick<TrainConfig, "dropout" | "seed" | "phase2">,
  net: Net,
  cut: Cut,
  head: HeadModel,
): HeadModel {
  if (!cut.tail || !config.phase2) throw new Error("buildPhase2Model: the config has no phase 2");
  const model = new HeadModel({
    dim: head.dim,
    dropout: config.dropout,
    standardization: head.standardization,
    tail: buildTfModel(cut.tail, net.weights.weights),
    tailSpecs: cut.tail.layers.filter((l) => l.kind !== "InputLayer"),
    tailTraining: config.phase2.bnMode === "batch",
    seed: config.seed,
  });
  model.setWeights(head.getWeights());
  return model;
}

/** 9b. Phase 2: fine-tunes the unfrozen tail + head on the cached frontier activations. */
export async function fitPhase2(
  model: HeadModel,
  acts: Activations,
  setup: TrainingSetup,
  opts: FitOptions = {},
): Promise<PhaseResult> {
  if (!setup.phase2) throw new Error("fitPhase2: the setup has no phase 2");
  const learner = learnerFor(model, acts, setup, 2, setup.phase2.lr);
  return { history: await fitPhase(learner, setup.phase2.epochs, setup, opts), learner };
}

/**
 * Fits `learner` for `epochs` epochs of its phase with early stopping (best epoch restored).
 * With `opts.checkpoints`: resumes from its `last` checkpoint when that is of this phase, saves
 * `phase<n>` at the end, and a phase already saved there is restored instead of refit (a
 * resumed run, a re-run notebook cell). A damaged `last` (or `best`) is discarded with a warning
 * and the phase starts over from its own start (phase 2: the end of phase 1); a damaged
 * `phase<n>` goes with every later checkpoint and the phase is refit. Either way the run ends
 * exactly like an uninterrupted one.
 */
export async function fitPhase(
  learner: Learner,
  epochs: number,
  setup: Pick<TrainingSetup, "earlyStopping">,
  opts: FitOptions = {},
): Promise<EpochRecord[]> {
  const previousHistory = opts.previousHistory ?? [];
  const es = new EarlyStopping(setup.earlyStopping);
  const dir = opts.checkpoints;
  const final = `phase${learner.phase}`;
  // A phase that already ran to its end in this folder is restored, not refit.
  const finished = dir ? await readCheckpointState(dir, final) : null;
  if (dir && finished) {
    try {
      learner.model.setWeights(await loadWeights(checkpointFiles(dir, final).weights));
      opts.log?.(`phase ${learner.phase} already done (${finished.history.length} epochs)`);
      return finished.history;
    } catch (e) {
      // What came after grew from these weights: it goes too, and the phase is refit.
      (opts.warn ?? console.error)(
        `warning: checkpoint ${dir}/${final} is damaged (${(e as Error).message}); ` +
          (learner.phase === 1
            ? "training starts over from the first epoch"
            : "phase 2 starts over from the end of phase 1"),
      );
      for (const name of [final, "phase2", "last", "best"]) await discardCheckpoint(dir, name);
    }
  }
  const last = dir ? await readCheckpointState(dir, "last") : null;
  let resuming = dir !== undefined && last?.phase === learner.phase;
  if (resuming && dir) {
    try {
      await restoreCheckpoint(dir, "last", learner, es);
      opts.log?.(`resuming phase ${learner.phase} after epoch ${learner.epoch}`);
      if (last?.stopped) learner.stopRequested = true;
    } catch (e) {
      const from = learner.phase === 1 ? "its start" : "the end of phase 1";
      (opts.warn ?? console.error)(
        `warning: checkpoint ${dir}/last is damaged (${(e as Error).message}); ` +
          `phase ${learner.phase} starts over from ${from}`,
      );
      await discardCheckpoint(dir, "last");
      await discardCheckpoint(dir, "best");
      resuming = false;
    }
  }
  if (!resuming) learner.epoch = previousHistory.length;
  learner.callbacks.push(
    progressCallback({ quiet: opts.progress === false, label: opts.label }),
    es,
    ...(dir
      ? [checkpointCallback(dir, { earlyStopping: es, previousHistory: () => previousHistory })]
      : []),
    ...(opts.callbacks ?? []),
  );
  // A run killed after early stopping fired: only the best epoch is left to restore.
  if (resuming && last?.stopped) es.onFitEnd(learner);
  else await learner.fit(epochs);
  const history = [...previousHistory, ...learner.history];
  if (dir) await saveCheckpoint(dir, final, learner, { earlyStopping: null, history });
  return history;
}

/** 10. Probabilities of `model` on a split's images, one row per image (predictions file). */
export function splitPredictions(
  model: HeadModel,
  acts: Activations,
  split: SplitName,
  setup: Pick<TrainingSetup, "batchSize">,
): PredictionsFile {
  const ids = acts.idx[split];
  const probs = predict(model, splitInputs(acts, split, model.tail ? 2 : 1), setup.batchSize);
  const fs = acts.features;
  return {
    split,
    items: ids.map((i, k) => ({
      rel: fs.items[i].rel,
      sha256: fs.sha256[i],
      patient: fs.items[i].patient,
      label: fs.items[i].label,
      prob: probs[k],
    })),
  };
}

/** 11. The operating threshold chosen on validation predictions (never on test). */
export function chooseValThreshold(
  val: PredictionsFile,
  method: TrainConfig["thresholdMethod"],
): ChosenThreshold {
  return thresholdOnValidation(val, method);
}
