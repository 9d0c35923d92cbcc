/**
 * A damaged checkpoint never blocks a run: `last` (or `best`) damaged -> the phase starts over
 * from its start (phase 2: the end of phase 1); `phase1` damaged -> training starts over. Each
 * ends exactly like an uninterrupted run (the RNG is the epoch number), with a warning.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { TrainingAborted, trainRun } from "../lib/training/run.ts";
import { hasTrainData, tinyTrainConfig } from "./training_fixtures.ts";

/** Flips bytes in the middle of a file (its md5 no longer matches its manifest). */
async function damage(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  for (let i = 0; i < 16; i++) bytes[(bytes.length >> 1) + i] ^= 0xff;
  await Deno.writeFile(path, bytes);
}

Deno.test({
  name:
    "a damaged checkpoint falls back to the previous good one (warning) and ends like an uninterrupted run",
  ignore: !hasTrainData,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "cxr-train-ckpt-" });
    try {
      // 40 DenseNet121 images: 2 head epochs, then 2 fine-tuning epochs of the last layer.
      const config = tinyTrainConfig({ phase1: 2, phase2: 2 }, { mlflow: false });
      const common = {
        tracker: null,
        progress: false,
        cacheRoot: join(tmp, "cache"),
        skipEvaluation: true,
        skipExport: true,
      };
      const whole = await trainRun(config, { ...common, runsRoot: join(tmp, "whole") });
      const strip = (h: typeof whole.history) => h.map(({ seconds: _s, ...r }) => r);
      const bin = (dir: string) => Deno.readFile(join(dir, "model", "trained.bin"));

      const cases: { name: string; abortAfter: number; damaged: string[]; says: string }[] = [
        { name: "last-p1", abortAfter: 1, damaged: ["last.bin"], says: "phase 1 starts over" },
        {
          name: "last-p2",
          abortAfter: 3,
          damaged: ["last.bin"],
          says: "phase 2 starts over from the end of phase 1",
        },
        {
          name: "best-p2",
          abortAfter: 3,
          damaged: ["best.bin"],
          says: "phase 2 starts over from the end of phase 1",
        },
        {
          name: "phase1",
          abortAfter: 3,
          damaged: ["phase1.bin", "last.bin"],
          says: "training starts over from the first epoch",
        },
      ];
      for (const c of cases) {
        const runsRoot = join(tmp, c.name);
        await assert.rejects(
          trainRun(config, { ...common, runsRoot, abortAfterEpoch: c.abortAfter }),
          TrainingAborted,
        );
        const ckpt = join(runsRoot, whole.runId, "checkpoints");
        for (const f of c.damaged) await damage(join(ckpt, f));
        const warnings: string[] = [];
        const orig = console.error;
        console.error = (...a: unknown[]) => void warnings.push(a.map(String).join(" "));
        let resumed;
        try {
          resumed = await trainRun(config, { ...common, runsRoot });
        } finally {
          console.error = orig;
        }
        const said = warnings.join("\n");
        assert.match(said, /damaged \(.*md5/, `${c.name}: ${said}`);
        assert.ok(said.includes(c.says), `${c.name}: ${said}`);
        assert.deepEqual(strip(resumed.history), strip(whole.history), c.name);
        assert.deepEqual(await bin(resumed.runDir), await bin(whole.runDir), c.name);
        const status = JSON.parse(await Deno.readTextFile(join(resumed.runDir, "run.json")));
        assert.equal(status.status, "finished");
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
