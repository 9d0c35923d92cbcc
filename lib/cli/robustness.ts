/**
 * `deno task robustness [--run ID | --runs a,b,c] [--images N | --all] [...]`
 *
 * The shift-robustness suite (lib/evaluation/robustness.ts) on saved runs: their validation
 * images under ten acquisition shifts at three severities, through each run's classifier.onnx.
 * Writes robustness.json and charts/robustness.* into each run and logs them to its MLflow run.
 */
import { latestRunsPerNet } from "../reporting/report.ts";
import { resolveRunDir } from "../util/paths.ts";
import { runsDir } from "../util/paths.ts";
import { RunFolder } from "../runs/mod.ts";
import { parseCli, positiveInt, usageError } from "./args.ts";
import { type ShiftKind, SUITE_KINDS } from "../data/shifts.ts";
import {
  DEFAULT_SUITE_IMAGES,
  formatRobustness,
  robustnessMeansLine,
  type RobustnessResult,
  robustnessSummaryLine,
} from "../evaluation/robustness.ts";
import { robustnessForRuns } from "../evaluation/robustness_runs.ts";
import { displayName } from "../models/registry.ts";
import { logToRunMlflow } from "../tracking/run_log.ts";

const USAGE = `usage: deno task robustness [options]

  --run ID|DIR          one run (id in outputs/runs, or a run directory)
  --runs ID,ID,...      several runs; default: the latest finished run of each net
  --images N            validation images per run, class-balanced (default ${DEFAULT_SUITE_IMAGES})
  --all                 every validation image (about 31 forward passes per image and net)
  --shifts a,b,...      subset of ${SUITE_KINDS.join(", ")} (default: all ten)
  --severities 1,2,3    subset of the three severities (default: all)
  --threshold PROFILE   threshold profile: validation (default) or site:NAME
  --data DIR            read the images under DIR instead of the run's data root
  --seed N              noise fields, image selection and bootstrap (default 42)
  --batch-size N        images per forward pass (default 16)
  --iterations N        bootstrap resamples per condition (default 1000)
  --no-mlflow           do not log to the runs' MLflow runs
  --no-charts           skip the heat map files
  -h, --help`;

function parseList<T extends string>(flag: string, raw: string, allowed: readonly T[]): T[] {
  const out = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const s of out) {
    if (!(allowed as readonly string[]).includes(s)) {
      throw new Error(`--${flag}: unknown value "${s}" (use ${allowed.join(", ")})`);
    }
  }
  if (out.length === 0) throw new Error(`--${flag} is empty`);
  return out as T[];
}

/** MLflow metrics of one result: robust_<shift>_s<k>_{auc,sensitivity,specificity,p_normal}. */
export function robustnessMetrics(r: RobustnessResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of r.conditions) {
    const key = c.shift === "none" ? "robust_none" : `robust_${c.shift}_s${c.severity}`;
    for (
      const [k, v] of [
        ["auc", c.rocAuc],
        ["sensitivity", c.sensitivity],
        ["specificity", c.specificity],
        ["p_normal", c.meanProbNormal],
      ] as const
    ) if (Number.isFinite(v)) out[`${key}_${k}`] = v;
  }
  if (r.worst) out.robust_worst_specificity = r.worst.specificity;
  return out;
}

export async function main(args: string[]): Promise<number> {
  const cli = { usage: USAGE, prefix: "robustness" };
  const v = parseCli(args, {
    run: { type: "string" },
    runs: { type: "string" },
    images: { type: "string" },
    all: { type: "boolean" },
    shifts: { type: "string" },
    severities: { type: "string" },
    threshold: { type: "string" },
    data: { type: "string" },
    seed: { type: "string" },
    "batch-size": { type: "string" },
    iterations: { type: "string" },
    "no-mlflow": { type: "boolean" },
    "no-charts": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, cli);
  if (typeof v === "number") return v;
  if (v.run && v.runs) return usageError(cli, "give --run or --runs, not both");
  if (v.all && v.images) return usageError(cli, "give --images N or --all, not both");
  let images, kinds, severities, seed, batchSize, iterations;
  try {
    images = v.all ? "all" as const : positiveInt("images", v.images, DEFAULT_SUITE_IMAGES);
    kinds = v.shifts ? parseList<ShiftKind>("shifts", v.shifts, SUITE_KINDS) : undefined;
    severities = v.severities
      ? parseList("severities", v.severities, ["1", "2", "3"] as const).map(Number) as (
        | 1
        | 2
        | 3
      )[]
      : undefined;
    seed = positiveInt("seed", v.seed, 42);
    batchSize = positiveInt("batch-size", v["batch-size"], 16);
    iterations = positiveInt("iterations", v.iterations, 1000);
  } catch (e) {
    return usageError(cli, (e as Error).message);
  }
  try {
    const ids = v.run ? [v.run] : v.runs?.split(",").map((s) => s.trim()).filter(Boolean);
    const runDirs = ids ? await Promise.all(ids.map(resolveRunDir)) : await latestRunsPerNet();
    if (runDirs.length === 0) {
      throw new Error(`no finished runs in ${runsDir()}; train one first or pass --run`);
    }
    const load = () => {
      try {
        return Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
      } catch {
        return "unknown";
      }
    };
    const loadAtStart = load();
    const t0 = performance.now();
    const results = await robustnessForRuns(runDirs, {
      images,
      kinds,
      severities,
      seed,
      batchSize,
      iterations,
      threshold: v.threshold,
      dataRoot: v.data,
      charts: !v["no-charts"],
    });
    const seconds = (performance.now() - t0) / 1000;
    for (const r of results) console.log(formatRobustness(r) + "\n");
    for (const r of results) console.log(robustnessSummaryLine(r, displayName(r.net)));
    for (const r of results) console.log(robustnessMeansLine(r, displayName(r.net)));
    const passes = results.reduce((s, r) => s + r.forwardPasses, 0);
    console.log(
      `${results.length} model(s), ${passes} forward passes in ${seconds.toFixed(0)} s ` +
        `(${
          (passes / seconds).toFixed(1)
        } img/s; load average ${loadAtStart} at start, ${load()} at end)`,
    );
    for (const [i, dir] of runDirs.entries()) {
      console.log(`wrote ${new RunFolder(dir).robustnessPath}`);
      if (v["no-mlflow"]) continue;
      await logToRunMlflow(dir, "robustness", async (t) => {
        await t.logMetrics(robustnessMetrics(results[i]), 0);
        await t.logArtifact(new RunFolder(dir).robustnessPath, "robustness");
        if (!v["no-charts"]) {
          for (const ext of ["svg", "png"]) {
            const stem = new RunFolder(dir).chartStem("robustness");
            await t.logArtifact(`${stem}.${ext}`, "robustness");
          }
        }
      });
    }
    return 0;
  } catch (e) {
    console.error(`robustness: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
