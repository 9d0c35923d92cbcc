/** `deno task train` / `train-all` flags -> TrainConfig fields, and the one number-flag parser. */
import assert from "node:assert/strict";
import { choiceFlag, nonNegativeInt, numberFlag, positiveInt } from "../lib/cli/args.ts";
import { configFromFlags } from "../lib/cli/train_flags.ts";

Deno.test("configFromFlags: no flags give no overrides", () => {
  assert.deepEqual(configFromFlags({}), {});
});

Deno.test("configFromFlags: each flag lands in its config field", () => {
  const c = configFromFlags({
    profile: "quick",
    weights: "formula",
    epochs: "3",
    lr: "0.002",
    "phase2-epochs": "0",
    "phase2-lr": "1e-6",
    "unfreeze-from": "conv5_block3_3_conv",
    "bn-mode": "batch",
    "batch-size": "16",
    dropout: "0.25",
    "class-weight": "none",
    patience: "2",
    monitor: "val_loss",
    seed: "7",
    protocol: "seed",
    subset: "100",
    data: "/tmp/x",
    threshold: "youden",
    "no-standardize": true,
    "no-mlflow": true,
  });
  assert.deepEqual(c, {
    profile: "quick",
    weights: "formula",
    phase1: { epochs: 3, lr: 0.002 },
    phase2: { epochs: 0, lr: 1e-6, unfreezeFrom: "conv5_block3_3_conv", bnMode: "batch" },
    batchSize: 16,
    dropout: 0.25,
    classWeight: "none",
    earlyStopping: { patience: 2, monitor: "val_loss" },
    seed: 7,
    protocol: "seed",
    subset: { train: 100, val: 40 },
    dataRoot: "/tmp/x",
    thresholdMethod: "youden",
    standardize: false,
    mlflow: false,
  });
});

Deno.test("configFromFlags: only the phase fields given; small subsets keep 20 validation images", () => {
  assert.deepEqual(configFromFlags({ lr: "0.01" }), { phase1: { lr: 0.01 } });
  assert.deepEqual(configFromFlags({ "unfreeze-from": "relu" }), {
    phase2: { unfreezeFrom: "relu" },
  });
  assert.deepEqual(configFromFlags({ subset: "10" }).subset, { train: 10, val: 20 });
});

Deno.test("configFromFlags: bad values are errors naming the flag and the value", () => {
  assert.throws(
    () => configFromFlags({ epochs: "three" }),
    /--epochs must be a number, got "three"/,
  );
  assert.throws(() => configFromFlags({ lr: "" }), /--lr/);
  assert.throws(
    () => configFromFlags({ profile: "fast" }),
    /--profile: expected one of quick \| full/,
  );
  assert.throws(() => configFromFlags({ monitor: "acc" }), /--monitor: expected one of/);
  assert.throws(() => configFromFlags({ "bn-mode": "train" }), /--bn-mode/);
  assert.throws(() => configFromFlags({ threshold: "0.3" }), /--threshold/);
  assert.throws(
    () => configFromFlags({ "augment-views": "-1" }),
    /--augment-views must be a whole number >= 0/,
  );
});

Deno.test("numberFlag: bounds, whole numbers, absent values and fallbacks", () => {
  assert.equal(numberFlag("x", undefined), undefined);
  assert.equal(numberFlag("x", "2.5"), 2.5);
  assert.equal(numberFlag("x", "0.5", { above: 0, below: 1 }), 0.5);
  assert.throws(
    () => numberFlag("x", "1", { above: 0, below: 1 }),
    /--x must be a number > 0 and < 1, got "1"/,
  );
  assert.throws(() => numberFlag("x", "Infinity"), /--x must be a number/);
  assert.throws(
    () => numberFlag("n", "2.5", { integer: true }),
    /--n must be a whole number, got "2.5"/,
  );
  assert.equal(positiveInt("n", undefined, 8), 8);
  assert.equal(positiveInt("n", "3", 8), 3);
  assert.throws(() => positiveInt("n", "0", 8), /--n must be a whole number > 0, got "0"/);
  assert.equal(nonNegativeInt("n", "0", 5), 0);
  assert.throws(() => nonNegativeInt("n", "-1", 5), /--n must be a whole number >= 0/);
  assert.equal(choiceFlag("m", "b", ["a", "b"]), "b");
  assert.throws(() => choiceFlag("m", "c", ["a", "b"]), /--m: expected one of a \| b, got "c"/);
});
