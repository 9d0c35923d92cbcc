/**
 * Paired comparison of two models on the same images (lib/evaluation/paired.ts) and its section
 * in the report: deltas with paired patient-bootstrap CIs, a claim only when the CI excludes 0,
 * the training profile and n in every row.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pairedComparison, verdict } from "../lib/evaluation/paired.ts";
import type { PredictionItem } from "../lib/evaluation/evaluate.ts";
import { writeReport } from "../lib/reporting/report.ts";
import { mulberry32 } from "../lib/util/random.ts";
import { makeSyntheticRun } from "./evaluation_fixtures.ts";

/** n images of 2 per patient; `separation` sets how well probs follow labels. */
function items(n: number, separation: number, seed: number): PredictionItem[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const label = (i % 3 === 0 ? 0 : 1) as 0 | 1;
    const z = (rand() - 0.5) * 4 + (label ? separation : -separation);
    return {
      rel: `x/${i}.jpeg`,
      sha256: i.toString(16).padStart(64, "0"),
      patient: `p${Math.floor(i / 2)}`,
      label,
      prob: 1 / (1 + Math.exp(-z)),
    };
  });
}

Deno.test("paired: same model gives zero differences; a better model is shown better", () => {
  const a = items(400, 0.3, 1);
  const same = pairedComparison(a, a, 0.5, 0.5, { iterations: 200 });
  assert.deepEqual(same.n, 400);
  assert.deepEqual(same.patients, 200);
  for (const d of Object.values(same.deltas)) {
    assert.deepEqual([d.delta, d.ci[0], d.ci[1]], [0, 0, 0]);
    assert.deepEqual(verdict(d), "no difference shown");
  }
  // B sees the same images (same labels and keys) with far better separation.
  const b = items(400, 2.5, 2);
  const cmp = pairedComparison(a, b, 0.5, 0.5, { iterations: 300 });
  assert.ok(cmp.deltas.rocAuc.delta > 0.2, `ΔAUC ${cmp.deltas.rocAuc.delta}`);
  assert.ok(cmp.deltas.rocAuc.ci[0] > 0, `CI ${cmp.deltas.rocAuc.ci}`);
  assert.deepEqual(verdict(cmp.deltas.rocAuc), "better");
  assert.deepEqual(
    verdict(pairedComparison(b, a, 0.5, 0.5, { iterations: 300 }).deltas.rocAuc),
    "worse",
  );
  // Only shared images count; disagreeing labels or no overlap are errors.
  assert.deepEqual(pairedComparison(a, b.slice(0, 100), 0.5, 0.5, { iterations: 50 }).n, 100);
  const flipped = b.map((i) => ({ ...i, label: (1 - i.label) as 0 | 1 }));
  assert.throws(() => pairedComparison(a, flipped, 0.5, 0.5), /label/);
  const other = b.map((i) => ({ ...i, sha256: `z${i.sha256}` }));
  assert.throws(() => pairedComparison(a, other, 0.5, 0.5), /share no/);
});

Deno.test("report: paired comparison section, training profile and n in every row", async () => {
  const root = await Deno.makeTempDir({ prefix: "cxr_paired_" });
  try {
    const runs = join(root, "runs");
    // Same seed: the same images and labels; different separation: different models.
    const weak = await makeSyntheticRun(runs, {
      net: "vgg16",
      weights: "formula",
      nVal: 400,
      nTest: 0,
      separation: 0.2,
      seed: 5,
    });
    const strong = await makeSyntheticRun(runs, {
      net: "densenet121",
      weights: "formula",
      nVal: 400,
      nTest: 0,
      separation: 2.5,
      seed: 5,
    });
    const { md } = await writeReport({ runDirs: [weak, strong], outDir: join(root, "out") });
    const text = await Deno.readTextFile(md);
    assert.ok(text.includes("## Paired comparison"), "section present");
    assert.ok(
      /\| \*\*DenseNet121\*\* − \*\*VGG16\*\* \| validation \(400 images, \d+ patients\)/.test(
        text,
      ),
    );
    assert.ok(text.includes("DenseNet121 has a higher ROC-AUC than VGG16 on the same 400"), text);
    // Every row of the main table names the training profile and n.
    const mainRows = text.split("\n").filter((l) =>
      l.startsWith("| **") && l.includes("from validation")
    );
    assert.deepEqual(mainRows.length, 2);
    for (const row of mainRows) {
      assert.ok(/\(400: \d+\/\d+\) \| quick · off · 0 views \|/.test(row), row);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
