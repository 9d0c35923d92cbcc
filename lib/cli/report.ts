/**
 * `deno task report [--runs id,id] [--out DIR] [--reevaluate] [--gradcam N]`
 *
 * Writes outputs/report.md and outputs/report.html comparing runs (default: the latest finished
 * run of each net in outputs/runs).
 */
import { latestRunsPerNet, writeReport } from "../reporting/report.ts";
import { resolveRunDir, runsDir } from "../util/paths.ts";
import { nonNegativeInt, parseCli, usageError } from "./args.ts";
import { runCli } from "./entry.ts";

const USAGE = `usage: deno task report [options]

  --runs ID,ID,...   run ids (or run directories); default: latest finished run per net
  --out DIR          where report.md, report.html and report_files/ go (default outputs/)
  --reevaluate       recompute evaluation.json and charts even when present
  --gradcam N        make N Grad-CAM examples per case (correct/wrong x class) for runs that
                     have a classifier.onnx but no gradcam/ folder, so every model has some
                     (default 2; 0: use only what exists)
  -h, --help`;

export async function main(args: string[]): Promise<number> {
  const cli = { usage: USAGE, prefix: "error" };
  const v = parseCli(args, {
    runs: { type: "string" },
    out: { type: "string" },
    reevaluate: { type: "boolean" },
    gradcam: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, cli);
  if (typeof v === "number") return v;
  let gradcamPerCase: number;
  try {
    gradcamPerCase = nonNegativeInt("gradcam", v.gradcam, 2);
  } catch (e) {
    return usageError(cli, (e as Error).message);
  }
  try {
    const runDirs = v.runs
      ? await Promise.all(v.runs.split(",").map((s) => s.trim()).filter(Boolean).map(resolveRunDir))
      : await latestRunsPerNet();
    if (runDirs.length === 0) {
      throw new Error(
        `no finished runs with predictions in ${runsDir()}; train with \`deno task train\` or pass --runs`,
      );
    }
    if (gradcamPerCase > 0) {
      const { writeGradcamExamples } = await import("../reporting/gradcam_examples.ts");
      for (const dir of runDirs) {
        try {
          const n = await writeGradcamExamples(dir, { perCase: gradcamPerCase });
          console.error(`${dir}: ${n} Grad-CAM examples`);
        } catch (e) {
          console.error(`warning: no Grad-CAM examples for ${dir}: ${(e as Error).message}`);
        }
      }
    }
    const out = await writeReport({ runDirs, outDir: v.out, reevaluate: v.reevaluate });
    console.log(`wrote ${out.md}\nwrote ${out.html}`);
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runCli("report", main));
