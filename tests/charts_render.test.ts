import assert from "node:assert/strict";
import * as vl from "vega-lite";
import {
  calibrationChart,
  comparisonChart,
  confusionChart,
  type EpochRecord,
  prChart,
  rocChart,
  thresholdSweepChart,
  trainingCurves,
  type VlSpec,
} from "../lib/charts/specs.ts";
import { renderPng, renderSvg, vegaDisplay } from "../lib/charts/render.ts";
import { dejavuTextWidth } from "../lib/charts/text_metrics.ts";
import { calibrationBins, prCurve, rocCurve } from "../lib/evaluation/metrics.ts";
import { thresholdSweep } from "../lib/evaluation/threshold.ts";

const labels = [1, 1, 0, 0, 1, 0, 1, 1, 0, 1];
const probs = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.65, 0.95, 0.4, 0.55];
const history: EpochRecord[] = [1, 2, 3, 4].map((e) => ({
  epoch: e,
  phase: e <= 2 ? 1 : 2,
  loss: 0.7 / e,
  accuracy: 0.7 + 0.05 * e,
  auc: 0.8 + 0.04 * e,
  val_loss: 0.8 / e,
  val_accuracy: 0.68 + 0.05 * e,
  val_auc: 0.78 + 0.04 * e,
}));
const roc = rocCurve(labels, probs);
const pr = prCurve(labels, probs);

const SPECS: Record<string, VlSpec> = {
  training: trainingCurves(history, { title: "training" }),
  roc: rocChart([{ name: "val", fpr: roc.fpr, tpr: roc.tpr, auc: 0.8 }], {
    operatingPoints: [{ fpr: 0.25, tpr: 0.83, label: "sens95" }],
  }),
  pr: prChart([{ name: "val", precision: pr.precision, recall: pr.recall, ap: 0.8 }], {
    prevalence: 0.6,
    operatingPoints: [{ recall: 0.83, precision: 0.83, label: "op" }],
  }),
  confusion: confusionChart({ tp: 5, fp: 1, tn: 3, fn: 1 }),
  calibration: calibrationChart([{ name: "val", bins: calibrationBins(labels, probs, 5) }]),
  sweep: thresholdSweepChart(thresholdSweep(labels, probs, 20), {
    chosen: { value: 0.55, method: "sens95" },
  }),
  comparison: comparisonChart([
    { model: "VGG16", metric: "accuracy", value: 0.8, lo: 0.7, hi: 0.9 },
    { model: "DenseNet121", metric: "accuracy", value: 0.9, lo: 0.85, hi: 0.95 },
    { model: "VGG16", metric: "ROC-AUC", value: 0.85 },
    { model: "DenseNet121", metric: "ROC-AUC", value: 0.93 },
  ]),
};

for (const [name, spec] of Object.entries(SPECS)) {
  Deno.test(`charts: ${name} compiles with vega-lite and renders to SVG`, async () => {
    // deno-lint-ignore no-explicit-any
    const compiled = vl.compile(spec as any).spec;
    assert.ok(Array.isArray(compiled.marks) && compiled.marks.length > 0, "vega marks");
    const svg = await renderSvg(spec);
    assert.match(svg, /^<svg[^>]+width="\d+"[^>]+height="\d+"/);
    assert.ok(svg.includes("</svg>"));
    // marks were actually drawn (paths or text)
    assert.ok((svg.match(/<path|<text/g) ?? []).length > 5, `${name} has drawn marks`);
    // JSON-serialisable (notebooks store it as the Vega-Lite MIME bundle)
    assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
  });
}

Deno.test("charts: training curves mark the phase-2 boundary; the confusion chart shows counts", async () => {
  const svg = await renderSvg(SPECS.training);
  assert.ok(svg.includes("fine-tuning"), "phase boundary label");
  const noPhase2 = await renderSvg(trainingCurves(history.map((e) => ({ ...e, phase: 1 }))));
  assert.ok(!noPhase2.includes("fine-tuning"));
  const cm = await renderSvg(SPECS.confusion);
  for (const t of [">5<", ">1<", ">3<", "83.3%", "75.0%"]) assert.ok(cm.includes(t), t);
  assert.throws(() => trainingCurves([]), /no epochs/);
});

Deno.test("charts: PNG rendering has the PNG signature and the scaled size", async () => {
  const svg = await renderSvg(SPECS.roc);
  const width = Number(/width="(\d+)"/.exec(svg)![1]);
  const height = Number(/height="(\d+)"/.exec(svg)![1]);
  const png = await renderPng(SPECS.roc, 2);
  assert.deepEqual([...png.slice(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const view = new DataView(png.buffer, png.byteOffset);
  assert.equal(view.getUint32(16), width * 2, "IHDR width");
  assert.equal(view.getUint32(20), height * 2, "IHDR height");
  assert.ok(png.length > 5000, `PNG has content (${png.length} bytes)`);
});

Deno.test("charts: vegaDisplay gives a Jupyter Vega-Lite bundle; text widths are DejaVu's", () => {
  const d = vegaDisplay(SPECS.roc, "<svg></svg>");
  const bundle = d[Symbol.for("Jupyter.display")]();
  assert.equal(bundle["application/vnd.vegalite.v5+json"], SPECS.roc);
  assert.equal(bundle["image/svg+xml"], "<svg></svg>");
  // "i" is narrow and "m" wide in DejaVu Sans: real metrics, not a per-character guess
  assert.ok(dejavuTextWidth("mmmm", 10) > 2.5 * dejavuTextWidth("iiii", 10));
  assert.ok(dejavuTextWidth("abc", 10, true) > dejavuTextWidth("abc", 10));
});
