/**
 * What the Learner trains: an optional unfrozen tail (tfjs-layers, frontier activations in,
 * the base's last feature map out), then the original head: global average pooling, dropout,
 * one sigmoid unit. The pooled features are standardised with fixed train statistics first
 * (folded into head_dense when exported), and dropout masks come from a seeded PRNG so that a
 * resumed run replays exactly.
 */
import { tf } from "../tf/backend.ts";
import { readTfWeights, setLayerWeights } from "../models/tfjs.ts";
import type { LayerSpec, NetWeights, WeightTensor } from "../models/spec.ts";
import { mulberry32 } from "./metrics.ts";

let instances = 0;

export interface Standardization {
  mean: Float32Array;
  std: Float32Array;
}

/** Mean and std (floored at 1e-6 of the largest) of rows of `data` [n, dim]. */
export function computeStandardization(data: Float32Array, dim: number): Standardization {
  const n = data.length / dim;
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) {
      const v = data[i * dim + j];
      mean[j] += v;
      sq[j] += v * v;
    }
  }
  const std = new Float32Array(dim);
  let maxStd = 0;
  for (let j = 0; j < dim; j++) {
    mean[j] /= n;
    std[j] = Math.sqrt(Math.max(0, sq[j] / n - mean[j] * mean[j]));
    maxStd = Math.max(maxStd, std[j]);
  }
  const floor = Math.max(maxStd * 1e-6, 1e-12);
  for (let j = 0; j < dim; j++) std[j] = Math.max(std[j], floor);
  return { mean: Float32Array.from(mean), std };
}

export interface HeadModelOptions {
  /** Pooled feature size (head_dense input). */
  dim: number;
  dropout: number;
  standardization: Standardization | null;
  /** Unfrozen tail: frontier activations -> last feature map [h, w, dim]; null: phase 1. */
  tail?: tf.LayersModel | null;
  /** Specs of the tail's layers (to read/write weights in Keras layout). */
  tailSpecs?: LayerSpec[];
  /** BN of the tail in training (batch statistics) or inference mode. */
  tailTraining?: boolean;
  seed: number;
}

/** Tail + standardise + dropout + dense(1); `forward` returns logits [B]. */
export class HeadModel {
  readonly dim: number;
  readonly dropout: number;
  readonly tail: tf.LayersModel | null;
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable;
  private readonly tailSpecs: LayerSpec[];
  private readonly tailTraining: boolean;
  private readonly mean: tf.Tensor | null;
  private readonly invStd: tf.Tensor | null;
  readonly standardization: Standardization | null;

  constructor(opts: HeadModelOptions) {
    this.dim = opts.dim;
    this.dropout = opts.dropout;
    this.tail = opts.tail ?? null;
    this.tailSpecs = opts.tailSpecs ?? [];
    this.tailTraining = opts.tailTraining ?? false;
    this.standardization = opts.standardization;
    // Keras' Dense default: glorot uniform kernel, zero bias (seeded).
    const limit = Math.sqrt(6 / (opts.dim + 1));
    const rand = mulberry32(opts.seed);
    const k = new Float32Array(opts.dim).map(() => (rand() * 2 - 1) * limit);
    const id = instances++; // tfjs variable names are global
    this.kernel = tf.variable(tf.tensor2d(k, [opts.dim, 1]), true, `cxr_head_dense_kernel_${id}`);
    this.bias = tf.variable(tf.zeros([1]), true, `cxr_head_dense_bias_${id}`);
    this.mean = opts.standardization ? tf.tensor1d(opts.standardization.mean) : null;
    this.invStd = opts.standardization
      ? tf.tensor1d(opts.standardization.std.map((s) => 1 / s))
      : null;
  }

  /** Trainable variables: tail's then head's (fixed order: the optimizer state relies on it). */
  get variables(): tf.Variable[] {
    const tailVars = this.tail
      ? this.tail.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val)
      : [];
    return [...tailVars, this.kernel, this.bias];
  }

  /** Pooled features [B, dim] from the inputs (pooled features themselves in phase 1). */
  pooled(inputs: tf.Tensor[], training: boolean): tf.Tensor2D {
    if (!this.tail) return inputs[0] as tf.Tensor2D;
    const out = this.tail.apply(inputs.length === 1 ? inputs[0] : inputs, {
      training: training && this.tailTraining,
    }) as tf.Tensor;
    return tf.mean(out, [1, 2]) as tf.Tensor2D;
  }

  /** Logits [B]; `dropoutSeed` set = training (dropout on). */
  forward(inputs: tf.Tensor[], dropoutSeed: number | null): tf.Tensor1D {
    return tf.tidy(() => {
      let x = this.pooled(inputs, dropoutSeed !== null);
      if (this.mean && this.invStd) x = tf.mul(tf.sub(x, this.mean), this.invStd);
      if (dropoutSeed !== null && this.dropout > 0) {
        const [b, d] = x.shape;
        const rand = mulberry32(dropoutSeed);
        const keep = 1 - this.dropout;
        const mask = new Float32Array(b * d).map(() => (rand() < keep ? 1 / keep : 0));
        x = tf.mul(x, tf.tensor2d(mask, [b, d]));
      }
      return tf.add(tf.matMul(x, this.kernel), this.bias).reshape([-1]) as tf.Tensor1D;
    });
  }

  /** All trained weights in Keras layout (tail layers + head_dense in standardised space). */
  getWeights(): NetWeights {
    const out: NetWeights = this.tail ? readTfWeights(this.tail) : new Map();
    out.set("head_dense", {
      kernel: { shape: [this.dim, 1], data: new Float32Array(this.kernel.dataSync()) },
      bias: { shape: [1], data: new Float32Array(this.bias.dataSync()) },
    });
    return out;
  }

  /** Restores weights saved by `getWeights` (missing tail layers keep their values). */
  setWeights(weights: NetWeights): void {
    const head = weights.get("head_dense");
    if (!head?.kernel || !head.bias) throw new Error("weights lack head_dense kernel/bias");
    this.kernel.assign(tf.tensor2d(head.kernel.data, [this.dim, 1]));
    this.bias.assign(tf.tensor1d(head.bias.data));
    if (!this.tail) return;
    for (const spec of this.tailSpecs) {
      const w = weights.get(spec.name);
      if (!w) continue;
      setLayerWeights(this.tail.getLayer(spec.name), spec, w);
    }
  }

  /** head_dense on raw pooled features: standardisation folded into kernel and bias. */
  foldedHead(): { kernel: WeightTensor; bias: WeightTensor } {
    const k = this.kernel.dataSync();
    const b = this.bias.dataSync()[0];
    const kernel = new Float32Array(this.dim);
    let bias = b;
    for (let j = 0; j < this.dim; j++) {
      const s = this.standardization;
      kernel[j] = s ? k[j] / s.std[j] : k[j];
      if (s) bias -= (k[j] * s.mean[j]) / s.std[j];
    }
    return {
      kernel: { shape: [this.dim, 1], data: kernel },
      bias: { shape: [1], data: new Float32Array([bias]) },
    };
  }

  dispose(): void {
    this.kernel.dispose();
    this.bias.dispose();
    this.mean?.dispose();
    this.invStd?.dispose();
    this.tail?.dispose();
  }
}
