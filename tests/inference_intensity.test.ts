/**
 * A CLAHE-normalised classifier (DenseNet121, formula weights: not ImageNet) gives the same
 * answer through ONNX (`classifier.predict`), the HTTP API and a tfjs model of the same weights
 * fed `preprocessInput(normalizeIntensity(image))`: one preprocessing path everywhere. The
 * same graph without the normalisation answers differently, so the check can fail.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { normalizeIntensity } from "../lib/data/intensity.ts";
import { decodeImage } from "../lib/data/images.ts";
import { loadClassifier } from "../lib/inference/classifier.ts";
import { defaultAnchors, writeSyntheticClassifier } from "../lib/inference/synthetic.ts";
import { withHead } from "../lib/models/head.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { preprocessInput } from "../lib/models/preprocess.ts";
import { getNetSpec } from "../lib/models/registry.ts";
import { buildTfModel } from "../lib/models/tfjs.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { loadWeights } from "../lib/models/weights/io.ts";
import { startServer } from "../lib/serving/server.ts";
import { initBackend, tf } from "../lib/tf/backend.ts";
import { sharedDir } from "../lib/util/paths.ts";

const TRAIN = join(sharedDir(), "data", "chest_xray", "train");
const pick = (cls: string, i: number) =>
  join(TRAIN, cls, [...Deno.readDirSync(join(TRAIN, cls))].map((e) => e.name).sort()[i]);

Deno.test({
  name: "intensity: ONNX classifier, HTTP API and tfjs see the same normalised pixels",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cxr-intensity-pkg-" });
    const anchors = defaultAnchors(TRAIN);
    await writeSyntheticClassifier(dir, { net: "densenet121", anchors, intensity: "clahe" });
    const c = await loadClassifier(dir);
    // The same graph read with intensity "off".
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "classifier.json")));
    await Deno.writeTextFile(join(dir, "off.json"), JSON.stringify({ ...meta, intensity: "off" }));
    const off = await loadClassifier({
      onnxPath: join(dir, "classifier.onnx"),
      metaPath: join(dir, "off.json"),
    });
    const server = await startServer({ classifiers: [c], port: 0 });
    try {
      assert.equal(c.intensity, "clahe");
      const path = pick("PNEUMONIA", 3);
      const img = (await decodeImage(path, 224)).data;
      const before = img.slice();
      const pOnnx = (await c.predict(img, 1)).prob[0];
      assert.deepEqual(img, before, "predict normalises a copy, not the caller's pixels");
      const pOff = (await off.predict(img, 1)).prob[0];
      assert.ok(Math.abs(pOff - pOnnx) > 1e-4, `clahe changes the answer (${pOff} vs ${pOnnx})`);

      // Serving: the uploaded JPEG goes through the same decode and normalisation.
      const res = await fetch(`${server.url}/v1/predict`, {
        method: "POST",
        body: await Deno.readFile(path),
        headers: { "content-type": "image/jpeg" },
      });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(body.results[0].intensity, "clahe");
      assert.equal(body.results[0].probability, Math.round(pOnnx * 1e6) / 1e6);
      const models = await (await fetch(`${server.url}/v1/models`)).json();
      assert.equal(models.models[0].intensity, "clahe");

      // tfjs: the whole classifier from the same weights, fed the shared normalisation.
      await initBackend();
      const spec = withHead(getNetSpec("densenet121"));
      const weights = formulaWeights(weightLayout(spec));
      weights.set("head_dense", (await loadWeights(join(dir, "gradcam_tail"))).get("head_dense")!);
      const model = buildTfModel(spec, weights, { trainable: false });
      const x = preprocessInput(await normalizeIntensity(img, 224, "clahe"), spec.preprocessing);
      const y = tf.tidy(() => model.predict(tf.tensor4d(x, [1, 224, 224, 3])) as tf.Tensor);
      const pTf = (await y.data())[0];
      y.dispose();
      model.dispose();
      assert.ok(Math.abs(pTf - pOnnx) < 1e-4, `tfjs ${pTf} vs ONNX ${pOnnx}`);
    } finally {
      await server.close();
      await c.close();
      await off.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
