/**
 * A small fastai-like Learner: `fit(epochs)` over in-memory (or cache-backed) feature batches;
 * everything else (progress, early stopping, checkpoints, run status and history, tracking) is an
 * ordered callback (`callbacks.ts`). Shuffles and dropout masks derive from (seed, phase, epoch,
 * batch) so a resumed run replays exactly. `predict` works on a bare model, no Learner needed.
 */
import { tf } from "../tf/backend.ts";
import type { HeadModel } from "./model.ts";
import { accuracy, binaryCrossEntropy, mixSeed, permutation, rocAuc } from "./metrics.ts";
import type { EpochRecord } from "../runs/history.ts";

export type { EpochRecord };

/** Inputs of the model for a batch of items, and every item's label. */
export interface FeatureSource {
  readonly size: number;
  readonly labels: Float32Array;
  /** Per model input, the features of `indices` concatenated. */
  batch(indices: number[]): { data: Float32Array; shape: number[] }[];
  /** Called before each training epoch (1-based, global): augmented sources pick views. */
  startEpoch?(epoch: number): void;
}

/**
 * Items with alternative rows in `base` (e.g. an image and its augmented views): in each epoch
 * item i reads row `pick(i, epoch)`, a pure function so that a resumed run replays it.
 */
export function epochSource(
  base: Pick<FeatureSource, "batch">,
  labels: ArrayLike<number>,
  pick: (i: number, epoch: number) => number,
): FeatureSource {
  let epoch = 0;
  return {
    size: labels.length,
    labels: Float32Array.from(labels),
    batch: (indices) => base.batch(indices.map((i) => pick(i, epoch))),
    startEpoch(e) {
      epoch = e;
    },
  };
}

/** An in-memory FeatureSource over one input [n, ...shape]. */
export function arraySource(
  data: Float32Array,
  shape: number[],
  labels: ArrayLike<number>,
): FeatureSource {
  const per = shape.reduce((a, b) => a * b, 1);
  const n = labels.length;
  if (data.length !== n * per) {
    throw new Error(`arraySource: ${data.length} values for ${n} items of [${shape}]`);
  }
  return {
    size: n,
    labels: Float32Array.from(labels),
    batch(indices) {
      const out = new Float32Array(indices.length * per);
      indices.forEach((i, k) => out.set(data.subarray(i * per, (i + 1) * per), k * per));
      return [{ data: out, shape: [indices.length, ...shape] }];
    },
  };
}

/**
 * Hooks around `fit`. Callbacks run in ascending `order` (default 0; ties keep the order given),
 * like fastai's: see CALLBACK_ORDER for the built-in ones.
 */
export interface Callback {
  order?: number;
  onFitStart?(learner: Learner): void | Promise<void>;
  onBatchEnd?(learner: Learner, info: { seen: number; total: number; loss: number }): void;
  /** May set `learner.stopRequested`. */
  onEpochEnd?(learner: Learner, record: EpochRecord): void | Promise<void>;
  onFitEnd?(learner: Learner): void | Promise<void>;
}

export interface LearnerOptions {
  model: HeadModel;
  train: FeatureSource;
  val: FeatureSource;
  phase: 1 | 2;
  lr: number;
  batchSize: number;
  seed: number;
  /** [weight of class 0, weight of class 1]; null: unweighted. */
  classWeights: [number, number] | null;
  callbacks?: Callback[];
}

/** Where the built-in callbacks run: each one reads what the ones before it decided. */
export const CALLBACK_ORDER = {
  /** Progress bar. */
  progress: 0,
  /** Sets `stopRequested` and `improved`; restores the best weights at the end of the fit. */
  earlyStopping: 10,
  /** Saves `last` (and `best` when early stopping saw an improvement). */
  checkpoint: 20,
  /** run.json and history.json, then the caller's onEpoch. */
  record: 30,
  /** MLflow metrics. */
  tracking: 40,
  /** Test hook: simulated kill, after everything was saved. */
  abort: 50,
} as const;

/** Probabilities of `model` on `source` in inference mode, `batchSize` items at a time. */
export function predict(model: HeadModel, source: FeatureSource, batchSize: number): Float32Array {
  const out = new Float32Array(source.size);
  for (let start = 0; start < source.size; start += batchSize) {
    const indices = range(start, Math.min(source.size, start + batchSize));
    const probs = tf.tidy(() => {
      const inputs = source.batch(indices).map((b) => tf.tensor(b.data, b.shape));
      return tf.sigmoid(model.forward(inputs, null));
    });
    out.set(probs.dataSync(), start);
    probs.dispose();
  }
  return out;
}

/** Trains `model` on `train`, validating on `val` after every epoch. */
export class Learner {
  readonly model: HeadModel;
  readonly train: FeatureSource;
  readonly val: FeatureSource;
  readonly phase: 1 | 2;
  readonly lr: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly classWeights: [number, number] | null;
  readonly callbacks: Callback[];
  readonly optimizer: tf.AdamOptimizer;
  /** Global epoch number of the last finished epoch (0 before any). */
  epoch = 0;
  /** Epochs finished in this phase. */
  phaseEpoch = 0;
  history: EpochRecord[] = [];
  stopRequested = false;
  /** `callbacks` sorted by order, fixed when `fit` starts. */
  private ordered: Callback[] = [];

  constructor(opts: LearnerOptions) {
    this.model = opts.model;
    this.train = opts.train;
    this.val = opts.val;
    this.phase = opts.phase;
    this.lr = opts.lr;
    this.batchSize = opts.batchSize;
    this.seed = opts.seed;
    this.classWeights = opts.classWeights;
    this.callbacks = opts.callbacks ?? [];
    this.optimizer = tf.train.adam(opts.lr) as tf.AdamOptimizer;
  }

  /** Probabilities on `source` in inference mode. */
  predict(source: FeatureSource): Float32Array {
    return predict(this.model, source, this.batchSize);
  }

  /** One epoch of training; returns its record (without calling callbacks). */
  private trainEpoch(): Omit<EpochRecord, "val_loss" | "val_accuracy" | "val_auc" | "seconds"> {
    const epoch = this.epoch + 1;
    const n = this.train.size;
    this.train.startEpoch?.(epoch);
    const order = permutation(n, mixSeed(this.seed, this.phase, epoch));
    const probs = new Float32Array(n);
    const labels = new Float32Array(n);
    let lossSum = 0;
    let batches = 0;
    const vars = this.model.variables;
    for (let start = 0, b = 0; start < n; start += this.batchSize, b++) {
      const indices = order.slice(start, Math.min(n, start + this.batchSize));
      const y = Float32Array.from(indices, (i) => this.train.labels[i]);
      const w = this.classWeights
        ? Float32Array.from(y, (v) => this.classWeights![v === 1 ? 1 : 0])
        : new Float32Array(y.length).fill(1);
      const dropoutSeed = mixSeed(this.seed, this.phase, epoch, b, 7);
      const batchProbs: { value: Float32Array | null } = { value: null };
      const loss = tf.tidy(() => {
        const inputs = this.train.batch(indices).map((t) => tf.tensor(t.data, t.shape));
        const yt = tf.tensor1d(y);
        const wt = tf.tensor1d(w);
        return this.optimizer.minimize(
          () => {
            const logits = this.model.forward(inputs, dropoutSeed);
            batchProbs.value = tf.sigmoid(logits).dataSync() as Float32Array;
            // Stable BCE with logits: max(z, 0) - z*y + log(1 + exp(-|z|)), Keras-style mean.
            const l = tf.add(
              tf.sub(tf.relu(logits), tf.mul(logits, yt)),
              tf.log1p(tf.exp(tf.neg(tf.abs(logits)))),
            );
            return tf.mean(tf.mul(l, wt)) as tf.Scalar;
          },
          true,
          vars,
        ) as tf.Scalar;
      });
      const lossValue = loss.dataSync()[0];
      loss.dispose();
      probs.set(batchProbs.value!, start);
      labels.set(y, start);
      lossSum += lossValue;
      batches++;
      for (const cb of this.ordered) {
        cb.onBatchEnd?.(this, {
          seen: start + indices.length,
          total: n,
          loss: lossSum / batches,
        });
      }
    }
    return {
      epoch,
      phase: this.phase,
      loss: lossSum / Math.max(1, batches),
      accuracy: accuracy(labels, probs),
      auc: rocAuc(labels, probs),
      lr: this.lr,
    };
  }

  /** Trains until `epochs` epochs of this phase are done (resumes from `phaseEpoch`). */
  async fit(epochs: number): Promise<EpochRecord[]> {
    this.stopRequested = false;
    this.ordered = [...this.callbacks].sort((a, b) => (a.order ?? 0) - (b.order ?? 0));
    for (const cb of this.ordered) await cb.onFitStart?.(this);
    while (this.phaseEpoch < epochs && !this.stopRequested) {
      const t0 = performance.now();
      const rec = this.trainEpoch();
      const valProbs = this.predict(this.val);
      const record: EpochRecord = {
        ...rec,
        val_loss: binaryCrossEntropy(this.val.labels, valProbs),
        val_accuracy: accuracy(this.val.labels, valProbs),
        val_auc: rocAuc(this.val.labels, valProbs),
        seconds: (performance.now() - t0) / 1000,
      };
      this.epoch = record.epoch;
      this.phaseEpoch++;
      this.history.push(record);
      for (const cb of this.ordered) await cb.onEpochEnd?.(this, record);
    }
    for (const cb of this.ordered) await cb.onFitEnd?.(this);
    return this.history;
  }
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

/** Early stopping on `monitor`; with restoreBest the model ends with its best epoch's weights. */
export class EarlyStopping implements Callback {
  readonly order = CALLBACK_ORDER.earlyStopping;
  readonly monitor: "val_auc" | "val_loss";
  readonly patience: number;
  readonly restoreBest: boolean;
  state: { best: number | null; bestEpoch: number; wait: number } = {
    best: null,
    bestEpoch: 0,
    wait: 0,
  };
  /** Weights of the best epoch (kept in memory for restoreBest). */
  bestWeights: ReturnType<HeadModel["getWeights"]> | null = null;
  /** Set when the last epoch improved on the best (checkpoint "best" then). */
  improved = false;

  constructor(opts: { monitor: "val_auc" | "val_loss"; patience: number; restoreBest: boolean }) {
    this.monitor = opts.monitor;
    this.patience = opts.patience;
    this.restoreBest = opts.restoreBest;
  }

  private better(v: number, best: number | null): boolean {
    if (!Number.isFinite(v)) return false;
    if (best === null) return true;
    return this.monitor === "val_auc" ? v > best : v < best;
  }

  onEpochEnd(l: Learner, r: EpochRecord): void {
    const v = r[this.monitor];
    this.improved = this.better(v, this.state.best);
    if (this.improved) {
      this.state = { best: v, bestEpoch: r.epoch, wait: 0 };
      if (this.restoreBest) this.bestWeights = l.model.getWeights();
    } else {
      this.state.wait++;
      if (this.patience > 0 && this.state.wait >= this.patience) l.stopRequested = true;
    }
  }

  onFitEnd(l: Learner): void {
    if (this.restoreBest && this.bestWeights) l.model.setWeights(this.bestWeights);
  }
}
