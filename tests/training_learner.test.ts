import assert from "node:assert/strict";
import { initBackend } from "../lib/tf/backend.ts";
import { arraySource, EarlyStopping, type EpochRecord, Learner } from "../lib/training/learner.ts";
import { computeStandardization, HeadModel } from "../lib/training/model.ts";
import { balancedClassWeights, mulberry32, rocAuc } from "../lib/training/metrics.ts";
import { resolveConfig, runIdFor } from "../lib/training/config.ts";

/** n items of `dim` features; class 1 shifted by `shift` on the first 4 dims, odd scales. */
function synthetic(n: number, dim: number, seed: number, shift = 1.5) {
  const rand = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const labels = Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 0 : 1)); // 1:3 like the data
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) {
      const scale = 10 ** ((j % 5) - 2); // 0.01 .. 100: the formula features' odd scales
      data[i * dim + j] = (gauss() + (j < 4 && labels[i] === 1 ? shift : 0)) * scale + 3 * scale;
    }
  }
  return { data, labels };
}

Deno.test("rocAuc and balanced class weights", () => {
  assert.equal(rocAuc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]), 1);
  assert.equal(rocAuc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]), 0);
  assert.equal(rocAuc([0, 1], [0.5, 0.5]), 0.5);
  assert.ok(Number.isNaN(rocAuc([1, 1], [0.2, 0.3])));
  const [w0, w1] = balancedClassWeights([0, 1, 1, 1]);
  assert.equal(w0, 2);
  assert.ok(Math.abs(w1 - 4 / 6) < 1e-12);
});

Deno.test("Learner fits a separable synthetic problem, with callbacks", async () => {
  await initBackend();
  const dim = 16;
  const train = synthetic(256, dim, 1, 2.5);
  const val = synthetic(128, dim, 2, 2.5);
  const model = new HeadModel({
    dim,
    dropout: 0.2,
    standardization: computeStandardization(train.data, dim),
    seed: 3,
  });
  const seen: EpochRecord[] = [];
  let batches = 0;
  const learner = new Learner({
    model,
    train: arraySource(train.data, [dim], train.labels),
    val: arraySource(val.data, [dim], val.labels),
    phase: 1,
    lr: 0.03,
    batchSize: 32,
    seed: 5,
    classWeights: balancedClassWeights(train.labels),
    callbacks: [{ onBatchEnd: () => batches++, onEpochEnd: (_l, r) => void seen.push(r) }],
  });
  const history = await learner.fit(6);
  assert.equal(history.length, 6);
  assert.deepEqual(seen.map((r) => r.epoch), [1, 2, 3, 4, 5, 6]);
  assert.equal(batches, 6 * 8);
  assert.ok(history.at(-1)!.val_auc > 0.95, `val_auc ${history.at(-1)!.val_auc}`);
  assert.ok(history.at(-1)!.loss < history[0].loss);
  // The folded head on raw features gives the same probabilities as the standardised one.
  const probs = learner.predict(arraySource(val.data, [dim], val.labels));
  const { kernel, bias } = model.foldedHead();
  for (let i = 0; i < 5; i++) {
    let z = bias.data[0];
    for (let j = 0; j < dim; j++) z += kernel.data[j] * val.data[i * dim + j];
    assert.ok(Math.abs(1 / (1 + Math.exp(-z)) - probs[i]) < 1e-4);
  }
  model.dispose();
});

Deno.test("EarlyStopping stops after `patience` epochs without improvement and restores best", async () => {
  await initBackend();
  const dim = 8;
  const train = synthetic(64, dim, 7, 0); // no signal: val_auc wanders
  const val = synthetic(64, dim, 8, 0);
  const model = new HeadModel({ dim, dropout: 0, standardization: null, seed: 1 });
  const es = new EarlyStopping({ monitor: "val_loss", patience: 2, restoreBest: true });
  const learner = new Learner({
    model,
    train: arraySource(train.data, [dim], train.labels),
    val: arraySource(val.data, [dim], val.labels),
    phase: 1,
    lr: 0.5, // too high on purpose: the validation loss gets worse
    batchSize: 16,
    seed: 1,
    classWeights: null,
    callbacks: [es],
  });
  const history = await learner.fit(50);
  assert.ok(history.length < 50, "stopped early");
  const bestEpoch = es.state.bestEpoch;
  assert.equal(history.length, bestEpoch + 2);
  const best = Math.min(...history.map((r) => r.val_loss));
  assert.equal(es.state.best, best);
  // Restored weights reproduce the best epoch's validation loss.
  const probs = learner.predict(arraySource(val.data, [dim], val.labels));
  let loss = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = Math.min(1 - 1e-7, Math.max(1e-7, probs[i]));
    loss -= val.labels[i] === 1 ? Math.log(p) : Math.log(1 - p);
  }
  assert.ok(Math.abs(loss / probs.length - best) < 1e-4);
  model.dispose();
});

Deno.test("resolveConfig: net defaults, profiles, validation and stable run ids", () => {
  const vgg = resolveConfig({ net: "vgg16", weights: "formula" }, "full");
  assert.equal(vgg.phase2, null);
  const dn = resolveConfig({ net: "densenet121", weights: "formula" }, "quick");
  assert.equal(dn.phase2?.unfreezeFrom, "conv5_block16_0_bn");
  assert.ok(dn.phase2!.lr < dn.phase1.lr);
  assert.ok(dn.subset?.train !== undefined);
  assert.equal(runIdFor(dn), runIdFor(resolveConfig({ net: "densenet121", weights: "formula" })));
  assert.notEqual(
    runIdFor(dn),
    runIdFor(resolveConfig({ net: "densenet121", weights: "formula", seed: 1 })),
  );
  assert.match(runIdFor(dn), /^densenet121-quick-formula-patient-[0-9a-f]{8}$/);
  assert.throws(() => resolveConfig({ net: "vgg16", dropout: 1.5 }), /dropout/);
  assert.throws(() => resolveConfig({ net: "vgg16", phase1: { lr: -1 } }), /phase1.lr/);
});
