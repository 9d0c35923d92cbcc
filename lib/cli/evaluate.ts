/**
 * `deno task evaluate --run <run-id|dir> [--split val|test] [--data DIR] [--threshold-method m]`
 *
 * Evaluates a saved run: when the requested split has no stored predictions (or --data names
 * another Kaggle-layout folder, e.g. a more diverse test set), runs the run's classifier.onnx
 * over those images and writes predictions-<split>.json first; then chooses the threshold on
 * validation, applies it unchanged to every split, and writes evaluation.json and charts/.
 */
import { resolveRunDir } from "../util/paths.ts";
import { RunFolder } from "../runs/mod.ts";
import { parseCli, positiveInt, usageError } from "./args.ts";
import { evaluateRun } from "../evaluation/evaluate.ts";
import { formatEvaluation } from "../evaluation/format.ts";
import { predictSplit } from "../evaluation/predict.ts";
import { parseThresholdMethod } from "../evaluation/threshold.ts";
import { resolveProfile } from "../evaluation/profiles.ts";
import { runCli } from "./entry.ts";

const USAGE = `usage: deno task evaluate --run <run-id|dir> [options]

  --run ID|DIR            run id in outputs/runs, or a run directory (required)
  --split val|test        split to (re)predict when its predictions are not stored (default: none;
                          with --data: test)
  --data DIR              an external test set to predict on: a Kaggle-layout folder
                          (DIR/<split>/{NORMAL,PNEUMONIA}/*), class folders
                          (DIR/{NORMAL,PNEUMONIA}/*) or any folder with a labels CSV
  --labels CSV            file,label lines (label 0/1 or NORMAL/PNEUMONIA; default DIR/labels.csv)
  --name NAME             key of the external set (predictions-ext-NAME.json; default: its
                          content hash); a key holding another set is refused
  --replace               replace the set stored under that key
  --threshold PROFILE     apply a threshold profile: validation (default) or site:NAME
  --threshold-method M    sens95 (default from the run's config) | youden | 0.5
  --iterations N          bootstrap resamples (default 1000)
  --batch-size N          inference batch size (default 16)
  --limit N               predict on at most N images of the split (stratified; quick checks)
  --no-charts             skip SVG/PNG charts
  -h, --help`;

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
    labels: { type: "string" },
    name: { type: "string" },
    replace: { type: "boolean" },
    threshold: { type: "string" },
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
      const written = await predictSplit(runDir, {
        split,
        dataRoot: v.data,
        limit,
        batchSize,
        labels: v.labels,
        name: v.name,
        replace: v.replace,
      });
      if (written) {
        console.error(
          `wrote ${written.path} (${written.predicted} predictions${
            written.failed ? `, ${written.failed} unreadable images skipped` : ""
          })`,
        );
      }
    }
    const profile = v.threshold && v.threshold !== "validation"
      ? await resolveProfile(runDir, v.threshold)
      : undefined;
    const ev = await evaluateRun(runDir, {
      method,
      iterations,
      charts: !v["no-charts"],
      profile,
    });
    console.log(formatEvaluation(ev));
    const run = new RunFolder(runDir);
    console.log(`wrote ${run.evaluationPath} and ${run.chartsDir}/`);
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runCli("evaluate", main));
