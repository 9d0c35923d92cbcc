/** A Keras-style `model.summary()` of a NetSpec: layers, output shapes, parameter counts. */
import { inferShapes, trainableLayers } from "./graph.ts";
import { layoutParams, weightLayout } from "./layout.ts";
import type { NetSpec } from "./spec.ts";

export interface SummaryRow {
  layer: string;
  kind: string;
  /** With the batch dimension as null, e.g. [null, 7, 7, 512]. */
  outputShape: (number | null)[];
  params: number;
  trainable: boolean;
  inputs: string[];
}

export interface Summary {
  name: string;
  rows: SummaryRow[];
  totalParams: number;
  /** Weights a Keras optimizer updates (BN moving statistics never are). */
  trainableParams: number;
  nonTrainableParams: number;
}

/** Summary of `spec` with layers from `trainableFrom` on trainable (null/undefined: all). */
export function summarize(spec: NetSpec, trainableFrom?: string | null): Summary {
  const shapes = inferShapes(spec);
  const layout = weightLayout(spec);
  const trainable = trainableLayers(spec, trainableFrom ?? null);
  let total = 0;
  let trainableParams = 0;
  const rows = spec.layers.map((layer, i) => {
    const entry = layout[i];
    const params = layoutParams(entry);
    total += params;
    const isTrainable = trainable.has(layer.name);
    if (isTrainable) {
      for (const w of entry.weights) {
        if (w.kind === "moving_mean" || w.kind === "moving_variance") continue;
        trainableParams += w.shape.reduce((a, b) => a * b, 1);
      }
    }
    return {
      layer: layer.name,
      kind: layer.kind,
      outputShape: [null, ...shapes.get(layer.name)!],
      params,
      trainable: isTrainable,
      inputs: [...layer.inputs],
    };
  });
  return {
    name: spec.name,
    rows,
    totalParams: total,
    trainableParams,
    nonTrainableParams: total - trainableParams,
  };
}

function shapeText(shape: (number | null)[]): string {
  return `(${shape.map((d) => (d === null ? "None" : String(d))).join(", ")})`;
}

const thousands = (n: number) => n.toLocaleString("en-US");

/** The summary as Keras prints it, plus a Trainable column. */
export function formatSummary(summary: Summary, opts: { width?: number } = {}): string {
  const first = Math.max(14, ...summary.rows.map((r) => r.layer.length + r.kind.length + 5));
  const cols = [first, 22, 12, 11];
  const width = opts.width ?? cols.reduce((a, b) => a + b, 0) + 30;
  const cell = (s: string, w: number) => (s.length >= w ? s.slice(0, w - 2) + "… " : s.padEnd(w));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < cols.length ? cell(c, cols[i]) : c)).join("").trimEnd();
  const out = [
    `Model: "${summary.name}"`,
    "_".repeat(width),
    line(["Layer (type)", "Output Shape", "Param #", "Trainable", "Connected to"]),
    "=".repeat(width),
  ];
  for (const r of summary.rows) {
    out.push(line([
      `${r.layer} (${r.kind})`,
      shapeText(r.outputShape),
      thousands(r.params),
      r.trainable ? "yes" : "no",
      r.inputs.join(", "),
    ]));
  }
  out.push(
    "=".repeat(width),
    `Total params: ${thousands(summary.totalParams)}`,
    `Trainable params: ${thousands(summary.trainableParams)}`,
    `Non-trainable params: ${thousands(summary.nonTrainableParams)}`,
    `Layers: ${summary.rows.length}`,
    "_".repeat(width),
  );
  return out.join("\n");
}
