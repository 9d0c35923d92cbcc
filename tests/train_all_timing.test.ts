// train-all's timing record: what `deno task bench` reads to judge the wall-time goals.
import assert from "node:assert/strict";
import { join } from "node:path";
import { recordTiming, type TimedRun } from "../lib/cli/train_all.ts";
import { resolveConfig } from "../lib/training/config.ts";

async function withOutputs(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cxr-timing-" });
  const before = Deno.env.get("CXR_OUTPUTS");
  Deno.env.set("CXR_OUTPUTS", dir);
  try {
    await fn(dir);
  } finally {
    if (before === undefined) Deno.env.delete("CXR_OUTPUTS");
    else Deno.env.set("CXR_OUTPUTS", before);
    await Deno.remove(dir, { recursive: true });
  }
}

const config = resolveConfig({ net: "densenet121", weights: "formula", augmentViews: 2 }, "full");
const run = (hits: number, skipped = false): TimedRun => ({
  run: "x",
  seconds: 10,
  skipped,
  activations: skipped ? undefined : { hits, computed: 100 - hits },
});
const record = (nets: TimedRun[]) =>
  recordTiming({
    args: ["--profile", "full"],
    config,
    wallSeconds: 30,
    peakRssBytes: 1,
    loadAtStart: [1, 1, 1],
    nets,
    runs: [],
  });

Deno.test("train-all timing: cold cache only when every net computed every activation; history appends", async () => {
  await withOutputs(async (dir) => {
    const cold = await record([run(0), run(0)]);
    assert.equal(cold.coldCache, true);
    assert.equal(cold.profile, "full");
    assert.equal(cold.augmentViews, 2);
    const warm = await record([run(0), run(40)]);
    assert.equal(warm.coldCache, false);
    const skipped = await record([run(0, true), run(0)]);
    assert.equal(skipped.coldCache, false, "a skipped net did not extract anything");
    const lines = (await Deno.readTextFile(join(dir, "train-all-history.jsonl"))).trim().split(
      "\n",
    );
    assert.deepEqual(lines.map((l) => JSON.parse(l).coldCache), [true, false, false]);
    const last = JSON.parse(await Deno.readTextFile(join(dir, "train-all.json")));
    assert.equal(last.coldCache, false);
  });
});

Deno.test("train-all timing: a re-run that trained nothing is not a timing", async () => {
  await withOutputs(async (dir) => {
    await record([run(0, true), run(0, true)]);
    await assert.rejects(Deno.stat(join(dir, "train-all.json")));
    await assert.rejects(Deno.stat(join(dir, "train-all-history.jsonl")));
  });
});
