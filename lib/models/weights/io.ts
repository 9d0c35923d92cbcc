/**
 * cxr's own weight files: `<path>.json` (a manifest: layer, kind, shape, offset of each tensor)
 * and `<path>.bin` (the float32 values, little-endian, back to back). Used for checkpoints and
 * trained heads; both files are written to temporaries and renamed so a crash never leaves a
 * manifest that points at a half-written `.bin`.
 */
import { createHash } from "node:crypto";
import type { NetWeights, WeightKind, WeightTensor } from "../spec.ts";
import { writeFileAtomic, writeJsonAtomic } from "../../util/fs.ts";

interface ManifestEntry {
  layer: string;
  kind: WeightKind;
  shape: number[];
  /** Offset in float32 values from the start of the `.bin`. */
  offset: number;
}

interface Manifest {
  format: "cxr-weights";
  version: 1;
  dtype: "float32";
  values: number;
  md5: string;
  tensors: ManifestEntry[];
}

/** Saves `weights` as `<path>.json` + `<path>.bin` (`path` without extension). */
export async function saveWeights(path: string, weights: NetWeights): Promise<void> {
  const tensors: ManifestEntry[] = [];
  let values = 0;
  for (const [layer, kinds] of weights) {
    for (const [kind, tensor] of Object.entries(kinds) as [WeightKind, WeightTensor][]) {
      tensors.push({ layer, kind, shape: [...tensor.shape], offset: values });
      values += tensor.data.length;
    }
  }
  const bin = new Float32Array(values);
  for (const entry of tensors) bin.set(weights.get(entry.layer)![entry.kind]!.data, entry.offset);
  const bytes = new Uint8Array(bin.buffer);
  const md5 = createHash("md5").update(bytes).digest("hex");
  const manifest: Manifest = {
    format: "cxr-weights",
    version: 1,
    dtype: "float32",
    values,
    md5,
    tensors,
  };
  // The manifest last: a `.json` always describes a whole `.bin`.
  await writeFileAtomic(`${path}.bin`, bytes);
  await writeJsonAtomic(`${path}.json`, manifest, 1);
}

/** Loads weights saved by `saveWeights`; a missing, short or altered `.bin` is a clear error. */
export async function loadWeights(path: string): Promise<NetWeights> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await Deno.readTextFile(`${path}.json`));
  } catch (error) {
    throw new Error(`${path}.json: cannot read weights manifest: ${(error as Error).message}`);
  }
  if (manifest.format !== "cxr-weights" || !Array.isArray(manifest.tensors)) {
    throw new Error(`${path}.json: not a cxr weights manifest`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(`${path}.bin`);
  } catch (error) {
    throw new Error(`${path}.bin: cannot read weights data: ${(error as Error).message}`);
  }
  if (bytes.length !== manifest.values * 4) {
    throw new Error(
      `${path}.bin: ${bytes.length} bytes, manifest needs ${manifest.values * 4} (truncated?)`,
    );
  }
  const md5 = createHash("md5").update(bytes).digest("hex");
  if (md5 !== manifest.md5) {
    throw new Error(`${path}.bin: md5 ${md5} differs from the manifest's ${manifest.md5}`);
  }
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, manifest.values);
  const weights: NetWeights = new Map();
  for (const entry of manifest.tensors) {
    const size = entry.shape.reduce((a, b) => a * b, 1);
    const tensor = { shape: entry.shape, data: all.slice(entry.offset, entry.offset + size) };
    const kinds = weights.get(entry.layer) ?? {};
    kinds[entry.kind] = tensor;
    weights.set(entry.layer, kinds);
  }
  return weights;
}
