/**
 * The REST tracker's write-ahead spool: MLflow being down never stops training or loses a run.
 *
 * Every call appends a record to `outputs/mlflow-spool/<key>/records.jsonl` first, then the
 * records not yet acknowledged are delivered in order. When the server is unreachable the
 * tracker goes offline (retrying every `retryIntervalMs`), artifacts not yet delivered are
 * copied into `files/<seq>/` so later changes to the originals do not matter, and
 * `deno task mlflow:sync` (syncSpool) replays the rest later.
 *
 * Idempotence on replay:
 * - the run is created once: its remote id is saved in state.json; a create whose answer was
 *   lost is found again by its tag `cxr.spool_key` (runs/search) instead of creating another;
 * - `acked` counts delivered records, so only un-acked records are sent again;
 * - a record whose request may have reached the server (`inflight`) has its metrics checked
 *   against metrics/get-history and only the missing ones are sent;
 * - params and tags are idempotent; artifact PUTs overwrite; `end` sets the final status.
 * When a run has ended and every record is delivered, its spool folder is removed.
 *
 * Metric values keep NaN and ±Infinity (stored as the strings protobuf JSON uses). The stored
 * URI never holds credentials (`mlflow:sync` takes them from the environment). A hung server
 * costs a run at most `stallBudgetMs` in total; after that the run only spools.
 */
import { appendFile, cp, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { outputsDir } from "../util/paths.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { MlflowApiError, MlflowRestClient, MlflowUnavailableError } from "./rest.ts";
import { redactUri, splitCredentials } from "./uri.ts";
import { modelHistoryEntry, writeOnnxModelDir } from "./mlmodel.ts";
import {
  type Batch,
  type KeyValue,
  type MetricRecord,
  metricValueFromJson,
  metricValueJson,
  paramString,
  tagString,
  validateKey,
  validateMetric,
} from "./validate.ts";
import type { OnnxModelExtra, RunEndStatus, Tracker } from "./types.ts";

export const SPOOL_KEY_TAG = "cxr.spool_key";
export const MODEL_HISTORY_TAG = "mlflow.log-model.history";

export type SpoolRecord =
  | { seq: number; kind: "batch"; batch: Batch }
  | { seq: number; kind: "artifact"; localPath: string; artifactPath: string }
  | {
    seq: number;
    kind: "onnx_model";
    onnxPath: string;
    artifactPath: string;
    extra: OnnxModelExtra;
    createdAt: number;
  }
  | { seq: number; kind: "status"; status: "RUNNING" }
  | { seq: number; kind: "end"; status: RunEndStatus; endTime: number };

export interface SpoolState {
  version: 1;
  key: string;
  /** Tracking server base URL, without user info. */
  uri: string;
  experiment: string;
  runName: string;
  userId: string;
  startTime: number;
  /** Tags sent with runs/create. */
  tags: Record<string, string>;
  experimentId: string | null;
  remoteRunId: string | null;
  artifactUri: string | null;
  /** A runs/create was sent (its answer may have been lost). */
  createAttempted: boolean;
  /** Records with seq < acked are delivered. */
  acked: number;
  /** Seq of a record whose request was sent without an answer yet. */
  inflight: number | null;
  /** Records the server refused for good (bad value, missing artifact), with why. */
  rejected: { seq: number; error: string }[];
  /** Models logged so far (the mlflow.log-model.history tag is their JSON list). */
  modelHistory: Record<string, unknown>[];
  ended: RunEndStatus | null;
}

export function spoolRoot(): string {
  return join(outputsDir(), "mlflow-spool");
}

type Log = (line: string) => void;
const stderrLog: Log = (line) => console.error(redactUri(line));

/** A record as one JSON line: metric values NaN/±Infinity as "NaN"/"Infinity"/"-Infinity". */
function recordJson(r: SpoolRecord): string {
  if (r.kind !== "batch" || r.batch.metrics.every((m) => Number.isFinite(m.value))) {
    return JSON.stringify(r);
  }
  const metrics = r.batch.metrics.map((m) => ({ ...m, value: metricValueJson(m.value) }));
  return JSON.stringify({ ...r, batch: { ...r.batch, metrics } });
}

function parseRecord(line: string): SpoolRecord {
  const r = JSON.parse(line) as SpoolRecord;
  if (r.kind === "batch") {
    for (const m of r.batch.metrics) m.value = metricValueFromJson(m.value);
  }
  return r;
}

/** One run's spool folder: state.json, records.jsonl, files/. */
export class Spool {
  readonly dir: string;
  state: SpoolState;
  records: SpoolRecord[];
  /** The URI with credentials an older version stored (used once, then scrubbed). */
  legacyUri?: string;

  private constructor(dir: string, state: SpoolState, records: SpoolRecord[]) {
    this.dir = dir;
    this.state = state;
    this.records = records;
  }

  static async create(root: string, state: Omit<SpoolState, "version">): Promise<Spool> {
    const dir = join(root, state.key);
    await mkdir(dir, { recursive: true });
    const spool = new Spool(dir, { version: 1, ...state }, []);
    await spool.saveState();
    await writeFile(join(dir, "records.jsonl"), "");
    return spool;
  }

  static async load(dir: string): Promise<Spool> {
    const stateFile = join(dir, "state.json");
    let state: SpoolState;
    try {
      state = JSON.parse(await readFile(stateFile, "utf8"));
    } catch (e) {
      throw new Error(`spool ${stateFile} is unreadable: ${(e as Error).message}`);
    }
    const text = await readFile(join(dir, "records.jsonl"), "utf8").catch(() => "");
    const records: SpoolRecord[] = [];
    for (const [i, line] of text.split("\n").entries()) {
      if (line.trim() === "") continue;
      try {
        records.push(parseRecord(line));
      } catch {
        // a torn last line (crash mid-append) is the only way to get here: drop it
        if (i < text.split("\n").length - 2) {
          throw new Error(`spool ${dir}/records.jsonl line ${i + 1} is corrupt`);
        }
      }
    }
    const spool = new Spool(dir, state, records);
    const clean = splitCredentials(state.uri).uri;
    if (clean !== state.uri) {
      spool.legacyUri = state.uri;
      state.uri = clean;
      await spool.saveState();
    }
    return spool;
  }

  get nextSeq(): number {
    return this.records.length === 0 ? 0 : this.records[this.records.length - 1].seq + 1;
  }

  get pending(): number {
    return this.records.filter((r) => r.seq >= this.state.acked).length;
  }

  /** Saved atomically so a crash never leaves half a state. */
  async saveState(): Promise<void> {
    await writeFileAtomic(join(this.dir, "state.json"), JSON.stringify(this.state, null, 1));
  }

  async append(record: SpoolRecord): Promise<void> {
    await appendFile(join(this.dir, "records.jsonl"), recordJson(record) + "\n");
    this.records.push(record);
  }

  /** Where a record's local file lives once copied into the spool. */
  filesDir(seq: number): string {
    return join(this.dir, "files", String(seq));
  }

  /** Copies a record's file or directory into files/<seq>/ (kept until delivered). */
  async keepCopy(seq: number, localPath: string): Promise<string> {
    const dest = join(this.filesDir(seq), basename(localPath));
    await mkdir(this.filesDir(seq), { recursive: true });
    await cp(localPath, dest, { recursive: true });
    return dest;
  }

  /** The spool's copy when one was made, else the original path. */
  async sourceOf(seq: number, localPath: string): Promise<string> {
    const copy = join(this.filesDir(seq), basename(localPath));
    return await stat(copy).then(() => copy, () => localPath);
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Forgets the remote run (another server, or the run is gone): everything is resent. */
  restart(uri = this.state.uri): void {
    Object.assign(this.state, {
      uri,
      experimentId: null,
      remoteRunId: null,
      artifactUri: null,
      createAttempted: false,
      acked: 0,
      inflight: null,
      modelHistory: [],
    });
  }
}

export type DeliveryOutcome = "done" | "offline" | "auth" | "error";

/** Delivers a spool's pending records in order; stops (keeping them) when the server is away. */
export class SpoolReplayer {
  constructor(
    readonly spool: Spool,
    readonly client: MlflowRestClient,
    readonly log: Log = stderrLog,
  ) {}

  /** Makes sure the remote run exists (once), returning its id. */
  async ensureRun(): Promise<string> {
    const s = this.spool.state;
    if (s.remoteRunId && s.artifactUri) return s.remoteRunId;
    if (s.remoteRunId) {
      const run = await this.#existingRun(s.remoteRunId);
      if (run) {
        s.artifactUri = run.info.artifact_uri ?? null;
        s.experimentId = run.info.experiment_id;
        await this.spool.saveState();
        return s.remoteRunId;
      }
      this.log(
        `mlflow: run ${s.remoteRunId} is not on ${s.uri} (deleted, or logged to another ` +
          `store); a new run gets all ${this.spool.records.length} spooled records`,
      );
      this.spool.restart();
      await this.spool.saveState();
    }
    s.experimentId ??= await this.client.getOrCreateExperiment(s.experiment);
    if (s.createAttempted) {
      const found = await this.client.searchRunsByTag(s.experimentId, SPOOL_KEY_TAG, s.key);
      if (found.length > 0) {
        s.remoteRunId = found[0].run_id;
        s.artifactUri = found[0].artifact_uri ?? null;
        await this.spool.saveState();
        return s.remoteRunId;
      }
    }
    s.createAttempted = true;
    await this.spool.saveState();
    const info = await this.client.createRun({
      experimentId: s.experimentId,
      runName: s.runName,
      startTime: s.startTime,
      userId: s.userId,
      tags: { ...s.tags, [SPOOL_KEY_TAG]: s.key },
    });
    s.remoteRunId = info.run_id;
    s.artifactUri = info.artifact_uri ?? null;
    await this.spool.saveState();
    return s.remoteRunId;
  }

  /** The run, or null when the server has no active run with this id. */
  async #existingRun(runId: string) {
    try {
      const run = await this.client.getRun(runId);
      return run.info.lifecycle_stage === "deleted" ? null : run;
    } catch (e) {
      if (
        e instanceof MlflowApiError &&
        (e.errorCode === "RESOURCE_DOES_NOT_EXIST" || e.status === 404)
      ) return null;
      throw e;
    }
  }

  async #deliverRecord(runId: string, r: SpoolRecord, retrying: boolean): Promise<void> {
    const s = this.spool.state;
    switch (r.kind) {
      case "batch": {
        let metrics: MetricRecord[] = r.batch.metrics;
        if (retrying && metrics.length > 0) metrics = await this.#missingMetrics(runId, metrics);
        await this.client.logBatch(runId, { ...r.batch, metrics });
        return;
      }
      case "artifact": {
        const src = await this.spool.sourceOf(r.seq, r.localPath);
        await this.client.uploadPath(this.#artifactUri(), src, r.artifactPath);
        return;
      }
      case "onnx_model": {
        const src = await this.spool.sourceOf(r.seq, r.onnxPath);
        const tmp = await Deno.makeTempDir({ prefix: "cxr-mlmodel-" });
        try {
          const model = await writeOnnxModelDir(src, tmp, {
            runId,
            artifactPath: r.artifactPath,
            signature: r.extra.signature,
            metadata: r.extra.metadata,
            outputs: r.extra.outputs,
            createdAt: r.createdAt,
          });
          await this.client.uploadPath(this.#artifactUri(), tmp, r.artifactPath);
          const history = [...s.modelHistory, modelHistoryEntry(model)];
          await this.client.setTag(runId, MODEL_HISTORY_TAG, JSON.stringify(history));
          s.modelHistory = history;
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
        return;
      }
      case "status":
        await this.client.updateRun(runId, r.status);
        return;
      case "end":
        await this.client.updateRun(runId, r.status, r.endTime);
        return;
    }
  }

  #artifactUri(): string {
    const uri = this.spool.state.artifactUri;
    if (!uri) throw new Error("MLflow run has no artifact_uri");
    return uri;
  }

  /** Metrics of a possibly-delivered record that the server does not have yet. */
  async #missingMetrics(runId: string, metrics: MetricRecord[]): Promise<MetricRecord[]> {
    const seen = new Set<string>();
    const id = (m: MetricRecord) => `${m.key}\u0000${m.step}\u0000${m.timestamp}\u0000${m.value}`;
    for (const key of new Set(metrics.map((m) => m.key))) {
      for (const m of await this.client.getMetricHistory(runId, key)) seen.add(id({ ...m, key }));
    }
    return metrics.filter((m) => !seen.has(id(m)));
  }

  /**
   * Sends every pending record. "offline": server unreachable (records kept); "auth": the
   * server refuses our credentials (records kept); "done": nothing pending.
   * Records the server rejects for good are recorded in state.rejected and skipped.
   */
  async deliver(): Promise<{ outcome: DeliveryOutcome; delivered: number; error?: string }> {
    const s = this.spool.state;
    let delivered = 0;
    try {
      const pending = this.spool.records.filter((r) => r.seq >= s.acked);
      if (pending.length === 0 && s.remoteRunId) return { outcome: "done", delivered };
      const runId = await this.ensureRun();
      for (const r of pending) {
        const retrying = s.inflight === r.seq;
        if (!retrying) {
          s.inflight = r.seq;
          await this.spool.saveState();
        }
        try {
          await this.#deliverRecord(runId, r, retrying);
        } catch (e) {
          if (e instanceof MlflowUnavailableError || (e instanceof MlflowApiError && e.isAuth)) {
            throw e;
          }
          const error = e instanceof Error ? e.message : String(e);
          s.rejected.push({ seq: r.seq, error });
          this.log(`mlflow: record ${r.seq} (${r.kind}) of run ${s.runName} rejected: ${error}`);
        }
        s.acked = r.seq + 1;
        s.inflight = null;
        await this.spool.saveState();
        delivered++;
      }
      return { outcome: "done", delivered };
    } catch (e) {
      if (e instanceof MlflowUnavailableError) {
        return { outcome: "offline", delivered, error: e.message };
      }
      if (e instanceof MlflowApiError && e.isAuth) {
        return { outcome: "auth", delivered, error: e.message };
      }
      // e.g. the experiment cannot be created: keep everything, report, let training go on
      return { outcome: "error", delivered, error: e instanceof Error ? e.message : String(e) };
    }
  }
}

export interface RestTrackerOptions {
  client: MlflowRestClient;
  uri: string;
  experiment: string;
  runName: string;
  tags: Record<string, string>;
  userId: string;
  resumeRunId?: string;
  /** Spool folder root (default outputs/mlflow-spool). */
  root?: string;
  /** How long to stay offline before trying the server again (default 30 s). */
  retryIntervalMs?: number;
  /**
   * Total time failed deliveries may cost the run (default 10 s); past it the tracker stops
   * calling the server until the run ends and only spools.
   */
  stallBudgetMs?: number;
  log?: Log;
}

function newSpoolKey(): string {
  const t = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
  return `${t}-${crypto.randomUUID().slice(0, 8)}`;
}

/** The REST backend: every call spooled, then delivered when the server is reachable. */
export class RestTracker implements Tracker {
  readonly backend = "rest" as const;
  readonly spool: Spool;
  readonly #replayer: SpoolReplayer;
  readonly #retryIntervalMs: number;
  readonly #stallBudgetMs: number;
  readonly #log: Log;
  #offlineUntil = 0;
  #stalledMs = 0;
  #warned = false;
  #ended = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(spool: Spool, opts: RestTrackerOptions) {
    this.spool = spool;
    this.#log = opts.log ?? stderrLog;
    this.#replayer = new SpoolReplayer(spool, opts.client, this.#log);
    this.#retryIntervalMs = opts.retryIntervalMs ?? 30_000;
    this.#stallBudgetMs = opts.stallBudgetMs ?? 10_000;
  }

  /** Opens (or, with resumeRunId, reopens) a run; never fails because the server is down. */
  static async open(opts: RestTrackerOptions): Promise<RestTracker> {
    const root = opts.root ?? spoolRoot();
    await mkdir(root, { recursive: true });
    let spool: Spool | null = null;
    const uri = splitCredentials(opts.uri).uri;
    if (opts.resumeRunId) spool = await findSpool(root, opts.resumeRunId);
    if (spool && spool.state.uri !== uri) spool.restart(uri); // resumed against another server
    if (!spool) {
      spool = await Spool.create(root, {
        key: newSpoolKey(),
        uri,
        experiment: opts.experiment,
        runName: opts.runName,
        userId: opts.userId,
        startTime: Date.now(),
        tags: opts.tags,
        experimentId: null,
        remoteRunId: opts.resumeRunId ?? null,
        artifactUri: null,
        createAttempted: false,
        acked: 0,
        inflight: null,
        rejected: [],
        modelHistory: [],
        ended: null,
      });
    }
    const tracker = new RestTracker(spool, opts);
    if (opts.resumeRunId) {
      spool.state.ended = null;
      await spool.saveState();
      await tracker.#enqueue(() =>
        tracker.#add({ seq: spool.nextSeq, kind: "status", status: "RUNNING" })
      );
    } else await tracker.#enqueue(() => tracker.#flush(false));
    return tracker;
  }

  get runId(): string {
    return this.spool.state.remoteRunId ?? this.spool.state.key;
  }

  /** The server's URL, without credentials. */
  get uri(): string {
    return this.spool.state.uri;
  }

  /** Records not yet delivered to the server. */
  get pending(): number {
    return this.spool.pending;
  }

  get online(): boolean {
    return this.#offlineUntil === 0;
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(job, job);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** True once failed deliveries have cost the run its stall budget. */
  get gaveUp(): boolean {
    return this.#stalledMs >= this.#stallBudgetMs;
  }

  async #flush(force: boolean): Promise<void> {
    if (this.gaveUp || (!force && this.#offlineUntil > Date.now())) return;
    const t0 = performance.now();
    const r = await this.#replayer.deliver();
    if (r.outcome === "done") {
      if (this.#offlineUntil !== 0) {
        this.#log(`mlflow: server back, spool delivered (run ${this.runId})`);
      }
      this.#offlineUntil = 0;
      return;
    }
    this.#stalledMs += performance.now() - t0;
    this.#offlineUntil = Date.now() + this.#retryIntervalMs;
    if (!this.#warned) {
      this.#warned = true;
      this.#log(
        `mlflow: ${r.error}; training goes on, records are kept in ${this.spool.dir} ` +
          `(deno task mlflow:sync replays them)`,
      );
    }
    if (this.gaveUp) {
      this.#log(
        `mlflow: the server cost this run ${(this.#stalledMs / 1000).toFixed(1)} s without ` +
          `answering; no more tries until the run ends (deno task mlflow:sync delivers later)`,
      );
    }
  }

  async #add(record: SpoolRecord): Promise<void> {
    if (this.#ended) throw new Error(`MLflow run ${this.runId} has already ended`);
    await this.spool.append(record);
    await this.#flush(false);
  }

  /** Appends an artifact-like record, copying its file into the spool unless delivered now. */
  async #addWithFile(record: SpoolRecord & { seq: number }, localPath: string): Promise<void> {
    if (this.#ended) throw new Error(`MLflow run ${this.runId} has already ended`);
    await stat(localPath).catch(() => {
      throw new Error(`artifact not found: ${localPath}`);
    });
    if (this.#offlineUntil > Date.now()) await this.spool.keepCopy(record.seq, localPath);
    await this.spool.append(record);
    await this.#flush(false);
    if (this.spool.state.acked <= record.seq) {
      await stat(this.spool.filesDir(record.seq)).catch(() =>
        this.spool.keepCopy(record.seq, localPath)
      );
    }
  }

  logParams(params: Record<string, string | number | boolean>): Promise<void> {
    return this.#enqueue(() => {
      const batch = toBatch({ params });
      return this.#add({ seq: this.spool.nextSeq, kind: "batch", batch });
    });
  }

  logMetrics(metrics: Record<string, number>, step: number, timestamp?: number): Promise<void> {
    return this.#enqueue(() => {
      const batch = toBatch({ metrics, step, timestamp: timestamp ?? Date.now() });
      return this.#add({ seq: this.spool.nextSeq, kind: "batch", batch });
    });
  }

  setTags(tags: Record<string, string>): Promise<void> {
    return this.#enqueue(() => {
      const batch = toBatch({ tags });
      return this.#add({ seq: this.spool.nextSeq, kind: "batch", batch });
    });
  }

  logArtifact(localPath: string, artifactPath?: string): Promise<void> {
    return this.#enqueue(async () => {
      const target = await effectiveArtifactPath(localPath, artifactPath);
      const seq = this.spool.nextSeq;
      await this.#addWithFile(
        { seq, kind: "artifact", localPath, artifactPath: target },
        localPath,
      );
    });
  }

  logOnnxModel(
    onnxPath: string,
    artifactPath = "model",
    extra: OnnxModelExtra = {},
  ): Promise<void> {
    return this.#enqueue(async () => {
      const seq = this.spool.nextSeq;
      await this.#addWithFile(
        { seq, kind: "onnx_model", onnxPath, artifactPath, extra, createdAt: Date.now() },
        onnxPath,
      );
    });
  }

  end(status: RunEndStatus): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#ended) return;
      await this.spool.append({
        seq: this.spool.nextSeq,
        kind: "end",
        status,
        endTime: Date.now(),
      });
      this.#ended = true;
      this.spool.state.ended = status;
      await this.spool.saveState();
      await this.#flush(true); // one last try even when offline
      if (this.spool.pending === 0) await this.spool.remove();
      else {
        this.#log(
          `mlflow: run ${this.spool.state.runName} ended ${status} with ${this.spool.pending} ` +
            `records not yet on the server; they are kept in ${this.spool.dir} — run ` +
            `'deno task mlflow:sync' when it is back`,
        );
      }
    });
  }
}

/** A file goes under artifactPath ("" = root); a directory under artifactPath ?? its name. */
export async function effectiveArtifactPath(
  localPath: string,
  artifactPath?: string,
): Promise<string> {
  const st = await stat(localPath).catch(() => {
    throw new Error(`artifact not found: ${localPath}`);
  });
  return st.isDirectory() ? (artifactPath ?? basename(localPath)) : (artifactPath ?? "");
}

/** Validated log-batch content from the Tracker call arguments. */
export function toBatch(opts: {
  params?: Record<string, string | number | boolean>;
  metrics?: Record<string, number>;
  step?: number;
  timestamp?: number;
  tags?: Record<string, string>;
}): Batch {
  const params: KeyValue[] = Object.entries(opts.params ?? {}).map(([key, value]) => {
    validateKey("param", key);
    return { key, value: paramString(value) };
  });
  const tags: KeyValue[] = Object.entries(opts.tags ?? {}).map(([key, value]) => {
    validateKey("tag", key);
    return { key, value: tagString(String(value)) };
  });
  const metrics: MetricRecord[] = Object.entries(opts.metrics ?? {}).map(([key, value]) => {
    const step = opts.step ?? 0;
    const timestamp = Math.round(opts.timestamp ?? Date.now());
    validateMetric(key, value, step, timestamp);
    return { key, value, timestamp, step };
  });
  return { metrics, params, tags };
}

/** The unfinished spool with this key or remote run id, if any. */
export async function findSpool(root: string, id: string): Promise<Spool | null> {
  for (const dir of await listSpoolDirs(root)) {
    const spool = await Spool.load(dir).catch(() => null);
    if (spool && (spool.state.key === id || spool.state.remoteRunId === id)) return spool;
  }
  return null;
}

async function listSpoolDirs(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const dirs: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.isDirectory() && (await stat(join(root, e.name, "state.json")).catch(() => null))) {
      dirs.push(join(root, e.name));
    }
  }
  return dirs;
}

export interface SpoolSyncReport {
  key: string;
  runName: string;
  uri: string;
  remoteRunId: string | null;
  delivered: number;
  pending: number;
  rejected: number;
  ended: RunEndStatus | null;
  outcome: DeliveryOutcome;
  error?: string;
}

/**
 * Replays every pending spool (in key order, records in order) to `uri` or the URI each run
 * was opened with; fully delivered, ended runs have their spool removed.
 */
export async function syncSpool(
  opts: { uri?: string; root?: string; client?: (uri: string) => MlflowRestClient; log?: Log } = {},
): Promise<{ replayed: number; pending: number; runs: SpoolSyncReport[] }> {
  const root = opts.root ?? spoolRoot();
  const makeClient = opts.client ?? ((uri: string) => MlflowRestClient.fromEnv(uri));
  const runs: SpoolSyncReport[] = [];
  for (const dir of await listSpoolDirs(root)) {
    const spool = await Spool.load(dir);
    const target = opts.uri ? splitCredentials(opts.uri).uri : spool.state.uri;
    if (target !== spool.state.uri) {
      // another server: the run (if created) is not there; all records go to a new run
      spool.restart(target);
      await spool.saveState();
    }
    const rejectedBefore = spool.state.rejected.length;
    const client = makeClient(opts.uri ?? spool.legacyUri ?? spool.state.uri);
    const r = await new SpoolReplayer(spool, client, opts.log).deliver();
    const pending = spool.pending;
    runs.push({
      key: spool.state.key,
      runName: spool.state.runName,
      uri: target,
      remoteRunId: spool.state.remoteRunId,
      delivered: r.delivered,
      pending,
      rejected: spool.state.rejected.length - rejectedBefore,
      ended: spool.state.ended,
      outcome: r.outcome,
      error: r.error && redactUri(r.error),
    });
    if (r.outcome === "done" && pending === 0 && spool.state.ended) await spool.remove();
  }
  return {
    replayed: runs.reduce((a, r) => a + r.delivered, 0),
    pending: runs.reduce((a, r) => a + r.pending, 0),
    runs,
  };
}
