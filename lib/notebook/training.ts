/**
 * What the notebooks show after each training step of `lib/training/steps.ts`: the weights
 * loaded, what is frozen, the cut and its tensors, the cached activations, the head, the loss
 * and optimiser settings, each fit (curves with the restored epoch, then sensitivity,
 * specificity and threshold on validation) and the threshold sweep. The steps themselves are
 * called in the notebook's cells, so a reader sees and can change them; these only display.
 */
import { NET_INFO } from "../models/registry.ts";
import type { BackendInfo } from "../tf/backend.ts";
import { summarize } from "../models/summary.ts";
import { vegaDisplayWithSvg } from "../charts/render.ts";
import { thresholdSweepChart, trainingCurves } from "../charts/specs.ts";
import { computeMetrics } from "../evaluation/metrics.ts";
import {
  type ChosenThreshold,
  THRESHOLD_METHODS,
  thresholdSweep,
} from "../evaluation/threshold.ts";
import type { PredictionsFile } from "../evaluation/evaluate.ts";
import type { TrainConfig } from "../training/config.ts";
import type { EpochRecord } from "../training/learner.ts";
import { restoredEpochs } from "../training/metrics.ts";
import type { HeadModel } from "../training/model.ts";
import {
  type Activations,
  chooseValThreshold,
  type Cut,
  type Net,
  type NetSummary,
  splitPredictions,
  type TrainingSetup,
} from "../training/steps.ts";
import { type Displayable, markdown, table } from "./display.ts";

const fmt = (n: number) => n.toLocaleString("en-US");
const shape = (s: (number | null)[]) => `(${s.map((d) => d ?? "None").join(", ")})`;

/** Step 2: the net built and the weights it starts from (which file, md5). */
export function netView(net: Net, backend?: BackendInfo): Displayable {
  const w = net.weights;
  return table([
    ["", "value"],
    ["architecture", `${NET_INFO[net.name].displayName}, include_top=False + head`],
    ["base layers", String(net.base.layers.length)],
    ["base parameters", fmt(summarize(net.base).totalParams)],
    ["head", "GlobalAveragePooling2D → Dropout → Dense(1, sigmoid)"],
    ["weights", w.label + (w.isImageNet ? "" : " — not ImageNet")],
    ["weights source", w.path ?? w.source],
    ["weights md5 (float32, Keras order)", w.md5],
    ...(w.fileMd5 ? [["file md5", w.fileMd5]] : []),
    ...(backend ? [["tfjs backend", `${backend.name} (${backend.detail})`]] : []),
  ], "buildNet: architecture and starting weights");
}

/** Step 3: frozen vs trainable (layers, parameters) and the layers on each side of the cut. */
export function summaryView(s: NetSummary, opts: { before?: number } = {}): Displayable[] {
  const rows = s.summary.rows;
  const cut = rows.findIndex((r) => r.layer === s.trainableFrom);
  const from = Math.max(0, cut - (opts.before ?? 3));
  const layerRows = rows.slice(from).map((r) => [
    r.layer,
    r.kind,
    shape(r.outputShape),
    fmt(r.params),
    r.trainable ? "trainable" : "frozen",
  ]);
  return [
    table([
      ["", "layers", "parameters"],
      ["whole classifier", fmt(s.layers.total), fmt(s.params.total)],
      ["trainable", fmt(s.layers.trainable), fmt(s.params.trainable)],
      ["frozen", fmt(s.layers.frozen), fmt(s.params.frozen)],
    ], `netSummary: trainable from ${s.trainableFrom}`),
    table(
      [["layer", "kind", "output shape", "params", ""], ["…", "", "", "", ""], ...layerRows],
      `The last ${layerRows.length} layers, from just before the cut to the output`,
    ),
  ];
}

/** Step 4: the tensors cached at the cut and which part of the model reads them. */
export function cutView(cut: Cut): Displayable {
  const rows: unknown[][] = [["cached output", "shape (per image)", "floats per image", "feeds"]];
  for (const { layer, shape: s } of cut.shapes) {
    rows.push([
      layer,
      shape(s),
      s.some((d) => d === null) ? "?" : fmt(s.reduce<number>((a, b) => a * (b ?? 1), 1)),
      layer === cut.outputs[0] ? "the head (phase 1)" : "the unfrozen tail (phase 2)",
    ]);
  }
  const caption = cut.unfreezeFrom
    ? `chooseCut: phase 2 trains from ${cut.unfreezeFrom}; ${cut.frontier.length} frontier ` +
      `tensor(s) cross the cut, ${cut.tail ? cut.tail.layers.length : 0} layers in the tail`
    : "chooseCut: no phase 2 — only the pooled features are cached";
  return table(rows, caption);
}

/** Step 5: how many images each split has, and what the cache did. */
export function activationsView(acts: Activations): Displayable {
  const st = acts.features.stats;
  return table([
    ["", "value"],
    [
      "train / val / test images",
      `${acts.idx.train.length} / ${acts.idx.val.length} / ${acts.idx.test.length}`,
    ],
    ["read from cache", fmt(st.hits)],
    ["computed now (ONNX Runtime)", fmt(st.computed)],
    ["failed (reported, skipped)", fmt(st.failed.length)],
    ["time", `${st.seconds.toFixed(1)} s (${st.imgPerSec.toFixed(1)} img/s)`],
    ["cache folder", acts.features.cacheDir],
  ], `computeActivations: ${acts.features.outputs.join(", ")}`);
}

/** Step 6: the head's layers and what it learns. */
export function headView(head: HeadModel): Displayable {
  const st = head.standardization;
  return table([
    ["layer", "what it does", "trainable parameters"],
    ...(head.tail
      ? [["unfrozen tail", `${head.tail.layers.length} tfjs layers`, "see netSummary"]]
      : []),
    [
      "standardise",
      st ? `(x - mean) / std per feature, from train (${head.dim} features)` : "off",
      "0",
    ],
    ["head_dropout", `Dropout(${head.dropout}) while training`, "0"],
    ["head_dense", `Dense(${head.dim} → 1), sigmoid`, fmt(head.dim + 1)],
  ], "buildHead");
}

/** Step 7: loss, optimiser, learning rates, class weights, early stopping — the values used. */
export function setupView(setup: TrainingSetup, acts: Activations): Displayable {
  const labels = acts.idx.train.map((i) => acts.features.items[i].label);
  const pos = labels.filter((l) => l === 1).length;
  const cw = setup.classWeights;
  const es = setup.earlyStopping;
  return table([
    ["setting", "value"],
    ["loss", setup.loss],
    ["optimiser", `${setup.optimizer}, batch size ${setup.batchSize}`],
    ["phase 1", `${setup.phase1.epochs} epochs, learning rate ${setup.phase1.lr}`],
    [
      "phase 2",
      setup.phase2
        ? `${setup.phase2.epochs} epochs from ${setup.phase2.unfreezeFrom}, learning rate ` +
          `${setup.phase2.lr}, BatchNorm ${setup.phase2.bnMode}`
        : "none",
    ],
    [
      "class weights",
      cw
        ? `NORMAL ${cw[0].toFixed(3)}, PNEUMONIA ${cw[1].toFixed(3)} ` +
          `(train: ${labels.length - pos} NORMAL, ${pos} PNEUMONIA)`
        : "none (every image counts the same)",
    ],
    [
      "early stopping",
      `${es.monitor}, patience ${es.patience}${es.restoreBest ? ", best epoch restored" : ""}`,
    ],
    ["seed", String(setup.seed)],
  ], "trainingSetup");
}

/** "Phase 1 ran 12 of 12 epochs; epoch 10 (val_auc 0.917) was the best and is restored." */
export function restoredText(
  history: EpochRecord[],
  setup: Pick<TrainingSetup, "earlyStopping" | "phase1" | "phase2">,
): string {
  const es = setup.earlyStopping;
  const best = restoredEpochs(history, es);
  const phases = [...new Set(history.map((r) => r.phase))];
  return phases.map((phase) => {
    const ran = history.filter((r) => r.phase === phase).length;
    const planned = phase === 1 ? setup.phase1.epochs : setup.phase2?.epochs ?? ran;
    const stopped = ran < planned
      ? ` (early stopping: no better ${es.monitor} for ${es.patience})`
      : "";
    const b = best.find((r) => r.phase === phase);
    const kept = b
      ? `best epoch **${b.epoch}** (${es.monitor} ${b.value.toFixed(3)}) restored`
      : "last epoch kept (restoreBest off)";
    return `- Phase ${phase}: ${ran} of ${planned} epochs${stopped}; ${kept}.`;
  }).join("\n");
}

/**
 * After a fit: the curves with the restored epoch(s) marked, the same in words, then the model
 * on validation at the threshold the config's rule picks there (sensitivity, specificity).
 */
export async function fitView(
  history: EpochRecord[],
  model: HeadModel,
  acts: Activations,
  setup: TrainingSetup,
  thresholdMethod: TrainConfig["thresholdMethod"],
  opts: { title?: string } = {},
): Promise<Displayable[]> {
  const restored = restoredEpochs(history, setup.earlyStopping).map((r) => r.epoch);
  const phase = history.at(-1)?.phase ?? 1;
  const title = opts.title ?? `After phase ${phase}: training vs validation`;
  const val = splitPredictions(model, acts, "val", setup);
  const chosen = chooseValThreshold(val, thresholdMethod);
  const m = computeMetrics(
    val.items.map((i) => i.label),
    val.items.map((i) => i.prob),
    chosen.value,
  );
  return [
    await vegaDisplayWithSvg(trainingCurves(history, { title, restored })),
    markdown(restoredText(history, setup)),
    table([
      ["validation", "value"],
      ["threshold", `${chosen.value.toFixed(3)} (${chosen.method})`],
      ["sensitivity", m.sensitivity.toFixed(3)],
      ["specificity", m.specificity.toFixed(3)],
      ["ROC-AUC", m.rocAuc.toFixed(3)],
      ["accuracy", m.accuracy.toFixed(3)],
      ["images", `${m.n} (${m.positives} PNEUMONIA)`],
    ], "The model now, on validation (threshold chosen on validation)"),
  ];
}

/** Step 11: the sweep on validation, the chosen threshold, and what each rule would pick. */
export async function thresholdView(
  val: PredictionsFile,
  chosen: ChosenThreshold,
): Promise<Displayable[]> {
  const labels = val.items.map((i) => i.label);
  const probs = val.items.map((i) => i.prob);
  const rows: unknown[][] = [["rule", "threshold", "sensitivity", "specificity"]];
  for (const method of THRESHOLD_METHODS) {
    const t = method === chosen.method ? chosen : chooseValThreshold(val, method);
    rows.push([
      method === chosen.method ? `${method} (chosen)` : method,
      t.value.toFixed(3),
      t.sensitivity.toFixed(3),
      t.specificity.toFixed(3),
    ]);
  }
  return [
    await vegaDisplayWithSvg(
      thresholdSweepChart(thresholdSweep(labels, probs), {
        title: "Validation: sensitivity and specificity vs threshold",
        chosen: { value: chosen.value, method: chosen.method },
      }),
    ),
    table(rows, "Threshold rules on the same validation predictions"),
  ];
}

/** Several models on validation: at 0.5 and at the rule's threshold (the try-this cell). */
export function compareHeadsView(
  models: Record<string, HeadModel>,
  acts: Activations,
  setup: TrainingSetup,
  thresholdMethod: TrainConfig["thresholdMethod"],
): Displayable {
  const rows: unknown[][] = [[
    "model",
    "ROC-AUC",
    "sens. @0.5",
    "spec. @0.5",
    `threshold (${thresholdMethod})`,
    "sensitivity",
    "specificity",
  ]];
  for (const [name, model] of Object.entries(models)) {
    const val = splitPredictions(model, acts, "val", setup);
    const labels = val.items.map((i) => i.label);
    const probs = val.items.map((i) => i.prob);
    const half = computeMetrics(labels, probs, 0.5);
    const chosen = chooseValThreshold(val, thresholdMethod);
    rows.push([
      name,
      half.rocAuc.toFixed(3),
      half.sensitivity.toFixed(3),
      half.specificity.toFixed(3),
      chosen.value.toFixed(3),
      chosen.sensitivity.toFixed(3),
      chosen.specificity.toFixed(3),
    ]);
  }
  return table(rows, "Validation, same images, same features");
}
