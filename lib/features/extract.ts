/**
 * Activations of the frozen part of a net for a list of images, computed once with ONNX
 * Runtime and cached on disk (see cache.ts). Decoding of batch k+1 (sharp, libuv threads)
 * overlaps inference of batch k (ORT, its own threads); entries are written as batches finish,
 * so an interrupted run resumes with what was already written.
 */
import { readFile } from "node:fs/promises";
import type { NetName, NetSpec, NetWeights } from "../models/spec.ts";
import { getNetSpec } from "../models/registry.ts";
import { inferShapes, knownShape } from "../models/graph.ts";
import { withHead } from "../models/head.ts";
import type { ImageItem } from "../data/dataset.ts";
import { sha256Hex } from "../data/images.ts";
import { loadBatches } from "../data/loader.ts";
import { loadBatchesInWorker } from "./decode_worker.ts";
import { exportOnnx, IMAGE_INPUT } from "../onnx/export.ts";
import { type OnnxModel, openSession } from "../onnx/session.ts";
import { Progress } from "../util/progress.ts";
import type { IntensityMode } from "../data/intensity.ts";
import type { Shift } from "../data/shifts.ts";
import { entryKey } from "./views.ts";
import { FeatureCache, sha256Text } from "./cache.ts";

/** The pooled-features layer (GlobalAveragePooling2D of the head, see head.ts). */
export const POOLED_LAYER = "head_pool";

/** Anything with the `weights` and `md5` of a ResolvedWeights (lib/models/weights/resolve.ts). */
export interface FeatureWeights {
  weights: NetWeights;
  md5: string;
}

/**
 * What can be extracted: an image file, optionally an augmented view of it (lib/features/
 * views.ts: its transforms apply after decoding and its cache entry has its own key).
 */
export interface FeatureItem {
  path: string;
  view?: number;
  seed?: number;
  shifts?: readonly Shift[];
}

export interface FeatureRequest<T extends FeatureItem = ImageItem> {
  net: NetName;
  weights: FeatureWeights;
  /** Layer names whose outputs to compute (frontier of a cut, or "head_pool" for pooled). */
  outputs: string[];
  items: T[];
  /** Images per ORT run (default 16). */
  batchSize?: number;
  /** ORT intra-op threads (default: cores). */
  threads?: number;
  /** Store float16 (half the disk; entries outside float16's range stay float32). */
  float16?: boolean;
  /** Show a progress bar (default true). */
  progress?: boolean;
  /** Architecture to use instead of the registry's (tests, custom nets). */
  spec?: NetSpec;
  /** Cache root instead of `<cacheDir()>/features`. */
  cacheRoot?: string;
  /** Stops after the current batch; entries written so far stay valid. */
  signal?: AbortSignal;
  /** Decode in a Web Worker so it overlaps ORT's blocking run (default true). */
  decodeInWorker?: boolean;
  /** Called after each computed batch with the running count. */
  onBatch?: (computed: number) => void;
  /** Intensity normalisation of the decoded images (part of the cache key; default off). */
  intensity?: IntensityMode;
}

export interface FeatureStats<T> {
  hits: number;
  computed: number;
  /** Damaged cache entries found and recomputed. */
  corrupt: number;
  failed: { item: T; error: string }[];
  seconds: number;
  /** (hits + computed) / seconds. */
  imgPerSec: number;
  /** computed / seconds spent computing (0 when everything was cached). */
  computedPerSec: number;
}

export interface FeatureSet<T extends FeatureItem = ImageItem> {
  outputs: string[];
  /** Per output, its shape without batch (NHWC or flat). */
  shapes: number[][];
  /** The items that succeeded, in input order. */
  items: T[];
  /** sha256 of each item's file, aligned with `items`. */
  sha256: string[];
  /** Cache entry name of each item (the file sha256, or a view's own key), aligned with `items`. */
  entryKeys: string[];
  /** Where the entries live. */
  cacheDir: string;
  /** Features of item i for output o (read from the cache). */
  get(i: number, output: number): Float32Array;
  /** Features of several items for one output, concatenated. */
  batch(indices: number[], output: number): Float32Array;
  stats: FeatureStats<T>;
}

/** The spec whose `outputs` are computed: the registry base, plus the head for "head_pool". */
export function featureSpec(net: NetName, outputs: string[]): NetSpec {
  const base = getNetSpec(net);
  return outputs.includes(POOLED_LAYER) ? withHead(base) : base;
}

async function mapLimit<A, B>(
  xs: A[],
  limit: number,
  f: (x: A, i: number) => Promise<B>,
): Promise<B[]> {
  const out = new Array<B>(xs.length);
  let next = 0;
  const worker = async () => {
    while (next < xs.length) {
      const i = next++;
      out[i] = await f(xs[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, xs.length) }, worker));
  return out;
}

/** Computes (or reads from the cache) the activations of `req.outputs` for `req.items`. */
export async function extractFeatures<T extends FeatureItem>(
  req: FeatureRequest<T>,
): Promise<FeatureSet<T>> {
  const start = performance.now();
  const layout = featureLayout(req);
  const cache = new FeatureCache({
    net: req.net,
    specHash: sha256Text(JSON.stringify(layout.spec)).slice(0, 16),
    weightsMd5: req.weights.md5,
    outputs: req.outputs,
    shapes: layout.shapes,
    preprocessing: layout.spec.preprocessing,
    // "off" keeps the key of caches written before intensity normalisation existed.
    decode: `nearest-${layout.size}${
      req.intensity && req.intensity !== "off" ? `+${req.intensity}` : ""
    }`,
    float16: req.float16 ?? false,
  }, req.cacheRoot);
  await cache.init();
  const found = await lookUp(req, cache);
  const run = found.misses.length > 0
    ? await computeMisses(req, layout, cache, found)
    : { computed: 0, seconds: 0 };
  return featureSet(req, layout.shapes, cache, found, {
    ...run,
    total: (performance.now() - start) / 1000,
  });
}

/** The net to run, the outputs' shapes and the (square) input size. */
interface FeatureLayout {
  spec: NetSpec;
  shapes: number[][];
  size: number;
}

function featureLayout(req: FeatureRequest<FeatureItem>): FeatureLayout {
  if (req.outputs.length === 0) throw new Error("extractFeatures: no output layers given");
  const spec = req.spec ?? featureSpec(req.net, req.outputs);
  const allShapes = inferShapes(spec);
  const shapes = req.outputs.map((o) => {
    const s = allShapes.get(o);
    if (!s) throw new Error(`extractFeatures: ${spec.name} has no layer named "${o}"`);
    return knownShape(s, `extractFeatures: "${o}"`);
  });
  const input = spec.layers.find((l) => l.kind === "InputLayer");
  if (!input || input.kind !== "InputLayer") throw new Error(`${spec.name}: no InputLayer`);
  const [h, w] = input.shape;
  if (h === null || h !== w) {
    throw new Error(`extractFeatures: needs a square input of known size, got [${input.shape}]`);
  }
  return { spec, shapes, size: h };
}

/** Pass 1's result, completed by pass 2: per item its file hash and entry key (null: failed). */
interface Lookup<T> {
  sha: (string | null)[];
  keys: (string | null)[];
  failed: { item: T; error: string }[];
  misses: { path: string; index: number; shifts?: readonly Shift[] }[];
  hits: number;
  corrupt: number;
}

/** Pass 1: hashes every file and looks its entry up in the cache. */
async function lookUp<T extends FeatureItem>(
  req: FeatureRequest<T>,
  cache: FeatureCache,
): Promise<Lookup<T>> {
  const failed: { item: T; error: string }[] = [];
  const sha = await mapLimit(req.items, 8, async (item) => {
    try {
      return await sha256Hex(await readFile(item.path));
    } catch (e) {
      failed.push({ item, error: `cannot read ${item.path}: ${(e as Error).message}` });
      return null;
    }
  });
  const found: Lookup<T> = {
    sha,
    keys: sha.map((s, i) => s === null ? null : entryKey(s, req.items[i])),
    failed,
    misses: [],
    hits: 0,
    corrupt: 0,
  };
  req.items.forEach((item, index) => {
    const key = found.keys[index];
    if (key === null) return;
    if (cache.read(key, { onCorrupt: () => found.corrupt++ })) found.hits++;
    else {
      found.misses.push({
        path: item.path,
        index,
        ...(item.shifts ? { shifts: item.shifts } : {}),
      });
    }
  });
  return found;
}

/**
 * Pass 2: decodes the misses (in a worker unless asked not to) and runs them through ONNX
 * Runtime, writing each entry as its batch finishes; updates `found` with what was decoded.
 */
async function computeMisses<T extends FeatureItem>(
  req: FeatureRequest<T>,
  layout: FeatureLayout,
  cache: FeatureCache,
  found: Lookup<T>,
): Promise<{ computed: number; seconds: number }> {
  const { spec, shapes, size } = layout;
  // Decoding starts first, so the worker's start-up and the first batch overlap the export.
  const batches = decodedBatches(req, found.misses, size);
  const first = batches.next();
  first.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
  let model: OnnxModel;
  try {
    const bytes = exportOnnx(spec, req.weights.weights, {
      outputs: req.outputs,
      preprocessing: spec.preprocessing,
    });
    model = await openSession(bytes, { threads: req.threads });
  } catch (e) {
    await batches.return(undefined); // stops the decode worker
    throw e;
  }
  const t0 = performance.now(); // computedPerSec: decode + inference + writes, not export
  const progress = new Progress(`features ${req.net}`, {
    total: found.misses.length,
    unit: "img",
    quiet: req.progress === false,
  });
  const per = size * size * 3;
  let computed = 0;
  let pendingWrites: Promise<unknown> = Promise.resolve();
  try {
    for (let r = await first; !r.done; r = await batches.next()) {
      const batch = r.value;
      for (const f of batch.failed) {
        found.failed.push({ item: req.items[f.item.index], error: f.error });
      }
      const n = batch.items.length;
      if (n > 0) {
        const out = await model.run({
          [IMAGE_INPUT]: { data: batch.data.subarray(0, n * per), shape: [n, size, size, 3] },
        });
        await pendingWrites; // keep at most one batch of writes in flight
        pendingWrites = Promise.all(batch.items.map(({ index }, k) => {
          found.sha[index] = batch.sha256[k]; // the bytes actually decoded
          found.keys[index] = entryKey(found.sha[index]!, req.items[index]);
          return cache.write(found.keys[index]!, entryOf(out, req.outputs, shapes, k, cache.count));
        }));
        computed += n;
      }
      progress.tick(n + batch.failed.length, { hits: found.hits, failed: found.failed.length });
      req.onBatch?.(computed);
      if (req.signal?.aborted) {
        await pendingWrites;
        throw req.signal.reason ?? new DOMException("feature extraction aborted", "AbortError");
      }
    }
    await pendingWrites;
  } finally {
    await batches.return(undefined);
    await model.close();
  }
  progress.done({ hits: found.hits, computed, failed: found.failed.length });
  return { computed, seconds: (performance.now() - t0) / 1000 };
}

/** Decoded batches of `misses`, in a Web Worker unless `req.decodeInWorker` is false. */
function decodedBatches(
  req: FeatureRequest<FeatureItem>,
  misses: Lookup<FeatureItem>["misses"],
  size: number,
) {
  const batchSize = req.batchSize ?? 16;
  return req.decodeInWorker === false
    ? loadBatches(misses, {
      batchSize,
      size,
      prefetch: 1,
      progress: false,
      intensity: req.intensity,
    })
    : loadBatchesInWorker(misses, { batchSize, size, intensity: req.intensity });
}

/** Item k's cache entry: its outputs, flattened and concatenated in `outputs` order. */
function entryOf(
  out: Record<string, { data: Float32Array }>,
  outputs: string[],
  shapes: number[][],
  k: number,
  count: number,
): Float32Array {
  const features = new Float32Array(count);
  let off = 0;
  outputs.forEach((o, j) => {
    const size = shapes[j].reduce((a, b) => a * b, 1);
    features.set(out[o].data.subarray(k * size, (k + 1) * size), off);
    off += size;
  });
  return features;
}

/** The FeatureSet over the items that succeeded, reading entries back from the cache. */
function featureSet<T extends FeatureItem>(
  req: FeatureRequest<T>,
  shapes: number[][],
  cache: FeatureCache,
  found: Lookup<T>,
  time: { computed: number; seconds: number; total: number },
): FeatureSet<T> {
  const failedSet = new Set(found.failed.map((f) => f.item));
  const items: T[] = [];
  const itemSha: string[] = [];
  const itemKeys: string[] = [];
  req.items.forEach((item, i) => {
    if (!failedSet.has(item) && found.sha[i] !== null) {
      items.push(item);
      itemSha.push(found.sha[i]!);
      itemKeys.push(found.keys[i]!);
    }
  });
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const offsets = sizes.map((_, j) => sizes.slice(0, j).reduce((a, b) => a + b, 0));
  let last: { i: number; data: Float32Array } | null = null;
  const entry = (i: number): Float32Array => {
    if (last?.i === i) return last.data;
    if (i < 0 || i >= items.length) throw new RangeError(`feature index ${i} out of range`);
    let why = "missing";
    const data = cache.read(itemKeys[i], { verify: false, onCorrupt: (w) => (why = w) });
    if (!data) throw new Error(`feature cache entry for ${items[i].path} vanished: ${why}`);
    last = { i, data };
    return data;
  };
  const get = (i: number, o: number) => entry(i).subarray(offsets[o], offsets[o] + sizes[o]);
  const { hits, corrupt, failed } = found;
  return {
    outputs: [...req.outputs],
    shapes,
    items,
    sha256: itemSha,
    entryKeys: itemKeys,
    cacheDir: cache.dir,
    get,
    batch(indices, o) {
      const out = new Float32Array(indices.length * sizes[o]);
      indices.forEach((i, k) => out.set(get(i, o), k * sizes[o]));
      return out;
    },
    stats: {
      hits,
      computed: time.computed,
      corrupt,
      failed,
      seconds: time.total,
      imgPerSec: time.total > 0 ? (hits + time.computed) / time.total : 0,
      computedPerSec: time.seconds > 0 ? time.computed / time.seconds : 0,
    },
  };
}
