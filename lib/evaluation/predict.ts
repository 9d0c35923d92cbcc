/**
 * Predictions for a run on images it has not been evaluated on: its own val/test split rebuilt
 * exactly as training made it, or another Kaggle-layout folder (e.g. a more diverse test set),
 * through the run's classifier.onnx. Unreadable images are reported and skipped.
 */
import { basename, join, resolve } from "node:path";
import { exists } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import {
  loadPredictions,
  type PredictionItem,
  type PredictionsFile,
  readRunConfig,
} from "./evaluate.ts";

/** Kaggle-layout folder -> a predictions key that does not clash with the run's own splits. */
function externalKey(dataRoot: string, split: string): string {
  const slug = basename(resolve(dataRoot)).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(
    /^-|-$/g,
    "",
  );
  return `ext-${slug || "data"}-${split}`;
}

interface ItemLike {
  path: string;
  rel: string;
  label: 0 | 1;
  patient: string;
}

/** Keep at most `limit` items, same class balance, deterministic (every k-th of each class). */
function stratifiedLimit<T extends ItemLike>(items: T[], limit: number): T[] {
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
  const { scanDataset } = await import("../data/dataset.ts");
  const config = await readRunConfig(runDir);
  const root = dataRoot ?? config?.data?.root;
  if (!root) throw new Error(`${runDir}/config.json has no data.root; pass --data DIR`);
  const scanned = await scanDataset(root);
  for (const w of scanned.warnings) console.error(`warning: ${w}`);
  if (dataRoot) {
    const items = scanned.items.filter((i) => i.split === split);
    if (items.length === 0) {
      throw new Error(
        `${root} has no ${split}/ images (expected ${root}/${split}/{NORMAL,PNEUMONIA}/)`,
      );
    }
    return { items, root };
  }
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
  /** A Kaggle-layout folder to predict on instead of the run's own data. */
  dataRoot?: string;
  /** At most this many images (stratified; quick checks). */
  limit?: number;
  batchSize?: number;
}

/**
 * Writes predictions-<key>.json for `opts.split` unless the run already has them (always with
 * `dataRoot`; a folder other than the run's own gets its own `ext-…` key). Returns the file
 * written, or null when the stored predictions were kept.
 */
export async function predictSplit(
  runDir: string,
  opts: PredictSplitOptions,
): Promise<{ path: string; predicted: number; failed: number } | null> {
  const { split, dataRoot } = opts;
  let key: string = split;
  if (dataRoot) {
    const own = join(runDir, `predictions-${split}.json`);
    if (await exists(own)) {
      const existing = await loadPredictions(own);
      if (existing.source?.dataRoot !== resolve(dataRoot)) key = externalKey(dataRoot, split);
    }
  }
  const path = join(runDir, `predictions-${key}.json`);
  if (!dataRoot && (await exists(path))) return null;
  let { items, root } = await itemsFor(runDir, split, dataRoot);
  if (opts.limit) items = stratifiedLimit(items, opts.limit);
  console.error(`predicting ${items.length} ${split} images from ${root}`);
  const { predictions, failed } = await predictItems(runDir, items, { batchSize: opts.batchSize });
  if (predictions.length === 0) throw new Error(`no image of ${root}/${split} could be read`);
  const file: PredictionsFile = {
    split: key,
    items: predictions,
    source: { dataRoot: resolve(root), split, createdAt: new Date().toISOString() },
  };
  await Deno.writeTextFile(path, JSON.stringify(file));
  return { path, predicted: predictions.length, failed: failed.length };
}
