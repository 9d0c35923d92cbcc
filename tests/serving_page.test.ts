/**
 * The clinical-test page in headless Chromium (playwright-core + Debian's chromium), over fake
 * classifiers: a DICOM upload shows the tags used and a result; the guard's warning and the
 * "show anyway" path; plain-language errors that clear the previous result; the UNTRAINED demo
 * badge and the threshold profile; Grad-CAM opacity and side-by-side; and the page at 375 px
 * (no horizontal scrolling, with a long model name; screenshot kept when CXR_PAGE_SCREENSHOT_DIR
 * is set).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { chromium, type Page } from "playwright-core";
import { brightnessClassifier } from "./fake_classifier.ts";
import type { Explainer } from "../lib/explain/explainer.ts";
import { startServer } from "../lib/serving/server.ts";
import { sharedDir } from "../lib/util/paths.ts";
import { DICOM_DIR, hasCorpus } from "./dicom_fixtures.ts";

const CHROMIUM = "/usr/bin/chromium";
const TRAIN = join(sharedDir(), "data", "chest_xray", "train");
const LONG_ID = "densenet121-20261127T140000Z-full-formula-weights-seed42-a-very-long-run-name";

/** A red square heatmap (RGBA) and an overlay, as the real Grad-CAM returns. */
const explain: Explainer = async () => {
  const rgba = new Uint8Array(224 * 224 * 4);
  for (let i = 0; i < 224 * 224; i++) rgba.set([255, 0, 0, i % 224 < 112 ? 255 : 0], i * 4);
  const heatmapPng = new Uint8Array(
    await sharp(rgba, { raw: { width: 224, height: 224, channels: 4 } }).png().toBuffer(),
  );
  const overlayPng = new Uint8Array(await sharp(heatmapPng).flatten().png().toBuffer());
  return { overlayPng, heatmapPng, h: 7, w: 7, layer: "relu", target: "PNEUMONIA" };
};

const text = async (page: Page, sel: string) => (await page.textContent(sel)) ?? "";

Deno.test({
  name: "page in headless Chromium: DICOM tags, guard, errors, Grad-CAM controls, 375 px",
  ignore: !existsSync(CHROMIUM) || !hasCorpus,
  sanitizeResources: false, // the browser keeps pipes
  sanitizeOps: false,
  fn: async () => {
    const server = await startServer({
      classifiers: [
        brightnessClassifier({
          id: LONG_ID,
          untrained: true,
          gradcamLayer: "relu",
          threshold: { value: 0.4 },
        }),
      ],
      explain,
      port: 0,
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const tmp = await Deno.makeTempDir({ prefix: "cxr_page_" });
    try {
      const errors: string[] = [];
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${server.url}/`);
      await page.waitForSelector("#model option:nth-child(2)", { state: "attached" });
      const option = await text(page, "#model option:nth-child(2)");
      assert.ok(option.startsWith("UNTRAINED") && option.length <= 38, option);

      // A DICOM file: result, tags used, preview from the server, UNTRAINED, profile.
      await page.setInputFiles("#file", join(DICOM_DIR, "mono2_12bit_window.dcm"));
      await page.waitForSelector("#results .card .prob");
      assert.ok(/P\(pneumonia\) = \d+\.\d%/.test(await text(page, "#results .card .prob")));
      const info = await text(page, "#image-info");
      for (const s of ["DICOM", "Modality", "CR", "Body part", "CHEST", "Bits stored", "12"]) {
        assert.ok(info.includes(s), `image info shows ${s}: ${info}`);
      }
      assert.ok(info.includes("centre 2048, width 4096"), info);
      assert.deepEqual(await page.isVisible("#preview"), true);
      assert.deepEqual(await text(page, "#results .card .badge.untrained"), "UNTRAINED");
      assert.ok((await text(page, "#results .card .warn")).includes("meaningless"));
      assert.ok((await text(page, "#results .card dl")).includes("Threshold profilevalidation"));

      // Grad-CAM: opacity slider drives the layer, side by side shows the plain X-ray too.
      assert.deepEqual(await page.isVisible("#cam-controls"), true);
      await page.fill("#opacity", "25");
      const op = await page.evaluate(
        `getComputedStyle(document.querySelector("#results .cam-stack img.heatmap")).opacity`,
      );
      assert.deepEqual(op, "0.25");
      assert.deepEqual(await page.isVisible("#results .cam-plain"), false);
      await page.check('input[name="cam-view"][value="side"]');
      assert.deepEqual(await page.isVisible("#results .cam-plain"), true);
      assert.ok((await text(page, ".scale")).includes("strong evidence"));

      // The guard: a CT abdomen is withheld, then shown on request.
      await page.setInputFiles("#file", join(DICOM_DIR, "off_target_ct_abdomen.dcm"));
      await page.waitForSelector("#guard:not([hidden])");
      const guard = await text(page, "#guard");
      assert.ok(guard.includes("This does not look like a frontal chest radiograph"), guard);
      assert.ok(guard.includes("Modality CT"), guard);
      assert.ok((await text(page, "#results .card .prob")).includes("Withheld"));
      await page.click("#guard button");
      await page.waitForSelector("#results .card .bar");
      assert.ok(/P\(pneumonia\)/.test(await text(page, "#results .card .prob")));
      assert.ok((await text(page, "#guard")).includes("meaningless"));

      // A broken DICOM: plain-language error, previous result gone.
      await page.setInputFiles("#file", join(DICOM_DIR, "not_dicom.dcm"));
      await page.waitForSelector("#status.error");
      assert.ok(
        (await text(page, "#status")).includes("This file is not a JPEG, PNG or DICOM X-ray"),
      );
      assert.deepEqual(await page.locator("#results .card").count(), 0);
      assert.deepEqual(await page.isVisible("#guard"), false);
      assert.deepEqual(await page.isVisible("#image-info"), false);

      // A JPEG result, then a rejected text file: the result is cleared at once.
      await page.setInputFiles("#file", join(TRAIN, "NORMAL", "IM-0115-0001.jpeg"));
      await page.waitForSelector("#results .card .prob");
      const notes = join(tmp, "notes.txt");
      await Deno.writeTextFile(notes, "not an image");
      await page.setInputFiles("#file", notes);
      await page.waitForSelector("#status.error");
      assert.ok(
        (await text(page, "#status")).includes("This file is not a JPEG, PNG or DICOM X-ray"),
      );
      assert.deepEqual(await page.locator("#results .card").count(), 0);
      assert.deepEqual(await page.isVisible("#preview"), false);

      // 375 px (a phone): nothing wider than the screen, long model name capped.
      const phone = await browser.newPage({ viewport: { width: 375, height: 800 } });
      phone.on("pageerror", (e) => errors.push(e.message));
      await phone.goto(`${server.url}/`);
      await phone.waitForSelector("#model option:nth-child(2)", { state: "attached" });
      await phone.setInputFiles("#file", join(DICOM_DIR, "mono2_8bit_explicit.dcm"));
      await phone.waitForSelector("#results .card .prob");
      const widths = await phone.evaluate(`(() => ({
        page: document.documentElement.scrollWidth,
        select: document.querySelector("#model").getBoundingClientRect().right,
        card: document.querySelector("#results .card").getBoundingClientRect().right,
      }))()`) as { page: number; select: number; card: number };
      assert.ok(widths.page <= 375, `page scrolls sideways: ${JSON.stringify(widths)}`);
      assert.ok(widths.select <= 375 && widths.card <= 375, JSON.stringify(widths));
      const shotDir = Deno.env.get("CXR_PAGE_SCREENSHOT_DIR") ?? tmp;
      const shot = join(shotDir, "page-375.png");
      await phone.screenshot({ path: shot, fullPage: true });
      assert.deepEqual((await sharp(shot).metadata()).width, 375);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
