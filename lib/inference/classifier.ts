/**
 * A trained pneumonia classifier as the server, notebooks and reports use it: `classifier.onnx`
 * (raw RGB in, preprocessing in-graph) run by ONNX Runtime, plus `classifier.json` (which net, the
 * operating threshold chosen on validation, which weights it started from).
 */
import * as ort from "onnxruntime-node";
import { dirname, join, resolve } from "node:path";
import {
  CLASSIFIER_META_FILE,
  CLASSIFIER_ONNX_FILE,
  type ClassifierMeta,
  parseClassifierMeta,
  type ThresholdInfo,
  type WeightsInfo,
} from "./meta.ts";
import { normalizeBatch } from "../data/intensity.ts";
import type { Classifier, PredictResult } from "./model.ts";
import {
  ENSEMBLE_META_FILE,
  ensembleClassifier,
  memberDirs,
  parseEnsembleMeta,
} from "./ensemble.ts";

export type { ClassifierMeta, ThresholdInfo, WeightsInfo };
export type { Classifier, PredictResult };

/** Side of the square RGB image every classifier takes. */
export const IMAGE_SIZE = 224;

export interface LoadOptions {
  /** ORT intra-op threads (default: ORT's choice). */
  threads?: number;
  /** Classifiers already open, by resolved run directory: an ensemble reuses them. */
  loaded?: Map<string, Classifier>;
  /** How an ensemble opens a member not in `loaded` (default: loadClassifier, on this thread;
   * a server passes a worker-backed loader so no member blocks its thread). */
  loadMember?: (dir: string) => Promise<Classifier>;
}

/** Whether `dir` holds something loadClassifier can open (a classifier or an ensemble). */
export function isServableRun(dir: string): boolean {
  for (const f of [CLASSIFIER_ONNX_FILE, ENSEMBLE_META_FILE]) {
    try {
      if (Deno.statSync(join(dir, f)).isFile) return true;
    } catch { /* not there */ }
  }
  return false;
}

/** Opens an ensemble run folder (ensemble.json), loading members not already in `opts.loaded`. */
async function loadEnsemble(dir: string, opts: LoadOptions): Promise<Classifier> {
  const path = join(dir, ENSEMBLE_META_FILE);
  const meta = parseEnsembleMeta(await Deno.readTextFile(path), path);
  const members: Classifier[] = [];
  const owned: Classifier[] = [];
  try {
    for (const m of memberDirs(dir, meta)) {
      const shared = opts.loaded?.get(m);
      const c = shared ??
        await (opts.loadMember ? opts.loadMember(m) : loadClassifier(m, { threads: opts.threads }));
      if (!shared) owned.push(c);
      members.push(c);
    }
  } catch (e) {
    for (const c of owned) await c.close();
    throw new Error(`ensemble ${dir}: cannot load a member: ${(e as Error).message}`);
  }
  return ensembleClassifier(resolve(dir), meta, members, owned);
}

/**
 * Opens a run directory (classifier.onnx + classifier.json, or an ensemble's ensemble.json) or
 * an explicit onnx/meta pair.
 */
export async function loadClassifier(
  source: string | { onnxPath: string; metaPath?: string },
  opts: LoadOptions = {},
): Promise<Classifier> {
  if (typeof source === "string") {
    try {
      if (Deno.statSync(join(source, ENSEMBLE_META_FILE)).isFile) {
        return await loadEnsemble(source, opts);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const onnxPath = resolve(
    typeof source === "string" ? join(source, CLASSIFIER_ONNX_FILE) : source.onnxPath,
  );
  const metaPath = resolve(
    typeof source === "string"
      ? join(source, CLASSIFIER_META_FILE)
      : source.metaPath ?? join(dirname(source.onnxPath), CLASSIFIER_META_FILE),
  );
  let metaText: string;
  try {
    metaText = await Deno.readTextFile(metaPath);
  } catch (e) {
    throw new Error(`cannot read classifier metadata ${metaPath}: ${(e as Error).message}`);
  }
  const meta = parseClassifierMeta(metaText, metaPath);
  let modelBytes: Uint8Array;
  try {
    modelBytes = await Deno.readFile(onnxPath);
  } catch (e) {
    throw new Error(`cannot read classifier model ${onnxPath}: ${(e as Error).message}`);
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: "all",
    // No spinning between parallel sections: on shared cores it burns what decoding needs
    // (measured: 1.2-1.6x faster ORT at load average 16 on 2 cores, lib/onnx/session.ts).
    extra: { session: { intra_op: { allow_spinning: "0" } } },
    ...(opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {}),
  };
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes, sessionOptions);
  } catch (e) {
    throw new Error(`ONNX Runtime cannot load ${onnxPath}: ${(e as Error).message}`);
  }
  const inputName = meta.inputs[0]?.name ?? "image";
  const probName = meta.outputs.find((o) => o.role === "probability")?.name ?? "head_dense";
  for (
    const [what, name, list] of [
      ["input", inputName, session.inputNames],
      ["output", probName, session.outputNames],
    ] as const
  ) {
    if (!list.includes(name)) {
      throw new Error(`${onnxPath}: no ${what} "${name}" (has ${list.join(", ")})`);
    }
  }
  const gradcamLayer = meta.gradcamLayer && session.outputNames.includes(meta.gradcamLayer)
    ? meta.gradcamLayer
    : null;
  const fetches = gradcamLayer ? [probName, gradcamLayer] : [probName];
  const runDir = typeof source === "string" ? resolve(source) : dirname(metaPath);

  return {
    id: meta.runId,
    net: meta.net,
    threshold: meta.threshold,
    weights: meta.weights,
    gradcamLayer,
    runDir,
    meta,
    intensity: meta.intensity,
    async predict(images: Float32Array, n: number): Promise<PredictResult> {
      const per = IMAGE_SIZE * IMAGE_SIZE * 3;
      if (n < 1 || images.length !== n * per) {
        throw new Error(
          `predict: expected ${n}x${IMAGE_SIZE}x${IMAGE_SIZE}x3 floats, got ${images.length}`,
        );
      }
      const input = meta.intensity === "off"
        ? images
        : await normalizeBatch(images.slice(), n, IMAGE_SIZE, meta.intensity);
      const feeds = {
        [inputName]: new ort.Tensor("float32", input, [n, IMAGE_SIZE, IMAGE_SIZE, 3]),
      };
      const out = await session.run(feeds, fetches);
      const probT = out[probName];
      const result: PredictResult = { prob: Float32Array.from(probT.data as Float32Array) };
      if (gradcamLayer) {
        const t = out[gradcamLayer];
        result.gradcam = {
          data: Float32Array.from(t.data as Float32Array),
          shape: t.dims.map(Number),
        };
      }
      for (const t of Object.values(out)) t.dispose?.();
      return result;
    },
    async close() {
      await session.release();
    },
  };
}
