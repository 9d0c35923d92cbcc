/**
 * Grad-CAM examples for the report: for each class, the most confident correct and the most
 * confident wrong cases of a run's test split (validation when there is no test), written as
 * `<runDir>/gradcam/*.png` with captions in `gradcam/index.json`.
 */
import { join } from "node:path";
import {
  evaluateRun,
  type Evaluation,
  listPredictionFiles,
  loadPredictions,
  type PredictionItem,
  readRunConfig,
} from "../evaluation/evaluate.ts";
import { CONFIG_FILE, predictionsFileName, RunFolder } from "../runs/mod.ts";

export interface GradcamExampleOptions {
  /** Examples per (class, correct/wrong) case (default 2). */
  perCase?: number;
  /** Replace an existing gradcam/ folder (default: keep it and return its count). */
  force?: boolean;
}

interface Case {
  item: PredictionItem;
  className: "NORMAL" | "PNEUMONIA";
  correct: boolean;
}

/** Most confident correct and wrong cases per class at `threshold`. */
export function pickCases(items: PredictionItem[], threshold: number, perCase: number): Case[] {
  const out: Case[] = [];
  for (const label of [1, 0] as const) {
    const cls = items.filter((i) => i.label === label);
    // confidence towards the true class: prob for PNEUMONIA, 1 - prob for NORMAL
    const conf = (i: PredictionItem) => (label === 1 ? i.prob : 1 - i.prob);
    const isCorrect = (i: PredictionItem) => (i.prob >= threshold) === (label === 1);
    const correct = cls.filter(isCorrect).sort((a, b) => conf(b) - conf(a)).slice(0, perCase);
    const wrong = cls.filter((i) => !isCorrect(i)).sort((a, b) => conf(a) - conf(b)).slice(
      0,
      perCase,
    );
    const className = label === 1 ? "PNEUMONIA" : "NORMAL";
    for (const item of correct) out.push({ item, className, correct: true });
    for (const item of wrong) out.push({ item, className, correct: false });
  }
  return out;
}

/** Write Grad-CAM overlays for a run; returns how many images gradcam/ holds. */
export async function writeGradcamExamples(
  runDir: string,
  opts: GradcamExampleOptions = {},
): Promise<number> {
  const run = new RunFolder(runDir);
  const dir = run.gradcamDir;
  try {
    const existing = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".png")).length;
    if (existing > 0 && !opts.force) return existing;
  } catch { /* no folder yet */ }
  const files = await listPredictionFiles(runDir);
  const key = files.test ? "test" : files.val ? "val" : null;
  if (!key) {
    const [val, test] = [predictionsFileName("val"), predictionsFileName("test")];
    throw new Error(`${runDir} has no ${val} or ${test}`);
  }
  const preds = await loadPredictions(files[key]);
  const evaluation = await run.readEvaluation<Evaluation>().catch(() => null) ??
    await evaluateRun(runDir);
  const threshold = evaluation.threshold.value;
  const config = await readRunConfig(runDir);
  const root = preds.source?.dataRoot ?? config?.data?.root;
  if (!root) throw new Error(`${runDir}: no data root in predictions source or ${CONFIG_FILE}`);
  const cases = pickCases(preds.items, threshold, opts.perCase ?? 2);
  const { loadClassifier } = await import("../inference/classifier.ts");
  const { gradCam } = await import("../explain/gradcam.ts");
  const { decodeImage } = await import("../data/images.ts");
  const classifier = await loadClassifier(runDir);
  await Deno.mkdir(dir, { recursive: true });
  const index: { file: string; rel: string; caption: string; prob: number; label: number }[] = [];
  try {
    let k = 0;
    for (const c of cases) {
      const path = join(root, c.item.rel);
      let image;
      try {
        image = await decodeImage(path, 224);
      } catch (e) {
        console.error(`skipped ${path}: ${(e as Error).message}`);
        continue;
      }
      const cam = await gradCam(classifier, image.data);
      const what = c.correct ? "correct" : c.className === "PNEUMONIA" ? "missed" : "false alarm";
      const file = `${key}_${c.className}_${c.correct ? "correct" : "wrong"}_${++k}.png`;
      await Deno.writeFile(join(dir, file), cam.overlayPng);
      index.push({
        file,
        rel: c.item.rel,
        label: c.item.label,
        prob: c.item.prob,
        caption: `${c.className}, ${what}: P(pneumonia) ${c.item.prob.toFixed(3)} vs threshold ` +
          `${threshold.toFixed(3)} (${c.item.rel.split("/").pop()}; heatmap for ${cam.target})`,
      });
    }
  } finally {
    await classifier.close();
  }
  await run.writeGradcamIndex({ split: key, items: index });
  return index.length;
}
