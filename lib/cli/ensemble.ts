/**
 * `deno task ensemble --runs a,b,c [--combine prob|logit] [--threshold-method m]`
 *
 * Builds the ensemble of trained runs as a run of its own (outputs/runs/ensemble-*): combined
 * predictions, a threshold chosen on validation only, evaluation.json, charts, an MLflow run,
 * and ensemble.json for `deno task serve` (`?model=ensemble`) and `deno task evaluate`.
 */
import { buildEnsemble } from "../ensemble/build.ts";
import { ENSEMBLE_COMBINES, type EnsembleCombine } from "../inference/ensemble.ts";
import { parseThresholdMethod } from "../evaluation/threshold.ts";
import { latestRunsPerNet } from "../reporting/report.ts";
import { formatEvaluation } from "../evaluation/format.ts";
import { resolveRunDir } from "../util/paths.ts";
import { parseCli, usageError } from "./args.ts";

const USAGE = `usage: deno task ensemble [options]

  --runs ID,ID,...        member runs (ids or directories, at least two); default: the latest
                          finished run of each net
  --combine prob|logit    mean of the member probabilities (default) or of their logits
  --threshold-method M    sens95 | youden | 0.5 (default: the first member's), on validation
  --force                 rebuild even when the members' predictions did not change
  --no-mlflow             no tracking
  -h, --help`;

export async function main(args: string[]): Promise<number> {
  const cli = { usage: USAGE, prefix: "ensemble" };
  const v = parseCli(args, {
    runs: { type: "string" },
    combine: { type: "string" },
    "threshold-method": { type: "string" },
    force: { type: "boolean" },
    "no-mlflow": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, cli);
  if (typeof v === "number") return v;
  const combine = (v.combine ?? "prob") as EnsembleCombine;
  if (!ENSEMBLE_COMBINES.includes(combine)) {
    return usageError(cli, `--combine must be prob or logit, got "${v.combine}"`);
  }
  let method;
  try {
    method = v["threshold-method"] ? parseThresholdMethod(v["threshold-method"]) : undefined;
  } catch (e) {
    return usageError(cli, (e as Error).message);
  }
  try {
    const dirs = v.runs
      ? await Promise.all(v.runs.split(",").map((s) => s.trim()).filter(Boolean).map(resolveRunDir))
      : (await latestRunsPerNet()).filter((d) => !/\/ensemble-[^/]*$/.test(d));
    const r = await buildEnsemble(dirs, {
      combine,
      method,
      force: v.force === true,
      mlflow: v["no-mlflow"] !== true,
      log: (line) => console.error(line),
    });
    console.log(formatEvaluation(r.evaluation));
    console.log(`${r.skipped ? "up to date" : "wrote"} ${r.runDir}`);
    return 0;
  } catch (e) {
    console.error(`ensemble: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
