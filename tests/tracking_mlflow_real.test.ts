/**
 * cxr against a real MLflow 2.17.2 server and Python client (tests/mlflow_real.ts): one
 * server (basic-auth app, file store) shared by the steps, each read back with MlflowClient.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  hungServer,
  ignoreWithoutMlflow,
  MlflowProxy,
  type MlflowServer,
  readRun,
  type RunView,
  startMlflow,
} from "./mlflow_real.ts";
import { tinyTrainConfig, TRAIN_DATA as DATA } from "./training_fixtures.ts";
import { trainRun } from "../lib/training/run.ts";
import { MlflowRestClient } from "../lib/tracking/rest.ts";
import { RestTracker, syncSpool } from "../lib/tracking/spool.ts";
import { FileTracker, openTracker } from "../lib/tracking/tracker.ts";
import { main as syncMain } from "../lib/cli/mlflow_sync.ts";
import { openSession } from "../lib/onnx/session.ts";
import { PROJECT_ROOT } from "../lib/util/paths.ts";
import { exists } from "../lib/util/fs.ts";

const USER = "admin";
const PASSWORD = "pw-s3cret!x";
const AUTH_ENV = { MLFLOW_TRACKING_USERNAME: USER, MLFLOW_TRACKING_PASSWORD: PASSWORD };
const AUTH_ENV_CLIENT = { username: USER, password: PASSWORD };
const quiet = () => {};

/** `http://admin:<pw>@127.0.0.1:<port>` */
function withPassword(url: string): string {
  return url.replace("http://", `http://${USER}:${encodeURIComponent(PASSWORD)}@`);
}

/** Sets env vars for the duration of fn, restoring the previous values. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(vars)) {
    v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    }
  }
}

/** Console.error lines written while fn runs (and still printed when CXR_TEST_VERBOSE). */
async function captureStderr<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => void lines.push(a.map(String).join(" "));
  try {
    return { value: await fn(), lines };
  } finally {
    console.error = orig;
  }
}

/** Every text under dir (recursively), to look for leaked secrets. */
async function allText(dir: string): Promise<string> {
  let out = "";
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out += await allText(p);
    else if (e.isFile && !/\.(bin|onnx)$/.test(e.name)) out += await Deno.readTextFile(p);
  }
  return out;
}

/**
 * `mlflow:sync` with `args` under `env`; asserts it exits 0, then reads back the run it
 * delivered with the real client. Returns the run and what sync printed.
 */
async function syncAndRead(
  server: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ run: RunView; printed: string }> {
  const out: string[] = [];
  const code = await withEnv(env, () => syncMain(args, (s) => out.push(s)));
  const printed = out.join("\n");
  assert.deepEqual(code, 0, printed);
  const runId = /run ([0-9a-f]{32})/.exec(printed)![1];
  return { run: await readRun(server, runId, AUTH_ENV), printed };
}

/** Asserts each metric key has exactly the steps given, each once. */
function assertStepsOnce(run: RunView, keys: string[], steps: number[]): void {
  for (const k of keys) {
    assert.deepEqual(run.metrics[k]?.map((m) => m[0]), steps, `${k}: steps logged once each`);
  }
}

const tinyTraining = () => tinyTrainConfig({ phase1: 2, phase2: 1 });

Deno.test({
  name: "real MLflow 2.17.2 server (basic auth) and client",
  ignore: ignoreWithoutMlflow(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const tmp = await Deno.makeTempDir({ prefix: "cxr-mlflow-real-" });
    const authIni = join(tmp, "basic_auth.ini");
    await Deno.writeTextFile(
      authIni,
      `[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///${tmp}/auth.db\n` +
        `admin_username = ${USER}\nadmin_password = ${PASSWORD}\n` +
        `authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n`,
    );
    let server: MlflowServer | null = null;
    const outputs = join(tmp, "outputs");
    const cache = join(tmp, "cache");
    try {
      server = await startMlflow(join(tmp, "server"), {
        extraArgs: ["--app-name", "basic-auth"],
        env: { MLFLOW_AUTH_CONFIG_PATH: authIni, MLFLOW_FLASK_SERVER_SECRET_KEY: "cxr-test" },
      });
      const srv = server;
      const env = { CXR_OUTPUTS: outputs, CXR_CACHE: cache, MLFLOW_TRACKING_TOKEN: undefined };
      let trainedRunDir = "";

      await t.step(
        "a quick training logged over REST (password in the URI) reads back whole",
        async () => {
          const { value: result, lines } = await withEnv(
            {
              ...env,
              MLFLOW_TRACKING_URI: withPassword(srv.url),
              MLFLOW_EXPERIMENT_NAME: "cxr-it",
              MLFLOW_TRACKING_USERNAME: undefined,
              MLFLOW_TRACKING_PASSWORD: undefined,
            },
            () =>
              captureStderr(() =>
                trainRun(tinyTraining(), { progress: false, runsRoot: join(outputs, "runs") })
              ),
          );
          trainedRunDir = result.runDir;
          const status = JSON.parse(await Deno.readTextFile(join(result.runDir, "run.json")));
          assert.deepEqual(status.status, "finished");
          const run = await readRun(srv.url, status.mlflowRunId, AUTH_ENV);
          assert.deepEqual(run.status, "FINISHED");
          assert.deepEqual(run.experiment, "cxr-it"); // MLFLOW_EXPERIMENT_NAME
          assert.deepEqual(status.mlflowUri, srv.url); // where, without the password
          assert.deepEqual(run.run_name, result.runId);
          assert.deepEqual(run.params.net, "densenet121");
          assert.deepEqual(run.params.phase1_epochs, "2");
          assert.deepEqual(
            run.params.n_train,
            String(
              JSON.parse(
                await Deno.readTextFile(join(result.runDir, "config.json")),
              ).split.counts.train,
            ),
          );
          assert.deepEqual(run.tags["cxr.net"], "densenet121");
          assert.deepEqual(run.tags["mlflow.runName"], result.runId);
          assertStepsOnce(run, ["loss", "val_auc", "val_loss", "lr", "phase"], [1, 2, 3]);
          assert.deepEqual(
            run.metrics.phase.map((m) => m[2]),
            [1, 1, 2],
          );
          assert.deepEqual(run.metrics.final_val_auc.length, 1);
          for (const f of ["config.json", "history.json", "evaluation.json", "model/MLmodel"]) {
            assert.ok(run.files.includes(f), `${f} in ${run.files.join(", ")}`);
          }
          assert.ok(run.files.some((f) => f.startsWith("charts/")));
          assert.ok(run.files.includes("model/model.onnx"));
          assert.deepEqual(run.model!.loader, "mlflow.onnx");
          assert.deepEqual(run.model!.run_id, run.run_id);
          assert.deepEqual(run.model!.inputs, ["image"]);
          // pyfunc predicts the probability only, not the Grad-CAM feature map
          assert.deepEqual(run.model!.outputs, ["probability"]);
          // nothing untrue: cxr is not MLflow 2.16.0 and pinned no Python
          assert.deepEqual(run.model!.mlflow_version, null);
          assert.deepEqual(run.model!.python_version, null);
          // the password appears nowhere: run folder, tags, logs, spool
          assert.ok(
            !(await allText(result.runDir)).includes(PASSWORD),
            "password in the run folder",
          );
          assert.ok(!JSON.stringify(run.tags).includes(PASSWORD), "password in a tag");
          assert.ok(!lines.join("\n").includes(PASSWORD), "password in the log");
        },
      );

      await t.step(
        "the file store is read by the real client; the served model has the probability only",
        async () => {
          const root = join(tmp, "mlruns");
          const tracker = await openTracker({ runName: "file-run", uri: root }) as FileTracker;
          await tracker.logParams({ lr: 0.001, "optimizer:name": "adam" });
          await tracker.logMetrics({ loss: 0.5, "précision": 0.9, weird: NaN }, 1, 1000);
          await tracker.logMetrics({ loss: Infinity, weird: -Infinity }, 2, 2000);
          await tracker.setTags({ "cxr.net": "densenet121" });
          await tracker.logArtifact(join(trainedRunDir, "history.json"));
          const onnx = join(trainedRunDir, "classifier.onnx");
          await tracker.logOnnxModel(onnx, "model", { outputs: { head_dense: "probability" } });
          await tracker.end("FINISHED");
          const run = await readRun(`file://${root}`, tracker.runId);
          assert.deepEqual(run.status, "FINISHED");
          assert.deepEqual(run.params, { lr: "0.001", "optimizer:name": "adam" });
          assert.deepEqual(run.metrics.loss, [[1, 1000, 0.5], [2, 2000, "Infinity"]]);
          assert.deepEqual(run.metrics["précision"], [[1, 1000, 0.9]]);
          assert.deepEqual(run.metrics.weird, [[1, 1000, "NaN"], [2, 2000, "-Infinity"]]);
          assert.deepEqual(run.tags["cxr.net"], "densenet121");
          assert.ok(run.files.includes("history.json"));
          assert.deepEqual(run.model!.outputs, ["probability"]);
          assert.deepEqual(run.model!.inputs, ["image"]);
          // the exported graph: one output, equal to the classifier's probability
          const served = await openSession(join(tracker.run.runDir, "artifacts/model/model.onnx"), {
            threads: 1,
          });
          const full = await openSession(onnx, { threads: 1 });
          try {
            assert.deepEqual([...served.outputNames], ["probability"]);
            const image = {
              data: new Float32Array(224 * 224 * 3).fill(120),
              shape: [1, 224, 224, 3],
            };
            const a = await served.run({ image });
            const b = await full.run({ image }, ["head_dense"]);
            assert.deepEqual(a.probability.shape, [1, 1]);
            assert.deepEqual(a.probability.data[0], b.head_dense.data[0]);
          } finally {
            await served.close();
            await full.close();
          }
        },
      );

      await t.step(
        "--force trains again into a NEW MLflow run; the old one is left as it was",
        async () => {
          const before = JSON.parse(await Deno.readTextFile(join(trainedRunDir, "run.json")));
          const result = await withEnv({
            ...env,
            ...AUTH_ENV,
            MLFLOW_TRACKING_URI: srv.url,
            MLFLOW_EXPERIMENT_NAME: "cxr-it",
          }, () =>
            trainRun(tinyTraining(), {
              progress: false,
              force: true,
              runsRoot: join(outputs, "runs"),
              skipEvaluation: true,
              skipExport: true,
            }));
          assert.deepEqual(result.runDir, trainedRunDir);
          const after = JSON.parse(await Deno.readTextFile(join(result.runDir, "run.json")));
          assert.ok(after.mlflowRunId !== before.mlflowRunId, "a new MLflow run");
          const fresh = await readRun(srv.url, after.mlflowRunId, AUTH_ENV);
          const old = await readRun(srv.url, before.mlflowRunId, AUTH_ENV);
          assertStepsOnce(fresh, ["loss", "val_auc"], [1, 2, 3]);
          assertStepsOnce(old, ["loss", "val_auc"], [1, 2, 3]);
          assert.deepEqual(old.status, "FINISHED");
          assert.deepEqual(fresh.status, "FINISHED");
          assert.ok(fresh.runs_in_experiment.includes(before.mlflowRunId));
        },
      );

      await t.step("NaN and ±Inf metrics survive REST and the spool exactly", async () => {
        const root = join(tmp, "spool-nan");
        const down = `http://127.0.0.1:${freePort()}`;
        const tracker = await RestTracker.open({
          client: MlflowRestClient.fromEnv(down, { retries: 0 }),
          uri: down,
          experiment: "cxr-nan",
          runName: "nan-run",
          tags: {},
          userId: "tester",
          root,
          log: quiet,
        });
        await tracker.logMetrics({ a: NaN, b: Infinity, c: -Infinity, d: 1.5 }, 1, 111);
        await tracker.end("FINISHED");
        const records = await Deno.readTextFile(join(tracker.spool.dir, "records.jsonl"));
        assert.ok(records.includes('"value":"NaN"'), records);
        assert.ok(records.includes('"value":"-Infinity"'), records);
        // delivered later to another server (the real one): a new run with every record
        const { run } = await syncAndRead(srv.url, ["--spool", root, "--uri", srv.url], AUTH_ENV);
        assert.deepEqual(run.metrics, {
          a: [[1, 111, "NaN"]],
          b: [[1, 111, "Infinity"]],
          c: [[1, 111, "-Infinity"]],
          d: [[1, 111, 1.5]],
        });
      });

      await t.step(
        "server stopped mid-run: training goes on, mlflow:sync delivers each record once",
        async () => {
          const root = join(tmp, "spool-stop");
          const uri = withPassword(srv.url);
          const { lines } = await captureStderr(async () => {
            const tracker = await openTracker({
              experiment: "cxr-stop",
              runName: "stop-run",
              uri,
              spoolRoot: root,
              retryIntervalMs: 10,
            }) as RestTracker;
            // 150 params: more than one log-batch may carry (100)
            const params: Record<string, number> = {};
            for (let i = 0; i < 150; i++) params[`p${String(i).padStart(3, "0")}`] = i / 2;
            await tracker.logParams({ epochs: 6, ...params });
            for (let e = 1; e <= 2; e++) await tracker.logMetrics({ loss: 1 / e }, e, 1000 + e);
            await srv.stop();
            for (let e = 3; e <= 6; e++) {
              await tracker.logMetrics({ loss: 1 / e }, e, 1000 + e);
              await new Promise((r) => setTimeout(r, 15));
            }
            const report = join(tmp, "report.md");
            await Deno.writeTextFile(report, "# v1");
            await tracker.logArtifact(report);
            await Deno.writeTextFile(report, "# changed later");
            await tracker.end("FINISHED");
            assert.ok(tracker.pending >= 6, `pending ${tracker.pending}`);
            const state = await Deno.readTextFile(join(tracker.spool.dir, "state.json"));
            assert.ok(!state.includes(PASSWORD), "password in state.json");
            assert.ok(state.includes(srv.url), state);
          });
          assert.ok(!lines.join("\n").includes(PASSWORD), "password in the log");
          assert.ok(lines.some((l) => l.includes("mlflow:sync")));
          await srv.start();
          // credentials from MLFLOW_TRACKING_URI (same server), never printed
          const { run, printed } = await syncAndRead(srv.url, ["--spool", root], {
            MLFLOW_TRACKING_URI: uri,
            MLFLOW_TRACKING_USERNAME: undefined,
          });
          assert.ok(!printed.includes(PASSWORD), "password in mlflow:sync output");
          assert.deepEqual(run.status, "FINISHED");
          assertStepsOnce(run, ["loss"], [1, 2, 3, 4, 5, 6]);
          assert.deepEqual(Object.keys(run.params).length, 151);
          assert.deepEqual(run.params.p003, "1.5");
          assert.ok(run.files.includes("report.md"));
          assert.deepEqual(await exists(root) && [...Deno.readDirSync(root)].length, 0);
        },
      );

      await t.step("basic auth: a wrong password keeps records spooled and says why", async () => {
        const root = join(tmp, "spool-auth");
        const bad = srv.url.replace("http://", `http://${USER}:wrong@`);
        const logs: string[] = [];
        const tracker = await RestTracker.open({
          client: MlflowRestClient.fromEnv(bad),
          uri: bad,
          experiment: "cxr-auth",
          runName: "auth-run",
          tags: {},
          userId: "tester",
          root,
          log: (l) => logs.push(l),
        });
        await tracker.logMetrics({ loss: 1 }, 1, 5);
        await tracker.end("FINISHED");
        assert.deepEqual(tracker.pending, 2);
        assert.ok(logs.join("\n").includes("401"), logs.join("\n"));
        const { run } = await syncAndRead(srv.url, ["--spool", root], AUTH_ENV);
        assert.deepEqual(run.metrics.loss, [[1, 5, 1]]);
      });

      await t.step("a log-batch whose answer is lost is not duplicated", async () => {
        const proxy = new MlflowProxy(srv.url).start();
        try {
          const root = join(tmp, "spool-lost");
          const tracker = await RestTracker.open({
            client: MlflowRestClient.fromEnv(proxy.url, { ...AUTH_ENV_CLIENT, timeoutMs: 800 }),
            uri: proxy.url,
            experiment: "cxr-lost",
            runName: "lost-run",
            tags: {},
            userId: "tester",
            root,
            retryIntervalMs: 10,
            log: quiet,
          });
          await tracker.logMetrics({ loss: 0.9 }, 1, 100);
          proxy.hold.set("runs/log-batch", 2000); // applied by the server, answer too late
          await tracker.logMetrics({ loss: 0.7 }, 2, 200);
          await new Promise((r) => setTimeout(r, 20));
          await tracker.logMetrics({ loss: 0.5 }, 3, 300);
          await tracker.end("FINISHED");
          await syncSpool({
            root,
            client: (u) => MlflowRestClient.fromEnv(u, AUTH_ENV_CLIENT),
            log: quiet,
          });
          const run = await readRun(srv.url, tracker.runId, AUTH_ENV);
          assert.deepEqual(run.metrics.loss, [[1, 100, 0.9], [2, 200, 0.7], [3, 300, 0.5]]);
          assert.deepEqual(run.status, "FINISHED");
          assert.deepEqual(proxy.requests.filter((r) => r.path.endsWith("log-batch")).length, 3);
        } finally {
          await proxy.stop();
        }
      });

      await t.step(
        "a hung server costs training a few seconds; the process exits, run finished",
        async () => {
          const hung = hungServer();
          try {
            const train = async (extra: string[], tag: string) => {
              const t0 = performance.now();
              const child = new Deno.Command(Deno.execPath(), {
                args: [
                  "run",
                  "-A",
                  "lib/cli/train.ts",
                  "--model",
                  "densenet121",
                  "--weights",
                  "formula",
                  "--profile",
                  "quick",
                  "--subset",
                  "24",
                  "--epochs",
                  "2",
                  "--phase2-epochs",
                  "1",
                  "--data",
                  DATA,
                  "--quiet",
                  ...extra,
                ],
                cwd: PROJECT_ROOT,
                env: {
                  CXR_OUTPUTS: join(tmp, `out-${tag}`),
                  CXR_CACHE: cache,
                  MLFLOW_TRACKING_URI: hung.url,
                  NO_COLOR: "1",
                },
                stdout: "piped",
                stderr: "piped",
              }).spawn();
              const killer = setTimeout(() => child.kill("SIGKILL"), 240_000);
              const out = await child.output();
              clearTimeout(killer);
              const text = new TextDecoder().decode(out.stdout) +
                new TextDecoder().decode(out.stderr);
              return { code: out.code, seconds: (performance.now() - t0) / 1000, text };
            };
            const base = await train(["--no-mlflow"], "base");
            assert.deepEqual(base.code, 0, base.text);
            const slow = await train([], "hung");
            assert.deepEqual(slow.code, 0, slow.text);
            assert.ok(hung.connections() > 0, "the hung server was contacted");
            const extra = slow.seconds - base.seconds;
            console.log(
              `  hung server: ${slow.seconds.toFixed(1)} s vs ${base.seconds.toFixed(1)} s ` +
                `without MLflow (load ${Deno.loadavg()[0].toFixed(2)})`,
            );
            assert.ok(extra < 20, `a hung server cost ${extra.toFixed(1)} s`);
            const runs = join(tmp, "out-hung", "runs");
            const runDir = join(runs, [...Deno.readDirSync(runs)][0].name);
            const status = JSON.parse(await Deno.readTextFile(join(runDir, "run.json")));
            assert.deepEqual(status.status, "finished");
            // what the hung server never got is in the spool; sync sends it to a live server
            const spool = join(tmp, "out-hung", "mlflow-spool");
            const { run } = await syncAndRead(
              srv.url,
              ["--spool", spool, "--uri", srv.url],
              AUTH_ENV,
            );
            assert.deepEqual(run.status, "FINISHED");
            assertStepsOnce(run, ["loss", "val_auc"], [1, 2, 3]);
            assert.ok(run.files.includes("model/MLmodel"));
          } finally {
            hung.close();
          }
        },
      );
    } finally {
      await server?.stop();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
