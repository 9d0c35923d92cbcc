/**
 * `deno task data:summary [--data DIR]`: what is in the dataset and whether it can be used
 * (lib/data/summary.ts computes it).
 */
import { DatasetError } from "../data/dataset.ts";
import { DEFAULT_SEED, DEFAULT_VAL_FRACTION } from "../data/splits.ts";
import { formatSummary, summarizeDataset } from "../data/summary.ts";
import { dataDir } from "../util/paths.ts";
import { type CliIo, consoleIo, numberFlag, parseCli } from "./args.ts";
import { runCli } from "./entry.ts";

export const USAGE =
  `usage: deno task data:summary [--data DIR] [--quick] [--seed N] [--val-fraction F] [--json]
  --data DIR          dataset root chest_xray/ (default: CXR_DATA or data/chest_xray)
  --quick             read image headers only (faster; truncated files are not detected)
  --seed N            seed of the patient-protocol validation carve (default ${DEFAULT_SEED})
  --val-fraction F    validation share of train, patient protocol (default ${DEFAULT_VAL_FRACTION})
  --json              print the summary as JSON`;

/** CLI entry; returns the exit code (2: bad usage, 1: unusable dataset). */
export async function main(args: string[], io: CliIo = consoleIo): Promise<number> {
  const values = parseCli(args, {
    data: { type: "string" },
    quick: { type: "boolean" },
    seed: { type: "string" },
    "val-fraction": { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, { usage: USAGE, prefix: "data:summary", io });
  if (typeof values === "number") return values;
  let seed, valFraction;
  try {
    seed = numberFlag("seed", values.seed, { integer: true });
    valFraction = numberFlag("val-fraction", values["val-fraction"], { above: 0, below: 1 });
  } catch (e) {
    io.err(`data:summary: ${(e as Error).message}`);
    return 2;
  }
  try {
    const summary = await summarizeDataset(values.data ?? dataDir(), {
      full: !values.quick,
      seed,
      valFraction,
    });
    if (values.json) io.out(JSON.stringify(summary, null, 2));
    else for (const line of formatSummary(summary)) io.out(line);
    return 0;
  } catch (e) {
    if (e instanceof DatasetError) {
      io.err(`data:summary: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await runCli("data:summary", main));
