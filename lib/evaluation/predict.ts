/**
 * Predictions for a run on images it has not been evaluated on: its own val/test split rebuilt
 * exactly as training made it, or an external labelled folder (lib/data/labelled.ts; keyed by
 * name or content hash, lib/evaluation/external.ts), through the run's classifier.onnx. Unreadable images are reported and skipped.
 */
import { resolve } from "node:path";
import { exists } from "../util/fs.ts";
import { RunFolder } from "../runs/mod.ts";
import { Progress } from "../util/progress.ts";
import {
  loadPredictions,
  type PredictionItem,
  type PredictionsFile,
  readRunConfig,
} from "./evaluate.ts";
import { externalSource, externalTarget, hashItems } from "./external.ts";
import { readLabelledFolder } from "../data/labelled.ts";
import type { SplitName } from "../data/dataset.ts";

export interface ItemLike {
  path: string;
  rel: string;
  label: 0 | 1;
  patient: string;
}

/** Keep at most `limit` items, same class balance, deterministic (every k-th of each class). */
export function stratifiedLimit<T extends ItemLike>(items: T[], limit: number): T[] {
  if (items.length <= limit) return items;
  const out: T[] = [];
  for (const label of [0, 1] as const) {
    const cls = items.filter((i) => i.label === label);
    const take = Math.max(1, Math.round(limit * cls.length / items.length));
    const step = cls.length / take;
    for (let k = 0; k < take && Math.floor(k * step) < cls.length; k++) {
      out.push(cls[Math.floor(k * step)]);
    }
  }
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}

/** The images of `split`: from --data's folder, or the run's own data and split protocol. */
async function itemsFor(
  runDir: string,
  split: "val" | "test",
  dataRoot: string | undefined,
): Promise<{ items: ItemLike[]; root: string }> {
  if (dataRoot) {
    // Any labelled folder shape (Kaggle layout, class folders, labels CSV).
    const set = await readLabelledFolder(dataRoot, { split });
    for (const w of set.warnings) console.error(`warning: ${w}`);
    return { items: set.items, root: set.root };
  }
  const { scanDataset } = await import("../data/dataset.ts");
  const config = await readRunConfig(runDir);
  const root = config?.data?.root;
  if (!root) {
    throw new Error(`${new RunFolder(runDir).configPath} has no data.root; pass --data DIR`);
  }
  const scanned = await scanDataset(root);
  for (const w of scanned.warnings) console.error(`warning: ${w}`);
  // The run's own split: rebuild it exactly as training did (same protocol, fraction, seed).
  const { makeSplits } = await import("../data/splits.ts");
  const raw = config as unknown as {
    protocol?: "patient" | "seed";
    valFraction?: number;
    seed?: number;
    subset?: { train?: number; val?: number; test?: number };
  };
  const splits = makeSplits(scanned.items, {
    protocol: raw.protocol ?? "patient",
    valFraction: raw.valFraction,
    seed: raw.seed,
    subset: raw.subset,
  });
  const items = splits[split];
  if (items.length === 0) {
    throw new Error(
      `the run's ${split} split is empty (${root}: missing ${
        scanned.missingSplits.join(", ") || "none"
      }); ` +
        `pass --data DIR with a Kaggle-layout ${split}/ folder`,
    );
  }
  return { items, root };
}

/** Run the run's classifier.onnx over `items`; failed images are reported and skipped. */
export async function predictItems(
  runDir: string,
  items: ItemLike[],
  opts: { batchSize?: number; quiet?: boolean } = {},
): Promise<{ predictions: PredictionItem[]; failed: { rel: string; error: string }[] }> {
  const { loadClassifier } = await import("../inference/classifier.ts");
  const { loadBatches } = await import("../data/loader.ts");
  const classifier = await loadClassifier(runDir);
  const predictions: PredictionItem[] = [];
  const failed: { rel: string; error: string }[] = [];
  const progress = new Progress("predict", { total: items.length, unit: "img", quiet: opts.quiet });
  try {
    for await (
      const batch of loadBatches(items, { batchSize: opts.batchSize ?? 16, progress: false })
    ) {
      for (const f of batch.failed) {
        failed.push({ rel: f.item.rel, error: f.error });
        console.error(`skipped ${f.item.path}: ${f.error}`);
      }
      if (batch.items.length === 0) continue;
      const out = await classifier.predict(batch.data, batch.items.length);
      batch.items.forEach((it, i) => {
        predictions.push({
          rel: it.rel,
          sha256: batch.sha256[i],
          patient: it.patient,
          label: it.label,
          prob: Math.min(1, Math.max(0, out.prob[i])),
        });
      });
      progress.tick(batch.items.length + batch.failed.length);
    }
  } finally {
    progress.done();
    await classifier.close();
  }
  return { predictions, failed };
}

export interface PredictSplitOptions {
  split: "val" | "test";
  /** A labelled folder to predict on instead of the run's own data (see predictExternalSet). */
  dataRoot?: string;
  /** External sets: labels CSV, key name (default: content hash), replace a clashing key. */
  labels?: string;
  name?: string;
  replace?: boolean;
  /** At most this many images (stratified; quick checks). */
  limit?: number;
  batchSize?: number;
}

/**
 * Whether `data` is the folder of the run's own `split`: its stored predictions came from there,
 * or none are stored and it is the run's data root (or the run records none). Any other
 * folder is an external set.
 */
async function isOwnSplitFolder(runDir: string, split: string, data: string): Promise<boolean> {
  const own = new RunFolder(runDir).predictionsPath(split);
  if (await exists(own)) return (await loadPredictions(own)).source?.dataRoot === resolve(data);
  const root = (await readRunConfig(runDir))?.data?.root;
  return root ? resolve(root) === resolve(data) : true;
}

/**
 * Writes predictions-<key>.json for `opts.split` unless the run already has them (always with
 * `dataRoot`). The run's own folder fills predictions-<split>.json; any other folder (or one
 * given a name or labels CSV) is an external set: predictions-ext-<name or content hash>.json.
 * Returns the file written, or null when the stored predictions were kept.
 */
export async function predictSplit(
  runDir: string,
  opts: PredictSplitOptions,
): Promise<{ path: string; predicted: number; failed: number } | null> {
  const { split, dataRoot } = opts;
  if (
    dataRoot && (opts.name || opts.labels || !(await isOwnSplitFolder(runDir, split, dataRoot)))
  ) {
    return await predictExternalSet(runDir, dataRoot, opts);
  }
  const run = new RunFolder(runDir);
  const path = run.predictionsPath(split);
  if (!dataRoot && (await exists(path))) return null;
  let { items, root } = await itemsFor(runDir, split, dataRoot);
  if (opts.limit) items = stratifiedLimit(items, opts.limit);
  console.error(`predicting ${items.length} ${split} images from ${root}`);
  const { predictions, failed } = await predictItems(runDir, items, { batchSize: opts.batchSize });
  if (predictions.length === 0) throw new Error(`no image of ${root}/${split} could be read`);
  const file: PredictionsFile = {
    split,
    items: predictions,
    source: { dataRoot: resolve(root), split, createdAt: new Date().toISOString() },
  };
  await run.writePredictions(split, file);
  return { path, predicted: predictions.length, failed: failed.length };
}

/**
 * Predict an external set into predictions-ext-<key>.json (key: `name`, else the content
 * hash; a key holding another set is refused unless `replace`), with its provenance.
 * Kaggle layout: one split when given, else every split.
 */
export async function predictExternalSet(
  runDir: string,
  data: string,
  opts: {
    split?: string;
    labels?: string;
    name?: string;
    replace?: boolean;
    /** Keep stored predictions of this very set (same key and content hash). */
    reuse?: boolean;
    limit?: number;
    batchSize?: number;
    quiet?: boolean;
  } = {},
): Promise<{ key: string; path: string; predicted: number; failed: number }> {
  const split = opts.split as SplitName | undefined;
  const set = await readLabelledFolder(data, { labels: opts.labels, split });
  for (const w of set.warnings) console.error(`warning: ${w}`);
  const items = opts.limit ? stratifiedLimit(set.items, opts.limit) : set.items;
  const hashed = await hashItems(items);
  const target = await externalTarget(runDir, set, hashed, opts);
  if (opts.reuse && !opts.replace && (await exists(target.path))) {
    const n = (await loadPredictions(target.path)).items.length;
    return { key: target.key, path: target.path, predicted: n, failed: 0 };
  }
  console.error(`predicting ${items.length} images of ${set.root} as ${target.key}`);
  const { predictions, failed } = await predictItems(runDir, items, {
    batchSize: opts.batchSize,
    quiet: opts.quiet,
  });
  if (predictions.length === 0) throw new Error(`no image of ${set.root} could be read`);
  const positives = predictions.filter((p) => p.label === 1).length;
  const file: PredictionsFile = {
    split: target.key,
    items: predictions,
    source: externalSource(set, target, {
      n: predictions.length,
      positives,
      negatives: predictions.length - positives,
      unreadable: failed.length,
    }, set.layout === "kaggle" ? split : undefined),
  };
  await new RunFolder(runDir).writePredictions(target.key, file);
  return {
    key: target.key,
    path: target.path,
    predicted: predictions.length,
    failed: failed.length,
  };
}
