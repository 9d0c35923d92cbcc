/**
 * `deno task calibrate --run <id> --data <folder> [--target-sensitivity 0.95] [--name NAME]`
 *
 * Site calibration: predicts the site's labelled images with the run's classifier (stored as
 * the external set ext-<name>), re-chooses the threshold there for the target sensitivity, and
 * stores it as the threshold profile `site:<name>` (thresholds.json) with its data hash, n,
 * date, bootstrap CIs and small-sample warnings. The validation threshold is never changed.
 */
import { basename, resolve } from "node:path";
import { parseCli, positiveInt, usageError } from "./args.ts";
import { resolveRunDir } from "../util/paths.ts";
import { RunFolder } from "../runs/mod.ts";
import { predictExternalSet } from "../evaluation/predict.ts";
import { computeMetrics } from "../evaluation/metrics.ts";
import { calibrateThreshold, type CalibrationResult } from "../evaluation/calibration.ts";
import { loadPredictions } from "../evaluation/evaluate.ts";
import {
  saveSiteProfile,
  siteProfileName,
  type ThresholdProfile,
  validationProfile,
} from "../evaluation/profiles.ts";
import { logToRunMlflow } from "../tracking/run_log.ts";

const USAGE = `usage: deno task calibrate --run <id|dir> --data <folder> [options]

  --run ID|DIR              the trained run (required)
  --data DIR                the site's labelled images (required): DIR/{NORMAL,PNEUMONIA}/*,
                            a Kaggle-layout folder (every split unless --split), or any
                            folder with a labels CSV (file,label)
  --labels CSV              the labels CSV (default DIR/labels.csv when present)
  --split val|test|train    one split of a Kaggle-layout folder
  --target-sensitivity X    sensitivity the site threshold must reach there (default 0.95)
  --name NAME               profile site:NAME (default: the folder's name)
  --replace                 replace a profile of that name chosen on other data
  --iterations N            bootstrap resamples (default 1000)
  --batch-size N            inference batch size (default 16)
  --no-mlflow               do not log the profile to the run's MLflow run
  -h, --help`;

function pct(v: number | null): string {
  return v !== null && Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : "n/a";
}

/** The printed summary of a calibration. */
export function formatCalibration(
  profile: ThresholdProfile,
  validation: ThresholdProfile,
  atValidation: { sensitivity: number; specificity: number },
  c: CalibrationResult,
): string {
  const d = profile.data!;
  return [
    `site sample: ${d.n} images (${d.positives} PNEUMONIA / ${d.negatives} NORMAL${
      d.patients ? `, ${d.patients} patients` : ""
    }) from ${d.path}, sha256 ${d.sha256.slice(0, 12)}`,
    `validation threshold ${validation.value.toFixed(3)} on this site: sensitivity ` +
    `${pct(atValidation.sensitivity)}, specificity ${pct(atValidation.specificity)}`,
    `${profile.name} threshold ${c.value.toFixed(3)} (target sensitivity ${
      pct(c.targetSensitivity)
    }):` +
    ` sensitivity ${pct(c.sensitivity)} [${pct(c.ci.sensitivity[0])}–${
      pct(c.ci.sensitivity[1])
    }], specificity ${pct(c.specificity)} [${pct(c.ci.specificity[0])}–${
      pct(c.ci.specificity[1])
    }] (95% bootstrap CIs of what it will give, threshold re-chosen per resample)`,
    ...c.warnings.map((w) => `WARNING: ${w}`),
  ].join("\n");
}

export async function main(args: string[]): Promise<number> {
  const cli = { usage: USAGE, prefix: "calibrate" };
  const v = parseCli(args, {
    run: { type: "string" },
    data: { type: "string" },
    labels: { type: "string" },
    split: { type: "string" },
    "target-sensitivity": { type: "string" },
    name: { type: "string" },
    replace: { type: "boolean" },
    iterations: { type: "string" },
    "batch-size": { type: "string" },
    "no-mlflow": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, cli);
  if (typeof v === "number") return v;
  if (!v.run) return usageError(cli, "--run is required");
  if (!v.data) return usageError(cli, "--data is required");
  const target = Number(v["target-sensitivity"] ?? "0.95");
  if (!(target > 0 && target < 1)) {
    return usageError(
      cli,
      `--target-sensitivity must be in (0, 1), got "${v["target-sensitivity"]}"`,
    );
  }
  if (v.split && !["train", "val", "test"].includes(v.split)) {
    return usageError(cli, `--split must be train, val or test, got "${v.split}"`);
  }
  let name: string, iterations: number, batchSize: number;
  try {
    name = siteProfileName(
      v.name ?? basename(resolve(v.data)).toLowerCase().replace(/[^a-z0-9._-]+/g, "-"),
    );
    iterations = positiveInt("iterations", v.iterations, 1000);
    batchSize = positiveInt("batch-size", v["batch-size"], 16);
  } catch (e) {
    return usageError(cli, (e as Error).message);
  }
  try {
    const runDir = await resolveRunDir(v.run);
    const validation = await validationProfile(runDir);
    const site = name.slice("site:".length);
    const ext = await predictExternalSet(runDir, v.data, {
      split: v.split,
      labels: v.labels,
      name: `site-${site}`,
      replace: v.replace,
      batchSize,
    });
    const preds = await loadPredictions(ext.path);
    const labels = preds.items.map((i) => i.label);
    const probs = preds.items.map((i) => i.prob);
    const groups = preds.items.every((i) => i.patient)
      ? preds.items.map((i) => i.patient!)
      : undefined;
    const c = calibrateThreshold(labels, probs, { targetSensitivity: target, groups, iterations });
    const src = preds.source!;
    const profile: ThresholdProfile = {
      name,
      value: c.value,
      method: "target-sensitivity",
      targetSensitivity: target,
      sensitivity: c.sensitivity,
      specificity: c.specificity,
      ci: c.ci,
      data: {
        path: src.dataRoot!,
        ...(src.labels ? { labels: src.labels } : {}),
        sha256: src.sha256!,
        n: c.n,
        positives: c.positives,
        negatives: c.negatives,
        patients: groups ? new Set(groups).size : null,
      },
      warnings: c.warnings,
      createdAt: new Date().toISOString(),
    };
    const written = await saveSiteProfile(runDir, profile, { replace: v.replace });
    const atVal = computeMetrics(labels, probs, validation.value);
    console.log(formatCalibration(profile, validation, atVal, c));
    console.log(
      `stored ${name} in ${written} (the validation threshold ${
        validation.value.toFixed(3)
      } is unchanged); use it with \`evaluate --threshold ${name}\`, ` +
        `\`serve --threshold ${name}\` or /v1/predict?threshold=${name}`,
    );
    if (!v["no-mlflow"]) {
      const key = name.replace(/[^A-Za-z0-9_.-]/g, "_");
      await logToRunMlflow(runDir, "site profile", async (t) => {
        await t.logMetrics({
          [`${key}_threshold`]: c.value,
          [`${key}_sensitivity`]: c.sensitivity,
          [`${key}_specificity`]: c.specificity,
          [`${key}_n`]: c.n,
        }, 0);
        await t.logArtifact(new RunFolder(runDir).thresholdsPath, "thresholds");
      });
    }
    return 0;
  } catch (e) {
    console.error(`calibrate: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
