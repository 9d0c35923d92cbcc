import assert from "node:assert/strict";
import { join } from "node:path";
import { makeSyntheticRun } from "./evaluation_fixtures.ts";
import { evaluateRun, type Evaluation } from "../lib/evaluation/evaluate.ts";
import { computeMetrics } from "../lib/evaluation/metrics.ts";
import { chooseThreshold } from "../lib/evaluation/threshold.ts";

Deno.test("evaluateRun: threshold chosen on val, applied unchanged to test; files written", async () => {
  const root = await Deno.makeTempDir({ prefix: "cxr_eval_" });
  try {
    const dir = await makeSyntheticRun(root, {
      net: "resnet50",
      weights: "formula",
      nVal: 200,
      nTest: 120,
      separation: 1.5,
      seed: 4,
    });
    const ev = await evaluateRun(dir, { iterations: 200 });
    const val = JSON.parse(await Deno.readTextFile(join(dir, "predictions-val.json")));
    const test = JSON.parse(await Deno.readTextFile(join(dir, "predictions-test.json")));
    const labels = val.items.map((i: { label: number }) => i.label);
    const probs = val.items.map((i: { prob: number }) => i.prob);
    const chosen = chooseThreshold(labels, probs, "sens95");
    assert.equal(ev.threshold.method, "sens95");
    assert.equal(ev.threshold.value, chosen.value);
    assert.ok(ev.threshold.val_sensitivity >= 0.95);
    assert.equal(ev.splits.test.metrics.threshold, chosen.value, "same threshold on test");
    const direct = computeMetrics(
      test.items.map((i: { label: number }) => i.label),
      test.items.map((i: { prob: number }) => i.prob),
      chosen.value,
    );
    assert.deepEqual(ev.splits.test.metrics.confusion, direct.confusion);
    assert.equal(ev.splits.val.ciResampling, "patient");
    assert.ok(ev.notImageNet);
    assert.match(ev.weightsLabel, /not ImageNet/);
    const onDisk: Evaluation = JSON.parse(await Deno.readTextFile(join(dir, "evaluation.json")));
    assert.equal(onDisk.threshold.value, chosen.value);
    assert.ok(onDisk.splits.test.ci.rocAuc[0] <= onDisk.splits.test.metrics.rocAuc);
    for (
      const name of ["training", "roc", "pr", "confusion-val", "confusion-test", "calibration"]
    ) {
      assert.ok(ev.charts[name], `chart ${name} listed`);
      const png = await Deno.readFile(join(dir, `${ev.charts[name]}.png`));
      assert.equal(png[1], 0x50, `${name}.png is a PNG`);
      assert.match(await Deno.readTextFile(join(dir, `${ev.charts[name]}.svg`)), /^<svg/);
    }
    // --threshold-method override
    const y = await evaluateRun(dir, { method: "youden", iterations: 50, charts: false });
    assert.equal(y.threshold.value, chooseThreshold(labels, probs, "youden").value);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("evaluateRun: clear errors for missing validation and bad predictions", async () => {
  const root = await Deno.makeTempDir({ prefix: "cxr_eval_" });
  try {
    await assert.rejects(() => evaluateRun(root), /no predictions-val.json/);
    await Deno.writeTextFile(
      join(root, "predictions-val.json"),
      JSON.stringify({ split: "val", items: [{ rel: "a", label: 1, prob: 1.5 }] }),
    );
    await assert.rejects(() => evaluateRun(root), /predictions-val.json: items\[0\].prob = 1.5/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
