/**
 * The run folder, `outputs/runs/<run-id>/`: the one place that knows its file names, its status
 * record and how its JSON files are read and (atomically) written.
 *
 *   run.json                 status (RunStatus): running | finished | failed, phase, epoch, MLflow id
 *   config.json              the resolved configuration, weights (md5), split counts, backend
 *   history.json             EpochRecord per finished epoch (all phases)
 *   checkpoints/             last / best / phase1 weights + `<name>.state.json` (resume)
 *   predictions-<split>.json probabilities per image (val, test, ext-...)
 *   evaluation.json          metrics at the validation-chosen threshold
 *   thresholds.json          site threshold profiles (site:<name>; deno task calibrate)
 *   robustness.json          the shift-robustness suite's results (deno task robustness)
 *   model/                   trained.{json,bin} (tail + folded head), model.json + weights.bin (tfjs)
 *   classifier.onnx/.json    the exported classifier, gradcam_tail.{json,bin}
 *   charts/, gradcam/        figures
 *   robustness.json, thresholds.json   shift-suite results, site threshold profiles
 *   ensemble.json            (ensemble runs) members and threshold
 */
import { basename, join } from "node:path";
import { readJsonIfExists, readJsonOrNull, writeJsonAtomic } from "../util/fs.ts";
import { runsDir } from "../util/paths.ts";
import type { EpochRecord, HistoryFile } from "./history.ts";

export const STATUS_FILE = "run.json";
export const CONFIG_FILE = "config.json";
export const HISTORY_FILE = "history.json";
export const EVALUATION_FILE = "evaluation.json";
export const CLASSIFIER_ONNX_FILE = "classifier.onnx";
/** Site threshold profiles (lib/evaluation/profiles.ts); the validation one is classifier.json's. */
export const THRESHOLDS_FILE = "thresholds.json";
/** Shift-robustness results (lib/evaluation/robustness.ts). */
export const ROBUSTNESS_FILE = "robustness.json";
export const CLASSIFIER_META_FILE = "classifier.json";
/** ensemble.json: an ensemble run's members and threshold (inference/ensemble.ts). */
export const ENSEMBLE_META_FILE = "ensemble.json";
/** The tfjs-layers model in model/: topology + manifest, and its weights (named in the manifest). */
export const TFJS_MODEL_FILE = "model.json";
export const TFJS_WEIGHTS_FILE = "weights.bin";
/** Weights of the layers from the Grad-CAM layer to head_dense (models/weights/io.ts format). */
export const GRADCAM_TAIL_STEM = "gradcam_tail";

/** Lifecycle of a run (run.json). */
export type RunState = "running" | "finished" | "failed";

/** run.json. */
export interface RunStatus {
  status: RunState;
  phase: number;
  /** Global epoch of the last finished epoch. */
  epoch: number;
  mlflowRunId?: string;
  /** Where that run is logged (server URL without credentials, or file-store folder). */
  mlflowUri?: string;
  startedAt: string;
  finishedAt?: string;
  error?: string;
  /** Runs derived from others (ensembles): hash of the inputs, to know when to redo them. */
  inputsHash?: string;
}

/** gradcam/index.json: the overlays (PNG files in gradcam/) and their captions. */
export interface GradcamIndex {
  split: string;
  items: { file: string; rel: string; caption: string; prob: number; label: number }[];
}

/** `charts/<name>` relative to the run folder, as evaluation.json lists charts. */
export function chartRef(name: string): string {
  return `charts/${name}`;
}

/** `predictions-<split>.json` of a split key ("val", "test", "ext-foo-test"). */
export function predictionsFileName(split: string): string {
  return `predictions-${split}.json`;
}

/** Whether `name` is a `predictions-<split>.json` file name. */
export function isPredictionsFileName(name: string): boolean {
  return /^predictions-.+\.json$/.test(name);
}

/** `predictions-test.json` -> "test"; `predictions-ext-foo-test.json` -> "ext-foo-test". */
export function splitKeyOf(path: string): string {
  const m = /^predictions-(.+)\.json$/.exec(basename(path));
  if (!m) throw new Error(`${path} is not a predictions-<split>.json file`);
  return m[1];
}

/** Files of checkpoint `name` in `dir`: weights stem (`.json` + `.bin`) and resume state. */
export function checkpointFiles(dir: string, name: string): { weights: string; state: string } {
  return { weights: join(dir, name), state: join(dir, `${name}.state.json`) };
}

/** Paths inside one run folder, and its JSON reads and atomic writes. */
export class RunFolder {
  constructor(readonly dir: string) {}

  /** The folder of run `runId` under `root` (default outputs/runs). */
  static of(runId: string, root: string = runsDir()): RunFolder {
    return new RunFolder(join(root, runId));
  }

  get statusPath(): string {
    return join(this.dir, STATUS_FILE);
  }
  get configPath(): string {
    return join(this.dir, CONFIG_FILE);
  }
  get historyPath(): string {
    return join(this.dir, HISTORY_FILE);
  }
  get evaluationPath(): string {
    return join(this.dir, EVALUATION_FILE);
  }
  get classifierOnnxPath(): string {
    return join(this.dir, CLASSIFIER_ONNX_FILE);
  }
  get classifierMetaPath(): string {
    return join(this.dir, CLASSIFIER_META_FILE);
  }
  get robustnessPath(): string {
    return join(this.dir, ROBUSTNESS_FILE);
  }
  get thresholdsPath(): string {
    return join(this.dir, THRESHOLDS_FILE);
  }
  get ensembleMetaPath(): string {
    return join(this.dir, ENSEMBLE_META_FILE);
  }
  get checkpointsDir(): string {
    return join(this.dir, "checkpoints");
  }
  /** Trained tfjs model (model.json + weights.bin) and `trained` weights. */
  get modelDir(): string {
    return join(this.dir, "model");
  }
  /** Stem of the trained weights (tail + folded head), models/weights/io.ts format. */
  get trainedWeightsStem(): string {
    return join(this.modelDir, "trained");
  }
  get tfjsModelPath(): string {
    return join(this.modelDir, TFJS_MODEL_FILE);
  }
  get tfjsWeightsPath(): string {
    return join(this.modelDir, TFJS_WEIGHTS_FILE);
  }
  get chartsDir(): string {
    return join(this.dir, "charts");
  }
  /** `charts/<name>` (the renderer adds .svg/.png); see `chartRef` for the relative name. */
  chartStem(name: string): string {
    return join(this.chartsDir, name);
  }
  /** `charts/<name>.vl.json`: the Vega-Lite spec behind a chart. */
  chartSpecPath(name: string): string {
    return join(this.chartsDir, `${name}.vl.json`);
  }
  get gradcamDir(): string {
    return join(this.dir, "gradcam");
  }
  /** gradcam/index.json: the overlays and their captions. */
  get gradcamIndexPath(): string {
    return join(this.gradcamDir, "index.json");
  }
  predictionsPath(split: string): string {
    return join(this.dir, predictionsFileName(split));
  }

  /** Every `predictions-*.json` by split key: val first, then test, then the rest by name. */
  async listPredictions(): Promise<Record<string, string>> {
    const keys: string[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      if (e.isFile && isPredictionsFileName(e.name)) keys.push(splitKeyOf(e.name));
    }
    const rank = (k: string) => (k === "val" ? 0 : k === "test" ? 1 : 2);
    keys.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    return Object.fromEntries(keys.map((k) => [k, this.predictionsPath(k)]));
  }

  /** run.json, or null when the run never started (or the file is unreadable). */
  readStatus(): Promise<RunStatus | null> {
    return readJsonOrNull<RunStatus>(this.statusPath);
  }
  writeStatus(status: RunStatus): Promise<void> {
    return writeJsonAtomic(this.statusPath, status, 1);
  }
  /** history.json's epochs, or null when there is none yet (unparsable: an error). */
  async readHistory(): Promise<EpochRecord[] | null> {
    return (await readJsonIfExists<Partial<HistoryFile>>(this.historyPath))?.epochs ?? null;
  }
  writeHistory(epochs: EpochRecord[]): Promise<void> {
    return writeJsonAtomic(this.historyPath, { epochs } satisfies HistoryFile, 1);
  }
  writeConfig(config: unknown): Promise<void> {
    return writeJsonAtomic(this.configPath, config, 1);
  }
  /** evaluation.json (typed by lib/evaluation), or null when absent (unparsable: an error). */
  readEvaluation<T>(): Promise<T | null> {
    return readJsonIfExists<T>(this.evaluationPath);
  }
  /** config.json (typed by its readers), or null when absent (unparsable: an error). */
  readConfig<T>(): Promise<T | null> {
    return readJsonIfExists<T>(this.configPath);
  }
  writeEvaluation(evaluation: unknown): Promise<void> {
    return writeJsonAtomic(this.evaluationPath, evaluation, 2);
  }
  /** gradcam/index.json, or null when absent (an older bare array is accepted). */
  async readGradcamIndex(): Promise<GradcamIndex | null> {
    const raw = await readJsonIfExists<GradcamIndex | GradcamIndex["items"]>(this.gradcamIndexPath);
    return Array.isArray(raw) ? { split: "", items: raw } : raw;
  }
  writeGradcamIndex(index: GradcamIndex): Promise<void> {
    return writeJsonAtomic(this.gradcamIndexPath, index, 2);
  }
  writePredictions(split: string, file: unknown): Promise<void> {
    return writeJsonAtomic(this.predictionsPath(split), file, 1);
  }
}
