/**
 * Builds a stand-in "site" folder (lib/data/standin.ts) from a run's validation patients, which
 * the run never trained on, optionally under acquisition shifts:
 *
 *   deno run -A tools/site_standin.ts --run <id|dir> --out /tmp/site [--images 200]
 *                                     [--shift gamma=1.6,brightness=20] [--seed 7]
 *
 * Then: deno task calibrate --run <id> --data /tmp/site --name standin
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { resolveRunDir } from "../lib/util/paths.ts";
import { loadPredictions, readRunConfig } from "../lib/evaluation/evaluate.ts";
import { selectSuiteImages } from "../lib/evaluation/robustness.ts";
import { type Shift, type ShiftKind, validateShift } from "../lib/data/shifts.ts";
import { writeStandinSite } from "../lib/data/standin.ts";
import { predictionsFileName } from "../lib/runs/mod.ts";

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    run: { type: "string" },
    out: { type: "string" },
    images: { type: "string", default: "200" },
    shift: { type: "string" },
    seed: { type: "string", default: "7" },
  },
  strict: true,
});
if (!v.run || !v.out) {
  console.error(
    "usage: tools/site_standin.ts --run <id|dir> --out DIR [--images N] [--shift k=v,...]",
  );
  Deno.exit(2);
}
const runDir = await resolveRunDir(v.run);
const preds = await loadPredictions(join(runDir, predictionsFileName("val")));
const root = preds.source?.dataRoot ?? (await readRunConfig(runDir))?.data?.root;
if (!root) throw new Error(`${runDir}: no data root`);
const shifts: Shift[] = (v.shift ?? "").split(",").filter(Boolean).map((kv) => {
  const [kind, value] = kv.split("=");
  const s = { kind: kind as ShiftKind, value: Number(value), seed: 1 };
  validateShift(s);
  return s;
});
const chosen = selectSuiteImages(preds.items, Number(v.images), Number(v.seed));
const counts = await writeStandinSite(
  chosen.map((it) => ({ path: join(root, it.rel), label: it.label })),
  v.out,
  { shifts },
);
console.log(
  `wrote ${v.out}: ${counts[0]} NORMAL, ${counts[1]} PNEUMONIA (validation patients of ${runDir}` +
    `${shifts.length ? `, shifted: ${v.shift}` : ""})`,
);
