/**
 * The batcher (lib/serving/batcher.ts): per-image answers equal to unbatched ones on a real ORT
 * graph, one model per batch, a failing item alone failing, deadlines, the pending bound, and a
 * lone request never waiting for the window.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Classifier } from "../lib/inference/classifier.ts";
import { IMAGE_SIZE } from "../lib/inference/classifier.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { exportOnnx, IMAGE_INPUT } from "../lib/onnx/export.ts";
import { openSession } from "../lib/onnx/session.ts";
import { tinySpec } from "../lib/onnx/tiny.ts";
import { PredictBatcher } from "../lib/serving/batcher.ts";
import { HttpError } from "../lib/serving/errors.ts";
import { createHandler } from "../lib/serving/server.ts";
import { sharedDir } from "../lib/util/paths.ts";
import { brightnessClassifier } from "./fake_classifier.ts";
import { fakeClassifier } from "./serving_fixtures.ts";

const PER = IMAGE_SIZE * IMAGE_SIZE * 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A deterministic, distinct 224x224 RGB image per seed. */
function image(seed: number): Float32Array {
  const x = new Float32Array(PER);
  for (let i = 0; i < PER; i++) x[i] = (i * 31 + seed * 977 + ((i * seed) % 13) * 7) % 256;
  return x;
}

/** Runs `k` predictions at once, each announced first as the server does. */
function together(b: PredictBatcher, images: Float32Array[], signal?: AbortSignal) {
  const withdraw = images.map(() => b.expect());
  const outs = images.map((img) => b.predict(img, signal));
  withdraw.forEach((f) => f());
  return outs;
}

Deno.test("batcher: 16 concurrent images in one ORT call give each image's unbatched answer", async () => {
  const spec = tinySpec({ height: IMAGE_SIZE, width: IMAGE_SIZE });
  const bytes = exportOnnx(spec, formulaWeights(weightLayout(spec)), {
    outputs: ["feats"],
    preprocessing: "caffe",
  });
  const model = await openSession(bytes, { threads: 1 });
  let calls = 0;
  // The whole feature vector rides in the Grad-CAM slot, so every value is compared.
  const c: Classifier = {
    ...brightnessClassifier({ id: "tiny" }),
    async predict(images, n) {
      calls++;
      const out = await model.run({ [IMAGE_INPUT]: { data: images, shape: [n, 224, 224, 3] } });
      const f = out.feats.shape[1];
      const prob = Float32Array.from({ length: n }, (_, k) => out.feats.data[k * f]);
      return { prob, gradcam: { data: Float32Array.from(out.feats.data), shape: [n, f] } };
    },
  };
  try {
    const images = Array.from({ length: 16 }, (_, k) => image(k + 1));
    const alone: number[][] = [];
    for (const img of images) alone.push([...(await c.predict(img, 1)).gradcam!.data]);
    assert.ok(
      new Set(alone.map((v) => v.join())).size === 16,
      "the images give different features",
    );
    calls = 0;
    const b = new PredictBatcher(c, { maxBatch: 16, windowMs: 50, maxPending: 64 });
    const batched = (await Promise.all(together(b, images))).map((r) => [...r.gradcam!.data]);
    assert.equal(calls, 1, "one ORT call for the 16");
    assert.deepEqual(batched, alone);
  } finally {
    await model.close();
  }
});

Deno.test("batcher: Grad-CAM activations are sliced per image; maxBatch splits the queue", async () => {
  const c = fakeClassifier("densenet121", "dn");
  const b = new PredictBatcher(c, { maxBatch: 4, windowMs: 50, maxPending: 64 });
  const images = Array.from({ length: 10 }, (_, k) => new Float32Array(PER).fill(k * 20));
  const outs = await Promise.all(together(b, images));
  outs.forEach((o, k) => {
    assert.ok(Math.abs(o.prob - (k * 20) / 255) < 1e-6);
    assert.deepEqual(o.gradcam?.shape, [1, 7, 7, 4]);
    assert.equal(o.gradcam?.data.length, 7 * 7 * 4);
  });
  assert.equal(c.images, 10);
  assert.equal(c.calls, 3, "batches of at most 4: 4 + 4 + 2");
});

Deno.test("batcher: a failing item fails alone; its batch-mates get their answers", async () => {
  const base = brightnessClassifier();
  let calls = 0;
  const c: Classifier = {
    ...base,
    predict(images, n) {
      calls++;
      // An image whose first pixel is 7 breaks the model (and any batch holding it).
      for (let k = 0; k < n; k++) {
        if (images[k * PER] === 7) return Promise.reject(new Error("bad pixels"));
      }
      return base.predict(images, n);
    },
  };
  const b = new PredictBatcher(c, { maxBatch: 16, windowMs: 50, maxPending: 64 });
  const images = [10, 7, 30, 40].map((v) => new Float32Array(PER).fill(v));
  const settled = await Promise.allSettled(together(b, images));
  assert.deepEqual(settled.map((s) => s.status), [
    "fulfilled",
    "rejected",
    "fulfilled",
    "fulfilled",
  ]);
  assert.match(String((settled[1] as PromiseRejectedResult).reason), /bad pixels/);
  const probs = settled.map((s) => s.status === "fulfilled" ? s.value.prob : null);
  assert.deepEqual(probs.map((p) => p === null ? null : Math.round(p * 255)), [10, null, 30, 40]);
  assert.equal(calls, 5, "the batch, then each item alone");
});

Deno.test("batcher: deadlines: a waiting item leaves the queue, a running one is answered at once", async () => {
  const c = fakeClassifier("densenet121", "slow", { delayMs: 300 });
  const b = new PredictBatcher(c, { maxBatch: 16, windowMs: 5, maxPending: 64 });
  const first = b.predict(new Float32Array(PER).fill(10)); // runs alone at once
  const ctl = new AbortController();
  const waiting = b.predict(new Float32Array(PER).fill(20), ctl.signal); // queued behind it
  const t = performance.now();
  setTimeout(() => ctl.abort(new HttpError(504, "timeout", "too slow")), 30);
  await assert.rejects(waiting, (e: unknown) => e instanceof HttpError && e.status === 504);
  assert.ok(performance.now() - t < 200, "answered at its deadline, not after the batch");
  assert.equal(b.pending, 0, "it left the queue");
  assert.ok(Math.abs((await first).prob - 10 / 255) < 1e-6);
  await sleep(50);
  assert.equal(c.images, 1, "the timed-out image never reached the model");

  // A deadline passing while its batch runs: that item gets its 504, its batch-mates their answers.
  const late = new AbortController();
  const outs = together(b, [10, 20, 30].map((v) => new Float32Array(PER).fill(v)));
  const doomed = b.predict(new Float32Array(PER).fill(40), late.signal);
  await sleep(0);
  late.abort(new HttpError(504, "timeout", "too slow"));
  await assert.rejects(doomed, (e: unknown) => e instanceof HttpError && e.status === 504);
  const probs = (await Promise.all(outs)).map((o) => Math.round(o.prob * 255));
  assert.deepEqual(probs, [10, 20, 30]);
});

Deno.test("batcher: a lone request never waits for the window; pending is bounded (503)", async () => {
  const c = fakeClassifier("densenet121", "dn", { delayMs: 100 });
  const b = new PredictBatcher(c, { maxBatch: 16, windowMs: 5_000, maxPending: 2 });
  const t = performance.now();
  const [one] = together(b, [new Float32Array(PER).fill(50)]);
  await one;
  await sleep(0); // the batcher sees its run end
  assert.ok(performance.now() - t < 2_000, "no wait for batch-mates nobody announced");
  // One running, two waiting: the fourth is refused at once.
  const running = b.predict(new Float32Array(PER));
  const queued = [b.predict(new Float32Array(PER)), b.predict(new Float32Array(PER))];
  await assert.rejects(
    b.predict(new Float32Array(PER)),
    (e: unknown) => e instanceof HttpError && e.status === 503,
  );
  await Promise.all([running, ...queued]);
});

Deno.test("serving with batching: concurrent requests for two models never share a batch", async () => {
  const a = fakeClassifier("densenet121", "a", { delayMs: 50 });
  const dark = fakeClassifier("resnet50", "b", { delayMs: 50 });
  const darkPredict = dark.predict;
  // Model b answers 1 - brightness: a b-image answered by model a (or the reverse) shows.
  dark.predict = async (images, n) => {
    const out = await darkPredict(images, n);
    return { ...out, prob: out.prob.map((p) => 1 - p) };
  };
  const handler = createHandler({ classifiers: [a, dark], guard: null });
  await handler.ready;
  const train = join(sharedDir(), "data", "chest_xray", "train", "NORMAL");
  const names = [...Deno.readDirSync(train)].map((e) => e.name).sort().slice(0, 8);
  const jpegs = names.map((n) => Deno.readFileSync(join(train, n)));
  const ask = async (img: Uint8Array, model: string) => {
    const res = await handler(
      new Request(`http://127.0.0.1/v1/predict?model=${model}`, {
        method: "POST",
        body: img as Uint8Array<ArrayBuffer>,
        headers: { "content-type": "image/jpeg" },
      }),
    );
    assert.equal(res.status, 200);
    return (await res.json()).results[0].probability as number;
  };
  // Alone first, then all 16 at once.
  const alone = [];
  for (const img of jpegs) alone.push([await ask(img, "a"), await ask(img, "b")]);
  a.calls = dark.calls = 0;
  const both = await Promise.all(jpegs.flatMap((img) => [ask(img, "a"), ask(img, "b")]));
  assert.deepEqual(both, alone.flat());
  for (const [k, [pa, pb]] of alone.entries()) {
    assert.ok(Math.abs(pa + pb - 1) < 1e-5, `image ${k}: ${pa} + ${pb}`);
  }
  assert.ok(
    a.calls < 8 && dark.calls < 8,
    `batched: ${a.calls} and ${dark.calls} calls for 8 each`,
  );
});
