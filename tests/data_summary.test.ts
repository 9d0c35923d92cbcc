import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../lib/cli/data_summary.ts";
import type { DataSummary } from "../lib/data/summary.ts";
import { grayJpeg, makeTree, put, syntheticNames } from "./data_fixtures.ts";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

Deno.test("data:summary on a synthetic tree: counts, patients, sizes, unreadable files, absent split", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cxr-sum-" });
  try {
    const names = [...syntheticNames("train", 6, 8), ...syntheticNames("test", 2, 2, 900)];
    await makeTree(dir, names, (_rel, i) => grayJpeg(40 + (i % 3) * 10, 30));
    const truncated = (await grayJpeg(300, 300)).subarray(0, 400);
    await put(join(dir, "train", "PNEUMONIA", "person77_bacteria_1.jpeg"), truncated);
    await put(join(dir, "train", "NORMAL", "readme.txt"), "hello");
    const { out, err, io } = capture();
    assert.deepEqual(await main(["--data", dir, "--json"], io), 0, err.join("\n"));
    const s = JSON.parse(out.join("\n")) as DataSummary;
    const trainNormal = names.filter((n) => n.startsWith("train/NORMAL")).length;
    const trainPneu = names.filter((n) => n.startsWith("train/PNEUMONIA")).length + 1;
    assert.deepEqual([s.splits.train.normal, s.splits.train.pneumonia], [trainNormal, trainPneu]);
    assert.deepEqual([s.splits.train.patientsNormal, s.splits.train.patientsPneumonia], [6, 9]);
    assert.deepEqual(s.missingSplits, ["val"]);
    assert.deepEqual(s.unreadable.map((u) => u.rel), ["train/PNEUMONIA/person77_bacteria_1.jpeg"]);
    assert.ok(s.unreadable[0].error.includes("person77_bacteria_1.jpeg"), s.unreadable[0].error);
    assert.deepEqual([s.sizes.widthMin, s.sizes.widthMax, s.sizes.heightMedian], [40, 60, 30]);
    assert.deepEqual(s.sizes.modes, { "jpeg 1ch uchar": names.length });
    assert.ok(s.warnings.some((w) => w.includes("readme.txt")));
    assert.deepEqual(s.protocols.patient.leaks, 0);
    assert.deepEqual(s.protocols.patient.test, 6);

    // The table form says the same in words.
    const text = capture();
    assert.deepEqual(await main(["--data", dir], text.io), 0);
    const t = text.out.join("\n");
    assert.ok(t.includes("val    absent"), t);
    assert.ok(t.includes("unreadable files: 1"), t);
    assert.ok(t.includes("protocol patient:") && t.includes("leaks: 0 patients"), t);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data:summary: wrong path and bad flags give clear errors and exit codes", async () => {
  const missing = "/nonexistent/cxr/chest_xray";
  const a = capture();
  assert.deepEqual(await main(["--data", missing], a.io), 1);
  assert.ok(a.err.join("\n").includes(missing), a.err.join("\n"));
  const b = capture();
  assert.deepEqual(await main(["--datadir", "x"], b.io), 2);
  assert.ok(
    b.err[0].includes("--datadir") && b.err.join("\n").includes("usage:"),
    b.err.join("\n"),
  );
  const c = capture();
  assert.deepEqual(await main(["--val-fraction", "3"], c.io), 2);
  assert.ok(c.err[0].includes("--val-fraction"), c.err[0]);
});
