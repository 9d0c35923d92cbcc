/** The run folder's owner: file names, status record, history records, reads and writes. */
export {
  checkpointFiles,
  CLASSIFIER_META_FILE,
  CLASSIFIER_ONNX_FILE,
  CONFIG_FILE,
  EVALUATION_FILE,
  GRADCAM_TAIL_STEM,
  HISTORY_FILE,
  isPredictionsFileName,
  predictionsFileName,
  ROBUSTNESS_FILE,
  RunFolder,
  type RunState,
  type RunStatus,
  splitKeyOf,
  STATUS_FILE,
  TFJS_MODEL_FILE,
  TFJS_WEIGHTS_FILE,
  THRESHOLDS_FILE,
} from "./folder.ts";
export type { EpochRecord, HistoryFile } from "./history.ts";
