/** The tracking interface every backend (REST + spool, file store, off) implements. */

export type RunEndStatus = "FINISHED" | "FAILED" | "KILLED";
export type RunStatusName = "RUNNING" | "SCHEDULED" | RunEndStatus;

/** MLflow's RunStatus enum, as stored (int) in the file store's meta.yaml. */
export const RUN_STATUS_CODE: Record<RunStatusName, number> = {
  RUNNING: 1,
  SCHEDULED: 2,
  FINISHED: 3,
  FAILED: 4,
  KILLED: 5,
};

export type ParamValue = string | number | boolean;

/** Extra description of a logged ONNX model (MLmodel `signature`, `metadata`). */
export interface OnnxModelExtra {
  /** `{ inputs, outputs }` as MLflow tensor specs; derived from the ONNX graph when absent. */
  signature?: unknown;
  /**
   * Graph outputs the MLflow model keeps, old name -> exported name, in order: e.g.
   * `{ head_dense: "probability" }` so pyfunc predictions hold nothing else. Default: all.
   */
  outputs?: Record<string, string>;
  metadata?: Record<string, unknown>;
}

export interface Tracker {
  /** MLflow run id (for a REST run not yet created on the server: the local spool key). */
  readonly runId: string;
  /** Where the run is logged (server URL without credentials, or file-store folder). */
  readonly uri: string;
  readonly backend: "rest" | "file" | "off";
  logParams(params: Record<string, ParamValue>): Promise<void>;
  /** Timestamp in ms since the epoch (default: now). */
  logMetrics(metrics: Record<string, number>, step: number, timestamp?: number): Promise<void>;
  setTags(tags: Record<string, string>): Promise<void>;
  /**
   * A file goes to `<artifactPath>/<basename>`; a directory's contents go under
   * `<artifactPath ?? basename(dir)>/`.
   */
  logArtifact(localPath: string, artifactPath?: string): Promise<void>;
  /** A model directory (MLmodel with the onnx + python_function flavors) at `artifactPath`. */
  logOnnxModel(onnxPath: string, artifactPath?: string, extra?: OnnxModelExtra): Promise<void>;
  end(status: RunEndStatus): Promise<void>;
}

export interface OpenTrackerOptions {
  /** Default: MLFLOW_EXPERIMENT_NAME, else "cxr". */
  experiment?: string;
  runName: string;
  tags?: Record<string, string>;
  /** undefined: MLFLOW_TRACKING_URI, else the file store outputs/mlruns; null: off. */
  uri?: string | null;
  /** Continue this run (MLflow run id, or a spool key for a run never created remotely). */
  resumeRunId?: string;
  /**
   * Where `resumeRunId` was logged (Tracker.uri, kept in run.json): when the tracking URI now
   * points elsewhere the id means nothing there, and a new run is started (or, with
   * `mustExist`, an error thrown).
   */
  resumeUri?: string;
  /** Throw instead of starting a new run when `resumeRunId` cannot be found. */
  mustExist?: boolean;
}
