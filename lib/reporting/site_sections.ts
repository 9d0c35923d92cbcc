/**
 * Report sections about data from elsewhere: the shift-robustness suite (heat map + one line
 * per model), external test sets (provenance and the drop from validation with CIs) and the
 * site threshold profiles of each run. Each returns no blocks when a run has nothing to show.
 */
import { join } from "node:path";
import type { Block, Figure } from "./document.ts";
import type { Evaluation, SplitEvaluation } from "../evaluation/evaluate.ts";
import { type RobustnessResult, robustnessSummaryLine } from "../evaluation/robustness.ts";
import { readRobustness, robustnessChart } from "../evaluation/robustness_runs.ts";
import { listSiteProfiles } from "../evaluation/profiles.ts";
import { renderSvg, svgToPng } from "../charts/render.ts";

/** What these sections need of a run. */
export interface SiteRun {
  runDir: string;
  model: string;
  evaluation: Evaluation;
}

function pct(v: number | null | undefined): string {
  return typeof v === "number" && Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : "n/a";
}

function num(v: number | null | undefined): string {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(3) : "n/a";
}

function ci(v: [number, number] | undefined | null, f: (x: number) => string): string {
  return v && Number.isFinite(v[0]) && Number.isFinite(v[1]) ? `[${f(v[0])}–${f(v[1])}]` : "";
}

/** Robustness: how to read it, one line per model, the heat map and the full table. */
export async function robustnessBlocks(runs: SiteRun[], outDir: string): Promise<Block[]> {
  const results: { run: SiteRun; r: RobustnessResult }[] = [];
  for (const run of runs) {
    const r = await readRobustness(run.runDir);
    if (r) results.push({ run, r });
  }
  if (results.length === 0) return [];
  const blocks: Block[] = [{
    kind: "h2",
    text: "Robustness to acquisition shifts",
    id: "robustness",
  }, {
    kind: "p",
    text: "Each model's validation images (a class-balanced subset, `n` below) under ten " +
      "synthetic acquisition shifts at three severities (`deno task robustness`), at the " +
      "model's own threshold. Read the heat map row by row: green cells keep the specificity of " +
      "the unshifted row (`none`); red cells are where a fixed threshold starts calling normal " +
      "images pneumonia (scores drift up) or, with a low sensitivity in the table, the reverse. " +
      "A shift that keeps AUC but loses specificity needs a new operating point (site " +
      "calibration), not a new model. Inversion is a sanity case (one strength): a model " +
      "that reads grey levels loses its AUC there; one that keeps it relies on edges and " +
      "texture more than on intensity. " +
      "These are synthetic shifts of validation images, not figures on data from elsewhere.",
  }, {
    kind: "list",
    items: results.map(({ run, r }) => robustnessSummaryLine(r, run.model)),
  }];
  const spec = robustnessChart(results.map((x) => x.r));
  const svg = await renderSvg(spec);
  const filesDir = join(outDir, "report_files");
  await Deno.mkdir(filesDir, { recursive: true });
  await Deno.writeTextFile(join(filesDir, "robustness.svg"), svg);
  await Deno.writeFile(join(filesDir, "robustness.png"), svgToPng(svg));
  const figure: Figure = {
    caption: "Specificity (%) per shift and severity (colour and number; * where sensitivity " +
      "fell below 90%); tooltips in the HTML give its CI, sensitivity and AUC",
    mdPath: "report_files/robustness.png",
    content: svg,
    mime: "image/svg+xml",
  };
  blocks.push({ kind: "figures", figures: [figure] });
  const conds = results[0].r.conditions.map((c) => `${c.shift}:${c.severity}`);
  blocks.push({
    kind: "table",
    header: [
      "Shift (severity: value)",
      ...results.map(({ run }) => `${run.model}: AUC / sens / spec`),
    ],
    rows: conds.map((key, i) => {
      const c0 = results[0].r.conditions[i];
      return [
        c0.shift === "none" ? "none" : `${c0.shift} (${c0.severity}: ${c0.value})`,
        ...results.map(({ r }) => {
          const c = r.conditions.find((x) => `${x.shift}:${x.severity}` === key);
          return c
            ? `${num(c.rocAuc)} / ${pct(c.sensitivity)} / ${pct(c.specificity)} ${
              ci(c.ci.specificity, pct)
            }`
            : "–";
        }),
      ];
    }),
    caption: results.map(({ run, r }) =>
      `${run.model}: n=${r.images.n} (${r.images.positives} pneumonia / ${r.images.negatives} ` +
      `normal), threshold ${num(r.threshold.value)} (${r.threshold.profile}), seed ${r.images.seed}`
    ).join("; ") + ". Specificity with its 95% patient-bootstrap CI.",
  });
  return blocks;
}

function delta(s: SplitEvaluation, k: "rocAuc" | "sensitivity" | "specificity"): string {
  const d = s.fromValidation?.[k];
  if (!d) return "n/a";
  const f = k === "rocAuc"
    ? (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(3)}`
    : (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
  return `${f(d.delta)} ${ci(d.ci, f)}`;
}

/** External test sets: provenance, figures and the drop from validation, per model. */
export function externalBlocks(runs: SiteRun[]): Block[] {
  const rows: string[][] = [];
  for (const run of runs) {
    for (const [key, s] of Object.entries(run.evaluation.splits)) {
      if (!key.startsWith("ext-")) continue;
      const src = s.source ?? {};
      const m = s.metrics;
      rows.push([
        run.model,
        `**${src.name ?? key.slice(4)}**`,
        `\`${src.dataRoot ?? "?"}\`${src.labels ? ` (labels \`${src.labels}\`)` : ""}`,
        src.sha256 ? `\`${src.sha256.slice(0, 12)}\`` : "n/a",
        `${m.n}: ${m.positives}/${m.negatives}`,
        `${num(m.rocAuc)} ${ci(s.ci.rocAuc, num)}`,
        `${pct(m.sensitivity)} ${ci(s.ci.sensitivity, pct)}`,
        `${pct(m.specificity)} ${ci(s.ci.specificity, pct)}`,
        delta(s, "rocAuc"),
        delta(s, "sensitivity"),
        delta(s, "specificity"),
      ]);
    }
  }
  if (rows.length === 0) return [];
  return [{ kind: "h2", text: "External test sets", id: "external" }, {
    kind: "p",
    text: "Labelled sets from outside the training data (`deno task evaluate --data DIR " +
      "[--name NAME]`, `train-all --external DIR`), each at the model's validation threshold. " +
      "The Δ columns are the set minus validation, with 95% CIs from independent bootstraps " +
      "of the two sets: an interval that excludes 0 is a real drop, not noise.",
  }, {
    kind: "table",
    header: [
      "Model",
      "Set",
      "Folder",
      "Images sha256",
      "n: pneumonia/normal",
      "ROC-AUC [95% CI]",
      "Sensitivity",
      "Specificity",
      "Δ AUC vs validation",
      "Δ sensitivity (pts)",
      "Δ specificity (pts)",
    ],
    rows,
    caption: "Images sha256: over the sorted image hashes and labels of the set, so the same " +
      "images with the same labels give the same hash wherever the folder lives.",
  }];
}

/** Site threshold profiles stored in each run (deno task calibrate). */
export async function profileBlocks(runs: SiteRun[]): Promise<Block[]> {
  const rows: string[][] = [];
  const warnings: string[] = [];
  for (const run of runs) {
    for (const p of await listSiteProfiles(run.runDir)) {
      rows.push([
        run.model,
        `\`${p.name}\``,
        `${num(p.value)} (validation ${
          num(run.evaluation.threshold.validation_value ?? run.evaluation.threshold.value)
        })`,
        `${pct(p.targetSensitivity)}`,
        `${p.data?.n ?? "?"}: ${p.data?.positives ?? "?"}/${p.data?.negatives ?? "?"}`,
        `${pct(p.sensitivity)} ${ci(p.ci?.sensitivity, pct)}`,
        `${pct(p.specificity)} ${ci(p.ci?.specificity, pct)}`,
        p.data?.sha256 ? `\`${p.data.sha256.slice(0, 12)}\`` : "n/a",
        p.createdAt?.slice(0, 10) ?? "?",
      ]);
      for (const w of p.warnings ?? []) warnings.push(`${run.model} ${p.name}: ${w}`);
    }
  }
  if (rows.length === 0) return [];
  const blocks: Block[] = [{ kind: "h2", text: "Site threshold profiles", id: "profiles" }, {
    kind: "p",
    text: "Operating points re-chosen on a site's own labelled images (`deno task calibrate`), " +
      "stored beside the validation threshold, which they never replace. The API applies one " +
      "with `?threshold=site:<name>` (or `serve --threshold`) and names it in every answer. " +
      "Intervals are for what the threshold will give on new patients of that site (the " +
      "threshold is re-chosen in every bootstrap resample).",
  }, {
    kind: "table",
    header: [
      "Model",
      "Profile",
      "Threshold",
      "Target sensitivity",
      "n: pneumonia/normal",
      "Sensitivity [95% CI]",
      "Specificity [95% CI]",
      "Data sha256",
      "Date",
    ],
    rows,
  }];
  if (warnings.length) blocks.push({ kind: "list", items: warnings });
  return blocks;
}
