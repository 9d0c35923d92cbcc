/**
 * An in-process fake MLflow tracking server for tests: the REST API 2.0 endpoints cxr uses
 * (mlflow/protos/service.proto) with MLflow's validation, limits and error bodies
 * (`{error_code, message}`; 400 INVALID_PARAMETER_VALUE / RESOURCE_ALREADY_EXISTS, 404
 * RESOURCE_DOES_NOT_EXIST, 401 without the expected credentials), plus the artifact proxy
 * `PUT|GET /api/2.0/mlflow-artifacts/artifacts/<path>`. State survives stop()/start(), which
 * rebinds the same port, so a test can take the "server" down mid-run.
 */

export interface FakeMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface FakeRun {
  info: {
    run_id: string;
    run_uuid: string;
    run_name: string;
    experiment_id: string;
    user_id: string;
    status: string;
    start_time: number;
    end_time?: number;
    artifact_uri: string;
    lifecycle_stage: string;
  };
  params: Map<string, string>;
  tags: Map<string, string>;
  metrics: FakeMetric[];
}

export interface FakeExperiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  creation_time: number;
  last_update_time: number;
}

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}
const invalid = (m: string) => new ApiError(400, "INVALID_PARAMETER_VALUE", m);
const missing = (m: string) => new ApiError(404, "RESOURCE_DOES_NOT_EXIST", m);

const VALID_NAME = /^[/\w.\- ]*$/;
const RUN_STATUSES = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

function checkName(kind: string, key: unknown): string {
  if (typeof key !== "string" || key === "") throw invalid(`Missing value for required ${kind}`);
  if (!VALID_NAME.test(key)) throw invalid(`Invalid ${kind} name: '${key}'.`);
  if (key.length > 250) throw invalid(`${kind} '${key}' exceeded length limit of 250`);
  return key;
}

export class FakeMlflow {
  experiments = new Map<string, FakeExperiment>();
  runs = new Map<string, FakeRun>();
  artifacts = new Map<string, Uint8Array<ArrayBuffer>>();
  /** Every request seen: method, path (without query) and Authorization header. */
  requests: { method: string; path: string; auth: string | null }[] = [];
  /** When set, requests without exactly this Authorization header get 401. */
  requiredAuth: string | null = null;
  /** The next n API requests answer this HTTP status (e.g. 503) without effect. */
  failNext = { count: 0, status: 503 };
  #server: Deno.HttpServer | null = null;
  #port = 0;
  #nextExp = 1;

  constructor() {
    const now = Date.now();
    this.experiments.set("0", {
      experiment_id: "0",
      name: "Default",
      artifact_location: "mlflow-artifacts:/0",
      lifecycle_stage: "active",
      creation_time: now,
      last_update_time: now,
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  start(): void {
    if (this.#server) return;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: this.#port, onListen: () => {} },
      (req) => this.#handle(req),
    );
    this.#port = (this.#server.addr as Deno.NetAddr).port;
  }

  async stop(): Promise<void> {
    if (!this.#server) return;
    const s = this.#server;
    this.#server = null;
    await s.shutdown();
  }

  runByName(name: string): FakeRun[] {
    return [...this.runs.values()].filter((r) => r.info.run_name === name);
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    this.requests.push({
      method: req.method,
      path: url.pathname,
      auth: req.headers.get("authorization"),
    });
    try {
      if (this.requiredAuth !== null && req.headers.get("authorization") !== this.requiredAuth) {
        throw new ApiError(401, "UNAUTHENTICATED", "You are not authenticated.");
      }
      if (this.failNext.count > 0) {
        this.failNext.count--;
        throw new ApiError(this.failNext.status, "INTERNAL_ERROR", "injected failure");
      }
      const art = "/api/2.0/mlflow-artifacts/artifacts/";
      if (url.pathname.startsWith(art)) {
        const path = url.pathname.slice(art.length).split("/").map(decodeURIComponent).join("/");
        if (req.method === "PUT") {
          this.artifacts.set(path, new Uint8Array(await req.arrayBuffer()));
          return Response.json({});
        }
        const bytes = this.artifacts.get(path);
        if (req.method === "GET" && bytes) return new Response(bytes);
        throw missing(`artifact ${path} not found`);
      }
      const prefix = "/api/2.0/mlflow/";
      if (!url.pathname.startsWith(prefix)) {
        throw new ApiError(404, "ENDPOINT_NOT_FOUND", `no endpoint ${url.pathname}`);
      }
      const endpoint = `${req.method} ${url.pathname.slice(prefix.length)}`;
      let body: Record<string, unknown> = {};
      if (req.method === "POST") {
        try {
          body = await req.json();
        } catch {
          throw new ApiError(400, "MALFORMED_REQUEST", "request body is not JSON");
        }
      }
      const q = (k: string) => url.searchParams.get(k) ?? "";
      return Response.json(this.#api(endpoint, body, q));
    } catch (e) {
      if (e instanceof ApiError) {
        return Response.json({ error_code: e.code, message: e.message }, { status: e.status });
      }
      return Response.json({ error_code: "INTERNAL_ERROR", message: String(e) }, { status: 500 });
    }
  }

  #run(runId: unknown): FakeRun {
    const run = this.runs.get(String(runId ?? ""));
    if (!run) throw missing(`Run '${runId}' not found`);
    return run;
  }

  #api(endpoint: string, body: Record<string, unknown>, q: (k: string) => string): unknown {
    switch (endpoint) {
      case "GET experiments/get-by-name": {
        const e = [...this.experiments.values()].find((x) => x.name === q("experiment_name"));
        if (!e) throw missing(`Could not find experiment with name '${q("experiment_name")}'`);
        return { experiment: e };
      }
      case "POST experiments/create": {
        const name = body.name;
        if (typeof name !== "string" || name === "") throw invalid("Invalid experiment name");
        if ([...this.experiments.values()].some((x) => x.name === name)) {
          throw new ApiError(
            400,
            "RESOURCE_ALREADY_EXISTS",
            `Experiment '${name}' already exists.`,
          );
        }
        const id = String(this.#nextExp++);
        const now = Date.now();
        this.experiments.set(id, {
          experiment_id: id,
          name,
          artifact_location: `mlflow-artifacts:/${id}`,
          lifecycle_stage: "active",
          creation_time: now,
          last_update_time: now,
        });
        return { experiment_id: id };
      }
      case "POST runs/create": {
        const expId = String(body.experiment_id ?? "0");
        const exp = this.experiments.get(expId);
        if (!exp) throw missing(`Could not find experiment with ID ${expId}`);
        const tags = new Map<string, string>();
        for (const t of (body.tags ?? []) as { key: string; value: string }[]) {
          tags.set(checkName("tag", t.key), String(t.value));
        }
        const runName = body.run_name as string | undefined;
        const tagName = tags.get("mlflow.runName");
        if (runName && tagName && runName !== tagName) {
          throw invalid("Both 'run_name' argument and 'mlflow.runName' tag are specified");
        }
        const name = runName || tagName || "random-run-name";
        tags.set("mlflow.runName", name);
        const id = crypto.randomUUID().replaceAll("-", "");
        const run: FakeRun = {
          info: {
            run_id: id,
            run_uuid: id,
            run_name: name,
            experiment_id: expId,
            user_id: String(body.user_id ?? ""),
            status: "RUNNING",
            start_time: Number(body.start_time ?? Date.now()),
            artifact_uri: `${exp.artifact_location}/${id}/artifacts`,
            lifecycle_stage: "active",
          },
          params: new Map(),
          tags,
          metrics: [],
        };
        this.runs.set(id, run);
        return { run: this.#runJson(run) };
      }
      case "GET runs/get":
        return { run: this.#runJson(this.#run(q("run_id"))) };
      case "POST runs/search": {
        const ids = (body.experiment_ids ?? []) as string[];
        const filter = String(body.filter ?? "");
        const m = /^tags\.(?:`([^`]+)`|([\w.]+))\s*=\s*'((?:[^'\\]|\\.)*)'$/.exec(filter.trim());
        if (filter !== "" && !m) throw invalid(`Unsupported filter in fake: ${filter}`);
        const runs = [...this.runs.values()].filter((r) =>
          ids.includes(r.info.experiment_id) &&
          (!m || r.tags.get(m[1] ?? m[2]) === m[3].replaceAll("\\'", "'"))
        );
        return runs.length ? { runs: runs.map((r) => this.#runJson(r)) } : {};
      }
      case "POST runs/log-batch": {
        const run = this.#run(body.run_id);
        const metrics = (body.metrics ?? []) as Record<string, unknown>[];
        const params = (body.params ?? []) as { key: string; value: string }[];
        const tags = (body.tags ?? []) as { key: string; value: string }[];
        const limit = (what: string, n: number, max: number) => {
          if (n > max) {
            throw invalid(
              `A batch logging request can contain at most ${max} ${what}. Got ${n} ${what}.`,
            );
          }
        };
        limit("metrics", metrics.length, 1000);
        limit("params", params.length, 100);
        limit("tags", tags.length, 100);
        limit("metrics, params, and tags", metrics.length + params.length + tags.length, 1000);
        const parsed = metrics.map((m) => {
          const key = checkName("metric", m.key);
          const v = m.value;
          const value = typeof v === "number"
            ? v
            : v === "NaN"
            ? NaN
            : v === "Infinity"
            ? Infinity
            : v === "-Infinity"
            ? -Infinity
            : null;
          if (value === null) throw invalid(`Got invalid value ${v} for metric '${key}'`);
          if (typeof m.timestamp !== "number") throw invalid(`Missing timestamp for '${key}'`);
          return { key, value, timestamp: m.timestamp, step: Number(m.step ?? 0) };
        });
        const seen = new Set<string>();
        for (const p of params) {
          checkName("param", p.key);
          if (seen.has(p.key)) throw invalid(`Duplicate parameter keys have been submitted`);
          seen.add(p.key);
          if (String(p.value).length > 6000) throw invalid(`Param value too long`);
          const old = run.params.get(p.key);
          if (old !== undefined && old !== String(p.value)) {
            throw invalid(`Changing param values is not allowed. Param with key='${p.key}'`);
          }
        }
        for (const t of tags) checkName("tag", t.key);
        for (const p of params) run.params.set(p.key, String(p.value));
        run.metrics.push(...parsed);
        for (const t of tags) run.tags.set(t.key, String(t.value));
        return {};
      }
      case "POST runs/set-tag": {
        const run = this.#run(body.run_id ?? body.run_uuid);
        run.tags.set(checkName("tag", body.key), String(body.value ?? ""));
        return {};
      }
      case "POST runs/update": {
        const run = this.#run(body.run_id ?? body.run_uuid);
        if (body.status !== undefined) {
          if (!RUN_STATUSES.includes(String(body.status))) {
            throw invalid(`Invalid run status ${body.status}`);
          }
          run.info.status = String(body.status);
        }
        if (body.end_time !== undefined) run.info.end_time = Number(body.end_time);
        return { run_info: run.info };
      }
      case "GET metrics/get-history": {
        const run = this.#run(q("run_id"));
        const metrics = run.metrics.filter((m) => m.key === q("metric_key"));
        return metrics.length ? { metrics } : {};
      }
    }
    throw new ApiError(404, "ENDPOINT_NOT_FOUND", `no endpoint ${endpoint}`);
  }

  #runJson(run: FakeRun): unknown {
    const latest = new Map<string, FakeMetric>();
    for (const m of run.metrics) {
      const old = latest.get(m.key);
      if (!old || m.step >= old.step) latest.set(m.key, m);
    }
    return {
      info: run.info,
      data: {
        metrics: [...latest.values()],
        params: [...run.params].map(([key, value]) => ({ key, value })),
        tags: [...run.tags].map(([key, value]) => ({ key, value })),
      },
    };
  }
}

// --- a tiny ONNX model (protobuf written by hand) for MLmodel tests ---

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const vfield = (no: number, n: number) => [...varint(no << 3), ...varint(n)];
const bfield = (no: number, bytes: number[]) => [
  ...varint((no << 3) | 2),
  ...varint(bytes.length),
  ...bytes,
];
const sfield = (no: number, s: string) => bfield(no, [...new TextEncoder().encode(s)]);

function valueInfo(name: string, dims: (number | string)[]): number[] {
  const shape = dims.flatMap((d) => bfield(1, typeof d === "number" ? vfield(1, d) : sfield(2, d)));
  const tensorType = [...vfield(1, 1), ...bfield(2, shape)]; // elem_type FLOAT
  return [...sfield(1, name), ...bfield(2, bfield(1, tensorType))];
}

/**
 * ModelProto (ir_version 8, opset 13) whose graph is Identity(image) -> head_dense, with an
 * initializer also listed as an input (older exporters did that; it is not a model input).
 */
export function tinyOnnxModel(): Uint8Array {
  const node = [...sfield(1, "image"), ...sfield(2, "head_dense"), ...sfield(4, "Identity")];
  const init = [...vfield(1, 1), ...vfield(2, 1), ...sfield(8, "w")]; // dims [1], FLOAT, "w"
  const graph = [
    ...bfield(1, node),
    ...sfield(2, "tiny"),
    ...bfield(5, init),
    ...bfield(11, valueInfo("image", ["N", 4, 4, 3])),
    ...bfield(11, valueInfo("w", [1])),
    ...bfield(12, valueInfo("head_dense", ["N", 1])),
  ];
  return new Uint8Array([
    ...vfield(1, 8),
    ...sfield(2, "cxr-test"),
    ...bfield(7, graph),
    ...bfield(8, [...sfield(1, ""), ...vfield(2, 13)]),
  ]);
}
