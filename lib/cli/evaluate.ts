/**
 * `deno task evaluate --run <run-id|dir> [--split val|test] [--data DIR] [--threshold-method m]`
 *
 * Evaluates a saved run: when the requested split has no stored predictions (or --data names
 * another Kaggle-layout folder, e.g. a more diverse test set), runs the run's classifier.onnx
 * over those images and writes predictions-<split>.json first; then chooses the threshold on
 * validation, applies it unchanged to every split, and writes evaluation.json and charts/.
 */
import { basename, join, resolve } from "node:path";
import { runsDir } from "../util/paths.ts";
import { Progress } from "../util/progress.ts";
import { exists } from "../util/fs.ts";
import { parseCli, positiveInt, usageError } from "./args.ts";
import {
  evaluateRun,
  type Evaluation,
  loadPredictions,
  type PredictionItem,
  type PredictionsFile,
  readRunConfig,
} from "../evaluation/evaluate.ts";
import { parseThresholdMethod } from "../evaluation/threshold.ts";

const USAGE = `usage: deno task evaluate --run <run-id|dir> [options]

  --run ID|DIR            run id in outputs/runs, or a run directory (required)
  --split val|test        split to (re)predict when its predictions are not stored (default: none;
                          with --data: test)
  --data DIR              a Kaggle-layout folder (DIR/<split>/{NORMAL,PNEUMONIA}/*.jpeg) to
                          predict on, e.g. a more diverse test set
  --threshold-method M    sens95 (default from the run's config) | youden | 0.5
  --iterations N          bootstrap resamples (default 1000)
  --batch-size N          inference batch size (default 16)
  --limit N               predict on at most N images of the split (stratified; quick checks)
  --no-charts             skip SVG/PNG charts
  -h, --help`;

/** Kaggle-layout folder -> a predictions key that does not clash with the run's own splits. */
function externalKey(dataRoot: string, split: string): string {
  const slug = basename(resolve(dataRoot)).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(
    /^-|-$/g,
    "",
  );
  return `ext-${slug || "data"}-${split}`;
}

/** Resolve `--run`: a directory path, or a run id under outputs/runs. */
export async function resolveRunDir(run: string): Promise<string> {
  try {
    if ((await Deno.stat(run)).isDirectory) return resolve(run);
  } catch { /* not a path: a run id */ }
  const dir = join(runsDir(), run);
  if (await exists(dir)) return dir;
  throw new Error(`run "${run}" not found (neither a run directory nor ${dir})`);
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

function fmt(v: number | null | undefined, pct = false): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return "n/a";
  return pct ? `${(100 * v).toFixed(1)}%` : v.toFixed(3);
}

/** Text summary of an evaluation, one line per split. */
export function formatEvaluation(ev: Evaluation): string {
  const lines = [
    `${ev.runId}${ev.notImageNet ? `  [NOT IMAGENET: ${ev.weightsLabel}]` : ""}`,
    `threshold ${fmt(ev.threshold.value)} (${ev.threshold.method}, chosen on validation: ` +
    `sensitivity ${fmt(ev.threshold.val_sensitivity, true)}, specificity ${
      fmt(ev.threshold.val_specificity, true)
    })`,
  ];
  for (const [key, s] of Object.entries(ev.splits)) {
    const m = s.metrics;
    const ci = (k: "accuracy" | "rocAuc" | "sensitivity" | "specificity", pct: boolean) =>
      `${fmt(m[k], pct)} [${fmt(s.ci[k]?.[0], pct)}–${fmt(s.ci[k]?.[1], pct)}]`;
    lines.push(
      `  ${key.padEnd(5)} n=${m.n} (${m.positives} pneumonia / ${m.negatives} normal)  ` +
        `acc ${ci("accuracy", true)}  AUC ${ci("rocAuc", false)}  ` +
        `sens ${ci("sensitivity", true)}  spec ${ci("specificity", true)}`,
    );
  }
  return lines.join("\n");
}

export async function main(args: string[]): Promise<number> {
  const cli = { usage: USAGE, prefix: "error" };
  const v = parseCli(args, {
    run: { type: "string" },
    split: { type: "string" },
    data: { type: "string" },
    "threshold-method": { type: "string" },
    iterations: { type: "string" },
    "batch-size": { type: "string" },
    limit: { type: "string" },
    "no-charts": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, cli);
  if (typeof v === "number") return v;
  if (!v.run) return usageError(cli, "--run is required");
  const split = v.split ?? (v.data ? "test" : undefined);
  if (split !== undefined && split !== "val" && split !== "test") {
    return usageError(cli, `--split must be val or test, got "${split}"`);
  }
  let method, iterations, batchSize, limit;
  try {
    method = v["threshold-method"] ? parseThresholdMethod(v["threshold-method"]) : undefined;
    iterations = positiveInt("iterations", v.iterations, undefined);
    batchSize = positiveInt("batch-size", v["batch-size"], undefined);
    limit = positiveInt("limit", v.limit, undefined);
  } catch (e) {
    return usageError(cli, (e as Error).message);
  }
  try {
    const runDir = await resolveRunDir(v.run);
    if (split) {
      let key: string = split;
      if (v.data) {
        const own = join(runDir, `predictions-${split}.json`);
        if (await exists(own)) {
          const existing = await loadPredictions(own);
          if (existing.source?.dataRoot !== resolve(v.data)) key = externalKey(v.data, split);
        }
      }
      const target = join(runDir, `predictions-${key}.json`);
      if (v.data || !(await exists(target))) {
        let { items, root } = await itemsFor(runDir, split, v.data);
        if (limit) items = stratifiedLimit(items, limit);
        console.error(`predicting ${items.length} ${split} images from ${root}`);
        const { predictions, failed } = await predictItems(runDir, items, { batchSize });
        if (predictions.length === 0) throw new Error(`no image of ${root}/${split} could be read`);
        const file: PredictionsFile = {
          split: key,
          items: predictions,
          source: { dataRoot: resolve(root), split, createdAt: new Date().toISOString() },
        };
        await Deno.writeTextFile(target, JSON.stringify(file));
        console.error(
          `wrote ${target} (${predictions.length} predictions${
            failed.length ? `, ${failed.length} unreadable images skipped` : ""
          })`,
        );
      }
    }
    const ev = await evaluateRun(runDir, { method, iterations, charts: !v["no-charts"] });
    console.log(formatEvaluation(ev));
    console.log(`wrote ${join(runDir, "evaluation.json")} and ${join(runDir, "charts")}/`);
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
