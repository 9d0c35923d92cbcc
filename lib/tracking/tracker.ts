/**
 * `openTracker`: the one entry point training, notebooks and CLIs use.
 *
 * - uri null                     -> a no-op tracker (backend "off"), e.g. `--no-mlflow`;
 * - uri http(s)://...            -> REST tracker with a local spool (lib/tracking/spool.ts);
 * - uri file:... or a path       -> MLflow file store at that folder;
 * - uri undefined                -> MLFLOW_TRACKING_URI when set, else the file store
 *                                   `outputs/mlruns` (`mlflow ui --backend-store-uri ./outputs/mlruns`);
 * - databricks, sqlite:, ...     -> a clear "not supported" error.
 * The experiment is `experiment`, else MLFLOW_EXPERIMENT_NAME, else "cxr".
 */
import { join } from "node:path";
import { contextTags, currentUser } from "./context.ts";
import { type FileRun, MlflowFileStore } from "./filestore.ts";
import { modelHistoryEntry, writeOnnxModelDir } from "./mlmodel.ts";
import { MlflowApiError, MlflowRestClient } from "./rest.ts";
import { effectiveArtifactPath, MODEL_HISTORY_TAG, RestTracker, toBatch } from "./spool.ts";
import type { OnnxModelExtra, OpenTrackerOptions, RunEndStatus, Tracker } from "./types.ts";
import { parseTrackingUri, redactUri, resolveExperimentName, resolveTrackingUri } from "./uri.ts";

export type { OnnxModelExtra, OpenTrackerOptions, RunEndStatus, Tracker } from "./types.ts";
export { syncSpool } from "./spool.ts";
export { defaultMlrunsDir, redactUri, resolveExperimentName, resolveTrackingUri } from "./uri.ts";

/** Tracks nothing (backend "off"); every call resolves at once. */
export class NoopTracker implements Tracker {
  readonly runId = "";
  readonly uri = "";
  readonly backend = "off" as const;
  async logParams(_params: Record<string, string | number | boolean>): Promise<void> {}
  async logMetrics(_metrics: Record<string, number>, _step: number, _ts?: number) {}
  async setTags(_tags: Record<string, string>): Promise<void> {}
  async logArtifact(_localPath: string, _artifactPath?: string): Promise<void> {}
  async logOnnxModel(_onnxPath: string, _artifactPath?: string, _extra?: OnnxModelExtra) {}
  async end(_status: RunEndStatus): Promise<void> {}
}

/** Runs written directly into an MLflow file store (see filestore.ts for the layout). */
export class FileTracker implements Tracker {
  readonly backend = "file" as const;
  readonly store: MlflowFileStore;
  readonly run: FileRun;
  #ended = false;

  constructor(store: MlflowFileStore, run: FileRun) {
    this.store = store;
    this.run = run;
  }

  static async open(
    root: string,
    opts: OpenTrackerOptions,
    log: (line: string) => void = console.error,
  ): Promise<FileTracker> {
    const store = new MlflowFileStore(root);
    await store.ensureRoot();
    if (opts.resumeRunId) {
      const run = await store.findRun(opts.resumeRunId);
      if (run) {
        await store.setStatus(run, "RUNNING", null);
        if (opts.tags) await store.logBatch(run, toBatch({ tags: opts.tags }));
        return new FileTracker(store, run);
      }
      if (opts.mustExist) {
        throw new Error(`MLflow run ${opts.resumeRunId} not found in ${store.root}`);
      }
      // logged to another store, or deleted: a new run rather than a stuck one
      log(`mlflow: run ${opts.resumeRunId} is not in ${store.root}; starting a new run`);
    }
    const experimentId = await store.getOrCreateExperiment(resolveExperimentName(opts.experiment));
    const run = await store.createRun({
      experimentId,
      runName: opts.runName,
      startTime: Date.now(),
      userId: currentUser(),
      tags: { ...contextTags(), ...(opts.tags ?? {}) },
    });
    return new FileTracker(store, run);
  }

  get runId(): string {
    return this.run.runId;
  }

  get uri(): string {
    return this.store.root;
  }

  #check(): void {
    if (this.#ended) throw new Error(`MLflow run ${this.runId} has already ended`);
  }

  async logParams(params: Record<string, string | number | boolean>): Promise<void> {
    this.#check();
    await this.store.logBatch(this.run, toBatch({ params }));
  }

  async logMetrics(metrics: Record<string, number>, step: number, timestamp?: number) {
    this.#check();
    await this.store.logBatch(this.run, toBatch({ metrics, step, timestamp }));
  }

  async setTags(tags: Record<string, string>): Promise<void> {
    this.#check();
    await this.store.logBatch(this.run, toBatch({ tags }));
  }

  async logArtifact(localPath: string, artifactPath?: string): Promise<void> {
    this.#check();
    await this.store.copyArtifact(
      this.run,
      localPath,
      await effectiveArtifactPath(localPath, artifactPath),
    );
  }

  async logOnnxModel(onnxPath: string, artifactPath = "model", extra: OnnxModelExtra = {}) {
    this.#check();
    const model = await writeOnnxModelDir(
      onnxPath,
      join(this.run.runDir, "artifacts", artifactPath),
      {
        runId: this.runId,
        artifactPath,
        signature: extra.signature,
        metadata: extra.metadata,
        outputs: extra.outputs,
      },
    );
    const old = await this.store.readTag(this.run, MODEL_HISTORY_TAG);
    const history = [...(old ? JSON.parse(old) : []), modelHistoryEntry(model)];
    await this.store.logBatch(
      this.run,
      toBatch({ tags: { [MODEL_HISTORY_TAG]: JSON.stringify(history) } }),
    );
  }

  async end(status: RunEndStatus): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.store.setStatus(this.run, status, Date.now());
  }
}

/** Throws when a reachable server has no such run (an unreachable one is given the benefit). */
async function checkRemoteRun(uri: string, runId: string): Promise<void> {
  try {
    await MlflowRestClient.fromEnv(uri, { retries: 0 }).getRun(runId);
  } catch (e) {
    if (e instanceof MlflowApiError && !e.isAuth) {
      throw new Error(`MLflow run ${runId} not found on ${redactUri(uri)}: ${e.message}`);
    }
  }
}

/** Opens a run on the backend the URI selects (see the header). */
export async function openTracker(
  opts: OpenTrackerOptions & {
    spoolRoot?: string;
    retryIntervalMs?: number;
    log?: (line: string) => void;
  },
): Promise<Tracker> {
  const uri = resolveTrackingUri(opts.uri);
  if (uri === null) return new NoopTracker();
  const target = parseTrackingUri(uri);
  const here = target.kind === "rest" ? target.uri : target.root;
  if (opts.resumeRunId && opts.resumeUri && opts.resumeUri !== here) {
    const why = `MLflow run ${opts.resumeRunId} was logged to ${redactUri(opts.resumeUri)}, ` +
      `not ${here}`;
    if (opts.mustExist) throw new Error(why);
    (opts.log ?? console.error)(`mlflow: ${why}; starting a new run there`);
    opts = { ...opts, resumeRunId: undefined };
  }
  if (target.kind === "rest") {
    if (opts.resumeRunId && opts.mustExist) await checkRemoteRun(uri, opts.resumeRunId);
    return await RestTracker.open({
      client: MlflowRestClient.fromEnv(uri),
      uri,
      experiment: resolveExperimentName(opts.experiment),
      runName: opts.runName,
      tags: { ...contextTags(), ...(opts.tags ?? {}) },
      userId: currentUser(),
      resumeRunId: opts.resumeRunId,
      root: opts.spoolRoot,
      retryIntervalMs: opts.retryIntervalMs,
      log: opts.log,
    });
  }
  return await FileTracker.open(target.root, opts, opts.log);
}
