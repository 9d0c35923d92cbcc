import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkpointFiles,
  isPredictionsFileName,
  RunFolder,
  type RunStatus,
  splitKeyOf,
} from "../lib/runs/mod.ts";
import { readJsonOrNull, writeFileAtomic, writeJsonAtomic } from "../lib/util/fs.ts";

Deno.test("RunFolder: paths, status and history round trips, missing files read as null", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "cxr-runs-" });
  try {
    const run = RunFolder.of("vgg16-quick-formula-patient-12345678", tmp);
    assert.equal(run.dir, join(tmp, "vgg16-quick-formula-patient-12345678"));
    assert.equal(run.statusPath, join(run.dir, "run.json"));
    assert.equal(
      run.predictionsPath("ext-foo-test"),
      join(run.dir, "predictions-ext-foo-test.json"),
    );
    assert.equal(run.trainedWeightsStem, join(run.dir, "model", "trained"));
    assert.equal(await run.readStatus(), null);
    assert.equal(await run.readHistory(), null);
    assert.equal(await run.readEvaluation(), null);

    await Deno.mkdir(run.dir);
    const status: RunStatus = { status: "running", phase: 2, epoch: 7, startedAt: "2026-01-01" };
    await run.writeStatus(status);
    assert.deepEqual(await run.readStatus(), status);
    const epoch = {
      epoch: 1,
      phase: 1 as const,
      loss: 0.5,
      accuracy: 0.75,
      auc: 0.8,
      val_loss: 0.6,
      val_accuracy: 0.7,
      val_auc: 0.79,
      lr: 1e-3,
      seconds: 1.5,
    };
    await run.writeHistory([epoch]);
    assert.deepEqual(await run.readHistory(), [epoch]);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(run.historyPath)), { epochs: [epoch] });
    // An unreadable run.json means "start over", not a crash.
    await Deno.writeTextFile(run.statusPath, "{ half a fi");
    assert.equal(await run.readStatus(), null);
    // A corrupt history is an error naming the file.
    await Deno.writeTextFile(run.historyPath, "[");
    await assert.rejects(run.readHistory(), /history\.json is not valid JSON/);
    // Atomic writes leave no temporary behind.
    assert.deepEqual([...Deno.readDirSync(run.dir)].map((e) => e.name).sort(), [
      "history.json",
      "run.json",
    ]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("predictions and checkpoint file names", () => {
  assert.equal(splitKeyOf("/x/predictions-ext-foo-test.json"), "ext-foo-test");
  assert.throws(() => splitKeyOf("/x/evaluation.json"), /not a predictions-<split>\.json/);
  assert.ok(isPredictionsFileName("predictions-val.json"));
  assert.ok(!isPredictionsFileName("predictions-.json"));
  assert.deepEqual(checkpointFiles("/c", "last"), {
    weights: join("/c", "last"),
    state: join("/c", "last.state.json"),
  });
});

Deno.test("atomic writes replace whole files and clean up after a failed write", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "cxr-atomic-" });
  try {
    const p = join(tmp, "a.json");
    await writeJsonAtomic(p, { a: 1 }, 1);
    assert.equal(await Deno.readTextFile(p), '{\n "a": 1\n}\n');
    await writeJsonAtomic(p, { b: 2 });
    assert.equal(await Deno.readTextFile(p), '{"b":2}\n');
    assert.deepEqual(await readJsonOrNull(p), { b: 2 });
    assert.equal(await readJsonOrNull(join(tmp, "none.json")), null);
    // Writing into a missing folder fails without leaving anything behind.
    await assert.rejects(writeFileAtomic(join(tmp, "no", "x.bin"), new Uint8Array([1])));
    await writeFileAtomic(join(tmp, "b.bin"), new Uint8Array([1, 2, 3]));
    assert.deepEqual(await Deno.readFile(join(tmp, "b.bin")), new Uint8Array([1, 2, 3]));
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name).sort(), ["a.json", "b.bin"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
