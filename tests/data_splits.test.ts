import assert from "node:assert/strict";
import type { ImageItem, SplitName } from "../lib/data/dataset.ts";
import { patientId } from "../lib/data/patients.ts";
import { leakCount, makeSplits } from "../lib/data/splits.ts";
import { syntheticNames } from "./data_fixtures.ts";

/** Items for a synthetic tree (no files needed: makeSplits only reads the metadata). */
function itemsFor(rels: string[]): ImageItem[] {
  return rels.map((rel) => {
    const [split, className, name] = rel.split("/");
    return {
      path: `/synthetic/${rel}`,
      rel,
      split: split as SplitName,
      label: className === "PNEUMONIA" ? 1 : 0,
      className: className as "NORMAL" | "PNEUMONIA",
      patient: patientId(name),
    };
  });
}

const items = itemsFor([
  ...syntheticNames("train", 120, 240),
  ...syntheticNames("val", 3, 3, 5000),
  ...syntheticNames("test", 20, 30, 6000),
]);
const official = (split: SplitName) => items.filter((it) => it.split === split);
const rels = (list: ImageItem[]) => list.map((it) => it.rel);
const share = (list: ImageItem[]) => list.filter((it) => it.label === 1).length / list.length;

Deno.test("seed protocol: train = train, validation = official test, test = official val", () => {
  const s = makeSplits(items, { protocol: "seed" });
  assert.deepEqual(s.protocol, "seed");
  assert.deepEqual(rels(s.train), rels(official("train")).sort());
  assert.deepEqual(rels(s.val), rels(official("test")).sort());
  assert.deepEqual(rels(s.test), rels(official("val")).sort());
  assert.deepEqual(leakCount(s), 0);
  assert.ok(s.notes.some((n) => n.includes("validation = official test")));
});

Deno.test("patient protocol: patient-disjoint, stratified, seeded validation from train", () => {
  const s = makeSplits(items, { protocol: "patient", valFraction: 0.12, seed: 7 });
  const train = official("train");
  // Nothing lost, nothing added: train + val = official train; test = official test.
  assert.deepEqual([...rels(s.train), ...rels(s.val)].sort(), rels(train).sort());
  assert.deepEqual(rels(s.test), rels(official("test")).sort());
  // Patient-disjoint.
  const trainPatients = new Set(s.train.map((it) => it.patient));
  assert.ok(s.val.every((it) => !trainPatients.has(it.patient)));
  assert.deepEqual(leakCount(s), 0);
  // About 12% of images, and the class ratio kept (within a patient's worth of images).
  const frac = s.val.length / train.length;
  assert.ok(frac > 0.1 && frac < 0.14, `val fraction ${frac}`);
  assert.ok(Math.abs(share(s.val) - share(train)) < 0.03, `${share(s.val)} vs ${share(train)}`);
  // Reproducible with the seed, different with another seed, independent of input order.
  assert.deepEqual(rels(makeSplits(items, { protocol: "patient", seed: 7 }).val), rels(s.val));
  assert.deepEqual(
    rels(makeSplits(items.slice().reverse(), { protocol: "patient", seed: 7 }).val),
    rels(s.val),
  );
  assert.ok(
    rels(makeSplits(items, { protocol: "patient", seed: 8 }).val).join() !== rels(s.val).join(),
  );
  assert.ok(
    s.notes.some((n) => n.includes(`official val (${official("val").length} images) unused`)),
    s.notes.join("\n"),
  );
});

Deno.test("leak check finds patients shared across splits", () => {
  const leaky = itemsFor([
    "train/PNEUMONIA/person1_bacteria_1.jpeg",
    "train/NORMAL/IM-0001-0001.jpeg",
    "test/PNEUMONIA/person1_virus_9.jpeg",
    "val/NORMAL/IM-0001-0002.jpeg",
  ]);
  const s = makeSplits(leaky, { protocol: "seed" });
  // seed: val = official test (person1), test = official val (IM-0001).
  assert.deepEqual(s.leaks, [
    { a: "train", b: "val", patients: ["person1"] },
    { a: "train", b: "test", patients: ["IM-0001"] },
    { a: "val", b: "test", patients: [] },
  ]);
  assert.deepEqual(leakCount(s), 2);
});

Deno.test("subset: stratified and seeded per split", () => {
  const s = makeSplits(items, {
    protocol: "patient",
    seed: 3,
    subset: { train: 100, val: 40, test: 10 },
  });
  assert.deepEqual([s.train.length, s.val.length, s.test.length], [100, 40, 10]);
  const full = makeSplits(items, { protocol: "patient", seed: 3 });
  const fullTrain = new Set(rels(full.train));
  assert.ok(s.train.every((it) => fullTrain.has(it.rel)), "subset drawn from its own split");
  assert.ok(Math.abs(share(s.train) - share(full.train)) <= 0.01 + 1 / 100);
  assert.deepEqual(
    rels(makeSplits(items, { protocol: "patient", seed: 3, subset: { train: 100 } }).train),
    rels(s.train),
  );
  // Larger than the split: the whole split.
  assert.deepEqual(
    makeSplits(items, { protocol: "seed", subset: { test: 1000 } }).test.length,
    official("val").length,
  );
});

Deno.test("makeSplits rejects bad options with the option named", () => {
  for (
    const [opts, word] of [
      [{ protocol: "random" }, "protocol"],
      [{ protocol: "patient", valFraction: 1.5 }, "valFraction"],
      [{ protocol: "patient", subset: { train: -1 } }, "subset"],
    ] as const
  ) {
    try {
      // deno-lint-ignore no-explicit-any
      makeSplits(items, opts as any);
      throw new Error("no error");
    } catch (e) {
      assert.ok((e as Error).message.includes(word), (e as Error).message);
    }
  }
});
