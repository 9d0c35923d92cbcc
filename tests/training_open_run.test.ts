import assert from "node:assert/strict";
import { join } from "node:path";
import { openRun } from "../lib/training/run.ts";
import { RunFolder } from "../lib/runs/mod.ts";
import { runIdFor } from "../lib/training/config.ts";
import type { Tracker } from "../lib/tracking/types.ts";
import { tinyTrainConfig } from "./training_fixtures.ts";

/** A tracker whose first call fails (a file store that cannot write), recording its end. */
function failingTracker(ended: string[]): Tracker {
  const fail = () => Promise.reject(new Error("tracking store unwritable"));
  return {
    backend: "file",
    runId: "r1",
    uri: "file:///nowhere",
    logParams: fail,
    logMetrics: fail,
    setTags: fail,
    logArtifact: fail,
    logOnnxModel: fail,
    end: (status: string) => {
      ended.push(status);
      return Promise.resolve();
    },
  } as unknown as Tracker;
}

Deno.test({
  name: "openRun: a failure while recording the start leaves run.json failed, not running",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "cxr-open-run-" });
    try {
      const config = tinyTrainConfig({ phase1: 1, phase2: 0 }, { mlflow: false });
      // Only what openRun reads of the steps' results (no data, net or activations computed).
      const parts = {
        data: {
          root: tmp,
          splits: { train: [], val: [], test: [], protocol: "patient", leaks: [], notes: [] },
          warnings: [],
        },
        net: {
          weights: { label: "formula", md5: "0".repeat(32), isImageNet: false, source: "x" },
        },
        cut: { frontier: [] },
        acts: { features: { stats: { failed: [] } }, idx: { train: [], val: [], test: [] } },
      } as unknown as Parameters<typeof openRun>[1];
      const ended: string[] = [];
      const runsRoot = join(tmp, "runs");
      await assert.rejects(
        openRun(config, parts, { tracker: failingTracker(ended), progress: false, runsRoot }),
        /tracking store unwritable/,
      );
      const status = await RunFolder.of(runIdFor(config), runsRoot).readStatus();
      assert.equal(status?.status, "failed");
      assert.match(status?.error ?? "", /tracking store unwritable/);
      assert.deepEqual(ended, ["FAILED"]);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
