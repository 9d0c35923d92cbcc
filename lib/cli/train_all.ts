/** `deno task train-all [options]`: VGG16, ResNet50, DenseNet121 in turn, then the report. */
import { parseArgs } from "node:util";
import { NET_NAMES } from "../models/registry.ts";
import { defaultWeightsChoice } from "../models/weights/resolve.ts";
import { resolveConfig } from "../training/config.ts";
import { COMMON_OPTIONS, COMMON_USAGE, configFromFlags } from "../training/flags.ts";
import { trainRun } from "../training/run.ts";
import type { BackendPreference } from "../training/backend.ts";
import { writeReport } from "../reporting/report.ts";
import { writeGradcamExamples } from "../reporting/gradcam_examples.ts";
import { main as downloadDataset } from "./data_download.ts";
import { join } from "node:path";
import { isDirectory } from "../util/fs.ts";
import { dataDir } from "../util/paths.ts";

/**
 * The main job must work on a fresh machine: when the default dataset folder is missing, get
 * it (data:download) first. A folder named by --data must exist: that is the user's mistake.
 */
async function ensureDataset(root: string, explicit: boolean): Promise<boolean> {
  if (await isDirectory(join(root, "train"))) return true;
  if (explicit || root !== dataDir()) {
    console.error(`train-all: no ${join(root, "train")} (a Kaggle-layout chest_xray folder)`);
    return false;
  }
  console.error(`train-all: ${root} is missing; downloading the dataset (deno task data:download)`);
  return (await downloadDataset([])) === 0 && await isDirectory(join(root, "train"));
}

const USAGE = `usage: deno task train-all [options]   (trains ${NET_NAMES.join(", ")} in turn)
${COMMON_USAGE}
  --unfreeze-from applies to every net that fine-tunes; finished runs are skipped.`;

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: COMMON_OPTIONS, strict: true, allowPositionals: false });
  } catch (e) {
    console.error(`train-all: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  let configs;
  try {
    const flags = configFromFlags(v);
    configs = NET_NAMES.map((net) =>
      resolveConfig({ net, weights: defaultWeightsChoice(), profile: "full", ...flags })
    );
  } catch (e) {
    console.error(`train-all: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const t0 = performance.now();
  if (!(await ensureDataset(configs[0].dataRoot, v.data !== undefined))) return 1;
  const runDirs: string[] = [];
  for (const config of configs) {
    const start = performance.now();
    const r = await trainRun(config, {
      force: v.force === true,
      progress: v.quiet !== true,
      backend: (v.backend as BackendPreference | undefined) ?? "auto",
    });
    runDirs.push(r.runDir);
    const val = r.evaluation?.splits.val?.metrics;
    console.log(
      `${config.net}: ${r.skipped ? "skipped (finished)" : "trained"} in ${
        ((performance.now() - start) / 1000).toFixed(0)
      } s, val ROC-AUC ${val ? val.rocAuc.toFixed(4) : "?"} (${r.evaluation?.weightsLabel ?? ""})`,
    );
  }
  for (const dir of runDirs) {
    try {
      await writeGradcamExamples(dir, { perCase: 2 });
    } catch (e) {
      console.error(`train-all: no Grad-CAM examples for ${dir}: ${(e as Error).message}`);
    }
  }
  const report = await writeReport({ runDirs });
  console.log(
    `train-all: ${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s; report ${report.md}, ${report.html}`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
