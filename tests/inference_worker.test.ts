/**
 * loadClassifierInWorker: the same answers (and Grad-CAM activation) as the classifier opened in
 * this thread, concurrent calls answered whole, clean errors.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { IMAGE_SIZE, loadClassifier } from "../lib/inference/classifier.ts";
import {
  CLASSIFIER_FORMAT,
  CLASSIFIER_META_FILE,
  CLASSIFIER_ONNX_FILE,
} from "../lib/inference/meta.ts";
import {
  crashWorkerForTest,
  loadClassifierInWorker,
  ModelUnavailableError,
} from "../lib/inference/worker.ts";
import { startServer } from "../lib/serving/server.ts";
import sharp from "sharp";
import { weightLayout } from "../lib/models/layout.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { exportOnnx } from "../lib/onnx/export.ts";
import { tinySpec } from "../lib/onnx/tiny.ts";

const PER = IMAGE_SIZE * IMAGE_SIZE * 3;

/** A classifier package over the tiny net: "score" is the probability, "c1" the Grad-CAM layer. */
async function tinyPackage(dir: string) {
  const spec = tinySpec({ height: IMAGE_SIZE, width: IMAGE_SIZE });
  const onnx = exportOnnx(spec, formulaWeights(weightLayout(spec)), {
    outputs: ["score", "gmp"],
    preprocessing: "caffe",
  });
  await Deno.writeFile(join(dir, CLASSIFIER_ONNX_FILE), onnx);
  const meta = {
    format: CLASSIFIER_FORMAT,
    runId: "tiny-run",
    net: "resnet50",
    gradcamLayer: "gmp",
    threshold: { method: "0.5", value: 0.5, val_sensitivity: null, val_specificity: null },
    weights: { label: "formula (not ImageNet)", md5: "0".repeat(32), isImageNet: false },
    inputs: [{ name: "image", shape: [-1, 224, 224, 3], dtype: "float32", role: "image" }],
    outputs: [
      { name: "score", shape: [-1, 1], dtype: "float32", role: "probability" },
      { name: "gmp", shape: [-1, 16], dtype: "float32", role: "gradcam" },
    ],
    gradcamTail: null,
    intensity: "off",
  };
  await Deno.writeTextFile(join(dir, CLASSIFIER_META_FILE), JSON.stringify(meta));
}

Deno.test({
  name: "classifier in a worker: same answers as in this thread; a bad package is a clean error",
  sanitizeResources: false, // ORT keeps native handles
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cxr-worker-" });
    try {
      await tinyPackage(dir);
      const here = await loadClassifier(dir);
      const there = await loadClassifierInWorker(dir, { threads: 1 });
      try {
        assert.equal(there.id, "tiny-run");
        assert.equal(there.gradcamLayer, "gmp");
        const n = 3;
        const images = new Float32Array(n * PER).map((_, i) => (i * 7919) % 256);
        const a = await here.predict(images, n);
        const b = await there.predict(images, n);
        assert.deepEqual([...b.prob], [...a.prob]);
        assert.deepEqual(b.gradcam?.shape, a.gradcam?.shape);
        assert.deepEqual([...b.gradcam!.data], [...a.gradcam!.data]);
        assert.equal(images[1], 7919 % 256, "the caller keeps its pixels");
        // Batches of 16 in flight together come back whole and in order.
        const big = new Float32Array(16 * PER).fill(100);
        const [x, y] = await Promise.all([there.predict(big, 16), there.predict(big, 16)]);
        assert.equal(x.prob.length, 16);
        assert.deepEqual([...x.prob], [...y.prob]);
        await assert.rejects(there.predict(new Float32Array(5), 1), /expected 1x224x224x3/);
      } finally {
        await here.close();
        await there.close();
      }
      await Deno.remove(join(dir, CLASSIFIER_ONNX_FILE));
      await assert.rejects(loadClassifierInWorker(dir), /cannot read classifier model/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "classifier in a worker: a crash restarts it once; a second crash makes the model 503",
  sanitizeResources: false, // ORT keeps native handles
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cxr-worker-" });
    await tinyPackage(dir);
    const c = await loadClassifierInWorker(dir, { threads: 1 });
    const server = await startServer({ classifiers: [c], port: 0 });
    try {
      await server.handler.ready;
      const png = new Uint8Array(
        await sharp({ create: { width: 64, height: 64, channels: 3, background: "#777" } })
          .png().toBuffer(),
      );
      const predict = async () => {
        const r = await fetch(`${server.url}/v1/predict`, {
          method: "POST",
          body: png,
          headers: { "content-type": "image/png" },
        });
        return { status: r.status, json: await r.json() };
      };
      const readyz = async () => {
        const r = await fetch(`${server.url}/readyz`);
        return { status: r.status, json: await r.json() };
      };
      const first = await predict();
      assert.equal(first.status, 200, JSON.stringify(first.json));
      await crashWorkerForTest(c);
      const again = await predict(); // restarted, same package
      assert.equal(again.status, 200, JSON.stringify(again.json));
      assert.equal(again.json.results[0].probability, first.json.results[0].probability);
      assert.deepEqual((await readyz()).json.unavailable, []);
      await crashWorkerForTest(c);
      const down = await predict();
      assert.equal(down.status, 503);
      assert.equal(down.json.error.code, "model_unavailable");
      assert.match(down.json.error.message, /model tiny-run is unavailable: its worker died/);
      const ready = await readyz();
      assert.equal(ready.status, 503);
      assert.equal(ready.json.status, "unavailable");
      assert.deepEqual(ready.json.unavailable.map((m: { id: string }) => m.id), ["tiny-run"]);
    } finally {
      await server.close();
      await c.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "classifier in a worker: a hung worker is ended after hangMs and restarted on the next call",
  sanitizeResources: false, // ORT keeps native handles
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cxr-worker-hang-" });
    await tinyPackage(dir);
    const c = await loadClassifierInWorker(dir, { threads: 1, hangMs: 400 });
    try {
      const image = new Float32Array(PER).fill(100);
      const first = await c.predict(image, 1);
      await crashWorkerForTest(c, "hang");
      const t0 = performance.now();
      await assert.rejects(
        c.predict(image, 1),
        (e: Error) => e instanceof ModelUnavailableError && e.retryable && /hung/.test(e.message),
      );
      assert.ok(performance.now() - t0 < 5_000, "the call fails at hangMs, not never");
      assert.equal(c.unavailable?.(), null, "one hang: retried, not given up");
      const again = await c.predict(image, 1); // a fresh worker, same package
      assert.deepEqual(again.prob, first.prob);
    } finally {
      await c.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
