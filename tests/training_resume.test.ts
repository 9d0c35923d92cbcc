import assert from "node:assert/strict";
import { join } from "node:path";
import { TrainingAborted, trainRun } from "../lib/training/run.ts";
import { hasTrainData, tinyTrainConfig } from "./training_fixtures.ts";

for (const augmentViews of [0, 2]) {
  Deno.test({
    name: `a killed run resumes at the next epoch and ends exactly like an uninterrupted one${
      augmentViews ? ` (${augmentViews} augmented views per image)` : ""
    }`,
    ignore: !hasTrainData,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const tmp = await Deno.makeTempDir({ prefix: "cxr-train-resume-" });
      try {
        // 40 DenseNet121 images: 3 head epochs, then 2 fine-tuning epochs of the last layer.
        const config = tinyTrainConfig({ phase1: 3, phase2: 2 }, { mlflow: false, augmentViews });
        const common = {
          tracker: null,
          progress: false,
          cacheRoot: join(tmp, "cache"),
          skipEvaluation: true,
          skipExport: true,
        };
        const whole = await trainRun(config, { ...common, runsRoot: join(tmp, "a") });
        assert.equal(whole.history.length, 5);
        assert.deepEqual(whole.history.map((r) => r.phase), [1, 1, 1, 2, 2]);

        // Killed after epoch 2 (phase 1), then after epoch 4 (phase 2), then finished.
        const epochsSeen: number[] = [];
        const runsRoot = join(tmp, "b");
        for (const abortAfterEpoch of [2, 4]) {
          await assert.rejects(
            trainRun(config, {
              ...common,
              runsRoot,
              abortAfterEpoch,
              onEpoch: (r) => void epochsSeen.push(r.epoch),
            }),
            TrainingAborted,
          );
        }
        const resumed = await trainRun(config, {
          ...common,
          runsRoot,
          onEpoch: (r) => void epochsSeen.push(r.epoch),
        });
        assert.deepEqual(epochsSeen, [1, 2, 3, 4, 5], "each epoch trained exactly once");
        const strip = (h: typeof whole.history) => h.map(({ seconds: _s, ...r }) => r);
        assert.deepEqual(strip(resumed.history), strip(whole.history));
        const bin = (dir: string) => Deno.readFile(join(dir, "model", "trained.bin"));
        assert.deepEqual(await bin(resumed.runDir), await bin(whole.runDir));
        const status = JSON.parse(await Deno.readTextFile(join(resumed.runDir, "run.json")));
        assert.equal(status.status, "finished");
        // Finished runs are skipped.
        const again = await trainRun(config, { ...common, runsRoot });
        assert.equal(again.skipped, true);
        if (augmentViews) {
          // Every view went through the frozen base once: 40 train images x (1 + K) + 20 val.
          let entries = 0;
          for await (const e of walkBins(join(tmp, "cache"))) entries += e;
          assert.equal(entries, 40 * (1 + augmentViews) + 20);
          // ...and training saw them: not the run without augmentation.
          const plain = await trainRun({ ...config, augmentViews: 0 }, {
            ...common,
            runsRoot: join(tmp, "c"),
          });
          assert.notDeepEqual(await bin(plain.runDir), await bin(whole.runDir));
        }
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    },
  });
}

/** Counts cache entry files (*.bin) under `dir`, folder by folder. */
async function* walkBins(dir: string): AsyncGenerator<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) yield* walkBins(join(dir, e.name));
    else if (e.name.endsWith(".bin")) n++;
  }
  yield n;
}

Deno.test({
  name: "a run resumes only from the weights it started from",
  ignore: !hasTrainData,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "cxr-train-weights-" });
    try {
      const config = tinyTrainConfig({ phase1: 2, phase2: 0 }, { mlflow: false });
      const opts = {
        tracker: null,
        progress: false,
        cacheRoot: join(tmp, "cache"),
        runsRoot: join(tmp, "runs"),
        skipEvaluation: true,
        skipExport: true,
      };
      await assert.rejects(trainRun(config, { ...opts, abortAfterEpoch: 1 }), TrainingAborted);
      // As if the weights file had been replaced in place since the run started.
      const runDir = join(
        opts.runsRoot,
        (await Array.fromAsync(Deno.readDir(opts.runsRoot)))[0].name,
      );
      const file = join(runDir, "config.json");
      const recorded = JSON.parse(await Deno.readTextFile(file));
      await Deno.writeTextFile(
        file,
        JSON.stringify({ ...recorded, weights: { md5: "0".repeat(32) } }),
      );
      await assert.rejects(trainRun(config, opts), /started from weights md5 0{32}.*--force/);
      // The untouched record resumes.
      await Deno.writeTextFile(file, JSON.stringify(recorded));
      const resumed = await trainRun(config, opts);
      assert.equal(resumed.history.length, 2);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
