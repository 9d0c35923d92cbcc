/**
 * DICOM through the HTTP API: the shared corpus file by file (raw application/dicom and multipart),
 * the non-identifying tags in the answer, a 4xx JSON error for every `error` file, and never a
 * patient field in any answer.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { brightnessClassifier } from "./fake_classifier.ts";
import { startServer } from "../lib/serving/server.ts";
import { corpusRows, DICOM_DIR, hasCorpus } from "./dicom_fixtures.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

async function post(url: string, body: BodyInit, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/v1/predict`, { method: "POST", body, headers });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as Json };
}

Deno.test({
  name: "serving DICOM: the corpus through the API, as MANIFEST.tsv says",
  ignore: !hasCorpus,
  fn: async () => {
    const server = await startServer({ classifiers: [brightnessClassifier()], port: 0 });
    try {
      for (const row of corpusRows()) {
        const bytes = await Deno.readFile(join(DICOM_DIR, row.file));
        const raw = await post(server.url, bytes, { "content-type": "application/dicom" });
        const form = new FormData();
        form.append("image", new Blob([bytes], { type: "application/dicom" }), row.file);
        const multi = await post(server.url, form);
        for (const r of [raw, multi]) {
          assert.ok(!/ANON|patient/i.test(r.text), `${row.file}: no patient field in ${r.text}`);
          if (row.expect === "error") {
            assert.ok(r.status >= 400 && r.status < 500, `${row.file}: ${r.status} ${r.text}`);
            assert.ok(typeof r.json.error?.message === "string" && r.json.error.code, r.text);
            continue;
          }
          assert.deepEqual(r.status, 200, `${row.file}: ${r.text}`);
          const tags = r.json.image.dicom;
          assert.deepEqual(r.json.image.format, "dicom");
          for (
            const k of ["modality", "bodyPartExamined", "photometricInterpretation", "bitsStored"]
          ) {
            assert.ok(k in tags, `${row.file}: tag ${k} in the answer`);
          }
          assert.ok("window" in tags && "viewPosition" in tags);
          if (row.expect === "warn") {
            // CT abdomen: never a silent prediction (tags checked even without a fitted guard).
            assert.deepEqual([r.json.guard.ok, r.json.guard.withheld], [false, true]);
            assert.deepEqual(r.json.results[0].probability, null);
          } else {
            assert.deepEqual(r.json.guard.ok, true, `${row.file}: ${r.text}`);
          }
          if (row.expect === "error-or-first-frame") {
            assert.ok(r.json.image.warnings.some((w: string) => /frame 1/.test(w)), r.text);
          }
        }
      }
      const notDicom = await post(
        server.url,
        await Deno.readFile(join(DICOM_DIR, "not_dicom.dcm")),
        {
          "content-type": "application/dicom",
        },
      );
      assert.deepEqual(notDicom.json.error.code, "not_an_image");
      assert.ok(
        notDicom.json.error.message.startsWith("This file is not a JPEG, PNG or DICOM X-ray"),
      );
      const empty = await post(
        server.url,
        await Deno.readFile(join(DICOM_DIR, "no_pixel_data.dcm")),
        {
          "content-type": "application/dicom",
        },
      );
      assert.deepEqual([empty.status, empty.json.error.code], [422, "no_image"]);
      assert.ok(/no image in this DICOM file/.test(empty.json.error.message));
    } finally {
      await server.close();
    }
  },
});
