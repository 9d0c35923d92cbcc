import assert from "node:assert/strict";
import { join } from "node:path";
import { makeSyntheticRun } from "./evaluation_fixtures.ts";
import { latestRunsPerNet, writeReport } from "../lib/reporting/report.ts";
import { svgToPng } from "../lib/charts/render.ts";

Deno.test("report: md + self-contained html with table rows, not-ImageNet label, images", async () => {
  const root = await Deno.makeTempDir({ prefix: "cxr_report_" });
  try {
    const runs = join(root, "runs");
    const a = await makeSyntheticRun(runs, {
      net: "vgg16",
      weights: "formula",
      nVal: 120,
      nTest: 0,
      separation: 1.2,
      seed: 1,
    });
    const b = await makeSyntheticRun(runs, {
      net: "densenet121",
      weights: "imagenet",
      nVal: 120,
      nTest: 16,
      separation: 2,
      seed: 2,
      protocol: "seed",
    });
    // Run a trained with the defences; b before them (no fields: intensity off, no views).
    const aConfig = join(a, "config.json");
    const aSaved = JSON.parse(await Deno.readTextFile(aConfig));
    await Deno.writeTextFile(
      aConfig,
      JSON.stringify({ ...aSaved, intensity: "equalize", augmentViews: 1 }),
    );
    // a Grad-CAM example (any PNG will do for the report)
    await Deno.mkdir(join(b, "gradcam"));
    const cam = svgToPng(
      '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect width="32" height="32" fill="red"/></svg>',
      1,
    );
    await Deno.writeFile(join(b, "gradcam", "test_PNEUMONIA_correct_1.png"), cam);
    await Deno.writeTextFile(
      join(b, "gradcam", "index.json"),
      JSON.stringify({
        items: [{ file: "test_PNEUMONIA_correct_1.png", caption: "PNEUMONIA, correct (p=0.97)" }],
      }),
    );
    const out = join(root, "out");
    const { md, html } = await writeReport({ runDirs: [a, b], outDir: out });
    const mdText = await Deno.readTextFile(md);
    const htmlText = await Deno.readTextFile(html);
    // one table row per model and split, with threshold method and CI brackets
    assert.match(
      mdText,
      /\| \*\*VGG16 ⚠ not ImageNet\*\* \| formula \(not ImageNet\) \| validation/,
    );
    assert.match(mdText, /\| \*\*DenseNet121\*\* \| imagenet \| test[^|]*\(16: 12\/4\)/);
    assert.match(mdText, /sens95, from validation/);
    assert.match(mdText, /VGG16 ⚠ not ImageNet\*\* \|[^\n]*\| quick · equalize · 1 view \|/);
    assert.match(mdText, /DenseNet121\*\* \|[^\n]*\| quick · off · 0 views \|/);
    assert.match(mdText, /\d+\.\d% \[\d+\.\d%–\d+\.\d%\]/, "CI brackets");
    assert.match(mdText, /NOT IMAGENET: VGG16/);
    assert.match(mdText, /Small test set \(DenseNet121, n = 16\)/);
    // Only numbers computed from the runs: no quoted figures from elsewhere.
    assert.doesNotMatch(mdText, /original project's figures \(|15\/16|0\.995|0\.917|94%|0\.97 \|/);
    // md links point at existing files
    for (const m of mdText.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)) {
      const stat = await Deno.stat(join(out, decodeURI(m[1])));
      assert.ok(stat.isFile, m[1]);
    }
    assert.match(mdText, /DenseNet121: Grad-CAM examples/);
    assert.ok(htmlText.includes("PNEUMONIA, correct (p=0.97)"));
    // html: banner, no external references, every image inlined and decodable
    assert.ok(htmlText.includes('class="banner warning"'));
    assert.ok(!/src="(?!data:)/.test(htmlText), "no external image sources");
    const images = [...htmlText.matchAll(/src="data:(image\/[a-z+]+);base64,([A-Za-z0-9+/=]+)"/g)];
    assert.ok(images.length >= 10, `${images.length} inline images`);
    for (const [, mime, data] of images) {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      if (mime === "image/svg+xml") {
        assert.match(new TextDecoder().decode(bytes.slice(0, 200)), /^<svg/);
      } else assert.deepEqual([...bytes.slice(1, 4)], [0x50, 0x4e, 0x47]);
    }
    // latest finished run per net
    const latest = await latestRunsPerNet(runs);
    assert.deepEqual(latest.sort(), [a, b].sort());
    await assert.rejects(() => writeReport({ runDirs: [], outDir: out }), /no runs/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
