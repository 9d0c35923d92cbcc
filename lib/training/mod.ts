/**
 * Training's public API. The steps of one run, in order (each documented in steps.ts):
 *
 *   loadData -> buildNet -> netSummary -> chooseCut -> computeActivations -> buildHead ->
 *   trainingSetup -> fitPhase1 -> buildPhase2Model -> fitPhase2 -> splitPredictions ->
 *   chooseValThreshold
 *
 * `trainRun` chains the same functions inside a run folder (checkpoints, run.json, history.json,
 * predictions, model, classifier.onnx, evaluation, MLflow), resumable.
 */
export {
  type Activations,
  buildHead,
  buildNet,
  buildPhase2Model,
  chooseCut,
  chooseValThreshold,
  computeActivations,
  type Cut,
  type FitOptions,
  fitPhase,
  fitPhase1,
  fitPhase2,
  labelsOf,
  loadData,
  type Net,
  type NetSummary,
  netSummary,
  type PhaseResult,
  type RunData,
  splitInputs,
  splitPredictions,
  type TrainingSetup,
  trainingSetup,
  weightsInfo,
} from "./steps.ts";
export { TrainingAborted, trainRun, type TrainRunOptions, type TrainRunResult } from "./run.ts";
export {
  arraySource,
  type Callback,
  CALLBACK_ORDER,
  EarlyStopping,
  type EpochRecord,
  type FeatureSource,
  Learner,
  predict,
} from "./learner.ts";
export { abortCallback, progressCallback, recordCallback, trackerCallback } from "./callbacks.ts";
export { saveTrainedModel, trainedWeights } from "./export.ts";
export { resolveConfig, runIdFor, type TrainConfig, type TrainConfigInput } from "./config.ts";
export { HeadModel } from "./model.ts";
