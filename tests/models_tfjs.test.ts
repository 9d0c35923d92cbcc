/** tfjs models built from specs: cuts recompose, weights round-trip, initialisers, head. */
import assert from "node:assert/strict";
import { maxRelError } from "./models_reference.ts";
import { initBackend, tf } from "../lib/tf/backend.ts";
import { densenet121 } from "../lib/models/densenet121.ts";
import { resnet50 } from "../lib/models/resnet50.ts";
import { vgg16 } from "../lib/models/vgg16.ts";
import { cutAt } from "../lib/models/graph.ts";
import { withHead } from "../lib/models/head.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { PREPROCESSING, preprocessInput } from "../lib/models/preprocess.ts";
import { summarize } from "../lib/models/summary.ts";
import { buildTfModel, readTfWeights } from "../lib/models/tfjs.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import type { NetSpec } from "../lib/models/spec.ts";

/** Deterministic pseudo-image batch, NHWC, 0..255. */
function pixels(n: number, size: number): Float32Array {
  const out = new Float32Array(n * size * size * 3);
  for (let i = 0; i < out.length; i++) out[i] = (i * 37 + (i >> 7) * 11) % 256;
  return out;
}

async function run(model: tf.LayersModel, xs: tf.Tensor[]): Promise<Float32Array[]> {
  const ys = model.predict(xs.length === 1 ? xs[0] : xs);
  const list = Array.isArray(ys) ? ys : [ys];
  const out = await Promise.all(list.map((y) => y.data() as Promise<Float32Array>));
  tf.dispose(list);
  return out;
}

async function checkCutRecomposes(spec: NetSpec, firstTrainable: string, frontier: string[]) {
  await initBackend();
  const size = spec.layers[0].kind === "InputLayer" ? spec.layers[0].shape[0]! : 0;
  const weights = formulaWeights(weightLayout(spec));
  const cut = cutAt(spec, firstTrainable);
  assert.deepEqual(cut.frontier, frontier);
  const x = tf.tensor4d(preprocessInput(pixels(2, size), spec.preprocessing), [2, size, size, 3]);
  const whole = buildTfModel(spec, weights);
  const frozen = buildTfModel(cut.frozen, weights, { trainable: false });
  const tail = buildTfModel(cut.tail, weights);
  assert.deepEqual(tail.inputs.map((i) => i.name.replace(/:\d+$/, "")), frontier);
  const [expected] = await run(whole, [x]);
  const mids = frozen.predict(x);
  const midList = Array.isArray(mids) ? mids : [mids];
  const [actual] = await run(tail, midList);
  tf.dispose([x, ...midList]);
  [whole, frozen, tail].forEach((m) => m.dispose());
  const err = maxRelError(actual, expected);
  console.log(`${spec.name} cut at ${firstTrainable}: frozen+tail vs whole max rel error ${err}`);
  assert.ok(err <= 1e-6, `recomposed output differs: ${err}`);
}

Deno.test("densenet121 frozen + tail at conv5_block16_0_bn recompose the whole net", async () => {
  await checkCutRecomposes(densenet121({ inputShape: [64, 64, 3] }), "conv5_block16_0_bn", [
    "conv5_block15_concat",
  ]);
});

Deno.test("resnet50 cut inside a block (two frontier tensors) recomposes the whole net", async () => {
  await checkCutRecomposes(resnet50({ inputShape: [64, 64, 3] }), "conv5_block3_2_conv", [
    "conv5_block2_out",
    "conv5_block3_1_relu",
  ]);
});

Deno.test("readTfWeights returns the weights buildTfModel was given, in Keras layout", async () => {
  await initBackend();
  const spec = densenet121({ inputShape: [32, 32, 3] });
  const layout = weightLayout(spec);
  const weights = formulaWeights(layout);
  const model = buildTfModel(spec, weights, { trainable: false });
  const back = readTfWeights(model);
  model.dispose();
  assert.deepEqual(back.size, weights.size);
  for (const entry of layout) {
    for (const w of entry.weights) {
      const got = back.get(entry.layer)?.[w.kind];
      assert.ok(got, `${entry.layer}/${w.kind} missing`);
      assert.deepEqual(got.shape, w.shape);
      const want = weights.get(entry.layer)![w.kind]!.data;
      assert.ok(got.data.every((v, i) => v === want[i]), `${entry.layer}/${w.kind} differs`);
    }
  }
});

Deno.test("missing weights get Keras default initialisers, seeded", async () => {
  await initBackend();
  const spec = resnet50({ inputShape: [32, 32, 3] });
  const init = (seed: number) => {
    const model = buildTfModel(spec, undefined, { seed });
    const weights = readTfWeights(model);
    model.dispose();
    return weights;
  };
  const [a, b, c] = [init(7), init(7), init(8)];
  const bn = a.get("conv2_block1_1_bn")!;
  assert.ok(bn.gamma!.data.every((v) => v === 1) && bn.beta!.data.every((v) => v === 0));
  assert.ok(bn.moving_mean!.data.every((v) => v === 0));
  assert.ok(bn.moving_variance!.data.every((v) => v === 1));
  assert.ok(a.get("conv1_conv")!.bias!.data.every((v) => v === 0));
  // glorot_uniform: limit sqrt(6 / (fan_in + fan_out)), receptive field included.
  const kernel = a.get("conv1_conv")!.kernel!.data;
  const limit = Math.sqrt(6 / (7 * 7 * 3 + 7 * 7 * 64));
  assert.ok(
    kernel.every((v) => Math.abs(v) <= limit) && kernel.some((v) => Math.abs(v) > limit / 2),
  );
  assert.deepEqual([...kernel.slice(0, 8)], [...b.get("conv1_conv")!.kernel!.data.slice(0, 8)]);
  assert.ok(kernel[0] !== c.get("conv1_conv")!.kernel!.data[0], "another seed, other weights");
});

Deno.test("wrong weight shapes are rejected naming layer and shapes", async () => {
  await initBackend();
  const spec = vgg16({ inputShape: [32, 32, 3] });
  const weights = formulaWeights(weightLayout(spec));
  const w = weights.get("block1_conv2")!;
  w.kernel = { shape: [3, 3, 64, 32], data: new Float32Array(3 * 3 * 64 * 32) };
  assert.throws(() => buildTfModel(spec, weights), /"block1_conv2"/);
  assert.throws(() => buildTfModel(spec, weights), /\[3,3,64,32\], expected \[3,3,64,64\]/);
});

Deno.test("head model: sigmoid output and Keras trainable counts from a layer on", async () => {
  await initBackend();
  const spec = withHead(densenet121({ inputShape: [32, 32, 3] }));
  const model = buildTfModel(spec, formulaWeights(weightLayout(spec)), {
    trainableFrom: "conv5_block16_0_bn",
  });
  const count = (vs: tf.LayerVariable[]) =>
    vs.reduce((n, v) => n + (v.shape as number[]).reduce((a, b) => a * b, 1), 0);
  assert.deepEqual(
    count(model.trainableWeights),
    summarize(spec, "conv5_block16_0_bn").trainableParams,
  );
  const x = tf.tensor4d(preprocessInput(pixels(3, 32), "torch"), [3, 32, 32, 3]);
  const y = model.predict(x) as tf.Tensor;
  assert.deepEqual(y.shape, [3, 1]);
  const p = await y.data();
  assert.ok(p.every((v) => v > 0 && v < 1), `probabilities ${p}`);
  tf.dispose([x, y]);
  model.dispose();
});

Deno.test("preprocessInput matches keras preprocess_input caffe and torch", () => {
  const rgb = new Float32Array([255, 128, 0, 10, 20, 30]);
  const caffe = preprocessInput(rgb, "caffe");
  const [mb, mg, mr] = PREPROCESSING.caffe.mean;
  assert.deepEqual(
    [...caffe],
    [0 - mb, 128 - mg, 255 - mr, 30 - mb, 20 - mg, 10 - mr].map(Math.fround),
  );
  const torch = preprocessInput(rgb, "torch");
  const { mean, std } = PREPROCESSING.torch;
  const want = [...rgb].map((v, i) => (v / 255 - mean[i % 3]) / std[i % 3]);
  assert.ok(maxRelError(torch, want) < 1e-6, `torch ${torch} vs ${want}`);
  assert.throws(() => preprocessInput(new Float32Array(4), "caffe"), /RGB/);
});
