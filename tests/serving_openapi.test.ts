/**
 * /openapi.json against real answers: every response the server gives (models, JPEG with Grad-CAM,
 * DICOM with its tags, a guard-withheld image, forced output, 4xx errors) validates against the
 * schema the document declares for that route and status (ajv, JSON Schema 2020-12 as OpenAPI 3.1).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { Ajv2020 } from "ajv/dist/2020.js";
import { brightnessClassifier } from "./fake_classifier.ts";
import type { Explainer } from "../lib/explain/explainer.ts";
import {
  FEATURE_DIMS,
  foreignImages,
  GUARD_FORMAT,
  guardFeatures,
  type GuardModel,
} from "../lib/inference/guard.ts";
import { decodeImage } from "../lib/data/images.ts";
import { startServer } from "../lib/serving/server.ts";
import { sharedDir } from "../lib/util/paths.ts";
import { DICOM_DIR, hasCorpus } from "./dicom_fixtures.ts";

const TRAIN = join(sharedDir(), "data", "chest_xray", "train");
const XRAY = join(TRAIN, "NORMAL", "IM-0115-0001.jpeg");

const fake = (id: string, untrained: boolean) =>
  brightnessClassifier({
    id,
    net: "resnet50",
    untrained,
    gradcamLayer: "conv5_block3_out",
    weights: { source: "formula", choice: "formula" },
  });

const explain: Explainer = async () => {
  const png = new Uint8Array(
    await sharp(new Uint8Array(224 * 224 * 4), { raw: { width: 224, height: 224, channels: 4 } })
      .png().toBuffer(),
  );
  return {
    overlayPng: png,
    heatmapPng: png,
    h: 7,
    w: 7,
    layer: "conv5_block3_out",
    target: "NORMAL",
  };
};

/** A guard centred on one X-ray with unit precision: enough to give real scores. */
async function tinyGuard(): Promise<GuardModel> {
  const f = guardFeatures((await decodeImage(XRAY)).data);
  const precision = new Array(FEATURE_DIMS * FEATURE_DIMS).fill(0);
  for (let i = 0; i < FEATURE_DIMS; i++) precision[i * FEATURE_DIMS + i] = 1;
  return {
    format: GUARD_FORMAT,
    dims: FEATURE_DIMS,
    mean: [...f],
    precision,
    threshold: 3,
    shrinkage: 1,
    fit: { train: 1, calibration: 0, heldOut: 0, protocol: "patient", seed: 42, createdAt: "" },
    falseAlarms: { flagged: 0, n: 0, rate: 0 },
    foreign: [],
  };
}

Deno.test({
  name: "openapi: real answers validate against /openapi.json",
  ignore: !hasCorpus,
  fn: async () => {
    const server = await startServer({
      classifiers: [fake("rn-run", false), fake("demo", true)],
      explain,
      guard: await tinyGuard(),
      port: 0,
    });
    try {
      const doc = await (await fetch(`${server.url}/openapi.json`)).json();
      const ajv = new Ajv2020({ strict: false, allErrors: true });
      ajv.addSchema(doc, "api");
      const schemaOf = (path: string, method: string, status: number) => {
        const responses = doc.paths[path][method].responses;
        assert.ok(String(status) in responses, `${method} ${path} ${status} is not in the spec`);
        const enc = (s: string) => s.replaceAll("~", "~0").replaceAll("/", "~1");
        const ref = `api#/paths/${enc(path)}/${method}/responses/${status}/content/` +
          `${enc("application/json")}/schema`;
        const validate = ajv.getSchema(ref);
        assert.ok(validate, `no schema at ${ref}`);
        return validate;
      };
      const isValid = (path: string, method: string, status: number, body: unknown) =>
        schemaOf(path, method, status)(body) as boolean;
      const check = (path: string, method: string, status: number, body: unknown) => {
        const validate = schemaOf(path, method, status);
        assert.ok(
          validate(body),
          `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}`,
        );
      };
      const models = await fetch(`${server.url}/v1/models`);
      check("/v1/models", "get", models.status, await models.json());

      const predict = async (body: Uint8Array, type: string, query = "") => {
        const res = await fetch(`${server.url}/v1/predict${query}`, {
          method: "POST",
          body: body as Uint8Array<ArrayBuffer>,
          headers: { "content-type": type },
        });
        const json = await res.json();
        check("/v1/predict", "post", res.status, json);
        return { status: res.status, json };
      };
      const jpeg = await predict(await Deno.readFile(XRAY), "image/jpeg", "?explain=gradcam");
      assert.deepEqual(jpeg.status, 200);
      assert.ok(jpeg.json.results[0].gradcam.heatmap_png_base64);
      assert.deepEqual(jpeg.json.guard.ok, true);
      const dcm = await predict(
        await Deno.readFile(join(DICOM_DIR, "mono1_12bit_inverted.dcm")),
        "application/dicom",
      );
      assert.deepEqual(dcm.json.image.dicom.window.source, "tags");
      const noise = foreignImages([])[0].rgb;
      const png = new Uint8Array(
        await sharp(Uint8Array.from(noise), { raw: { width: 224, height: 224, channels: 3 } }).png()
          .toBuffer(),
      );
      const withheld = await predict(png, "image/png");
      assert.deepEqual([withheld.json.guard.withheld, withheld.json.results[0].probability], [
        true,
        null,
      ]);
      const forced = await predict(png, "image/png", "?force=true");
      assert.deepEqual(typeof forced.json.results[0].probability, "number");
      for (const [file, status] of [["not_dicom.dcm", 400], ["no_pixel_data.dcm", 422]] as const) {
        const bad = await predict(await Deno.readFile(join(DICOM_DIR, file)), "application/dicom");
        assert.deepEqual(bad.status, status);
      }
      const badParam = await predict(png, "image/png", "?force=maybe");
      assert.deepEqual(badParam.status, 400);
      // The schema bites: an answer without its guard, or a result without weights, is refused.
      const { guard: _g, ...noGuard } = jpeg.json;
      assert.ok(!isValid("/v1/predict", "post", 200, noGuard));
      const { weights: _w, ...noWeights } = jpeg.json.results[0];
      assert.ok(!isValid("/v1/predict", "post", 200, { ...jpeg.json, results: [noWeights] }));
    } finally {
      await server.close();
    }
  },
});
