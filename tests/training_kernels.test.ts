import assert from "node:assert/strict";
import { initBackend, tf } from "../lib/tf/backend.ts";

/** Gradients of sum(conv2d(x, w)^2) w.r.t. x and w on the current backend. */
function convGrads(
  xs: number[],
  ws: number[],
  strides: number,
  pad: "same" | "valid",
): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.randomNormal(xs, 0, 1, "float32", 1);
    const w = tf.randomNormal(ws, 0, 1, "float32", 2);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad).square().sum()
    );
    return g([x, w]).map((t) => t.dataSync() as Float32Array);
  });
}

Deno.test("wasm Conv2DBackpropFilter and Conv2DBackpropInput match the cpu backend (rel. error < 1e-4)", async () => {
  const info = await initBackend("wasm");
  assert.equal(info.name, "wasm");
  const cases: [number[], number[], number, "same" | "valid"][] = [
    [[2, 7, 7, 5], [3, 3, 5, 4], 1, "same"], // 3x3 im2col path with padding
    [[2, 8, 8, 3], [1, 1, 3, 6], 1, "valid"], // 1x1 pointwise path (no im2col)
    [[2, 9, 9, 3], [3, 3, 3, 4], 2, "valid"], // strided
    [[1, 8, 8, 2], [7, 7, 2, 3], 2, "same"], // ResNet stem-like 7x7/2
  ];
  try {
    for (const [xs, ws, s, p] of cases) {
      await tf.setBackend("wasm");
      const a = convGrads(xs, ws, s, p);
      await tf.setBackend("cpu");
      const b = convGrads(xs, ws, s, p);
      let worst = 0;
      for (let i = 0; i < 2; i++) {
        assert.equal(a[i].length, b[i].length);
        for (let j = 0; j < a[i].length; j++) {
          worst = Math.max(worst, Math.abs(a[i][j] - b[i][j]) / (1 + Math.abs(b[i][j])));
        }
      }
      assert.ok(worst < 1e-4, `x${xs} w${ws} s${s} ${p}: relative error ${worst}`);
    }
  } finally {
    await tf.setBackend("wasm");
  }
});

Deno.test("a conv + BN + relu + concat + pooling tail trains on wasm (loss decreases)", async () => {
  await initBackend("wasm");
  const input = tf.input({ shape: [5, 5, 8] });
  const c1 = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: "same", seed: 1 } as never)
    .apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization().apply(c1) as tf.SymbolicTensor;
  const r = tf.layers.activation({ activation: "relu" }).apply(bn) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate().apply([input, r]) as tf.SymbolicTensor;
  const pool = tf.layers.averagePooling2d({ poolSize: 2 }).apply(cat) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({}).apply(pool) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 1, activation: "sigmoid" }).apply(gap) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  model.compile({ optimizer: tf.train.adam(0.01), loss: "binaryCrossentropy" });
  const x = tf.randomNormal([32, 5, 5, 8], 0, 1, "float32", 3);
  const y = tf.tidy(() =>
    tf.cast(tf.greater(tf.mean(x, [1, 2, 3]), 0), "float32").reshape([32, 1])
  );
  const h = await model.fit(x, y, { epochs: 15, batchSize: 16, verbose: 0, shuffle: false });
  const losses = h.history.loss as number[];
  assert.ok(losses.at(-1)! < losses[0], `loss ${losses[0]} -> ${losses.at(-1)}`);
  tf.dispose([x, y]);
  model.dispose();
});
