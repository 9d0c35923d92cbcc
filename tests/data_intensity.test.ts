/**
 * Intensity normalisation: the two operations, the cache key, and that training (feature
 * extraction, in the decode worker), ONNX (classifier.predict), tfjs and serving all give the
 * model the same pixels and so the same answer.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  equalizeGrey,
  normalizeIntensity,
  parseIntensityMode,
  toGrey,
} from "../lib/data/intensity.ts";
import { decodeImage } from "../lib/data/images.ts";
import { loadBatches } from "../lib/data/loader.ts";
import { extractFeatures } from "../lib/features/extract.ts";
import { exportOnnx } from "../lib/onnx/export.ts";
import { openSession } from "../lib/onnx/session.ts";
import { tinySpec } from "../lib/onnx/tiny.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { sharedDir } from "../lib/util/paths.ts";

const opts = { sanitizeResources: false, sanitizeOps: false }; // ORT and sharp keep handles
const TRAIN = join(sharedDir(), "data", "chest_xray", "train");
const files = [
  "NORMAL/IM-0115-0001.jpeg",
  "NORMAL/IM-0117-0001.jpeg",
  "PNEUMONIA/person1000_bacteria_2931.jpeg",
  "PNEUMONIA/person1000_virus_1681.jpeg",
].map((rel) => join(TRAIN, rel));

Deno.test("equalize: the CDF mapping on a known histogram; constant images stay", () => {
  assert.deepEqual([...equalizeGrey(Uint8Array.of(0, 0, 1, 2))], [0, 0, 128, 255]);
  assert.deepEqual([...equalizeGrey(Uint8Array.of(90, 90, 90))], [90, 90, 90]);
  assert.deepEqual([...toGrey(Float32Array.of(10, 10, 10, 255, 0, 0))], [10, 76]);
  assert.throws(() => parseIntensityMode("histeq"), /off \| equalize \| clahe, got "histeq"/);
});

Deno.test(
  "normalizeIntensity: off is the identity; equalize and clahe are grey, deterministic, different",
  opts,
  async () => {
    const img = (await decodeImage(files[0], 224)).data;
    assert.equal(await normalizeIntensity(img, 224, "off"), img);
    const eq = await normalizeIntensity(img, 224, "equalize");
    const cl = await normalizeIntensity(img, 224, "clahe");
    assert.deepEqual(await normalizeIntensity(img, 224, "clahe"), cl);
    for (const out of [eq, cl]) {
      for (let i = 0; i < out.length; i += 3) {
        assert.ok(out[i] === out[i + 1] && out[i] === out[i + 2]);
      }
    }
    const differ = (a: Float32Array, b: Float32Array) => a.some((v, i) => v !== b[i]);
    assert.ok(differ(eq, img) && differ(cl, img) && differ(eq, cl));
    // Equalisation spreads the grey levels: their spread grows on this low-contrast film.
    const sd = (a: Float32Array) => {
      const m = a.reduce((s, v) => s + v, 0) / a.length;
      return Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length);
    };
    assert.ok(sd(eq) > sd(img), `sd ${sd(eq)} vs ${sd(img)}`);
  },
);

Deno.test(
  "feature extraction: intensity is part of the cache key and equals the shared function",
  opts,
  async () => {
    const SIZE = 32;
    const spec = tinySpec({ height: SIZE, width: SIZE });
    const weights = { weights: formulaWeights(weightLayout(spec)), md5: "tiny-formula" };
    const root = await Deno.makeTempDir({ prefix: "cxr-intensity-" });
    const items = files.map((path) => ({ path }));
    const req = { net: "resnet50" as const, spec, weights, outputs: ["probs"], items, threads: 1 };
    try {
      const off = await extractFeatures({ ...req, progress: false, cacheRoot: root });
      const clahe = await extractFeatures({
        ...req,
        progress: false,
        cacheRoot: root,
        intensity: "clahe",
      });
      assert.notEqual(off.cacheDir, clahe.cacheDir);
      assert.equal(clahe.stats.computed, files.length, "no entry of the 'off' cache was reused");
      // The decode worker's pixels are normalizeIntensity's: recompute directly and compare.
      const model = await openSession(
        exportOnnx(spec, weights.weights, { outputs: ["probs"], preprocessing: "caffe" }),
        { threads: 1 },
      );
      try {
        for (let i = 0; i < files.length; i++) {
          const img = await normalizeIntensity(
            (await decodeImage(files[i], SIZE)).data,
            SIZE,
            "clahe",
          );
          const r = await model.run({ image: { data: img, shape: [1, SIZE, SIZE, 3] } });
          assert.deepEqual(clahe.get(i, 0), r.probs.data, `image ${i}`);
        }
      } finally {
        await model.close();
      }
      // The in-process loader gives the same pixels as the worker path's function.
      for await (
        const b of loadBatches(items, {
          batchSize: 4,
          size: SIZE,
          intensity: "clahe",
          progress: false,
        })
      ) {
        const first = await normalizeIntensity(
          (await decodeImage(files[0], SIZE)).data,
          SIZE,
          "clahe",
        );
        assert.deepEqual(b.data.subarray(0, first.length), first);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
