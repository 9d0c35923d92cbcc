/**
 * Shared by the models tests: the reference inputs and Keras outputs of
 * ../shared/reference/keras_features.json, and error measures against them.
 */
import sharp from "sharp";
import { join } from "node:path";
import { referenceDir } from "../lib/util/paths.ts";
import type { NetName } from "../lib/models/spec.ts";

export interface LayerStats {
  shape: number[];
  mean: number;
  std: number;
  min: number;
  max: number;
  samples: { at: number[]; value: number }[];
}

export interface NetReference {
  preprocessing: "caffe" | "torch";
  params: number;
  outputs: Record<string, { pooled: number[]; layers: Record<string, LayerStats> }>;
}

export interface KerasFeatures {
  inputs: { name: string; png: string; rgb_sha256: string; shape: number[] }[];
  nets: Record<NetName, NetReference>;
}

export function loadKerasFeatures(): KerasFeatures {
  return JSON.parse(Deno.readTextFileSync(join(referenceDir(), "keras_features.json")));
}

export function loadKerasLayouts(): Record<NetName, unknown> {
  return JSON.parse(Deno.readTextFileSync(join(referenceDir(), "keras_layouts.json")));
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The named reference inputs as one NHWC RGB 0..255 batch; checks the RGB bytes' sha256. */
export async function loadReferenceInputs(
  ref: KerasFeatures,
  names: string[],
): Promise<Float32Array> {
  const batch = new Float32Array(names.length * 224 * 224 * 3);
  for (const [b, name] of names.entries()) {
    const input = ref.inputs.find((i) => i.name === name);
    if (!input) throw new Error(`keras_features.json has no input "${name}"`);
    const { data, info } = await sharp(join(referenceDir(), input.png))
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== 224 || info.height !== 224 || info.channels !== 3) {
      throw new Error(
        `${input.png}: expected 224x224 RGB, got ${info.width}x${info.height}x${info.channels}`,
      );
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const sha = await sha256Hex(bytes);
    if (sha !== input.rgb_sha256) {
      throw new Error(`${input.png}: RGB sha256 ${sha} != ${input.rgb_sha256}`);
    }
    batch.set(bytes, b * bytes.length);
  }
  return batch;
}

/** Global average over H and W of one NHWC item. */
export function globalAverage(
  data: Float32Array,
  item: number,
  hw: number,
  c: number,
): Float64Array {
  const out = new Float64Array(c);
  const base = item * hw * c;
  for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out[k] += data[base + p * c + k];
  for (let k = 0; k < c; k++) out[k] /= hw;
  return out;
}

/** max |a - r| / max |r| (the README's measure). */
export function maxRelError(a: ArrayLike<number>, r: ArrayLike<number>): number {
  if (a.length !== r.length) throw new Error(`length ${a.length} != ${r.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < r.length; i++) {
    num = Math.max(num, Math.abs(a[i] - r[i]));
    den = Math.max(den, Math.abs(r[i]));
  }
  return num / (den || 1);
}

/**
 * Relative error of a layer output (one NHWC item) against its reference stats: every stat
 * and sample difference divided by the layer's max |value|.
 */
export function layerStatsError(
  data: Float32Array,
  shape: number[],
  item: number,
  ref: LayerStats,
): number {
  const [, h, w, c] = shape;
  const refShape = ref.shape.slice(1).join("x");
  if (refShape !== [h, w, c].join("x")) throw new Error(`shape ${[h, w, c]} != ${ref.shape}`);
  const n = h * w * c;
  const base = item * n;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = data[base + i];
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (data[base + i] - mean) ** 2;
  const std = Math.sqrt(sq / n);
  const scale = Math.max(Math.abs(ref.min), Math.abs(ref.max)) || 1;
  const diffs = [mean - ref.mean, std - ref.std, min - ref.min, max - ref.max];
  for (const s of ref.samples) {
    const [, y, x, k] = s.at;
    diffs.push(data[base + (y * w + x) * c + k] - s.value);
  }
  return Math.max(...diffs.map(Math.abs)) / scale;
}
