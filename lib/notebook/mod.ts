/**
 * What the teaching notebooks import (`import * as cxr from "../lib/notebook/mod.ts"`): the
 * story steps, the training steps of lib/training (the same functions `cxr.train` chains), the
 * run folder they train in, what to show after each of them, and rich-output helpers.
 */
import { resolveConfig, type TrainConfig, type TrainConfigInput } from "../training/config.ts";
import { trainRun, type TrainRunResult } from "../training/run.ts";
import { NET_INFO } from "../models/registry.ts";
import type { NotebookSettings } from "./steps.ts";
import { type Displayable, table } from "./display.ts";

export {
  evaluationView,
  exampleImages,
  exploreData,
  gradcamView,
  mlflowView,
  notebookSettings,
  preprocessingView,
  readingView,
  settingsView,
} from "./steps.ts";
export {
  activationsView,
  compareHeadsView,
  cutView,
  fitView,
  headView,
  netView,
  setupView,
  summaryView,
  thresholdView,
} from "./training.ts";
export type { DataOverview, NotebookSettings } from "./steps.ts";
export { robustnessView, type RobustnessViewOptions } from "./robustness.ts";
export { html, imageGrid, markdown, png, show, table } from "./display.ts";
/**
 * Training one step per cell (lib/training/steps.ts, in this order); `train` below chains the
 * very same functions inside a resumable run folder.
 */
export {
  buildHead,
  buildNet,
  buildPhase2Model,
  chooseCut,
  chooseValThreshold,
  computeActivations,
  fitPhase1,
  fitPhase2,
  loadData,
  netSummary,
  splitPredictions,
  trainingSetup,
  weightsInfo,
} from "../training/mod.ts";
export type {
  Activations,
  Cut,
  FitOptions,
  Net,
  NetSummary,
  PhaseResult,
  RunData,
  TrainingSetup,
} from "../training/mod.ts";
export { type OpenRun, openRun } from "../training/run.ts";
export { initBackend } from "../tf/backend.ts";
export type { Displayable } from "./display.ts";

/** The run's training configuration: the profile's defaults for this net, plus overrides. */
export function trainingConfig(
  s: NotebookSettings,
  overrides: Partial<TrainConfigInput> = {},
): TrainConfig {
  return resolveConfig({
    net: s.net,
    weights: s.weights,
    profile: s.profile,
    protocol: s.protocol,
    dataRoot: s.data,
    mlflow: s.mlflow !== "off",
    intensity: s.intensity,
    augmentViews: s.augmentViews,
    ...overrides,
  }, s.profile);
}

/** The configuration a reader would tune, as a table. */
export function configView(c: TrainConfig): Displayable {
  const subset = c.subset
    ? `train ${c.subset.train ?? "all"}, val ${c.subset.val ?? "all"} (stratified)`
    : "all images";
  return table([
    ["setting", "value"],
    ["net", NET_INFO[c.net].displayName],
    ["images", subset],
    ["batch size", c.batchSize],
    ["dropout", c.dropout],
    ["class weights", c.classWeight],
    ["phase 1", `${c.phase1.epochs} epochs, Adam lr ${c.phase1.lr}`],
    [
      "phase 2",
      c.phase2
        ? `${c.phase2.epochs} epochs from ${c.phase2.unfreezeFrom}, lr ${c.phase2.lr}`
        : "none (frozen base)",
    ],
    [
      "early stopping",
      `${c.earlyStopping.monitor}, patience ${c.earlyStopping.patience}` +
      (c.earlyStopping.restoreBest ? ", best epoch restored" : ""),
    ],
    ["intensity normalisation", c.intensity],
    ["augmentation", c.augmentViews ? `${c.augmentViews} cached views per image` : "none"],
    ["threshold", c.thresholdMethod],
    ["seed", c.seed],
  ], "Training configuration");
}

/**
 * Trains (or resumes, or picks up the finished run of) `config`. `untilPhase: 1` stops after
 * phase 1 so a notebook can show it before fine-tuning; the next call continues with phase 2.
 */
export async function train(
  config: TrainConfig,
  opts: { untilPhase?: 1 | 2 } = {},
): Promise<TrainRunResult> {
  return await trainRun(config, { untilPhase: opts.untilPhase });
}
