/**
 * Formula weights: deterministic tensors in Keras layout that any implementation can rebuild
 * exactly (see ../shared/reference/README.md). Used by tests and benchmarks on machines without
 * Keras' ImageNet files; anything trained from them is "not ImageNet".
 */
import type { NetWeights, WeightKind, WeightTensor } from "../spec.ts";
import type { WeightLayout } from "../layout.ts";

/** 32-bit FNV-1a over the UTF-8 bytes of `text`. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Uniform value in [-0.5, 0.5) for flat index `i` of the tensor seeded by `seed`. */
export function formulaUniform(i: number, seed: number): number {
  let x = (Math.imul(i >>> 0, 0x9e3779b1) + seed) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x = (x ^ (x >>> 13)) >>> 0;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x / 4294967296 - 0.5;
}

/** One formula tensor for weight `kind` of Keras layer `layer` with Keras `shape`. */
export function formulaTensor(layer: string, kind: WeightKind, shape: number[]): WeightTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const seed = fnv1a32(`${layer}/${kind}`);
  const data = new Float32Array(size);
  let value: (u: number) => number;
  switch (kind) {
    case "kernel": {
      const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const scale = Math.sqrt(24 / fanIn);
      value = (u) => u * scale;
      break;
    }
    case "bias":
      value = (u) => 0.1 * u;
      break;
    case "gamma":
      value = (u) => 1 + 0.2 * u;
      break;
    case "beta":
    case "moving_mean":
      value = (u) => 0.2 * u;
      break;
    case "moving_variance":
      value = (u) => 1 + 0.5 * u;
      break;
    default: {
      const unknown: never = kind; // a new weight kind fails to compile here
      throw new Error(`formula weights: unknown weight kind "${unknown}" of layer ${layer}`);
    }
  }
  for (let i = 0; i < size; i++) data[i] = value(formulaUniform(i, seed));
  return { shape: [...shape], data };
}

/** Formula weights for every weight of `layout` (weightless layers are absent). */
export function formulaWeights(layout: WeightLayout): NetWeights {
  const weights: NetWeights = new Map();
  for (const entry of layout) {
    if (entry.weights.length === 0) continue;
    const tensors: Partial<Record<WeightKind, WeightTensor>> = {};
    for (const w of entry.weights) tensors[w.kind] = formulaTensor(entry.layer, w.kind, w.shape);
    weights.set(entry.layer, tensors);
  }
  return weights;
}
