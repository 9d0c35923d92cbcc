/**
 * Keras `.h5` weight files (the Keras 2 legacy `save_weights` layout that Keras' ImageNet
 * `*_notop.h5` files use), read and written with h5wasm:
 *
 * - root attributes `layer_names` (byte strings; chunked as `layer_names0`, `layer_names1`...
 *   when larger than HDF5's 64 KiB object header), `backend`, `keras_version`;
 * - one group per layer with attribute `weight_names` (same chunking; empty when weightless);
 * - one dataset per weight at `<layer>/<weight name>`, e.g. `conv1/conv/conv1/conv/kernel:0`.
 *
 * Layers are matched by name (falling back to Keras' own `load_weights` rule, the order of the
 * layers that have weights, when the names differ). Within a layer weights are matched by kind
 * when the names say it (`.../kernel:0`), else by position (Keras 1 names like
 * `block1_conv1_W_1:0`); shapes are always checked.
 */
import h5wasm from "h5wasm/node";
import type { Dataset, File as H5File, Group } from "h5wasm/node";
import { resolve } from "node:path";
import type { NetWeights, WeightKind, WeightTensor } from "../spec.ts";
import type { WeightLayout } from "../layout.ts";
import { replaceAtomically } from "../../util/fs.ts";

/** Keras' HDF5_OBJECT_HEADER_LIMIT: attributes larger than this are split into chunks. */
export const HDF5_OBJECT_HEADER_LIMIT = 64512;

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
const WEIGHT_KINDS: readonly WeightKind[] = [
  "kernel",
  "bias",
  "gamma",
  "beta",
  "moving_mean",
  "moving_variance",
];

/** A weight file that cannot be used: names the file, and the layer and shapes when known. */
export class WeightsFileError extends Error {
  constructor(readonly file: string, message: string, readonly layer?: string) {
    super(`${file}: ${message}`);
    this.name = "WeightsFileError";
  }
}

let h5Ready: Promise<void> | undefined;

/** Loads the HDF5 wasm module once, with HDF5 errors thrown as JS errors (not printed). */
function ready(): Promise<void> {
  h5Ready ??= h5wasm.ready.then((module) => {
    module.activate_throwing_error_handler();
  });
  return h5Ready;
}

/** The most specific line of an HDF5 error stack ("Not an HDF5 file", "Read failed"...). */
function hdf5Reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const minors = [...text.matchAll(/minor: (.+)/g)].map((m) => m[1].trim());
  const lines = [...text.matchAll(/in (\w+)\(\): (.+)/g)].map((m) => m[2].trim());
  const last = lines.at(-1);
  if (last) return minors.at(-1) ? `${last} (${minors.at(-1)})` : last;
  return text.split("\n")[0];
}

function formatShape(shape: readonly number[] | null | undefined): string {
  return shape ? `[${shape.join(", ")}]` : "(none)";
}

/** Checks what HDF5 reports obscurely: missing file, not HDF5, shorter than it says. */
async function checkFile(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new WeightsFileError(path, "no such weights file");
    }
    throw new WeightsFileError(path, `cannot read: ${(error as Error).message}`);
  }
  if (!info.isFile) throw new WeightsFileError(path, "not a file");
  using file = await Deno.open(path, { read: true });
  const head = new Uint8Array(8);
  const n = await file.read(head);
  if (n !== 8 || HDF5_SIGNATURE.some((b, i) => head[i] !== b)) {
    throw new WeightsFileError(
      path,
      `not an HDF5 file (${info.size} bytes; expected a Keras .h5 weights file)`,
    );
  }
}

function openFile(path: string): H5File {
  let file: H5File;
  try {
    file = new h5wasm.File(path, "r");
  } catch (error) {
    throw new WeightsFileError(
      path,
      `cannot open as HDF5: ${hdf5Reason(error)}; the file may be truncated or corrupt ` +
        `(an interrupted download?): delete it and fetch it again`,
    );
  }
  if (file.file_id < 0n) {
    throw new WeightsFileError(path, "cannot open as HDF5 (truncated or corrupt?)");
  }
  return file;
}

function decodeStrings(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const list = Array.isArray(value)
    ? value
    : ArrayBuffer.isView(value)
    ? [...(value as Float64Array)]
    : [value];
  return list.map((v) =>
    v instanceof Uint8Array ? new TextDecoder().decode(v).replace(/\0+$/, "") : String(v)
  );
}

/** Keras' `load_attributes_from_hdf5_group`: `name`, or `name0`, `name1`... concatenated. */
export function readStringAttribute(group: Group, name: string): string[] | null {
  const attrs = group.attrs;
  if (name in attrs) return decodeStrings(attrs[name].value);
  if (!(`${name}0` in attrs)) return null;
  const out: string[] = [];
  for (let chunk = 0; `${name}${chunk}` in attrs; chunk++) {
    out.push(...decodeStrings(attrs[`${name}${chunk}`].value));
  }
  return out;
}

/** Keras' `save_attributes_to_hdf5_group`: split like `np.array_split` until each chunk fits. */
export function writeStringAttribute(
  group: Group,
  name: string,
  values: string[],
  limit = HDF5_OBJECT_HEADER_LIMIT,
): void {
  if (values.length === 0) {
    group.create_attribute(name, new Float64Array(0), [0]);
    return;
  }
  const encoder = new TextEncoder();
  const itemSize = Math.max(1, ...values.map((v) => encoder.encode(v).length));
  let chunks = 1;
  const split = (k: number): string[][] => {
    const out: string[][] = [];
    const base = Math.floor(values.length / k);
    const extra = values.length % k;
    let start = 0;
    for (let i = 0; i < k; i++) {
      const size = base + (i < extra ? 1 : 0);
      out.push(values.slice(start, start + size));
      start += size;
    }
    return out;
  };
  let parts = split(chunks);
  while (parts.some((p) => p.length * itemSize > limit) && chunks < values.length) {
    chunks++;
    parts = split(chunks);
  }
  if (chunks === 1) {
    group.create_attribute(name, values, [values.length], `S${itemSize}`);
    return;
  }
  parts.forEach((part, i) =>
    group.create_attribute(`${name}${i}`, part, [part.length], `S${itemSize}`)
  );
}

/** The weight kind a Keras 2 name states (`conv1/conv/kernel:0` -> kernel), if any. */
export function kindFromWeightName(name: string): WeightKind | null {
  const last = name.split("/").at(-1)!.replace(/:\d+$/, "");
  return (WEIGHT_KINDS as readonly string[]).includes(last) ? last as WeightKind : null;
}

interface FileLayer {
  name: string;
  weightNames: string[];
  group: Group;
}

function fileLayers(file: H5File, path: string): FileLayer[] {
  let root = file as Group;
  let names = readStringAttribute(root, "layer_names");
  if (names === null && file.keys().includes("model_weights")) {
    // A whole-model `model.save()` file keeps the weights under /model_weights.
    root = file.get("model_weights") as Group;
    names = readStringAttribute(root, "layer_names");
  }
  if (names === null) {
    throw new WeightsFileError(
      path,
      "no `layer_names` attribute: not a Keras weights file (Keras 2 `save_weights` h5 layout)",
    );
  }
  return names.map((name) => {
    let group: unknown = null;
    try {
      group = root.get(name);
    } catch {
      // reported below
    }
    if (!(group instanceof h5wasm.Group)) {
      throw new WeightsFileError(
        path,
        `layer ${name} is listed in layer_names but has no group (truncated or corrupt file?)`,
        name,
      );
    }
    return { name, weightNames: readStringAttribute(group, "weight_names") ?? [], group };
  });
}

/** Pairs each layout layer with weights with a file layer: by name, else by Keras' order rule. */
function matchLayers(
  path: string,
  layout: WeightLayout,
  layers: FileLayer[],
): Map<string, FileLayer> {
  const wanted = layout.filter((e) => e.weights.length > 0);
  const byName = new Map(layers.map((l) => [l.name, l]));
  const missing = wanted.filter((e) => !byName.has(e.layer));
  const matched = new Map<string, FileLayer>();
  if (missing.length === 0) {
    for (const e of wanted) matched.set(e.layer, byName.get(e.layer)!);
    return matched;
  }
  const withWeights = layers.filter((l) => l.weightNames.length > 0);
  if (withWeights.length !== wanted.length) {
    const first = missing[0];
    const shapes = first.weights.map((w) => `${w.kind} ${formatShape(w.shape)}`).join(", ");
    throw new WeightsFileError(
      path,
      `layer ${first.layer} (${shapes}) is not in the file` +
        (missing.length > 1 ? ` (nor ${missing.length - 1} other layer(s))` : "") +
        `, and the file has ${withWeights.length} layers with weights where the model has ` +
        `${wanted.length}, so they cannot be matched by order either: is it the weights file ` +
        `of another net? Give --weights a notop .h5 of this net`,
      first.layer,
    );
  }
  wanted.forEach((e, i) => matched.set(e.layer, withWeights[i]));
  return matched;
}

/**
 * Reads every weight of `layout` from the Keras `.h5` at `path`. Throws a `WeightsFileError`
 * naming the file, the layer and the shapes when the file does not fit the layout.
 */
export async function readKerasH5(path: string, layout: WeightLayout): Promise<NetWeights> {
  const abs = resolve(path);
  await checkFile(abs);
  await ready();
  const file = openFile(abs);
  try {
    const layers = fileLayers(file, abs);
    const matched = matchLayers(abs, layout, layers);
    const weights: NetWeights = new Map();
    for (const entry of layout) {
      if (entry.weights.length === 0) continue;
      weights.set(entry.layer, readLayer(abs, entry, matched.get(entry.layer)!));
    }
    return weights;
  } finally {
    file.close();
  }
}

function readLayer(
  path: string,
  entry: WeightLayout[number],
  fileLayer: FileLayer,
): Partial<Record<WeightKind, WeightTensor>> {
  const where = fileLayer.name === entry.layer
    ? `layer ${entry.layer}`
    : `layer ${entry.layer} (file layer ${fileLayer.name})`;
  const fail = (why: string) => new WeightsFileError(path, `${where}: ${why}`, entry.layer);
  const names = fileLayer.weightNames;
  const datasets = names.map((name) => openDataset(fileLayer.group, name, fail));
  const expected = entry.weights.map((w) => `${w.kind} ${formatShape(w.shape)}`).join(", ");
  const found = () =>
    names.map((n, i) => `${n} ${formatShape(datasets[i].shape)}`).join(", ") || "no weights";
  if (names.length !== entry.weights.length) {
    throw fail(`expected ${entry.weights.length} weights (${expected}), file has ${found()}`);
  }
  // By kind when every file name states a distinct kind the layout wants, else by position.
  const kinds = names.map(kindFromWeightName);
  const byKind = kinds.every((k) => k !== null) && new Set(kinds).size === kinds.length &&
    entry.weights.every((w) => kinds.includes(w.kind));
  const tensors: Partial<Record<WeightKind, WeightTensor>> = {};
  entry.weights.forEach((w, position) => {
    const index = byKind ? kinds.indexOf(w.kind) : position;
    const shape = datasets[index].shape ?? [];
    if (shape.length !== w.shape.length || shape.some((d, i) => d !== w.shape[i])) {
      throw fail(
        `${w.kind} has shape ${formatShape(shape)} in the file (${names[index]}), the model ` +
          `expects ${
            formatShape(w.shape)
          }; layer weights: expected ${expected}, file has ${found()}`,
      );
    }
    const data = readValues(datasets[index], names[index], w.shape, fail);
    tensors[w.kind] = { shape: [...w.shape], data };
  });
  return tensors;
}

/** The dataset `name` of a layer group (listed in its weight_names). */
function openDataset(
  group: FileLayer["group"],
  name: string,
  fail: (why: string) => Error,
): Dataset {
  let dataset: unknown;
  try {
    dataset = group.get(name);
  } catch (error) {
    throw fail(`cannot read weight ${name}: ${hdf5Reason(error)}`);
  }
  if (!(dataset instanceof h5wasm.Dataset)) {
    throw fail(`weight ${name} is listed in weight_names but missing`);
  }
  return dataset;
}

/** A dataset's values as float32, checked to hold exactly the `shape`'s count of numbers. */
function readValues(
  dataset: Dataset,
  name: string,
  shape: number[],
  fail: (why: string) => Error,
): Float32Array {
  let value: unknown;
  try {
    value = dataset.value;
  } catch (error) {
    throw fail(`cannot read ${name}: ${hdf5Reason(error)} (truncated or corrupt file?)`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (!ArrayBuffer.isView(value) || (value as Float32Array).length !== size) {
    throw fail(`${name} is not a numeric array of ${size} values`);
  }
  return value instanceof Float32Array
    ? value
    : Float32Array.from(value as unknown as ArrayLike<number>);
}

/** Options for `writeKerasH5`. */
export interface WriteKerasH5Options {
  /** Weight name for a layer's weight (default Keras 2: `<layer>/<kind>:0`). */
  weightName?: (layer: string, kind: WeightKind, index: number) => string;
  /** Attribute size above which names are chunked (default Keras' 64512 bytes). */
  attributeLimit?: number;
  kerasVersion?: string;
  backend?: string;
}

/** Creates the group at `path` (slash-separated), with any missing parents, like h5py does. */
function ensureGroup(root: Group, path: string): Group {
  let group = root;
  for (const part of path.split("/")) {
    const child = group.keys().includes(part) ? group.get(part) : group.create_group(part);
    if (!(child instanceof h5wasm.Group)) throw new Error(`${path}: ${part} is not a group`);
    group = child;
  }
  return group;
}

/**
 * Writes `weights` in the Keras 2 legacy `save_weights` layout (readable by Keras'
 * `model.load_weights` and by `readKerasH5`), atomically (temporary file, then rename).
 */
export async function writeKerasH5(
  path: string,
  layout: WeightLayout,
  weights: NetWeights,
  options: WriteKerasH5Options = {},
): Promise<void> {
  const weightName = options.weightName ?? ((layer, kind) => `${layer}/${kind}:0`);
  await ready();
  await replaceAtomically(resolve(path), (tmp) => {
    const file = new h5wasm.File(tmp, "w");
    try {
      writeStringAttribute(file, "layer_names", layout.map((e) => e.layer), options.attributeLimit);
      file.create_attribute("backend", options.backend ?? "tensorflow");
      file.create_attribute("keras_version", options.kerasVersion ?? "2.2.4");
      for (const entry of layout) {
        const group = ensureGroup(file, entry.layer);
        const names = entry.weights.map((w, i) => weightName(entry.layer, w.kind, i));
        writeStringAttribute(group, "weight_names", names, options.attributeLimit);
        entry.weights.forEach((w, i) => {
          const tensor = weights.get(entry.layer)?.[w.kind];
          if (!tensor) {
            throw new Error(`writeKerasH5: layer ${entry.layer} has no ${w.kind} weight`);
          }
          const size = w.shape.reduce((a, b) => a * b, 1);
          if (tensor.data.length !== size) {
            throw new Error(
              `writeKerasH5: layer ${entry.layer} ${w.kind} has ${tensor.data.length} values, ` +
                `layout shape ${formatShape(w.shape)} needs ${size}`,
            );
          }
          const parts = names[i].split("/");
          const parent = parts.length > 1
            ? ensureGroup(group, parts.slice(0, -1).join("/"))
            : group;
          parent.create_dataset({
            name: parts.at(-1)!,
            data: tensor.data,
            shape: w.shape,
            dtype: "<f",
          });
        });
      }
    } finally {
      file.close();
    }
  });
}
