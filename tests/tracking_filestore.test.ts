import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { tinyOnnxModel } from "./tracking_fake_mlflow.ts";
import {
  FileTracker,
  NoopTracker,
  openTracker,
  redactUri,
  resolveExperimentName,
  resolveTrackingUri,
} from "../lib/tracking/tracker.ts";
import { parseFlatYaml } from "../lib/tracking/yaml.ts";
import { readOnnxGraphInfo } from "../lib/tracking/mlmodel.ts";
import { gitCommit } from "../lib/tracking/context.ts";

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "cxr-mlruns-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const read = (p: string) => Deno.readTextFile(p);
const meta = async (p: string) => parseFlatYaml(await read(p), p);

/** PyYAML's view of a YAML file (null when python3 + yaml are not installed). */
async function pyYaml(path: string): Promise<unknown> {
  try {
    const out = await new Deno.Command("python3", {
      args: [
        "-c",
        "import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        path,
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? JSON.parse(new TextDecoder().decode(out.stdout)) : null;
  } catch {
    return null;
  }
}

Deno.test("filestore: MLflow file-store layout, field by field", async () => {
  await withTemp(async (dir) => {
    const root = join(dir, "mlruns");
    const before = Date.now();
    const tracker = await openTracker({
      experiment: "cxr",
      runName: "densenet121-quick-formula",
      tags: { net: "densenet121", "cxr.backend": "wasm" },
      uri: root,
    });
    assert.ok(tracker instanceof FileTracker);
    assert.deepEqual(tracker.backend, "file");
    await tracker.logParams({
      net: "densenet121",
      lr: 0.001,
      restore_best: true,
      "phase1/epochs": 3,
    });
    await tracker.logMetrics({ loss: 0.69, val_auc: 1 }, 1, 1_700_000_001_000);
    await tracker.logMetrics({ loss: 0.5, val_auc: 0.875 }, 2, 1_700_000_002_000);
    await tracker.setTags({ "cxr.weights_md5": "d41d8cd9" });
    const hist = join(dir, "history.json");
    await Deno.writeTextFile(hist, "{}");
    await tracker.logArtifact(hist);
    await tracker.logArtifact(hist, "extra/deep");
    const charts = join(dir, "charts");
    await Deno.mkdir(charts);
    await Deno.writeTextFile(join(charts, "roc.svg"), "<svg/>");
    await tracker.logArtifact(charts);
    const onnx = join(dir, "classifier.onnx");
    await Deno.writeFile(onnx, tinyOnnxModel());
    await tracker.logOnnxModel(onnx, "model", {
      metadata: { net: "densenet121", threshold: 0.42 },
    });
    await tracker.end("FINISHED");
    const after = Date.now();

    // root: .trash and the Default experiment
    assert.ok((await Deno.stat(join(root, ".trash"))).isDirectory);
    const m0 = await meta(join(root, "0", "meta.yaml"));
    assert.deepEqual(m0.experiment_id, "0");
    assert.deepEqual(m0.name, "Default");
    assert.deepEqual(m0.lifecycle_stage, "active");
    assert.deepEqual(m0.artifact_location, pathToFileURL(join(root, "0")).href);

    // the experiment
    const run = (tracker as FileTracker).run;
    const expDir = join(root, run.experimentId);
    assert.match(run.experimentId, /^[1-9]\d*$/);
    const em = await meta(join(expDir, "meta.yaml"));
    assert.deepEqual(Object.keys(em), [
      "artifact_location",
      "creation_time",
      "experiment_id",
      "last_update_time",
      "lifecycle_stage",
      "name",
    ]);
    assert.deepEqual(em.name, "cxr");
    assert.deepEqual(em.experiment_id, run.experimentId);
    assert.deepEqual(em.lifecycle_stage, "active");
    assert.deepEqual(em.artifact_location, pathToFileURL(expDir).href);
    assert.ok(typeof em.creation_time === "number" && em.creation_time >= before);
    assert.deepEqual(em.last_update_time, em.creation_time);

    // the run's meta.yaml
    const runDir = join(expDir, run.runId);
    assert.match(run.runId, /^[0-9a-f]{32}$/);
    const rm = await meta(join(runDir, "meta.yaml"));
    assert.deepEqual(Object.keys(rm), [
      "artifact_uri",
      "deleted_time",
      "end_time",
      "entry_point_name",
      "experiment_id",
      "lifecycle_stage",
      "run_id",
      "run_name",
      "run_uuid",
      "source_name",
      "source_type",
      "source_version",
      "start_time",
      "status",
      "tags",
      "user_id",
    ]);
    assert.deepEqual(rm.artifact_uri, pathToFileURL(join(runDir, "artifacts")).href);
    assert.deepEqual(rm.deleted_time, null);
    assert.ok(typeof rm.end_time === "number" && rm.end_time >= (rm.start_time as number));
    assert.ok((rm.end_time as number) <= after);
    assert.deepEqual(rm.entry_point_name, "");
    assert.deepEqual(rm.experiment_id, run.experimentId);
    assert.deepEqual(rm.lifecycle_stage, "active");
    assert.deepEqual(rm.run_id, run.runId);
    assert.deepEqual(rm.run_uuid, run.runId);
    assert.deepEqual(rm.run_name, "densenet121-quick-formula");
    assert.deepEqual(rm.source_name, "");
    assert.deepEqual(rm.source_type, 4);
    assert.deepEqual(rm.source_version, "");
    assert.ok(typeof rm.start_time === "number" && rm.start_time >= before);
    assert.deepEqual(rm.status, 3); // FINISHED
    assert.deepEqual(rm.tags, []);
    assert.ok(typeof rm.user_id === "string" && rm.user_id !== "");

    // PyYAML (what MLflow uses) reads the same values and types
    const py = await pyYaml(join(runDir, "meta.yaml")) as Record<string, unknown> | null;
    if (py) {
      assert.deepEqual(py.experiment_id, run.experimentId); // a string, not an int
      assert.deepEqual(py.status, 3);
      assert.deepEqual(py.tags, []);
      assert.deepEqual(py.deleted_time, null);
      assert.deepEqual(py.run_name, rm.run_name);
      assert.deepEqual(
        (await pyYaml(join(root, "0", "meta.yaml")) as Record<string, unknown>).experiment_id,
        "0",
      );
    }

    // metrics: "<timestamp> <value> <step>" lines, Python float formatting
    assert.deepEqual(
      await read(join(runDir, "metrics", "loss")),
      "1700000001000 0.69 1\n1700000002000 0.5 2\n",
    );
    assert.deepEqual(
      await read(join(runDir, "metrics", "val_auc")),
      "1700000001000 1.0 1\n1700000002000 0.875 2\n",
    );
    // params: value without newline; "/" in a key makes a folder like MLflow
    assert.deepEqual(await read(join(runDir, "params", "net")), "densenet121");
    assert.deepEqual(await read(join(runDir, "params", "lr")), "0.001");
    assert.deepEqual(await read(join(runDir, "params", "restore_best")), "true");
    assert.deepEqual(await read(join(runDir, "params", "phase1", "epochs")), "3");
    // tags
    const tag = (k: string) => read(join(runDir, "tags", k));
    assert.deepEqual(await tag("mlflow.runName"), "densenet121-quick-formula");
    assert.deepEqual(await tag("mlflow.source.type"), "LOCAL");
    assert.ok((await tag("mlflow.source.name")).length > 0);
    assert.deepEqual(await tag("mlflow.user"), rm.user_id);
    const commit = gitCommit();
    if (commit) assert.deepEqual(await tag("mlflow.source.git.commit"), commit);
    assert.deepEqual(await tag("net"), "densenet121");
    assert.deepEqual(await tag("cxr.backend"), "wasm");
    assert.deepEqual(await tag("cxr.weights_md5"), "d41d8cd9");
    // artifacts
    const art = join(runDir, "artifacts");
    assert.deepEqual(await read(join(art, "history.json")), "{}");
    assert.deepEqual(await read(join(art, "extra", "deep", "history.json")), "{}");
    assert.deepEqual(await read(join(art, "charts", "roc.svg")), "<svg/>");
    assert.deepEqual(await Deno.readFile(join(art, "model", "model.onnx")), tinyOnnxModel());
    const mlmodel = await read(join(art, "model", "MLmodel"));
    for (
      const line of [
        "artifact_path: 'model'",
        "  onnx:",
        "    data: 'model.onnx'",
        "  python_function:",
        "    loader_module: 'mlflow.onnx'",
        `run_id: '${run.runId}'`,
      ]
    ) assert.ok(mlmodel.includes(line), mlmodel);
    // deno-lint-ignore no-explicit-any
    const pyModel = await pyYaml(join(art, "model", "MLmodel")) as Record<string, any> | null;
    if (pyModel) {
      assert.deepEqual(pyModel.flavors.onnx.data, "model.onnx");
      assert.deepEqual(pyModel.flavors.python_function.loader_module, "mlflow.onnx");
      assert.deepEqual(pyModel.flavors.python_function.data, "model.onnx");
      assert.deepEqual(pyModel.metadata.threshold, 0.42);
      assert.deepEqual(pyModel.metadata.onnx_opset, 13);
      assert.match(pyModel.model_uuid, /^[0-9a-f]{32}$/);
      assert.match(pyModel.utc_time_created, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
      // signature derived from the ONNX graph; the initializer "w" is not an input
      assert.deepEqual(JSON.parse(pyModel.signature.inputs), [
        {
          type: "tensor",
          "tensor-spec": { dtype: "float32", shape: [-1, 4, 4, 3] },
          name: "image",
        },
      ]);
      assert.deepEqual(JSON.parse(pyModel.signature.outputs)[0].name, "head_dense");
    }
    const history = JSON.parse(await tag("mlflow.log-model.history"));
    assert.deepEqual(history.length, 1);
    assert.deepEqual(history[0].run_id, run.runId);
    assert.deepEqual(history[0].flavors.python_function.loader_module, "mlflow.onnx");

    // a second run reuses the experiment; a new name makes a new one
    const t2 = await openTracker({ experiment: "cxr", runName: "r2", uri: root }) as FileTracker;
    assert.deepEqual(t2.run.experimentId, run.experimentId);
    await t2.end("FAILED");
    assert.deepEqual((await meta(join(t2.run.runDir, "meta.yaml"))).status, 4);
    const t3 = await openTracker({
      experiment: "other",
      runName: "r3",
      uri: `file://${root}`,
    }) as FileTracker;
    assert.ok(t3.run.experimentId !== run.experimentId);
    await t3.end("KILLED");
    assert.deepEqual((await meta(join(t3.run.runDir, "meta.yaml"))).status, 5);
  });
});

Deno.test("filestore: resume reopens the run; params immutable; names as MLflow 2.17 checks them", async () => {
  await withTemp(async (dir) => {
    const root = join(dir, "mlruns");
    const t1 = await openTracker({
      experiment: "cxr",
      runName: "resumable",
      uri: root,
    }) as FileTracker;
    await t1.logParams({ lr: 0.1 });
    await t1.logMetrics({ loss: 1 }, 1, 5);
    await t1.end("KILLED");
    const t2 = await openTracker({
      experiment: "cxr",
      runName: "resumable",
      uri: root,
      resumeRunId: t1.runId,
    }) as FileTracker;
    assert.deepEqual(t2.runId, t1.runId);
    const runMeta = join(t2.run.runDir, "meta.yaml");
    assert.deepEqual((await meta(runMeta)).status, 1);
    assert.deepEqual((await meta(runMeta)).end_time, null);
    await t2.logParams({ lr: 0.1 }); // same value: fine
    await assert.rejects(() => t2.logParams({ lr: 0.2 }), /Changing param values is not allowed/);
    // mlflow/utils/validation.py: `^[/\w.\- :]*$` (Unicode \w) and no path-like names
    for (const bad of ["bad!name", "../escape", "..a", "a//b", "a/", "/abs", "", "tab\tname"]) {
      await assert.rejects(() => t2.logMetrics({ [bad]: 1 }, 2), /Invalid metric name/);
    }
    await assert.rejects(() => t2.logParams({ ["x".repeat(251)]: 1 }), /longer than 250/);
    await t2.logMetrics({ "val:auc": 0.7, "précision/été": 0.6, "損失": 0.4 }, 2, 6);
    await t2.setTags({ "cxr:note": "ok", "é": "ü" });
    await assert.rejects(() => t2.logArtifact(join(dir, "missing.txt")), Error);
    await t2.logMetrics({ loss: 0.5 }, 2, 6);
    await t2.end("FINISHED");
    assert.deepEqual((await meta(runMeta)).status, 3);
    assert.deepEqual(await read(join(t2.run.runDir, "metrics", "loss")), "5 1.0 1\n6 0.5 2\n");
    assert.deepEqual(await read(join(t2.run.runDir, "metrics", "val:auc")), "6 0.7 2\n");
    assert.deepEqual(await read(join(t2.run.runDir, "metrics", "précision", "été")), "6 0.6 2\n");
    await assert.rejects(() => t2.logMetrics({ loss: 0.1 }, 3), Error); // ended
    // a run id from another store (or deleted) starts a new run instead of failing
    const lines: string[] = [];
    const t3 = await FileTracker.open(
      root,
      { experiment: "cxr", runName: "x", resumeRunId: "f".repeat(32) },
      (l) => lines.push(l),
    );
    assert.ok(t3.runId !== "f".repeat(32));
    assert.ok(lines.join("\n").includes("is not in"), lines.join("\n"));
    await t3.end("FINISHED");
  });
});

Deno.test("openTracker: null is off; undefined uses MLFLOW_TRACKING_URI, else outputs/mlruns", async () => {
  const off = await openTracker({ experiment: "e", runName: "r", uri: null });
  assert.ok(off instanceof NoopTracker);
  assert.deepEqual(off.backend, "off");
  await off.logMetrics({ loss: 1 }, 1);
  await off.end("FINISHED");
  const saved = { uri: Deno.env.get("MLFLOW_TRACKING_URI"), out: Deno.env.get("CXR_OUTPUTS") };
  try {
    await withTemp(async (dir) => {
      Deno.env.delete("MLFLOW_TRACKING_URI");
      Deno.env.set("CXR_OUTPUTS", dir);
      assert.deepEqual(resolveTrackingUri(undefined), join(dir, "mlruns"));
      const t = await openTracker({ experiment: "e", runName: "r" }) as FileTracker;
      assert.deepEqual(t.store.root, join(dir, "mlruns"));
      await t.end("FINISHED");
      Deno.env.set("MLFLOW_TRACKING_URI", join(dir, "elsewhere"));
      assert.deepEqual(resolveTrackingUri(undefined), join(dir, "elsewhere"));
      assert.deepEqual(resolveTrackingUri("http://h:5000"), "http://h:5000");
      await assert.rejects(
        () => openTracker({ experiment: "e", runName: "r", uri: "s3://bucket" }),
        Error,
      );
    });
  } finally {
    saved.uri === undefined
      ? Deno.env.delete("MLFLOW_TRACKING_URI")
      : Deno.env.set("MLFLOW_TRACKING_URI", saved.uri);
    saved.out === undefined
      ? Deno.env.delete("CXR_OUTPUTS")
      : Deno.env.set("CXR_OUTPUTS", saved.out);
  }
});

Deno.test("tracking URIs: unsupported schemes fail clearly; experiment from MLFLOW_EXPERIMENT_NAME; passwords redacted", async () => {
  for (
    const uri of ["databricks", "databricks://profile", "databricks-uc", "sqlite:///mlflow.db"]
  ) {
    await assert.rejects(
      () => openTracker({ runName: "r", uri }),
      /is not supported.*http\(s\):\/\/host:port|http\(s\):\/\/host:port.*is not supported/s,
    );
  }
  await assert.rejects(
    () => openTracker({ runName: "r", uri: "postgresql://bob:hunter2@db/mlflow" }),
    (e) => {
      assert.ok(e instanceof Error && !e.message.includes("hunter2"), String(e));
      return true;
    },
  );
  assert.deepEqual(redactUri("x http://al:pw@h:5000/a y"), "x http://al:***@h:5000/a y");
  assert.deepEqual(redactUri("https://h:5000"), "https://h:5000");
  const saved = Deno.env.get("MLFLOW_EXPERIMENT_NAME");
  try {
    await withTemp(async (dir) => {
      Deno.env.set("MLFLOW_EXPERIMENT_NAME", "pneumonia-study");
      const t = await openTracker({ runName: "r", uri: join(dir, "mlruns") }) as FileTracker;
      await t.end("FINISHED");
      const expMeta = await meta(join(dir, "mlruns", t.run.experimentId, "meta.yaml"));
      assert.deepEqual(expMeta.name, "pneumonia-study");
      // an explicit experiment wins, like mlflow.set_experiment
      assert.deepEqual(resolveExperimentName("mine"), "mine");
      Deno.env.delete("MLFLOW_EXPERIMENT_NAME");
      assert.deepEqual(resolveExperimentName(), "cxr");
    });
  } finally {
    saved === undefined
      ? Deno.env.delete("MLFLOW_EXPERIMENT_NAME")
      : Deno.env.set("MLFLOW_EXPERIMENT_NAME", saved);
  }
});

Deno.test("openTracker: a run logged to another store is not resumed there (mustExist: an error)", async () => {
  await withTemp(async (dir) => {
    const a = join(dir, "a"), b = join(dir, "b");
    const t1 = await openTracker({ runName: "r", uri: a }) as FileTracker;
    await t1.end("FINISHED");
    assert.deepEqual(t1.uri, a);
    const lines: string[] = [];
    const t2 = await openTracker({
      runName: "r",
      uri: b,
      resumeRunId: t1.runId,
      resumeUri: t1.uri,
      log: (l) => lines.push(l),
    }) as FileTracker;
    assert.ok(t2.runId !== t1.runId);
    assert.deepEqual(t2.uri, b);
    assert.ok(lines.join("\n").includes(`was logged to ${a}`), lines.join("\n"));
    await t2.end("FINISHED");
    await assert.rejects(
      () =>
        openTracker({
          runName: "r",
          uri: b,
          resumeRunId: t1.runId,
          resumeUri: t1.uri,
          mustExist: true,
        }),
      /was logged to/,
    );
    await assert.rejects(
      () => openTracker({ runName: "r", uri: b, resumeRunId: "f".repeat(32), mustExist: true }),
      Error,
    );
    // same store: reopened
    const t3 = await openTracker({ runName: "r", uri: a, resumeRunId: t1.runId, resumeUri: a });
    assert.deepEqual(t3.runId, t1.runId);
    await t3.end("FINISHED");
  });
});

Deno.test("mlmodel: ONNX graph info (ir, opset, inputs without initializers, outputs)", () => {
  const info = readOnnxGraphInfo(tinyOnnxModel());
  assert.deepEqual(info.irVersion, 8);
  assert.deepEqual(info.opsetVersion, 13);
  assert.deepEqual(info.inputs.map((i) => i.name), ["image"]);
  assert.deepEqual(info.outputs[0]["tensor-spec"], { dtype: "float32", shape: [-1, 1] });
  let threw = false;
  try {
    readOnnxGraphInfo(new TextEncoder().encode("not an onnx file at all"));
  } catch {
    threw = true;
  }
  assert.ok(threw);
});
