/**
 * Keras' default initialisers, as `keras.applications.<net>(weights=None)` builds them: Conv2D and
 * Dense kernels glorot_uniform, biases zeros, BatchNormalization gamma 1, beta 0, moving mean 0,
 * moving variance 1. This is the `none` weights choice (training from scratch; not ImageNet).
 */
import type { NetWeights, WeightKind, WeightTensor } from "../spec.ts";
import type { WeightLayout } from "../layout.ts";
import { fnv1a32 } from "./formula.ts";
import { mulberry32 } from "../../util/random.ts";

/** Keras' fan-in/fan-out: conv kernels [kh, kw, cin, cout] multiply by the receptive field. */
export function kerasFans(shape: number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) return { fanIn: shape[0] ?? 1, fanOut: shape[0] ?? 1 };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return {
    fanIn: shape[shape.length - 2] * receptive,
    fanOut: shape[shape.length - 1] * receptive,
  };
}

/** glorot_uniform: U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)). */
export function glorotUniform(shape: number[], random: () => number): Float32Array {
  const { fanIn, fanOut } = kerasFans(shape);
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (2 * random() - 1) * limit;
  return data;
}

function constantTensor(shape: number[], value: number): WeightTensor {
  return {
    shape: [...shape],
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value),
  };
}

/**
 * Keras default weights for every weight of `layout`. Each kernel draws from its own stream
 * seeded by `seed` and the layer name, so a layer's weights do not depend on the layers before it.
 */
export function kerasInitWeights(layout: WeightLayout, seed = 42): NetWeights {
  const weights: NetWeights = new Map();
  for (const entry of layout) {
    if (entry.weights.length === 0) continue;
    const tensors: Partial<Record<WeightKind, WeightTensor>> = {};
    for (const w of entry.weights) {
      switch (w.kind) {
        case "kernel": {
          const random = mulberry32(
            (fnv1a32(`${entry.layer}/kernel`) ^ Math.imul(seed, 0x9e3779b1)) >>> 0,
          );
          tensors.kernel = { shape: [...w.shape], data: glorotUniform(w.shape, random) };
          break;
        }
        case "bias":
        case "beta":
        case "moving_mean":
          tensors[w.kind] = constantTensor(w.shape, 0);
          break;
        case "gamma":
        case "moving_variance":
          tensors[w.kind] = constantTensor(w.shape, 1);
          break;
        default: {
          const unknown: never = w.kind; // a new weight kind fails to compile here
          throw new Error(
            `kerasInitWeights: unknown weight kind "${unknown}" of layer ${entry.layer}`,
          );
        }
      }
    }
    weights.set(entry.layer, tensors);
  }
  return weights;
}
