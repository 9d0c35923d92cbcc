import assert from "node:assert/strict";
import { join } from "node:path";
import { FakeMlflow, type FakeRun, tinyOnnxModel } from "./tracking_fake_mlflow.ts";
import { MlflowApiError, MlflowRestClient, MlflowUnavailableError } from "../lib/tracking/rest.ts";
import { RestTracker, Spool, type SpoolRecord, syncSpool } from "../lib/tracking/spool.ts";
import { hungServer } from "./mlflow_real.ts";
import { main as syncMain } from "../lib/cli/mlflow_sync.ts";

const quiet = () => {};

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "cxr-tracking-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function fastClient(
  uri: string,
  extra: Partial<ConstructorParameters<typeof MlflowRestClient>[0]> = {},
) {
  return new MlflowRestClient({ uri, retries: 1, backoffMs: 5, timeoutMs: 5000, ...extra });
}

function openRest(fake: FakeMlflow, root: string, runName: string, client?: MlflowRestClient) {
  return RestTracker.open({
    client: client ?? fastClient(fake.url),
    uri: fake.url,
    experiment: "cxr-test",
    runName,
    tags: { net: "resnet50" },
    userId: "tester",
    root,
    retryIntervalMs: 20,
    log: quiet,
  });
}

function metricCounts(run: FakeRun): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of run.metrics) {
    const id = `${m.key}@${m.step}`;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

Deno.test("rest: log-batch limits are respected (2500 metrics) and enforced by the fake", async () => {
  const fake = new FakeMlflow();
  fake.start();
  try {
    await withTemp(async (dir) => {
      const tracker = await openRest(fake, dir, "many-metrics");
      const metrics: Record<string, number> = {};
      for (let i = 0; i < 2500; i++) metrics[`m${i}`] = i;
      await tracker.logMetrics(metrics, 7, 1234);
      await tracker.end("FINISHED");
      const run = fake.runByName("many-metrics")[0];
      assert.deepEqual(run.metrics.length, 2500);
      assert.deepEqual(run.metrics[2499], { key: "m2499", value: 2499, timestamp: 1234, step: 7 });
      // the fake refuses what a real server refuses
      const body = {
        run_id: run.info.run_id,
        metrics: Array.from(
          { length: 1001 },
          (_, i) => ({ key: `x${i}`, value: 1, timestamp: 1, step: 0 }),
        ),
      };
      const res = await fetch(`${fake.url}/api/2.0/mlflow/runs/log-batch`, {
        method: "POST",
        body: JSON.stringify(body),
      });
      assert.deepEqual(res.status, 400);
      const err = await res.json();
      assert.deepEqual(err.error_code, "INVALID_PARAMETER_VALUE");
      assert.ok(err.message.includes("at most 1000 metrics"), err.message);
    });
  } finally {
    await fake.stop();
  }
});

Deno.test("rest: MLflow error bodies become clear errors; bearer token sent", async () => {
  const fake = new FakeMlflow();
  fake.requiredAuth = "Bearer tok-123";
  fake.start();
  try {
    const client = fastClient(fake.url, { token: "tok-123" });
    const id = await client.getOrCreateExperiment("exp-a");
    assert.deepEqual(await client.getOrCreateExperiment("exp-a"), id);
    await assert.rejects(() => client.createExperiment("exp-a"), (e) => {
      assert.ok(e instanceof MlflowApiError);
      assert.equal(e.errorCode, "RESOURCE_ALREADY_EXISTS");
      assert.match(e.message, /experiments\/create/);
      assert.match(e.message, /already exists/);
      return true;
    });
    await assert.rejects(
      () => client.createRun({ experimentId: "999", runName: "x", startTime: 1, tags: {} }),
      (e) => {
        assert.ok(e instanceof MlflowApiError);
        assert.equal(e.status, 404);
        assert.match(e.message, /runs\/create failed \(HTTP 404 RESOURCE_DOES_NOT_EXIST\)/);
        return true;
      },
    );
    assert.deepEqual(await client.getExperimentByName("missing"), null);
    const bad = fastClient(fake.url, { token: "wrong" });
    await assert.rejects(
      () => bad.getExperimentByName("exp-a"),
      (e) => e instanceof MlflowApiError && e.isAuth,
    );
    // a changed param is refused (INVALID_PARAMETER_VALUE); the run goes on and finishes
    await withTemp(async (dir) => {
      const tracker = await openRest(fake, dir, "param-change", client);
      await tracker.logParams({ lr: 0.001 });
      await tracker.logParams({ lr: 0.01 });
      await tracker.logMetrics({ loss: 0.3 }, 1);
      assert.deepEqual(tracker.spool.state.rejected.length, 1);
      assert.ok(
        tracker.spool.state.rejected[0].error.includes("INVALID_PARAMETER_VALUE"),
        tracker.spool.state.rejected[0].error,
      );
      await tracker.end("FINISHED");
      const run = fake.runByName("param-change")[0];
      assert.deepEqual(run.params.get("lr"), "0.001");
      assert.deepEqual(run.info.status, "FINISHED");
      assert.deepEqual(run.metrics.length, 1);
    });
    assert.ok(fake.requests.filter((r) => r.auth === "Bearer tok-123").length > 5);
  } finally {
    await fake.stop();
  }
});

Deno.test("rest: 5xx answers are retried with backoff; unreachable server is reported", async () => {
  const fake = new FakeMlflow();
  fake.start();
  try {
    const client = fastClient(fake.url, { retries: 3 });
    fake.failNext = { count: 2, status: 503 };
    assert.deepEqual(typeof (await client.getOrCreateExperiment("retry")), "string");
    assert.deepEqual(fake.failNext.count, 0);
    fake.failNext = { count: 10, status: 500 };
    await assert.rejects(() => client.getExperimentByName("retry"), MlflowUnavailableError);
    fake.failNext.count = 0;
  } finally {
    await fake.stop();
  }
  const down = fastClient(fake.url);
  await assert.rejects(() => down.getExperimentByName("x"), (e) => {
    assert.ok(e instanceof MlflowUnavailableError);
    assert.match(e.message, /experiments\/get-by-name/);
    return true;
  });
});

Deno.test("rest fault: server down from the start; sync creates exactly one run, KILLED", async () => {
  const fake = new FakeMlflow();
  fake.start();
  await fake.stop();
  try {
    await withTemp(async (dir) => {
      const root = join(dir, "spool");
      const tracker = await openRest(fake, root, "offline-run");
      assert.match(tracker.runId, /^\d{8}T\d{6}-[0-9a-f]{8}$/); // local key until created
      await tracker.logParams({ a: 1 });
      await tracker.logMetrics({ loss: 0.5 }, 1, 10);
      const onnx = join(dir, "m.onnx");
      await Deno.writeFile(onnx, tinyOnnxModel());
      await tracker.logOnnxModel(onnx);
      await tracker.end("KILLED");
      assert.deepEqual(tracker.pending, 4);
      fake.start();
      const lines: string[] = [];
      const code = await syncMain(["--spool", root, "--uri", fake.url], (s) => lines.push(s));
      assert.deepEqual(code, 0);
      assert.ok(lines.join("\n").includes("offline-run"), lines.join("\n"));
      assert.ok(lines.join("\n").includes("ended KILLED"), lines.join("\n"));
      assert.ok(lines.at(-1)!.includes("replayed 4 records, 0 pending"), lines.at(-1)!);
      assert.deepEqual(fake.runs.size, 1);
      const run = fake.runByName("offline-run")[0];
      assert.deepEqual(run.info.status, "KILLED");
      assert.deepEqual(run.params.get("a"), "1");
      assert.deepEqual(run.metrics, [{ key: "loss", value: 0.5, timestamp: 10, step: 1 }]);
      const mlmodel = fake.artifacts.get(
        `${run.info.experiment_id}/${run.info.run_id}/artifacts/model/MLmodel`,
      );
      // the model dir is written at delivery, with the run id the server gave
      assert.ok(
        new TextDecoder().decode(mlmodel).includes(`run_id: '${run.info.run_id}'`),
        new TextDecoder().decode(mlmodel),
      );
    });
  } finally {
    await fake.stop();
  }
});

Deno.test("rest fault: lost answers (create, log-batch) are not duplicated on replay", async () => {
  const fake = new FakeMlflow();
  fake.start();
  try {
    await withTemp(async (dir) => {
      // a fetch that lets chosen requests reach the server, then drops the answer
      const dropAnswer = new Set<string>(["runs/create", "runs/log-batch"]);
      const lossy: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        const hit = [...dropAnswer].find((e) => String(input).includes(`/api/2.0/mlflow/${e}`));
        if (hit) {
          dropAnswer.delete(hit);
          await res.body?.cancel();
          throw new TypeError("connection reset (answer lost)");
        }
        return res;
      };
      const root = join(dir, "spool");
      const tracker = await openRest(
        fake,
        root,
        "lossy",
        fastClient(fake.url, { retries: 0, fetchImpl: lossy }),
      );
      assert.deepEqual(fake.runs.size, 1); // created, but the tracker did not hear back
      assert.deepEqual(tracker.spool.state.remoteRunId, null);
      await tracker.logMetrics({ loss: 0.9, acc: 0.6 }, 1, 100);
      await new Promise((r) => setTimeout(r, 30)); // past retryIntervalMs
      await tracker.logMetrics({ loss: 0.7, acc: 0.7 }, 2, 200); // answer of this batch dropped
      await new Promise((r) => setTimeout(r, 30));
      await tracker.logMetrics({ loss: 0.5, acc: 0.8 }, 3, 300);
      await tracker.end("FINISHED");
      await syncSpool({ root, client: (uri) => fastClient(uri), log: quiet });
      assert.deepEqual(fake.runs.size, 1);
      const run = [...fake.runs.values()][0];
      assert.deepEqual(run.info.status, "FINISHED");
      const counts = metricCounts(run);
      assert.deepEqual([...counts.values()], [1, 1, 1, 1, 1, 1]);
      assert.deepEqual(run.metrics.length, 6);
    });
  } finally {
    await fake.stop();
  }
});

Deno.test("mlflow:sync CLI: unknown flag exits 2; empty spool says so", async () => {
  assert.deepEqual(await syncMain(["--bogus"]), 2);
  await withTemp(async (dir) => {
    const lines: string[] = [];
    assert.deepEqual(await syncMain(["--spool", dir], (s) => lines.push(s)), 0);
    assert.ok(lines[0].includes("nothing to replay"), lines[0]);
  });
});

Deno.test("rest: a hung server costs at most the stall budget, then the run only spools", async () => {
  const hung = hungServer();
  try {
    await withTemp(async (dir) => {
      const logs: string[] = [];
      const t0 = performance.now();
      const tracker = await RestTracker.open({
        client: new MlflowRestClient({ uri: hung.url, timeoutMs: 300 }),
        uri: hung.url,
        experiment: "cxr-test",
        runName: "hung",
        tags: {},
        userId: "tester",
        root: dir,
        retryIntervalMs: 0,
        stallBudgetMs: 700,
        log: (l) => logs.push(l),
      });
      for (let e = 1; e <= 10; e++) await tracker.logMetrics({ loss: 1 / e }, e, e);
      await tracker.end("FINISHED");
      const ms = performance.now() - t0;
      // a timeout is never retried at once: one connection per try, 3 tries (300 ms each)
      assert.deepEqual(hung.connections(), 3);
      assert.ok(ms < 2000, `${ms} ms`);
      assert.ok(tracker.gaveUp);
      assert.deepEqual(tracker.pending, 11);
      assert.ok(logs.join("\n").includes("no more tries until the run ends"), logs.join("\n"));
    });
  } finally {
    hung.close();
  }
});

Deno.test("spool: NaN/±Inf kept on disk; credentials never stored (older spools scrubbed)", async () => {
  await withTemp(async (dir) => {
    const url = "http://127.0.0.1:9"; // nothing may listen there
    const tracker = await RestTracker.open({
      client: fastClient(url, { retries: 0 }),
      uri: "http://bob:hunter2@127.0.0.1:9",
      experiment: "e",
      runName: "nan",
      tags: {},
      userId: "t",
      root: dir,
      log: quiet,
    });
    await tracker.logMetrics({ a: NaN, b: -Infinity, c: Infinity }, 1, 7);
    const state = await Deno.readTextFile(join(tracker.spool.dir, "state.json"));
    assert.ok(!state.includes("hunter2"));
    assert.deepEqual(tracker.uri, "http://127.0.0.1:9");
    const loaded = await Spool.load(tracker.spool.dir);
    const batch = loaded.records[0] as Extract<SpoolRecord, { kind: "batch" }>;
    assert.deepEqual(batch.batch.metrics.map((m) => m.value), [NaN, -Infinity, Infinity]);
    // a spool written by an older version: null for NaN, the password in state.json
    const old = JSON.parse(state);
    old.uri = "http://bob:hunter2@127.0.0.1:9";
    await Deno.writeTextFile(join(tracker.spool.dir, "state.json"), JSON.stringify(old));
    await Deno.writeTextFile(
      join(tracker.spool.dir, "records.jsonl"),
      '{"seq":0,"kind":"batch","batch":{"metrics":[{"key":"a","value":null,"timestamp":1,"step":1}],"params":[],"tags":[]}}\n',
    );
    const legacy = await Spool.load(tracker.spool.dir);
    assert.deepEqual(legacy.legacyUri, "http://bob:hunter2@127.0.0.1:9");
    assert.ok(
      !(await Deno.readTextFile(join(tracker.spool.dir, "state.json"))).includes("hunter2"),
    );
    const m = (legacy.records[0] as Extract<SpoolRecord, { kind: "batch" }>).batch.metrics[0];
    assert.ok(Number.isNaN(m.value));
  });
});
