/**
 * The server over a real exported classifier (DenseNet121, formula weights: not ImageNet) in
 * ONNX Runtime with real Grad-CAM: the API over loopback HTTP, then the page driven in headless
 * Chromium (upload via the file input, wait for the result, check probability and heatmap).
 * Set CXR_PAGE_SCREENSHOT=/tmp/page.png to keep a screenshot of the result.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { chromium } from "playwright-core";
import { decodeImage } from "../lib/data/images.ts";
import { gradCamExplainer } from "../lib/explain/gradcam.ts";
import { type Classifier, loadClassifier } from "../lib/inference/classifier.ts";
import { defaultAnchors, writeSyntheticClassifier } from "../lib/inference/synthetic.ts";
import { startServer } from "../lib/serving/server.ts";
import { sharedDir } from "../lib/util/paths.ts";

const TRAIN = join(sharedDir(), "data", "chest_xray", "train");
const CHROMIUM = "/usr/bin/chromium";
const pick = (cls: string, i: number) =>
  join(TRAIN, cls, [...Deno.readDirSync(join(TRAIN, cls))].map((e) => e.name).sort()[i]);

Deno.test({
  name: "serving: real ONNX classifier over HTTP and the page in headless Chromium",
  sanitizeResources: false, // ORT and the browser keep native handles / pipes
  sanitizeOps: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "cxr-serving-" });
    let classifier: Classifier | null = null;
    const server = await startServer({
      classifiers: (async () => {
        await writeSyntheticClassifier(dir, { net: "densenet121", anchors: defaultAnchors(TRAIN) });
        classifier = await loadClassifier(dir);
        return [classifier];
      })(),
      explain: gradCamExplainer,
      port: 0,
    });
    try {
      await server.handler.ready;
      const url = server.url;

      await t.step("API", async () => {
        const models = await (await fetch(`${url}/v1/models`)).json();
        assert.equal(models.models.length, 1);
        assert.equal(models.models[0].net, "densenet121");
        assert.equal(models.models[0].gradcam, true);
        const probs: number[] = [];
        for (const path of [pick("NORMAL", 7), pick("PNEUMONIA", 7)]) {
          const jpeg = await Deno.readFile(path);
          const res = await fetch(`${url}/v1/predict?explain=gradcam`, {
            method: "POST",
            body: jpeg,
            headers: { "content-type": "image/jpeg" },
          });
          const body = await res.json();
          assert.equal(res.status, 200, JSON.stringify(body));
          const r = body.results[0];
          assert.ok(r.probability > 0 && r.probability < 1);
          assert.equal(r.label, r.probability >= r.threshold.value ? "PNEUMONIA" : "NORMAL");
          assert.equal(r.weights.notImageNet, true);
          assert.match(r.weights.md5, /^[0-9a-f]{32}$/);
          assert.equal(r.gradcam.layer, "relu");
          const png = Uint8Array.from(atob(r.gradcam.png_base64), (c) => c.charCodeAt(0));
          const meta = await sharp(png).metadata();
          assert.equal(meta.width, 224);
          // Same pixels as the local decode + predict (what the server does is just that).
          const local = await classifier!.predict(
            (await decodeImage(path)).data,
            1,
          );
          assert.ok(Math.abs(local.prob[0] - r.probability) < 1e-5);
          probs.push(r.probability);
        }
        assert.notEqual(probs[0], probs[1]);
        // A bad input with a real model is still a clean 4xx, and the server still serves.
        const bad = await fetch(`${url}/v1/predict`, {
          method: "POST",
          body: (await Deno.readFile(pick("NORMAL", 7))).slice(0, 2000),
          headers: { "content-type": "image/jpeg" },
        });
        assert.equal(bad.status, 400);
        assert.equal((await bad.json()).error.code, "corrupt_image");
      });

      await t.step({
        name: "page in headless Chromium",
        ignore: !existsSync(CHROMIUM),
        fn: async () => {
          const browser = await chromium.launch({
            executablePath: CHROMIUM,
            args: ["--no-sandbox"],
          });
          try {
            const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
            const errors: string[] = [];
            page.on("pageerror", (e) => errors.push(e.message));
            await page.goto(`${url}/`);
            assert.match(await page.textContent(".notice") ?? "", /not a diagnostic device/);
            // The model list is fetched on load.
            await page.waitForSelector("#model option:nth-child(2)", { state: "attached" });
            await page.setInputFiles("#file", pick("PNEUMONIA", 3));
            await page.waitForSelector("#results .card img.heatmap", { timeout: 60_000 });
            const prob = await page.textContent("#results .card .prob");
            assert.match(prob ?? "", /P\(pneumonia\) = \d+\.\d%/);
            const label = await page.textContent("#results .card .label");
            assert.ok(label === "PNEUMONIA" || label === "NORMAL", `label ${label}`);
            assert.match(await page.textContent("#status") ?? "", /Done in \d+ ms/);
            assert.match(await page.textContent("#results .card .badge") ?? "", /not ImageNet/);
            // Browser-side code as strings: this file is type-checked without the DOM lib.
            const heatmap = await page.evaluate(
              `(() => { const img = document.querySelector("#results .card img.heatmap");
                return { w: img.naturalWidth, src: img.src.slice(0, 22) }; })()`,
            ) as { w: number; src: string };
            assert.equal(heatmap.w, 224, "heatmap image decoded in the browser");
            assert.equal(heatmap.src, "data:image/png;base64,");
            assert.equal(await page.isVisible("#preview"), true);
            // Keyboard: the drop zone is focusable.
            await page.focus("#drop");
            assert.equal(await page.evaluate("document.activeElement?.id"), "drop");
            const shot = Deno.env.get("CXR_PAGE_SCREENSHOT");
            if (shot) await page.screenshot({ path: shot, fullPage: true });
            assert.deepEqual(errors, []);
          } finally {
            await browser.close();
          }
        },
      });
    } finally {
      await server.close();
      await (classifier as Classifier | null)?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
