/**
 * The out-of-distribution guard: its linear algebra, its DICOM tag rules, and, fitted on the shared
 * training images, that it passes >= 98% of held-out validation images while flagging every
 * generated foreign image, the corpus's CT abdomen, and (through the API) withholds the label.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import {
  assessInput,
  FEATURE_DIMS,
  fitGuard,
  foreignImages,
  GUARD_MESSAGE,
  guardFeatures,
  type GuardModel,
  loadGuard,
  quantile,
  shrunkCovariance,
  spdInverse,
  tagReasons,
} from "../lib/inference/guard.ts";
import { decodeImage } from "../lib/data/images.ts";
import type { DicomTags } from "../lib/data/dicom.ts";
import { brightnessClassifier } from "./fake_classifier.ts";
import { startServer } from "../lib/serving/server.ts";
import { mulberry32 } from "../lib/util/random.ts";
import { sharedDir } from "../lib/util/paths.ts";
import { corpusRows, DICOM_DIR, hasCorpus } from "./dicom_fixtures.ts";

const DATA = join(sharedDir(), "data", "chest_xray");
const hasData = (() => {
  try {
    return Deno.statSync(join(DATA, "train", "NORMAL")).isDirectory;
  } catch {
    return false;
  }
})();

Deno.test("guard: SPD inverse, shrinkage and quantile", () => {
  const rand = mulberry32(3);
  const rows = Array.from({ length: 40 }, () => Float64Array.from({ length: 6 }, () => rand()));
  const { cov, shrinkage, mean } = shrunkCovariance(rows);
  assert.ok(shrinkage >= 0 && shrinkage <= 1);
  assert.ok(
    Math.abs(mean[0] - (rows.reduce((s, r) => s + r[0], 0) / 40)) <= 1e-12,
    `${mean[0]} vs ${rows.reduce((s, r) => s + r[0], 0) / 40}`,
  );
  const inv = spdInverse(cov, 6);
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 6; j++) {
      let s = 0;
      for (let k = 0; k < 6; k++) s += cov[i * 6 + k] * inv[k * 6 + j];
      assert.ok(Math.abs(s - (i === j ? 1 : 0)) <= 1e-8, `${s} vs ${i === j ? 1 : 0}`);
    }
  }
  assert.deepEqual(quantile([3, 1, 2, 4], 0.5), 2.5);
  assert.deepEqual(guardFeatures(new Float32Array(224 * 224 * 3).fill(128)).length, FEATURE_DIMS);
});

Deno.test("guard: DICOM tags (modality, body part, view)", () => {
  const tags = (t: Partial<DicomTags>) =>
    ({ modality: "CR", bodyPartExamined: "CHEST", viewPosition: "PA", ...t }) as DicomTags;
  assert.deepEqual(tagReasons(undefined), []);
  assert.deepEqual(tagReasons(tags({})), []);
  assert.deepEqual(
    tagReasons(tags({ modality: "DX", bodyPartExamined: null, viewPosition: null })),
    [],
  );
  assert.deepEqual(tagReasons(tags({ modality: "CT" })).length, 1);
  assert.deepEqual(tagReasons(tags({ bodyPartExamined: "ABDOMEN" })).length, 1);
  assert.deepEqual(tagReasons(tags({ viewPosition: "LL" })).length, 1);
  const v = assessInput(null, new Float32Array(224 * 224 * 3), tags({ modality: "CT" }));
  assert.deepEqual([v.ok, v.message, v.score, v.tagsChecked], [false, GUARD_MESSAGE, null, true]);
});

/** Fitted once for the tests below (a stratified 1500 of the training part keeps it quick). */
let fitted: Promise<GuardModel> | null = null;
const guard = () => fitted ??= fitGuard({ data: DATA, trainImages: 1500 });

Deno.test({
  name: "guard: passes >= 98% of held-out validation images, flags every foreign one",
  ignore: !hasData,
  fn: async () => {
    const g = await guard();
    assert.deepEqual(g.fit.train, 1500);
    assert.ok(g.fit.heldOut > 200, `held-out validation images: ${g.fit.heldOut}`);
    assert.ok(g.falseAlarms.rate <= 0.02, `false alarms ${JSON.stringify(g.falseAlarms)}`);
    assert.ok(g.foreign.length >= 7);
    for (const f of g.foreign) assert.ok(f.score > 1, `${f.name} not flagged: ${f.score}`);
    // Round trip through guard.json.
    const dir = await Deno.makeTempDir({ prefix: "cxr_guard_" });
    try {
      await Deno.writeTextFile(join(dir, "guard.json"), JSON.stringify(g));
      const back = await loadGuard(join(dir, "guard.json"));
      const noise = foreignImages([])[0].rgb;
      assert.deepEqual(assessInput(back, noise).score, assessInput(g, noise).score);
      await Deno.writeTextFile(join(dir, "bad.json"), JSON.stringify({ ...g, dims: 3 }));
      const err = await loadGuard(join(dir, "bad.json")).then(() => null, (e) => e);
      assert.ok(err && /wrong shape/.test(err.message));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "guard: the DICOM corpus X-rays pass, the CT abdomen is flagged",
  ignore: !hasData || !hasCorpus,
  fn: async () => {
    const g = await guard();
    for (const row of corpusRows()) {
      if (row.expect === "error") continue;
      const img = await decodeImage(join(DICOM_DIR, row.file), 224);
      const v = assessInput(g, img.data, img.dicom?.tags);
      if (row.expect === "warn") {
        assert.deepEqual(v.ok, false, row.file);
        assert.ok(v.reasons.some((r) => /Modality CT/.test(r)), v.reasons.join("; "));
      } else {
        assert.deepEqual(v.ok, true, `${row.file}: ${v.reasons.join("; ")}`);
      }
    }
  },
});

Deno.test({
  name: "guard through the API: foreign image withheld (probability only with force=true)",
  ignore: !hasData,
  fn: async () => {
    const g = await guard();
    const server = await startServer({ classifiers: [brightnessClassifier()], guard: g, port: 0 });
    try {
      const noise = foreignImages([])[0].rgb;
      const png = await sharp(Uint8Array.from(noise), {
        raw: { width: 224, height: 224, channels: 3 },
      })
        .png().toBuffer();
      const ask = async (body: Uint8Array, query = "") => {
        const res = await fetch(`${server.url}/v1/predict${query}`, {
          method: "POST",
          body: body as Uint8Array<ArrayBuffer>,
          headers: { "content-type": "image/png" },
        });
        assert.deepEqual(res.status, 200);
        return await res.json();
      };
      const flagged = await ask(new Uint8Array(png));
      assert.deepEqual([flagged.guard.ok, flagged.guard.withheld], [false, true]);
      assert.deepEqual(flagged.guard.message, GUARD_MESSAGE);
      assert.ok(flagged.guard.score > 1);
      assert.deepEqual([flagged.results[0].probability, flagged.results[0].label], [null, null]);
      const forced = await ask(new Uint8Array(png), "?force=true");
      assert.deepEqual([forced.guard.ok, forced.guard.withheld], [false, false]);
      assert.ok(typeof forced.results[0].probability === "number");
      const xray = await sharp(join(DATA, "train", "NORMAL", "IM-0115-0001.jpeg")).png().toBuffer();
      const ok = await ask(new Uint8Array(xray));
      assert.deepEqual([ok.guard.ok, ok.guard.message], [true, null]);
      assert.ok(typeof ok.results[0].probability === "number");
      const models = await (await fetch(`${server.url}/v1/models`)).json();
      assert.deepEqual(models.guard.fitted, true);
    } finally {
      await server.close();
    }
  },
});
