/**
 * A client for MLflow's REST API 2.0 (mlflow/protos/service.proto) over `fetch`, plus
 * artifact upload through the tracking server's `mlflow-artifacts` proxy
 * (`PUT /api/2.0/mlflow-artifacts/artifacts/<path>`, mlflow/protos/mlflow_artifacts.proto).
 *
 * Errors: MLflow answers `{ "error_code": "...", "message": "..." }`; that becomes an
 * `MlflowApiError` naming the endpoint, HTTP status and code. Every request has a short timeout
 * (default 5 s: a hung server must not hold training); a timeout is never retried. Refused
 * connections are retried with exponential backoff; other network errors, 429 and 5xx only for
 * idempotent requests, since a log-batch or runs/create that may have reached the server must
 * not be sent twice blindly (the spool checks the server's metric history first). What is left
 * surfaces as `MlflowUnavailableError` and the spool keeps the records for later.
 *
 * Credentials: MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD, or the user info of
 * the URI (`http://user:pw@host`); the stored base URL never contains them.
 */
import { Buffer } from "node:buffer";
import { copyFile, mkdir, readdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Batch,
  chunkBatch,
  type MetricRecord,
  metricValueFromJson,
  metricValueJson,
} from "./validate.ts";
import type { RunStatusName } from "./types.ts";
import { credentialsFor, redactUri, splitCredentials } from "./uri.ts";

export class MlflowApiError extends Error {
  constructor(
    readonly endpoint: string,
    readonly status: number,
    readonly errorCode: string,
    readonly detail: string,
  ) {
    super(`MLflow ${endpoint} failed (HTTP ${status} ${errorCode}): ${detail}`);
    this.name = "MlflowApiError";
  }
  /** 401/403: the server is there but refuses us; records stay spooled until fixed. */
  get isAuth(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

export class MlflowUnavailableError extends Error {
  constructor(readonly endpoint: string, readonly reason: string) {
    super(`MLflow server unavailable (${endpoint}): ${redactUri(reason)}`);
    this.name = "MlflowUnavailableError";
  }
}

export interface RestOptions {
  /** Tracking server base URL, e.g. http://127.0.0.1:5000 (a path prefix is kept). */
  uri: string;
  username?: string;
  password?: string;
  token?: string;
  /** Retries after the first attempt for transient failures (default 2). */
  retries?: number;
  /** First backoff delay in ms, doubled each retry (default 250). */
  backoffMs?: number;
  /**
   * Per-request timeout in ms (default 5000, or MLFLOW_HTTP_REQUEST_TIMEOUT seconds); artifact
   * uploads add 1 s per MB.
   */
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

export interface ExperimentInfo {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
}

export interface RunInfo {
  run_id: string;
  run_uuid?: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: RunStatusName;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage?: string;
}

function envOr(name: string): string | undefined {
  try {
    const v = Deno.env.get(name);
    return v === undefined || v === "" ? undefined : v;
  } catch {
    return undefined;
  }
}

/** Protobuf JSON wants NaN/Infinity as strings; JSON.stringify would write null. */
function metricJson(m: MetricRecord): Record<string, unknown> {
  return { key: m.key, value: metricValueJson(m.value), timestamp: m.timestamp, step: m.step };
}

/** The request never left this machine (nothing listens): always safe to send again. */
function isConnectError(e: unknown): boolean {
  const cause = (e as { cause?: { message?: string } })?.cause?.message ?? "";
  return /\(Connect\)|connection refused|os error 111/i.test(`${(e as Error)?.message} ${cause}`);
}

function isTimeout(e: unknown): boolean {
  return (e as Error)?.name === "TimeoutError" || (e as Error)?.name === "AbortError";
}

interface RequestOptions {
  body?: BodyInit;
  contentType?: string;
  /** Safe to send twice (reads, set-tag, params, update, artifact PUT). */
  idempotent: boolean;
  timeoutMs?: number;
}

export class MlflowRestClient {
  readonly base: string;
  readonly #auth?: string;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(opts: RestOptions) {
    if (!/^https?:\/\//i.test(opts.uri)) {
      throw new Error(
        `MLflow tracking URI must be http(s)://host:port, got '${redactUri(opts.uri)}'`,
      );
    }
    const split = splitCredentials(opts.uri);
    this.base = split.uri;
    const username = opts.username ?? split.username;
    const password = opts.password ?? split.password;
    if (opts.token) this.#auth = `Bearer ${opts.token}`;
    else if (username !== undefined && password !== undefined) {
      const pair = `${username}:${password}`;
      this.#auth = `Basic ${Buffer.from(pair, "utf8").toString("base64")}`;
    }
    this.#retries = opts.retries ?? 2;
    this.#backoffMs = opts.backoffMs ?? 250;
    this.#timeoutMs = opts.timeoutMs ?? 5_000;
    this.#fetch = opts.fetchImpl ?? fetch;
  }

  /**
   * Credentials from MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD, the URI's user
   * info, or MLFLOW_TRACKING_URI's user info when it names the same server; the timeout from
   * MLFLOW_HTTP_REQUEST_TIMEOUT (seconds) when set.
   */
  static fromEnv(uri: string, extra: Partial<RestOptions> = {}): MlflowRestClient {
    const split = splitCredentials(uri);
    const creds = split.username !== undefined ? split : credentialsFor(uri);
    const timeoutS = Number(envOr("MLFLOW_HTTP_REQUEST_TIMEOUT"));
    return new MlflowRestClient({
      uri: split.uri,
      token: envOr("MLFLOW_TRACKING_TOKEN"),
      username: envOr("MLFLOW_TRACKING_USERNAME") ?? creds.username,
      password: envOr("MLFLOW_TRACKING_PASSWORD") ?? creds.password,
      ...(timeoutS > 0 ? { timeoutMs: timeoutS * 1000 } : {}),
      ...extra,
    });
  }

  async #request(
    method: "GET" | "POST" | "PUT",
    path: string,
    endpoint: string,
    opts: RequestOptions,
  ): Promise<unknown> {
    const headers: Record<string, string> = {};
    if (this.#auth) headers["Authorization"] = this.#auth;
    if (opts.body !== undefined) headers["Content-Type"] = opts.contentType ?? "application/json";
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    let lastReason = "";
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      if (attempt > 0) {
        await new Promise((r) => setTimeout(r, this.#backoffMs * 2 ** (attempt - 1)));
      }
      let res: Response;
      let text: string;
      try {
        res = await this.#fetch(`${this.base}${path}`, {
          method,
          headers,
          body: opts.body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        text = await res.text();
      } catch (e) {
        if (isTimeout(e)) {
          // a server that holds a request this long is hung: do not wait for it again now
          throw new MlflowUnavailableError(endpoint, `no answer within ${timeoutMs} ms`);
        }
        const cause = (e as { cause?: { message?: string } })?.cause?.message;
        lastReason = `${e instanceof Error ? e.message : String(e)}${cause ? `: ${cause}` : ""}`;
        if (isConnectError(e) || opts.idempotent) continue;
        throw new MlflowUnavailableError(endpoint, lastReason);
      }
      if (res.ok) return text === "" ? {} : JSON.parse(text);
      let code = `HTTP_${res.status}`;
      let message = text.slice(0, 500);
      try {
        const parsed = JSON.parse(text);
        if (parsed && typeof parsed === "object") {
          code = parsed.error_code ?? code;
          message = parsed.message ?? message;
        }
      } catch { /* not JSON: keep the text */ }
      if (res.status >= 500 || res.status === 429) {
        lastReason = `HTTP ${res.status} ${code}: ${message}`;
        if (opts.idempotent) continue;
        throw new MlflowUnavailableError(endpoint, lastReason);
      }
      throw new MlflowApiError(endpoint, res.status, code, message);
    }
    throw new MlflowUnavailableError(endpoint, lastReason);
  }

  #post(endpoint: string, payload: unknown, idempotent = true): Promise<unknown> {
    return this.#request("POST", `/api/2.0/mlflow/${endpoint}`, endpoint, {
      body: JSON.stringify(payload),
      idempotent,
    });
  }

  #get(endpoint: string, query: Record<string, string>): Promise<unknown> {
    const qs = new URLSearchParams(query).toString();
    return this.#request("GET", `/api/2.0/mlflow/${endpoint}?${qs}`, endpoint, {
      idempotent: true,
    });
  }

  async getExperimentByName(name: string): Promise<ExperimentInfo | null> {
    try {
      const r = await this.#get("experiments/get-by-name", { experiment_name: name }) as {
        experiment: ExperimentInfo;
      };
      return r.experiment;
    } catch (e) {
      if (e instanceof MlflowApiError && e.errorCode === "RESOURCE_DOES_NOT_EXIST") return null;
      throw e;
    }
  }

  async createExperiment(name: string): Promise<string> {
    // a create that may have happened shows up as RESOURCE_ALREADY_EXISTS on the next try
    const r = await this.#post("experiments/create", { name }) as { experiment_id: string };
    return r.experiment_id;
  }

  /** The experiment's id, created when missing (a concurrent create is tolerated). */
  async getOrCreateExperiment(name: string): Promise<string> {
    const found = await this.getExperimentByName(name);
    if (found) return found.experiment_id;
    try {
      return await this.createExperiment(name);
    } catch (e) {
      if (e instanceof MlflowApiError && e.errorCode === "RESOURCE_ALREADY_EXISTS") {
        const again = await this.getExperimentByName(name);
        if (again) return again.experiment_id;
      }
      throw e;
    }
  }

  async createRun(opts: {
    experimentId: string;
    runName: string;
    startTime: number;
    tags: Record<string, string>;
    userId?: string;
  }): Promise<RunInfo> {
    const r = await this.#post("runs/create", {
      experiment_id: opts.experimentId,
      user_id: opts.userId ?? "",
      run_name: opts.runName,
      start_time: opts.startTime,
      tags: Object.entries(opts.tags).map(([key, value]) => ({ key, value })),
    }, false) as { run: { info: RunInfo } };
    return r.run.info;
  }

  async getRun(runId: string): Promise<{ info: RunInfo; data: Record<string, unknown> }> {
    const r = await this.#get("runs/get", { run_id: runId }) as {
      run: { info: RunInfo; data: Record<string, unknown> };
    };
    return r.run;
  }

  /** Runs of an experiment whose tag `key` equals `value` (runs/search filter). */
  async searchRunsByTag(experimentId: string, key: string, value: string): Promise<RunInfo[]> {
    const r = await this.#post("runs/search", {
      experiment_ids: [experimentId],
      filter: `tags.\`${key}\` = '${value.replaceAll("'", "\\'")}'`,
      max_results: 10,
    }) as { runs?: { info: RunInfo }[] };
    return (r.runs ?? []).map((run) => run.info);
  }

  /**
   * log-batch, split into requests within the per-request limits. Batches with metrics are not
   * resent blindly (the server would keep both copies); params and tags are.
   */
  async logBatch(runId: string, batch: Batch): Promise<void> {
    for (const chunk of chunkBatch(batch)) {
      await this.#post("runs/log-batch", {
        run_id: runId,
        metrics: chunk.metrics.map(metricJson),
        params: chunk.params,
        tags: chunk.tags,
      }, chunk.metrics.length === 0);
    }
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.#post("runs/set-tag", { run_id: runId, key, value });
  }

  async updateRun(runId: string, status: RunStatusName, endTime?: number): Promise<void> {
    await this.#post("runs/update", {
      run_id: runId,
      status,
      ...(endTime === undefined ? {} : { end_time: endTime }),
    });
  }

  async getMetricHistory(runId: string, key: string): Promise<MetricRecord[]> {
    const r = await this.#get("metrics/get-history", { run_id: runId, metric_key: key }) as {
      metrics?: (Omit<MetricRecord, "value"> & { value: unknown })[];
    };
    return (r.metrics ?? []).map((m) => ({
      key: m.key ?? key,
      value: metricValueFromJson(m.value),
      timestamp: Number(m.timestamp),
      step: Number(m.step ?? 0),
    }));
  }

  /**
   * Uploads one file to `<artifactUri>/<artifactRelPath>`. `mlflow-artifacts:` URIs go through
   * the server's proxy; `file:` URIs (server on this machine) are copied directly.
   */
  async uploadFile(artifactUri: string, localFile: string, artifactRelPath: string): Promise<void> {
    if (artifactUri.startsWith("file:")) {
      const dest = join(fileURLToPath(artifactUri), artifactRelPath);
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(localFile, dest);
      return;
    }
    const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(artifactUri);
    if (!m) {
      throw new MlflowApiError(
        "mlflow-artifacts",
        0,
        "UNSUPPORTED_ARTIFACT_STORE",
        `run artifact URI '${artifactUri}' cannot be written through the tracking server; ` +
          `start 'mlflow server' with --serve-artifacts (the default in MLflow 2.x)`,
      );
    }
    const rel = [...m[1].split("/"), ...artifactRelPath.split("/")].filter((s) => s !== "")
      .map(encodeURIComponent).join("/");
    const bytes = await Deno.readFile(localFile);
    await this.#request("PUT", `/api/2.0/mlflow-artifacts/artifacts/${rel}`, "mlflow-artifacts", {
      body: bytes,
      contentType: "application/octet-stream",
      idempotent: true,
      timeoutMs: this.#timeoutMs + Math.round(bytes.length / 1000),
    });
  }

  /** A file (to `<artifactPath>/<name>`) or a directory tree (under `<artifactPath>/`). */
  async uploadPath(artifactUri: string, localPath: string, artifactPath: string): Promise<number> {
    const files = await listFiles(localPath);
    for (const f of files) {
      await this.uploadFile(artifactUri, f.abs, joinArtifactPath(artifactPath, f.rel));
    }
    return files.length;
  }
}

/** `a/b` + `c` -> `a/b/c`, with empty parts dropped. */
export function joinArtifactPath(...parts: string[]): string {
  return parts.flatMap((p) => p.split("/")).filter((s) => s !== "" && s !== ".").join("/");
}

/**
 * Files under a path: a file yields itself (rel = its basename); a directory yields its tree
 * (rel relative to it), sorted so uploads are deterministic.
 */
export async function listFiles(localPath: string): Promise<{ abs: string; rel: string }[]> {
  const st = await stat(localPath).catch(() => {
    throw new Error(`artifact not found: ${localPath}`);
  });
  if (st.isFile()) return [{ abs: localPath, rel: localPath.split("/").pop()! }];
  const out: { abs: string; rel: string }[] = [];
  const walk = async (dir: string, rel: string) => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
    for (const e of entries) {
      const abs = join(dir, e.name);
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(abs, r);
      else if (e.isFile()) out.push({ abs, rel: r });
    }
  };
  await walk(localPath, "");
  return out;
}
