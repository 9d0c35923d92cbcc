/**
 * The report's sections on data from elsewhere: external sets (provenance, drop from validation
 * with CIs), robustness (summary line per model, heat map, table) and site profiles.
 */
import { assert, assertStringIncludes } from "./assert.ts";
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
    assertStringIncludes(text, "## External test sets");
    assertStringIncludes(text, "**st-elsewhere**");
    assertStringIncludes(text, "`/data/elsewhere`");
    assertStringIncludes(text, "`c0ffeec0ffee`");
    assertStringIncludes(text, "80: 40/40");
    assert(/\| -0\.\d{3} \[-0\.\d{3}–[+-]0\.\d{3}\] \|/.test(text), "Δ AUC with its CI");
    assertStringIncludes(text, "## Robustness to acquisition shifts");
    assertStringIncludes(text, "- DenseNet121: worst shift brightness");
    assertStringIncludes(text, "report_files/robustness.png");
    assertStringIncludes(text, "| invert (1: 1) |");
    assertStringIncludes(text, "## Site threshold profiles");
    assertStringIncludes(text, "`site:elsewhere`");
    assertStringIncludes(text, "DenseNet121 site:elsewhere: small sample");
    assertStringIncludes(await Deno.readTextFile(html), "Robustness to acquisition shifts");
    assert((await Deno.stat(join(out, "report_files", "robustness.svg"))).size > 1000);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
