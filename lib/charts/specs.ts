/**
 * Vega-Lite spec builders for the clinical evaluation and training charts.
 *
 * Each builder returns a plain JSON object (Vega-Lite v5 schema) with its data inlined, so the
 * same spec renders in notebooks (vegaDisplay), to SVG/PNG files (render.ts) and in reports.
 */
import type { EpochRecord as TrainingEpochRecord } from "../runs/history.ts";

/** A Vega-Lite specification (plain JSON). */
export type VlSpec = Record<string, unknown>;

/** One epoch of history.json (lr and seconds optional: charts do not need them). */
export type EpochRecord =
  & Omit<TrainingEpochRecord, "lr" | "seconds">
  & Partial<Pick<TrainingEpochRecord, "lr" | "seconds">>;

const SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";
const FONT = "DejaVu Sans";
/** Colour-blind-safe pair (Tableau) used for train/val and sensitivity/specificity. */
const PAIR = ["#1f77b4", "#ff7f0e"];
/** The best epoch restored by early stopping. */
const RESTORED = "#2ca02c";
const CATEGORY = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/** Titles: the part after " — " becomes a smaller subtitle line (keeps charts narrow). */
function titleOf(title: string): VlSpec {
  const at = title.indexOf(" — ");
  return at < 0 ? { text: title, anchor: "start", fontSize: 14 } : {
    text: title.slice(0, at),
    subtitle: title.slice(at + 3),
    anchor: "start",
    fontSize: 14,
    subtitleFontSize: 11,
    subtitleColor: /not ImageNet/i.test(title) ? "#8e0000" : "#555555",
  };
}

function base(title: string | undefined, body: VlSpec): VlSpec {
  return {
    $schema: SCHEMA,
    ...(title ? { title: titleOf(title) } : {}),
    background: "white",
    padding: 8,
    config: {
      font: FONT,
      axis: { labelFontSize: 11, titleFontSize: 12, gridColor: "#e8e8e8" },
      legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 400 },
      view: { stroke: "#bbbbbb" },
    },
    ...body,
  };
}

/** Round for compact inline data (charts don't need 17 digits). */
function r4(x: number): number | null {
  return Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : null;
}

/** Keep at most `max` points of a curve (evenly), always keeping both ends. */
function thin<T>(points: T[], max = 400): T[] {
  if (points.length <= max) return points;
  const out: T[] = [];
  const step = (points.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) out.push(points[Math.round(i * step)]);
  return out;
}

const CURVE_PANELS: { key: "loss" | "accuracy" | "auc"; title: string }[] = [
  { key: "loss", title: "Loss (binary cross-entropy)" },
  { key: "accuracy", title: "Accuracy" },
  { key: "auc", title: "ROC-AUC" },
];

/**
 * Loss, accuracy and AUC per epoch, train vs validation, with the start of phase 2
 * (fine-tuning) marked by a dashed rule and the epochs early stopping restored by green ones.
 */
export function trainingCurves(
  history: EpochRecord[],
  opts: {
    title?: string;
    width?: number;
    height?: number;
    /** Epochs whose weights early stopping restored (one per phase), marked by a green rule. */
    restored?: number[];
  } = {},
): VlSpec {
  if (history.length === 0) throw new Error("trainingCurves: history has no epochs");
  const phase2 = history.find((e) => e.phase === 2);
  const boundary = phase2 ? phase2.epoch - 0.5 : null;
  const late = boundary !== null && boundary > (Math.max(...history.map((e) => e.epoch)) + 1) / 2;
  const maxEpoch = Math.max(...history.map((e) => e.epoch));
  const panels = CURVE_PANELS.map(({ key, title }) => {
    const values = history.flatMap((e) => [
      { epoch: e.epoch, set: "train", value: r4(e[key]) },
      { epoch: e.epoch, set: "validation", value: r4(e[`val_${key}`]) },
    ]).filter((v) => v.value !== null);
    const layers: VlSpec[] = [{
      data: { values },
      mark: { type: "line", point: { size: 30 }, strokeWidth: 2 },
      encoding: {
        x: {
          field: "epoch",
          type: "quantitative",
          title: "epoch",
          scale: { domain: [0.5, maxEpoch + 0.5], nice: false },
          axis: { tickMinStep: 1, format: "d" },
        },
        y: {
          field: "value",
          type: "quantitative",
          title: key,
          scale: { zero: key === "loss" },
        },
        color: {
          field: "set",
          type: "nominal",
          title: null,
          scale: { domain: ["train", "validation"], range: PAIR },
          legend: { orient: "bottom" },
        },
        tooltip: [
          { field: "epoch", type: "quantitative" },
          { field: "set", type: "nominal" },
          { field: "value", type: "quantitative", format: ".4f" },
        ],
      },
    }];
    if (boundary !== null) {
      layers.push({
        data: { values: [{ epoch: boundary, label: "fine-tuning →" }] },
        layer: [
          {
            mark: { type: "rule", strokeDash: [5, 4], color: "#555555" },
            encoding: { x: { field: "epoch", type: "quantitative" } },
          },
          {
            // Short phase 2 at the right: the label ends at the rule instead of leaving the panel.
            mark: {
              type: "text",
              align: late ? "right" : "left",
              dx: late ? -4 : 4,
              dy: 4,
              baseline: "top",
              color: "#555555",
            },
            encoding: {
              x: { field: "epoch", type: "quantitative" },
              y: { value: 0 },
              text: { field: "label" },
            },
          },
        ],
      });
    }
    if (opts.restored?.length) {
      const height = opts.height ?? 200;
      layers.push({
        // Labels point inwards (the last epoch's stays inside the panel), one line each.
        data: {
          values: opts.restored.map((epoch, i) => ({
            epoch,
            label: "restored",
            right: epoch > (maxEpoch + 1) / 2,
            y: height - 3 - 13 * i,
          })),
        },
        layer: [
          {
            mark: { type: "rule", strokeWidth: 2, color: RESTORED, opacity: 0.7 },
            encoding: {
              x: { field: "epoch", type: "quantitative" },
              tooltip: [{ field: "epoch", type: "quantitative", title: "best epoch (restored)" }],
            },
          },
          ...[true, false].map((right) => ({
            transform: [{ filter: `${right ? "" : "!"}datum.right` }],
            mark: {
              type: "text",
              align: right ? "right" : "left",
              dx: right ? -3 : 3,
              baseline: "bottom",
              color: RESTORED,
            },
            encoding: {
              x: { field: "epoch", type: "quantitative" },
              y: { field: "y", type: "quantitative", scale: null },
              text: { field: "label" },
            },
          })),
        ],
      });
    }
    return {
      title: { text: title, fontSize: 12 },
      width: opts.width ?? 240,
      height: opts.height ?? 200,
      layer: layers,
    };
  });
  return base(opts.title, { hconcat: panels, resolve: { scale: { color: "shared" } } });
}

/** One labelled ROC curve. */
export interface RocSeries {
  name: string;
  fpr: number[];
  tpr: number[];
  auc?: number;
}

/** A marked operating point (sensitivity = tpr, 1 - specificity = fpr). */
export interface OperatingPoint {
  fpr: number;
  tpr: number;
  label: string;
}

function seriesName(name: string, value: number | undefined, what: string): string {
  return value === undefined || !Number.isFinite(value)
    ? name
    : `${name} (${what} ${value.toFixed(3)})`;
}

/** ROC curves (one or more) with the chance diagonal and optional operating points. */
export function rocChart(
  series: RocSeries[],
  opts: { title?: string; operatingPoints?: OperatingPoint[]; size?: number } = {},
): VlSpec {
  const values = series.flatMap((s) =>
    thin(s.fpr.map((f, i) => ({ fpr: r4(f), tpr: r4(s.tpr[i]) }))).map((p) => ({
      ...p,
      curve: seriesName(s.name, s.auc, "AUC"),
    }))
  );
  const size = opts.size ?? 320;
  const layers: VlSpec[] = [
    {
      data: { values: [{ fpr: 0, tpr: 0 }, { fpr: 1, tpr: 1 }] },
      mark: { type: "line", strokeDash: [4, 4], color: "#999999" },
      encoding: {
        x: { field: "fpr", type: "quantitative" },
        y: { field: "tpr", type: "quantitative" },
      },
    },
    {
      data: { values },
      mark: { type: "line", strokeWidth: 2, interpolate: "linear" },
      encoding: {
        x: {
          field: "fpr",
          type: "quantitative",
          title: "1 − specificity (false positive rate)",
          scale: { domain: [0, 1] },
        },
        y: {
          field: "tpr",
          type: "quantitative",
          title: "sensitivity (true positive rate)",
          scale: { domain: [0, 1] },
        },
        color: {
          field: "curve",
          type: "nominal",
          title: null,
          scale: { range: CATEGORY },
          legend: { orient: "bottom-right", direction: "vertical", fillColor: "white" },
        },
        order: { field: "fpr", type: "quantitative" },
      },
    },
  ];
  if (opts.operatingPoints?.length) {
    layers.push(operatingPointLayer(
      opts.operatingPoints.map((p) => ({ x: r4(p.fpr), y: r4(p.tpr), label: p.label })),
      "fpr",
      "tpr",
    ));
  }
  return base(opts.title, { width: size, height: size, layer: layers });
}

function operatingPointLayer(
  values: { x: number | null; y: number | null; label: string }[],
  xField: string,
  yField: string,
  labelSide: "right" | "left" = "right",
): VlSpec {
  // Coincident points (e.g. val and test both at (1, 1)) get one marker and a joined label;
  // labels near the right edge go to the left of their marker so they stay inside the plot.
  const merged = new Map<string, { x: number | null; y: number | null; labels: string[] }>();
  for (const v of values) {
    const key = `${v.x}|${v.y}`;
    const m = merged.get(key);
    if (m) m.labels.push(v.label);
    else merged.set(key, { x: v.x, y: v.y, labels: [v.label] });
  }
  const rows = [...merged.values()].map((v) => ({
    [xField]: v.x,
    [yField]: v.y,
    label: v.labels.join("; "),
    side: labelSide === "left" || (v.x ?? 0) > 0.6 ? "left" : "right",
  }));
  const xy = {
    x: { field: xField, type: "quantitative" },
    y: { field: yField, type: "quantitative" },
  };
  const text = (side: "left" | "right"): VlSpec => ({
    transform: [{ filter: `datum.side === '${side}'` }],
    mark: {
      type: "text",
      align: side === "right" ? "left" : "right",
      dx: side === "right" ? 9 : -9,
      dy: 12,
      fontSize: 11,
      color: "#b22222",
    },
    encoding: { ...xy, text: { field: "label" } },
  });
  return {
    data: { values: rows },
    layer: [
      {
        mark: { type: "point", shape: "diamond", size: 140, filled: true, color: "#d62728" },
        encoding: { ...xy, tooltip: [{ field: "label" }] },
      },
      text("right"),
      text("left"),
    ],
  };
}

/** One labelled precision-recall curve. */
export interface PrSeries {
  name: string;
  precision: number[];
  recall: number[];
  /** Average precision, shown in the legend. */
  ap?: number;
}

/** Precision-recall curves with the prevalence baseline and optional operating points. */
export function prChart(
  series: PrSeries[],
  opts: {
    title?: string;
    prevalence?: number;
    operatingPoints?: { recall: number; precision: number; label: string }[];
    size?: number;
  } = {},
): VlSpec {
  const values = series.flatMap((s) =>
    thin(s.recall.map((rc, i) => ({ recall: r4(rc), precision: r4(s.precision[i]) }))).map((
      p,
    ) => ({ ...p, curve: seriesName(s.name, s.ap, "AP") }))
  );
  const size = opts.size ?? 320;
  const layers: VlSpec[] = [];
  if (opts.prevalence !== undefined) {
    layers.push({
      data: { values: [{ y: r4(opts.prevalence), label: "prevalence (chance)" }] },
      layer: [
        {
          mark: { type: "rule", strokeDash: [4, 4], color: "#999999" },
          encoding: { y: { field: "y", type: "quantitative" } },
        },
        {
          mark: { type: "text", align: "left", dx: 4, dy: -6, color: "#777777", fontSize: 10 },
          encoding: {
            x: { value: 0 },
            y: { field: "y", type: "quantitative" },
            text: { field: "label" },
          },
        },
      ],
    });
  }
  layers.push({
    data: { values },
    mark: { type: "line", strokeWidth: 2, interpolate: "step-before" },
    encoding: {
      x: {
        field: "recall",
        type: "quantitative",
        title: "recall (sensitivity)",
        scale: { domain: [0, 1] },
      },
      y: {
        field: "precision",
        type: "quantitative",
        title: "precision (PPV)",
        scale: { domain: [0, 1] },
      },
      color: {
        field: "curve",
        type: "nominal",
        title: null,
        scale: { range: CATEGORY },
        legend: { orient: "bottom-left", direction: "vertical", fillColor: "white" },
      },
      order: { field: "recall", type: "quantitative" },
    },
  });
  if (opts.operatingPoints?.length) {
    layers.push(operatingPointLayer(
      opts.operatingPoints.map((p) => ({ x: r4(p.recall), y: r4(p.precision), label: p.label })),
      "recall",
      "precision",
      "left",
    ));
  }
  return base(opts.title, { width: size, height: size, layer: layers });
}

/** Confusion matrix heatmap: counts and row percentages (share of each actual class). */
export function confusionChart(
  confusion: { tp: number; fp: number; tn: number; fn: number },
  opts: { title?: string; size?: number } = {},
): VlSpec {
  const normal = confusion.tn + confusion.fp;
  const pneumonia = confusion.tp + confusion.fn;
  const pct = (v: number, total: number) => total ? `${(100 * v / total).toFixed(1)}%` : "–";
  const cell = (actual: string, predicted: string, count: number, total: number) => ({
    actual,
    predicted,
    count,
    share: total ? count / total : 0,
    label: `${count}`,
    sub: pct(count, total),
  });
  const values = [
    cell("NORMAL", "NORMAL", confusion.tn, normal),
    cell("NORMAL", "PNEUMONIA", confusion.fp, normal),
    cell("PNEUMONIA", "NORMAL", confusion.fn, pneumonia),
    cell("PNEUMONIA", "PNEUMONIA", confusion.tp, pneumonia),
  ];
  const size = opts.size ?? 220;
  const order = ["NORMAL", "PNEUMONIA"];
  const enc = {
    x: {
      field: "predicted",
      type: "nominal",
      sort: order,
      title: "predicted",
      axis: { labelAngle: 0, orient: "top" },
    },
    y: { field: "actual", type: "nominal", sort: order, title: "actual" },
  };
  return base(opts.title, {
    width: size,
    height: size,
    data: { values },
    encoding: enc,
    layer: [
      {
        mark: { type: "rect", stroke: "white", strokeWidth: 2 },
        encoding: {
          color: {
            field: "share",
            type: "quantitative",
            title: "share of row",
            scale: { domain: [0, 1], scheme: "blues" },
            legend: null,
          },
          tooltip: [
            { field: "actual" },
            { field: "predicted" },
            { field: "count", type: "quantitative" },
            { field: "sub", title: "share of actual class" },
          ],
        },
      },
      {
        mark: { type: "text", fontSize: 20, fontWeight: "bold", dy: -8 },
        encoding: {
          text: { field: "label" },
          color: { condition: { test: "datum.share > 0.5", value: "white" }, value: "black" },
        },
      },
      {
        mark: { type: "text", fontSize: 11, dy: 14 },
        encoding: {
          text: { field: "sub" },
          color: { condition: { test: "datum.share > 0.5", value: "white" }, value: "#333333" },
        },
      },
    ],
  });
}

/** One calibration curve: reliability bins. */
export interface CalibrationSeries {
  name: string;
  bins: { meanProb: number; fractionPositive: number; count: number }[];
}

/** Reliability diagram: observed PNEUMONIA fraction vs mean predicted probability per bin. */
export function calibrationChart(
  series: CalibrationSeries[],
  opts: { title?: string; size?: number } = {},
): VlSpec {
  const values = series.flatMap((s) =>
    s.bins.map((b) => ({
      curve: s.name,
      meanProb: r4(b.meanProb),
      observed: r4(b.fractionPositive),
      count: b.count,
    }))
  );
  const size = opts.size ?? 320;
  const axes = {
    x: {
      field: "meanProb",
      type: "quantitative",
      title: "mean predicted P(pneumonia)",
      scale: { domain: [0, 1] },
    },
    y: {
      field: "observed",
      type: "quantitative",
      title: "observed fraction PNEUMONIA",
      scale: { domain: [0, 1] },
    },
    color: {
      field: "curve",
      type: "nominal",
      title: null,
      scale: { range: CATEGORY },
      legend: { orient: "top-left", fillColor: "white" },
    },
  };
  return base(opts.title, {
    width: size,
    height: size,
    layer: [
      {
        data: { values: [{ meanProb: 0, observed: 0 }, { meanProb: 1, observed: 1 }] },
        mark: { type: "line", strokeDash: [4, 4], color: "#999999" },
        encoding: {
          x: { field: "meanProb", type: "quantitative" },
          y: { field: "observed", type: "quantitative" },
        },
      },
      {
        data: { values },
        layer: [
          { mark: { type: "line", strokeWidth: 1.5 }, encoding: axes },
          {
            mark: { type: "point", filled: true, opacity: 0.85 },
            encoding: {
              ...axes,
              size: {
                field: "count",
                type: "quantitative",
                title: "images in bin",
                scale: { range: [20, 300] },
                legend: { orient: "right" },
              },
              tooltip: [
                { field: "curve" },
                { field: "meanProb", format: ".3f" },
                { field: "observed", format: ".3f" },
                { field: "count" },
              ],
            },
          },
        ],
      },
    ],
  });
}

/** Sensitivity and specificity vs threshold, with the chosen threshold marked. */
export function thresholdSweepChart(
  sweep: { threshold: number; sensitivity: number; specificity: number }[],
  opts: {
    title?: string;
    chosen?: { value: number; method: string };
    width?: number;
    height?: number;
  } = {},
): VlSpec {
  const values = sweep.flatMap((p) => [
    { threshold: r4(p.threshold), measure: "sensitivity", value: r4(p.sensitivity) },
    { threshold: r4(p.threshold), measure: "specificity", value: r4(p.specificity) },
  ]).filter((v) => v.value !== null);
  const layers: VlSpec[] = [{
    data: { values },
    mark: { type: "line", strokeWidth: 2, interpolate: "step-after" },
    encoding: {
      x: {
        field: "threshold",
        type: "quantitative",
        title: "threshold on P(pneumonia)",
        scale: { domain: [0, 1] },
      },
      y: { field: "value", type: "quantitative", title: null, scale: { domain: [0, 1] } },
      color: {
        field: "measure",
        type: "nominal",
        title: null,
        scale: { domain: ["sensitivity", "specificity"], range: PAIR },
        legend: { orient: "bottom" },
      },
    },
  }];
  if (opts.chosen) {
    const label = `${opts.chosen.method}: ${opts.chosen.value.toFixed(3)}`;
    layers.push({
      data: { values: [{ threshold: r4(opts.chosen.value), label }] },
      layer: [
        {
          mark: { type: "rule", strokeDash: [5, 4], color: "#d62728" },
          encoding: { x: { field: "threshold", type: "quantitative" } },
        },
        {
          mark: {
            type: "text",
            align: opts.chosen.value > 0.6 ? "right" : "left",
            dx: opts.chosen.value > 0.6 ? -4 : 4,
            baseline: "bottom",
            color: "#b22222",
          },
          encoding: {
            x: { field: "threshold", type: "quantitative" },
            y: { value: (opts.height ?? 240) - 4 },
            text: { field: "label" },
          },
        },
      ],
    });
  }
  return base(opts.title, {
    width: opts.width ?? 420,
    height: opts.height ?? 240,
    layer: layers,
  });
}

/** One model's value of one metric with its confidence interval. */
export interface ComparisonRow {
  model: string;
  metric: string;
  value: number;
  lo?: number;
  hi?: number;
}

/** Dot-and-whisker comparison of models, one panel per metric (values in [0, 1]). */
export function comparisonChart(
  rows: ComparisonRow[],
  opts: { title?: string; panelWidth?: number } = {},
): VlSpec {
  if (rows.length === 0) throw new Error("comparisonChart: no rows");
  const metrics = [...new Set(rows.map((r) => r.metric))];
  const models = [...new Set(rows.map((r) => r.model))];
  const values = rows.map((r) => ({
    model: r.model,
    metric: r.metric,
    value: r4(r.value),
    lo: r4(r.lo ?? r.value),
    hi: r4(r.hi ?? r.value),
    text: Number.isFinite(r.value) ? r.value.toFixed(2) : "n/a",
  }));
  const y = {
    field: "model",
    type: "nominal",
    title: null,
    sort: models,
    axis: { labelLimit: 320 },
  };
  return base(opts.title, {
    data: { values },
    facet: {
      column: {
        field: "metric",
        type: "nominal",
        sort: metrics,
        title: null,
        header: { labelFontSize: 12 },
      },
    },
    spec: {
      width: opts.panelWidth ?? 170,
      height: { step: 26 },
      layer: [
        {
          mark: { type: "rule", strokeWidth: 2, color: "#7f7f7f" },
          encoding: {
            y,
            x: { field: "lo", type: "quantitative", scale: { domain: [0, 1] }, title: null },
            x2: { field: "hi" },
          },
        },
        {
          mark: { type: "point", filled: true, size: 70 },
          encoding: {
            y,
            x: { field: "value", type: "quantitative" },
            color: { field: "model", type: "nominal", scale: { range: CATEGORY }, legend: null },
            tooltip: [
              { field: "model" },
              { field: "metric" },
              { field: "value", format: ".3f" },
              { field: "lo", format: ".3f", title: "95% CI low" },
              { field: "hi", format: ".3f", title: "95% CI high" },
            ],
          },
        },
        {
          mark: { type: "text", dy: -10, fontSize: 10 },
          encoding: { y, x: { field: "value", type: "quantitative" }, text: { field: "text" } },
        },
      ],
    },
    resolve: { scale: { x: "shared" } },
  });
}

/** One cell of the robustness heat map. */
export interface RobustnessCell {
  model: string;
  /** Shift kind, or "none" for the unshifted images. */
  shift: string;
  severity: number;
  specificity: number;
  sensitivity: number;
  rocAuc: number;
  /** Specificity's 95% CI, for the tooltip. */
  lo?: number;
  hi?: number;
}

/**
 * Robustness heat map, one panel per model: shifts down, severities across, colour =
 * specificity at the model's threshold (text: specificity %, "*" where sensitivity fell below
 * 90%; tooltip: its CI, sensitivity and AUC).
 */
export function robustnessHeatmap(
  cells: RobustnessCell[],
  opts: { title?: string; shifts?: string[] } = {},
): VlSpec {
  const shifts = opts.shifts ?? [...new Set(cells.map((c) => c.shift))];
  const values = cells.map((c) => ({
    model: c.model,
    shift: c.shift,
    severity: c.shift === "none" ? "0 (none)" : String(c.severity),
    specificity: r4(c.specificity),
    sensitivity: r4(c.sensitivity),
    auc: r4(c.rocAuc),
    ci: Number.isFinite(c.lo) && Number.isFinite(c.hi)
      ? `${(100 * c.lo!).toFixed(0)}–${(100 * c.hi!).toFixed(0)}%`
      : "n/a",
    // "*": sensitivity fell below 90% there (a cell can look green by calling everything normal).
    text: Number.isFinite(c.specificity)
      ? `${Math.round(100 * c.specificity)}${c.sensitivity < 0.9 ? "*" : ""}`
      : "–",
  }));
  const models = [...new Set(cells.map((c) => c.model))];
  return base(opts.title, {
    data: { values },
    facet: { column: { field: "model", type: "nominal", title: null, sort: models } },
    spec: {
      width: 150,
      height: 16 * shifts.length,
      encoding: {
        x: {
          field: "severity",
          type: "ordinal",
          title: "severity",
          axis: { labelAngle: 0 },
        },
        y: { field: "shift", type: "nominal", sort: shifts, title: null },
      },
      layer: [
        {
          mark: { type: "rect", stroke: "white", strokeWidth: 1 },
          encoding: {
            color: {
              field: "specificity",
              type: "quantitative",
              title: "specificity",
              scale: { domain: [0, 1], scheme: "redyellowgreen" },
            },
            tooltip: [
              { field: "model" },
              { field: "shift" },
              { field: "severity" },
              { field: "specificity", type: "quantitative", format: ".1%" },
              { field: "ci", title: "specificity 95% CI" },
              { field: "sensitivity", type: "quantitative", format: ".1%" },
              { field: "auc", type: "quantitative", format: ".3f", title: "ROC-AUC" },
            ],
          },
        },
        { mark: { type: "text", fontSize: 10 }, encoding: { text: { field: "text" } } },
      ],
    },
  });
}
