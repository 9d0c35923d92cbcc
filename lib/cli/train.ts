/** `deno task train --model densenet121 --profile full [...]`: one resumable training run. */
import { parseArgs } from "node:util";
import { parseNetName } from "../models/registry.ts";
import { defaultWeightsChoice } from "../models/weights/resolve.ts";
import { resolveConfig } from "../training/config.ts";
import { COMMON_OPTIONS, COMMON_USAGE, configFromFlags } from "../training/flags.ts";
import { trainRun } from "../training/run.ts";
import type { BackendPreference } from "../training/backend.ts";

const USAGE = `usage: deno task train --model vgg16|resnet50|densenet121 [options]
  --model NET                 the base network (required)
${COMMON_USAGE}
Re-running the same command resumes from the last finished epoch.`;

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { model: { type: "string" }, ...COMMON_OPTIONS },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    console.error(`train: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
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
  } catch (e) {
    console.error(`train: ${(e as Error).message}\n${USAGE}`);
    return 2;
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

if (import.meta.main) Deno.exit(await main(Deno.args));
