/**
 * A real MLflow 2.17.2 tracking server and Python client for integration tests, from
 * `../shared/mlflow/mlflow-server` (CXR_SHARED): `startMlflow` runs `serve` in a process group
 * of its own (setsid) on a free loopback port and waits for /health; `stop` ends the group;
 * `mlflowPython` runs a snippet with the real client and returns what it prints as JSON.
 * Absent shared material skips these tests, except where CXR_REQUIRE_MLFLOW=1 (CI) makes
 * that a failure.
 */
import { join } from "node:path";
import { sharedDir } from "../lib/util/paths.ts";

export const MLFLOW_SCRIPT = join(sharedDir(), "mlflow", "mlflow-server");

export const hasMlflow = (() => {
  try {
    return Deno.statSync(MLFLOW_SCRIPT).isFile;
  } catch {
    return false;
  }
})();

/** `ignore` for Deno.test: true only when the server is absent and not required. */
export function ignoreWithoutMlflow(): boolean {
  if (hasMlflow) return false;
  if (Deno.env.get("CXR_REQUIRE_MLFLOW") === "1") {
    throw new Error(`CXR_REQUIRE_MLFLOW=1 but ${MLFLOW_SCRIPT} is missing (set CXR_SHARED)`);
  }
  return true;
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export interface MlflowServer {
  url: string;
  port: number;
  store: string;
  artifacts: string;
  /** Ends the server's process group and waits for it. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store (after stop). */
  start(): Promise<void>;
}

/** Drains a child's output, keeping its last 4 kB for error messages. */
function drain(stream: ReadableStream<Uint8Array>, log: { text: string }): void {
  stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (s) => void (log.text = (log.text + s).slice(-4000)) }),
  ).catch(() => {});
}

async function waitHealthy(url: string, child: Deno.ChildProcess, log: { text: string }) {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (exited) {
      await new Promise((r) => setTimeout(r, 100));
      throw new Error(`mlflow server exited during start:\n${log.text}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`mlflow server at ${url} did not come up in 120 s:\n${log.text}`);
}

/** Starts `mlflow server` on a file store + artifact folder under `dir`. */
export async function startMlflow(
  dir: string,
  opts: { extraArgs?: string[]; env?: Record<string, string> } = {},
): Promise<MlflowServer> {
  const port = freePort();
  const store = join(dir, "store");
  const artifacts = join(dir, "artifacts");
  const log = { text: "" };
  let child: Deno.ChildProcess | null = null;
  const server: MlflowServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    store,
    artifacts,
    async start() {
      child = new Deno.Command("setsid", {
        args: [MLFLOW_SCRIPT, "serve", String(port), store, artifacts, ...(opts.extraArgs ?? [])],
        env: opts.env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      drain(child.stdout, log);
      drain(child.stderr, log);
      await waitHealthy(server.url, child, log);
    },
    async stop() {
      if (!child) return;
      const c = child;
      child = null;
      // setsid made the child a group leader: its pid is the group (gunicorn and workers)
      try {
        Deno.kill(-c.pid, "SIGTERM");
      } catch { /* already gone */ }
      const killer = setTimeout(() => {
        try {
          Deno.kill(-c.pid, "SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await c.status;
      clearTimeout(killer);
      // the port is free once gunicorn's workers are gone too
      for (let i = 0; i < 100; i++) {
        try {
          Deno.listen({ hostname: "127.0.0.1", port }).close();
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
  await server.start();
  return server;
}

/** Runs Python with the real MLflow client; `code` prints one JSON document. */
export async function mlflowPython(
  code: string,
  env: Record<string, string> = {},
): Promise<unknown> {
  const out = await new Deno.Command(MLFLOW_SCRIPT, {
    args: ["python", "-c", code],
    env: { MLFLOW_HTTP_REQUEST_MAX_RETRIES: "0", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `mlflow python failed:\n${new TextDecoder().decode(out.stderr).slice(-3000)}`,
    );
  }
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

/**
 * Python that reads one run with MlflowClient and prints it as JSON: info, params, tags,
 * every metric's full history, the artifact tree, and the MLmodel loaded with
 * mlflow.models.Model.load (signature inputs/outputs names, flavors, mlflow_version).
 */
export function readRunPython(trackingUri: string, runId: string, modelPath = "model"): string {
  return `
import json, math, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(${JSON.stringify(trackingUri)})
c = MlflowClient()
r = c.get_run(${JSON.stringify(runId)})
def num(v):
    if math.isnan(v): return "NaN"
    if math.isinf(v): return "Infinity" if v > 0 else "-Infinity"
    return v
def tree(path=None):
    out = []
    for a in c.list_artifacts(r.info.run_id, path):
        out += tree(a.path) if a.is_dir else [a.path]
    return out
files = tree()
model = None
if ${JSON.stringify(modelPath)} + "/MLmodel" in files:
    m = mlflow.models.Model.load("runs:/" + r.info.run_id + "/" + ${JSON.stringify(modelPath)})
    sig = m.signature
    model = {
        "flavors": sorted(m.flavors),
        "loader": m.flavors["python_function"]["loader_module"],
        "python_version": m.flavors["python_function"].get("python_version"),
        "mlflow_version": m.mlflow_version,
        "inputs": sig.inputs.input_names() if sig else None,
        "outputs": sig.outputs.input_names() if sig else None,
        "run_id": m.run_id,
    }
exp = c.get_experiment(r.info.experiment_id)
print(json.dumps({
    "run_id": r.info.run_id,
    "run_name": r.info.run_name,
    "status": r.info.status,
    "experiment": exp.name,
    "params": r.data.params,
    "tags": r.data.tags,
    "metrics": {k: [[m.step, m.timestamp, num(m.value)] for m in c.get_metric_history(r.info.run_id, k)] for k in r.data.metrics},
    "files": files,
    "model": model,
    "runs_in_experiment": [x.info.run_id for x in c.search_runs([r.info.experiment_id])],
}))
`;
}

export interface RunView {
  run_id: string;
  run_name: string;
  status: string;
  experiment: string;
  params: Record<string, string>;
  tags: Record<string, string>;
  /** key -> [step, timestamp, value ("NaN"/"Infinity"/"-Infinity" for non-finite)][] */
  metrics: Record<string, [number, number, number | string][]>;
  files: string[];
  model: {
    flavors: string[];
    loader: string;
    python_version: string | null;
    mlflow_version: string | null;
    inputs: string[] | null;
    outputs: string[] | null;
    run_id: string;
  } | null;
  runs_in_experiment: string[];
}

export async function readRun(
  trackingUri: string,
  runId: string,
  env: Record<string, string> = {},
): Promise<RunView> {
  return await mlflowPython(readRunPython(trackingUri, runId), env) as RunView;
}

/**
 * A loopback proxy in front of a server: can require an Authorization header, hold the answer
 * of chosen requests past the client's timeout (after the server applied them), or refuse
 * with 503. `requests` records what went through.
 */
export class MlflowProxy {
  readonly requests: { method: string; path: string; auth: string | null }[] = [];
  /** Requests whose path includes one of these get their answer held this long, once each. */
  hold = new Map<string, number>();
  #server: Deno.HttpServer | null = null;
  #abort = new AbortController();
  port = 0;

  constructor(readonly target: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  start(): this {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {}, signal: this.#abort.signal },
      async (req) => {
        const u = new URL(req.url);
        this.requests.push({
          method: req.method,
          path: u.pathname,
          auth: req.headers.get("authorization"),
        });
        const res = await fetch(`${this.target}${u.pathname}${u.search}`, {
          method: req.method,
          headers: req.headers,
          body: req.body,
        });
        const body = await res.arrayBuffer();
        const held = [...this.hold.keys()].find((k) => u.pathname.includes(k));
        if (held !== undefined) {
          const ms = this.hold.get(held)!;
          this.hold.delete(held);
          await new Promise((r) => {
            const t = setTimeout(r, ms);
            this.#abort.signal.addEventListener("abort", () => {
              clearTimeout(t);
              r(null);
            });
          });
        }
        return new Response(body, { status: res.status, headers: res.headers });
      },
    );
    this.port = (this.#server.addr as Deno.NetAddr).port;
    return this;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#server?.finished;
  }
}

/** A socket that accepts connections and never answers (a hung server). */
export function hungServer(): { url: string; close(): void; connections: () => number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const c of listener) conns.push(c);
    } catch { /* closed */ }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: () => conns.length,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}
