import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildHead,
  buildNet,
  buildPhase2Model,
  chooseCut,
  chooseValThreshold,
  computeActivations,
  type EpochRecord,
  fitPhase1,
  fitPhase2,
  loadData,
  netSummary,
  splitPredictions,
  trainingSetup,
  trainRun,
} from "../lib/training/mod.ts";
import { RunFolder } from "../lib/runs/mod.ts";
import { loadPredictions } from "../lib/evaluation/evaluate.ts";
import { initBackend } from "../lib/tf/backend.ts";
import { hasTrainData, tinyTrainConfig } from "./training_fixtures.ts";

Deno.test({
  name: "the public steps, called one by one, give exactly what trainRun gives",
  ignore: !hasTrainData,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "cxr-train-steps-" });
    try {
      const config = tinyTrainConfig({ phase1: 2, phase2: 1 }, { mlflow: false });
      const cacheRoot = join(tmp, "cache");
      const run = await trainRun(config, {
        tracker: null,
        progress: false,
        cacheRoot,
        runsRoot: join(tmp, "runs"),
        skipExport: true,
      });
      await initBackend("auto");

      const data = await loadData(config);
      const net = await buildNet(config);
      assert.equal(net.weights.md5.length, 32);
      const unfreezeFrom = config.phase2!.unfreezeFrom;
      const summary = netSummary(net, unfreezeFrom);
      assert.equal(summary.params.total, summary.params.trainable + summary.params.frozen);
      assert.ok(summary.params.trainable > 1025 && summary.params.frozen > 1e6);
      const cut = chooseCut(net, unfreezeFrom);
      assert.deepEqual(cut.outputs, ["head_pool", ...cut.frontier]);
      assert.deepEqual(cut.shapes[0], { layer: "head_pool", shape: [1024] });
      assert.ok(cut.shapes.slice(1).every((s) => s.shape.length === 3), "NHWC frontier");
      const acts = await computeActivations(config, net, cut, data, { progress: false, cacheRoot });
      assert.equal(acts.features.stats.computed, 0, "trainRun cached every activation");
      const head = buildHead(config, acts);
      const setup = trainingSetup(config, acts);
      assert.ok(setup.classWeights && setup.classWeights[0] > setup.classWeights[1]);
      const seen: EpochRecord[] = [];
      const p1 = await fitPhase1(head, acts, setup, {
        progress: false,
        callbacks: [{ onEpochEnd: (_l, r) => void seen.push(r) }],
      });
      const model = buildPhase2Model(config, net, cut, head);
      const p2 = await fitPhase2(model, acts, setup, {
        progress: false,
        previousHistory: p1.history,
      });
      assert.deepEqual(seen.map((r) => r.epoch), [1, 2]);
      const strip = (h: EpochRecord[]) => h.map(({ seconds: _s, ...r }) => r);
      assert.deepEqual(strip(p2.history), strip(run.history));

      const val = splitPredictions(model, acts, "val", setup);
      const saved = await loadPredictions(
        RunFolder.of(run.runId, join(tmp, "runs")).predictionsPath("val"),
      );
      assert.deepEqual(val.items, saved.items);
      const threshold = chooseValThreshold(val, config.thresholdMethod);
      assert.equal(threshold.value, run.evaluation!.threshold.value);
      model.dispose();
      head.dispose();
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
