/** `deno task train --model densenet121 --profile full [...]`: one resumable training run. */
import { parseCli, usageError } from "./args.ts";
import { getNetSpec, NET_INFO, parseNetName } from "../models/registry.ts";
import type { NetName } from "../models/spec.ts";
import { defaultWeightsChoice } from "../models/weights/resolve.ts";
import { resolveConfig } from "../training/config.ts";
import { COMMON_OPTIONS, COMMON_USAGE, configFromFlags } from "./train_flags.ts";
import { trainRun } from "../training/run.ts";
import type { BackendPreference } from "../tf/backend.ts";
import { runCli } from "./entry.ts";

const USAGE = `usage: deno task train --model vgg16|resnet50|densenet121 [options]
  --model NET                 the base network (required)
${COMMON_USAGE}
Re-running the same command resumes from the last finished epoch.`;

/** A bad --unfreeze-from is a usage error before any data or weights are read. */
function checkUnfreezeLayer(net: NetName, layer: string | undefined): void {
  if (layer === undefined) return;
  const layers = getNetSpec(net).layers.filter((l) => l.kind !== "InputLayer").map((l) => l.name);
  if (layers.includes(layer)) return;
  const example = NET_INFO[net].defaultUnfreezeFrom ?? layers.at(-4);
  throw new Error(
    `--unfreeze-from: ${net} has no layer "${layer}"; give a Keras layer name such as ${example} (deno task models:summary --model ${net} lists them)`,
  );
}

export async function main(args: string[]): Promise<number> {
  const cli = { usage: USAGE, prefix: "train" };
  const parsed = parseCli(args, { model: { type: "string" }, ...COMMON_OPTIONS }, cli);
  if (typeof parsed === "number") return parsed;
  const v = parsed as Record<string, string | boolean | undefined>;
  let config;
  try {
    if (!v.model) throw new Error("--model is required");
    const flags = configFromFlags(v);
    config = resolveConfig({
      net: parseNetName(v.model as string),
      weights: defaultWeightsChoice(),
      profile: "full",
      ...flags,
    });
    checkUnfreezeLayer(config.net, config.phase2?.unfreezeFrom);
  } catch (e) {
    return usageError(cli, (e as Error).message);
  }
  const result = await trainRun(config, {
    force: v.force === true,
    progress: v.quiet !== true,
    backend: (v.backend as BackendPreference | undefined) ?? "auto",
  });
  const last = result.history.at(-1);
  const val = result.evaluation?.splits.val?.metrics;
  console.log(
    `${result.skipped ? "skipped (finished)" : "finished"} ${result.runDir}` +
      (last ? `\n  last epoch ${last.epoch}: val_auc ${last.val_auc.toFixed(4)}` : "") +
      (val
        ? `\n  validation (${result.evaluation?.weightsLabel}): ROC-AUC ${
          val.rocAuc.toFixed(4)
        }, accuracy ${val.accuracy.toFixed(4)}`
        : ""),
  );
  return 0;
}

if (import.meta.main) Deno.exit(await runCli("train", main));
