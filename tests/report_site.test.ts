/**
 * The report's sections on data from elsewhere: external sets (provenance, drop from validation
 * with CIs), robustness (summary line per model, heat map, table) and site profiles.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeSyntheticRun } from "./evaluation_fixtures.ts";
import { writeReport } from "../lib/reporting/report.ts";
import { runShiftSuite, type SuiteModel } from "../lib/evaluation/robustness.ts";
import { saveSiteProfile } from "../lib/evaluation/profiles.ts";
import { grayJpeg, put } from "./data_fixtures.ts";
import { mulberry32 } from "../lib/util/random.ts";

Deno.test("report: external sets, robustness and site profiles sections", async () => {
  const root = await Deno.makeTempDir({ prefix: "cxr_report_site_" });
  try {
    const run = await makeSyntheticRun(join(root, "runs"), {
      net: "densenet121",
      weights: "formula",
      nVal: 120,
      nTest: 0,
      separation: 1.5,
      seed: 3,
    });
    // An external set with provenance, its scores drifted upward.
    const rand = mulberry32(9);
    const items = Array.from({ length: 80 }, (_, i) => {
      const label = (i % 2) as 0 | 1;
      const z = (rand() - 0.5) * 3 + (label ? 1.5 : 0.2);
      return { rel: `x/${i}.png`, label, prob: 1 / (1 + Math.exp(-z)), patient: `p${i}` };
    });
    await Deno.writeTextFile(
      join(run, "predictions-ext-st-elsewhere.json"),
      JSON.stringify({
        split: "ext-st-elsewhere",
        items,
        source: {
          dataRoot: "/data/elsewhere",
          name: "st-elsewhere",
          sha256: "c0ffee".repeat(10) + "abcd",
          counts: { n: 80, positives: 40, negatives: 40, unreadable: 0 },
        },
      }),
    );
    // A robustness result from the real suite on small synthetic images and a fake model.
    const images = [];
    for (let i = 0; i < 8; i++) {
      const path = join(root, "img", `${i}.jpeg`);
      await put(path, await grayJpeg(64, 64, i));
      images.push({ path, rel: `${i}.jpeg`, label: (i % 2) as 0 | 1, patient: `q${i}` });
    }
    const model: SuiteModel = {
      id: "densenet121-quick-formula-patient-3",
      net: "densenet121",
      weightsLabel: "formula (not ImageNet)",
      notImageNet: true,
      threshold: {
        name: "validation",
        value: 0.5,
        method: "sens95",
        sensitivity: 1,
        specificity: 1,
      },
      predict: (x, n) => {
        const per = x.length / n;
        return Promise.resolve({
          prob: Float32Array.from({ length: n }, (_, k) => x[k * per + 100] / 255),
        });
      },
    };
    const [r] = await runShiftSuite(images, [model], {
      kinds: ["brightness", "invert"],
      iterations: 50,
      quiet: true,
    });
    await Deno.writeTextFile(join(run, "robustness.json"), JSON.stringify(r));
    await saveSiteProfile(run, {
      name: "site:elsewhere",
      value: 0.62,
      method: "target-sensitivity",
      targetSensitivity: 0.95,
      sensitivity: 0.95,
      specificity: 0.4,
      ci: { sensitivity: [0.9, 1], specificity: [0.25, 0.55] },
      data: {
        path: "/data/elsewhere",
        sha256: "ab".repeat(32),
        n: 80,
        positives: 40,
        negatives: 40,
        patients: 80,
      },
      warnings: ["small sample: 40 PNEUMONIA images"],
      createdAt: "2026-11-27T00:00:00Z",
    });
    const out = join(root, "out");
    const { md, html } = await writeReport({ runDirs: [run], outDir: out, reevaluate: true });
    const text = await Deno.readTextFile(md);
    assert.ok(text.includes("## External test sets"), text);
    assert.ok(text.includes("**st-elsewhere**"), text);
    assert.ok(text.includes("`/data/elsewhere`"), text);
    assert.ok(text.includes("`c0ffeec0ffee`"), text);
    assert.ok(text.includes("80: 40/40"), text);
    assert.ok(/\| -0\.\d{3} \[-0\.\d{3}–[+-]0\.\d{3}\] \|/.test(text), "Δ AUC with its CI");
    assert.ok(text.includes("## Robustness to acquisition shifts"), text);
    assert.ok(text.includes("- DenseNet121: worst shift brightness"), text);
    assert.ok(text.includes("report_files/robustness.png"), text);
    assert.ok(text.includes("| invert (1: 1) |"), text);
    assert.ok(text.includes("## Site threshold profiles"), text);
    assert.ok(text.includes("`site:elsewhere`"), text);
    assert.ok(text.includes("DenseNet121 site:elsewhere: small sample"), text);
    assert.match(await Deno.readTextFile(html), /Robustness to acquisition shifts/);
    assert.ok((await Deno.stat(join(out, "report_files", "robustness.svg"))).size > 1000);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
