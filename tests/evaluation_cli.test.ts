import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../lib/cli/evaluate.ts";
import { main as reportMain } from "../lib/cli/report.ts";
import { sharedDir } from "../lib/util/paths.ts";

const TRAIN = join(sharedDir(), "data", "chest_xray", "train");
const hasData = (() => {
  try {
    return Deno.statSync(join(TRAIN, "NORMAL")).isDirectory;
  } catch {
    return false;
  }
})();

Deno.test("evaluate/report CLI: usage errors exit 2 with a clear message", async () => {
  assert.equal(await main(["--bogus"]), 2);
  assert.equal(await main([]), 2, "--run is required");
  assert.equal(await main(["--run", "x", "--split", "train"]), 2);
  assert.equal(await main(["--run", "x", "--threshold-method", "f1"]), 2);
  assert.equal(await main(["--run", "/nonexistent/run"]), 1);
  assert.equal(await reportMain(["--nope"]), 2);
  assert.equal(await reportMain(["--gradcam", "-1"]), 2);
});

Deno.test({
  name: "evaluate CLI: predicts a Kaggle-layout folder with classifier.onnx, then evaluates",
  ignore: !hasData,
  sanitizeResources: false, // onnxruntime-node keeps native handles
  sanitizeOps: false,
  fn: async () => {
    const { writeSyntheticClassifier, defaultAnchors } = await import(
      "../lib/inference/synthetic.ts"
    );
    const root = await Deno.makeTempDir({ prefix: "cxr_evalcli_" });
    try {
      // a tiny Kaggle-layout folder: val/ and test/ with 4 NORMAL + 4 PNEUMONIA each
      const data = join(root, "kaggle");
      for (const [split, offset] of [["val", 50], ["test", 80]] as const) {
        for (const cls of ["NORMAL", "PNEUMONIA"]) {
          await Deno.mkdir(join(data, split, cls), { recursive: true });
          const names = [...Deno.readDirSync(join(TRAIN, cls))].map((e) => e.name).sort()
            .slice(offset, offset + 4);
          for (const n of names) await Deno.symlink(join(TRAIN, cls, n), join(data, split, cls, n));
        }
      }
      const run = join(root, "run");
      await writeSyntheticClassifier(run, { net: "densenet121", anchors: defaultAnchors(TRAIN) });
      assert.equal(
        await main([
          "--run",
          run,
          "--split",
          "val",
          "--data",
          data,
          "--iterations",
          "50",
          "--no-charts",
        ]),
        0,
      );
      assert.equal(
        await main([
          "--run",
          run,
          "--split",
          "test",
          "--data",
          data,
          "--iterations",
          "50",
          "--no-charts",
        ]),
        0,
      );
      const preds = JSON.parse(await Deno.readTextFile(join(run, "predictions-test.json")));
      assert.equal(preds.items.length, 8);
      assert.equal(preds.source.dataRoot, data);
      for (const it of preds.items) {
        assert.ok(it.prob >= 0 && it.prob <= 1);
        assert.match(it.sha256, /^[0-9a-f]{64}$/);
        assert.equal(it.label, it.rel.includes("PNEUMONIA") ? 1 : 0);
      }
      const ev = JSON.parse(await Deno.readTextFile(join(run, "evaluation.json")));
      assert.equal(ev.splits.test.metrics.n, 8);
      assert.equal(ev.splits.test.metrics.threshold, ev.threshold.value);
      assert.ok(ev.notImageNet, "no config.json: weights unknown -> flagged not ImageNet");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
