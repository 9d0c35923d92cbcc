import assert from "node:assert/strict";
import { exportOnnx } from "../lib/onnx/export.ts";
import { inferShapes, samePads } from "../lib/models/graph.ts";
import { openSession } from "../lib/onnx/session.ts";
import { referenceForward } from "../lib/onnx/reference.ts";
import { tinySpec } from "../lib/onnx/tiny.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { preprocessInput } from "../lib/models/preprocess.ts";
import { buildTfModel } from "../lib/models/tfjs.ts";
import { initBackend, tf } from "../lib/tf/backend.ts";

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** max |a - r| / max |r|: the error measure used for every ONNX comparison. */
function relError(a: ArrayLike<number>, r: ArrayLike<number>): number {
  assert.deepEqual(a.length, r.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < r.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - r[i]));
    scale = Math.max(scale, Math.abs(r[i]));
  }
  return diff / scale;
}

/** Deterministic pseudo-random pixels 0..255. */
function pixels(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

const TOL = 1e-5; // float32 ORT vs float64 reference, relative to the output's max magnitude
const OUTPUTS = ["probs", "score", "cat", "bn3", "flat", "mp", "c1"];
const opts = { sanitizeResources: false, sanitizeOps: false }; // ORT keeps native handles

Deno.test("samePads puts the extra pixel bottom/right like TensorFlow", () => {
  assert.deepEqual(samePads(224, 7, 2), [2, 3]);
  assert.deepEqual(samePads(17, 3, 2), [1, 1]);
  assert.deepEqual(samePads(8, 3, 2), [0, 1]);
  assert.deepEqual(samePads(5, 1, 1), [0, 0]);
});

Deno.test("inferShapes follows Keras shapes on the tiny net", () => {
  const s = inferShapes(tinySpec());
  assert.deepEqual(s.get("c1"), [9, 8, 8]);
  assert.deepEqual(s.get("zp"), [10, 9, 8]);
  assert.deepEqual(s.get("mp"), [5, 5, 8]);
  assert.deepEqual(s.get("cat"), [5, 5, 16]);
  assert.deepEqual(s.get("flat"), [64]);
  assert.deepEqual(s.get("feats"), [16 + 16 + 5]);
});

for (const fold of [true, false]) {
  Deno.test(
    `ONNX export matches a float64 Keras reference (tiny net, fold BN: ${fold})`,
    opts,
    async () => {
      const spec = tinySpec();
      const weights = formulaWeights(weightLayout(spec));
      const bytes = exportOnnx(spec, weights, { outputs: OUTPUTS, foldBatchNorm: fold });
      const model = await openSession(bytes, { threads: 1 });
      try {
        assert.deepEqual([...model.inputNames], ["input_1"]);
        assert.deepEqual([...model.outputNames].sort(), [...OUTPUTS].sort());
        const [h, w] = [17, 15];
        const batch = 3; // dynamic batch dim
        const x = pixels(batch * h * w * 3, 7).map((v) => v / 64 - 2);
        const out = await model.run({ input_1: { data: x, shape: [batch, h, w, 3] } });
        assert.deepEqual(out.cat.shape, [batch, 5, 5, 16]);
        assert.deepEqual(out.probs.shape, [batch, 3]);
        for (let b = 0; b < batch; b++) {
          const ref = referenceForward(
            spec,
            weights,
            Float64Array.from(x.subarray(b * h * w * 3, (b + 1) * h * w * 3)),
          );
          for (const name of OUTPUTS) {
            const r = ref.get(name)!.data;
            const n = r.length;
            const got = out[name].data.subarray(b * n, (b + 1) * n);
            const err = relError(got, r);
            assert(err <= TOL, `${name} (image ${b}): relative error ${err} > ${TOL}`);
          }
        }
      } finally {
        await model.close();
      }
    },
  );
}

Deno.test("in-graph preprocessing equals preprocessInput outside the graph", opts, async () => {
  const spec = tinySpec();
  const weights = formulaWeights(weightLayout(spec));
  const [h, w] = [17, 15];
  const rgb = pixels(2 * h * w * 3, 11);
  for (const mode of ["caffe", "torch"] as const) {
    const inGraph = await openSession(
      exportOnnx(spec, weights, { outputs: ["cat"], preprocessing: mode }),
      { threads: 1 },
    );
    const plain = await openSession(exportOnnx(spec, weights, { outputs: ["cat"] }), {
      threads: 1,
    });
    try {
      assert.deepEqual([...inGraph.inputNames], ["image"]);
      const a = await inGraph.run({ image: { data: rgb, shape: [2, h, w, 3] } });
      const b = await plain.run({
        input_1: { data: preprocessInput(rgb, mode), shape: [2, h, w, 3] },
      });
      const err = relError(a.cat.data, b.cat.data);
      assert(err <= 1e-6, `${mode}: relative error ${err}`);
    } finally {
      await inGraph.close();
      await plain.close();
    }
  }
});

Deno.test(
  "export of a tail: inputs at a cut layer, same output as the whole net",
  opts,
  async () => {
    const spec = tinySpec();
    const weights = formulaWeights(weightLayout(spec));
    const whole = await openSession(exportOnnx(spec, weights, { outputs: ["add", "probs"] }), {
      threads: 1,
    });
    const tail = await openSession(
      exportOnnx(spec, weights, { inputs: ["add"], outputs: ["probs"] }),
      { threads: 1 },
    );
    try {
      assert.deepEqual([...tail.inputNames], ["add"]);
      const x = pixels(17 * 15 * 3, 3);
      const a = await whole.run({ input_1: { data: x, shape: [1, 17, 15, 3] } });
      const b = await tail.run({ add: a.add });
      assert(relError(b.probs.data, a.probs.data) <= 1e-6);
    } finally {
      await whole.close();
      await tail.close();
    }
  },
);

Deno.test("export errors name the layer and the weight", () => {
  const spec = tinySpec();
  const weights = formulaWeights(weightLayout(spec));
  weights.delete("c3");
  assert.throws(() => exportOnnx(spec, weights, { outputs: ["cat"] }), {
    message: new RegExp(escape("c3/kernel")),
  });
  assert.throws(() => exportOnnx(spec, weights, { outputs: ["nope"] }), {
    message: new RegExp(escape('"nope"')),
  });
  const bad = formulaWeights(weightLayout(spec));
  bad.get("c1")!.kernel = { shape: [3, 3, 3, 7], data: new Float32Array(3 * 3 * 3 * 7) };
  assert.throws(() => exportOnnx(spec, bad), {
    message: new RegExp(escape("c1/kernel has shape [3,3,3,7]")),
  });
});

Deno.test("ONNX export matches the tfjs-layers model of the same spec", opts, async () => {
  await initBackend();
  const spec = tinySpec();
  const weights = formulaWeights(weightLayout(spec));
  const outputs = ["probs", "cat", "flat"];
  const tfModel = buildTfModel({ ...spec, outputs }, weights);
  const model = await openSession(exportOnnx(spec, weights, { outputs }), { threads: 1 });
  try {
    const x = pixels(2 * 17 * 15 * 3, 5).map((v) => v / 50 - 2.5);
    const onnxOut = await model.run({ input_1: { data: x, shape: [2, 17, 15, 3] } });
    const input = tf.tensor4d(x, [2, 17, 15, 3]);
    const tfOut = tfModel.predict(input) as InstanceType<typeof tf.Tensor>[];
    for (const [k, name] of outputs.entries()) {
      const err = relError(onnxOut[name].data, tfOut[k].dataSync());
      assert(err <= TOL, `${name}: ONNX vs tfjs relative error ${err} > ${TOL}`);
    }
    tf.dispose([input, ...tfOut]);
  } finally {
    tfModel.dispose();
    await model.close();
  }
});
