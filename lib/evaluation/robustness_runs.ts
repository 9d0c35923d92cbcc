/**
 * The shift suite over saved runs: each run's validation images (predictions-val.json, read
 * from its data root), its classifier.onnx and a threshold profile; runs that share the same
 * selected images (the three nets of one train-all) share the decoding and each shifted batch.
 * Writes `robustness.json` and `charts/robustness.{svg,png,vl.json}` into every run folder.
 */
import { basename, join, resolve } from "node:path";
import {
  combineProbs,
  ENSEMBLE_META_FILE,
  ENSEMBLE_NET,
  type EnsembleMeta,
  memberDirs,
  parseEnsembleMeta,
} from "../inference/ensemble.ts";
import { loadClassifier } from "../inference/classifier.ts";
import { loadPredictions, readRunConfig, weightsTag } from "./evaluate.ts";
import { displayName } from "../models/registry.ts";
import { resolveProfile } from "./profiles.ts";
import {
  DEFAULT_SUITE_IMAGES,
  type RobustnessResult,
  runShiftSuite,
  selectSuiteImages,
  type SuiteImage,
  type SuiteModel,
  type SuiteOptions,
} from "./robustness.ts";
import { robustnessHeatmap, type VlSpec } from "../charts/specs.ts";
import { writeChart } from "../charts/render.ts";
import { SUITE_KINDS } from "../data/shifts.ts";
import { exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { RunFolder } from "../runs/mod.ts";

export interface RobustnessRunOptions extends SuiteOptions {
  /** Images per run (default DEFAULT_SUITE_IMAGES) or "all" of validation. */
  images?: number | "all";
  /** Threshold profile (default "validation"). */
  threshold?: string;
  /** Read images from here instead of the run's data root (same relative paths). */
  dataRoot?: string;
  /** Write the heat map chart into each run (default true). */
  charts?: boolean;
}

/** The images of a run's suite: its validation predictions, resolved under its data root. */
async function runImages(runDir: string, opts: RobustnessRunOptions): Promise<SuiteImage[]> {
  const predsPath = new RunFolder(runDir).predictionsPath("val");
  if (!(await exists(predsPath))) {
    throw new Error(`${runDir} has no ${basename(predsPath)}: the suite runs on validation images`);
  }
  const preds = await loadPredictions(predsPath);
  const config = await readRunConfig(runDir);
  const root = opts.dataRoot ?? preds.source?.dataRoot ?? config?.data?.root;
  if (!root) throw new Error(`${runDir}/config.json has no data.root; pass --data DIR`);
  const chosen = selectSuiteImages(preds.items, opts.images ?? DEFAULT_SUITE_IMAGES, opts.seed);
  return chosen.map((it) => ({
    path: join(root, it.rel),
    rel: it.rel,
    label: it.label,
    patient: it.patient,
    sha256: it.sha256,
  }));
}

/** An ensemble run whose members are all among `dirs`: its meta and their indexes there. */
async function ensembleOf(
  dir: string,
  dirs: string[],
): Promise<{ meta: EnsembleMeta; members: number[] } | null> {
  const path = join(dir, ENSEMBLE_META_FILE);
  if (!(await exists(path))) return null;
  const meta = parseEnsembleMeta(await Deno.readTextFile(path), path);
  const members = memberDirs(dir, meta).map((m) => dirs.findIndex((d) => resolve(d) === m));
  return members.every((i) => i >= 0) ? { meta, members } : null;
}

/** Heat map of one or more runs' results. */
export function robustnessChart(results: RobustnessResult[], title?: string): VlSpec {
  const flagged = results.some((r) => r.notImageNet);
  return robustnessHeatmap(
    results.flatMap((r) =>
      r.conditions.map((c) => ({
        model: `${displayName(r.net)} (n=${r.images.n})`,
        shift: c.shift,
        severity: c.severity,
        specificity: c.specificity,
        sensitivity: c.sensitivity,
        rocAuc: c.rocAuc,
        lo: c.ci.specificity[0],
        hi: c.ci.specificity[1],
      }))
    ),
    {
      title: title ??
        `Specificity (%) under acquisition shifts, at each model's threshold — ${
          flagged ? "formula weights, not ImageNet; " : ""
        }validation images`,
      shifts: ["none", ...SUITE_KINDS],
    },
  );
}

/** Read a run's robustness.json, or null. */
export async function readRobustness(runDir: string): Promise<RobustnessResult | null> {
  const path = new RunFolder(runDir).robustnessPath;
  return (await exists(path)) ? await readJson<RobustnessResult>(path) : null;
}

/** Run the suite on `runDirs` and write each run's results; returns them in input order. */
export async function robustnessForRuns(
  runDirs: string[],
  opts: RobustnessRunOptions = {},
): Promise<RobustnessResult[]> {
  const prepared = [];
  for (const dir of runDirs) {
    const images = await runImages(dir, opts);
    prepared.push({ dir, images, key: images.map((i) => i.path).join("\n") });
  }
  const results = new Map<string, RobustnessResult>();
  for (const key of [...new Set(prepared.map((p) => p.key))]) {
    const group = prepared.filter((p) => p.key === key);
    const models: (SuiteModel & { close(): Promise<void> })[] = [];
    try {
      for (const p of group) {
        // An ensemble whose members are in the suite combines their outputs (no extra passes).
        const ens = await ensembleOf(p.dir, group.map((g) => g.dir));
        if (ens) {
          const config = await readRunConfig(p.dir);
          const tag = weightsTag(config ?? { weights: ens.meta.weights });
          models.push({
            id: ens.meta.runId,
            net: ENSEMBLE_NET,
            weightsLabel: tag.label,
            notImageNet: tag.notImageNet,
            threshold: await resolveProfile(p.dir, opts.threshold),
            predict: () => Promise.reject(new Error("an ensemble combines its members")),
            ensembleOf: {
              members: ens.members,
              combine: (probs) => combineProbs(probs, ens.meta.combine),
            },
            close: () => Promise.resolve(),
          });
          continue;
        }
        const classifier = await loadClassifier(p.dir);
        const config = await readRunConfig(p.dir);
        const tag = weightsTag(config ?? { weights: classifier.weights });
        models.push({
          id: config?.runId ?? classifier.id ?? basename(p.dir),
          net: classifier.net,
          weightsLabel: tag.label,
          notImageNet: tag.notImageNet,
          threshold: await resolveProfile(p.dir, opts.threshold),
          predict: (x, n) => classifier.predict(x, n),
          close: () => classifier.close(),
        });
      }
      const out = await runShiftSuite(group[0].images, models, opts);
      group.forEach((p, i) => results.set(p.dir, out[i]));
    } finally {
      for (const m of models) await m.close();
    }
  }
  const ordered = runDirs.map((d) => results.get(d)!);
  for (const [i, dir] of runDirs.entries()) {
    const r = ordered[i];
    const run = new RunFolder(dir);
    await writeJsonAtomic(run.robustnessPath, r, 1);
    if (opts.charts ?? true) {
      const spec = robustnessChart([r]);
      await Deno.mkdir(run.chartsDir, { recursive: true });
      await writeChart(spec, run.chartStem("robustness"));
      await Deno.writeTextFile(run.chartSpecPath("robustness"), JSON.stringify(spec));
    }
  }
  return ordered;
}
