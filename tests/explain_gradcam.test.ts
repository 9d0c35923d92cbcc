/**
 * Grad-CAM on real exported classifiers (formula base weights, not ImageNet): shape and range,
 * agreement with the closed form for a GAP->dense head (alpha_k = w_k / (h*w), which also holds
 * through VGG16's 2x2 max pool since each window routes its gradient to one cell), dependence
 * on the input, disjoint PNEUMONIA/NORMAL evidence, and a valid overlay PNG.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { decodeImage } from "../lib/data/images.ts";
import { gradCam, jet, upsample } from "../lib/explain/gradcam.ts";
import { type Classifier, loadClassifier } from "../lib/inference/classifier.ts";
import { defaultAnchors, writeSyntheticClassifier } from "../lib/inference/synthetic.ts";
import { loadWeights } from "../lib/models/weights/io.ts";
import { sharedDir } from "../lib/util/paths.ts";

const TRAIN = join(sharedDir(), "data", "chest_xray", "train");
const pick = (cls: string, i: number) =>
  join(TRAIN, cls, [...Deno.readDirSync(join(TRAIN, cls))].map((e) => e.name).sort()[i]);

/** ReLU(sum_k w_k A_k) / max from the head kernel, for a GAP(->maxpool)->dense tail. */
function closedFormCam(a: Float32Array, shape: number[], kernel: Float32Array, sign: number) {
  const c = shape[3];
  const hw = shape[1] * shape[2];
  const map = new Float64Array(hw);
  for (let p = 0; p < hw; p++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += kernel[k] * a[p * c + k];
    map[p] = Math.max(0, sign * s);
  }
  const max = Math.max(...map);
  return Float64Array.from(map, (v) => (max > 0 ? v / max : 0));
}

for (const net of ["densenet121", "vgg16"] as const) {
  Deno.test({
    name: `explain: Grad-CAM on ${net} matches the closed form and follows the input`,
    sanitizeResources: false, // ORT keeps native handles
    sanitizeOps: false,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: `cxr-gradcam-${net}-` });
      let c: Classifier | null = null;
      try {
        await writeSyntheticClassifier(dir, { net, anchors: defaultAnchors(TRAIN) });
        const clf: Classifier = await loadClassifier(dir);
        c = clf;
        assert.equal(clf.gradcamLayer, net === "vgg16" ? "block5_conv3" : "relu");
        const kernel = (await loadWeights(join(dir, "gradcam_tail"))).get("head_dense")!.kernel!
          .data;
        const maps: Float32Array[] = [];
        for (const path of [pick("PNEUMONIA", 0), pick("NORMAL", 0), pick("PNEUMONIA", 5)]) {
          const img = await decodeImage(path, 224);
          const out = await clf.predict(img.data, 1);
          const act = out.gradcam!;
          const side = net === "vgg16" ? 14 : 7;
          assert.deepEqual(act.shape.slice(0, 3), [1, side, side]);

          const pos = await gradCam(clf, img.data, { target: "pneumonia" });
          assert.equal(pos.h, side);
          assert.equal(pos.w, side);
          assert.equal(pos.heatmap.length, side * side);
          assert.equal(pos.target, "PNEUMONIA");
          assert.ok(Math.abs(pos.prob - out.prob[0]) < 1e-6);
          for (const v of pos.heatmap) assert.ok(v >= 0 && v <= 1 + 1e-6, `heatmap value ${v}`);
          const expected = closedFormCam(act.data, act.shape, kernel, 1);
          for (let i = 0; i < expected.length; i++) {
            assert.ok(
              Math.abs(pos.heatmap[i] - expected[i]) < 1e-3,
              `${net} cell ${i}: ${pos.heatmap[i]} vs ${expected[i]}`,
            );
          }
          // Evidence for NORMAL is the negated score: where one is positive the other is 0.
          const neg = await gradCam(clf, img.data, {
            target: "normal",
            activation: act,
            prob: out.prob[0],
          });
          assert.equal(neg.target, "NORMAL");
          for (let i = 0; i < neg.heatmap.length; i++) {
            assert.ok(neg.heatmap[i] === 0 || pos.heatmap[i] === 0, `cell ${i} in both maps`);
          }
          // "predicted" follows the classifier's side of its threshold.
          const auto = await gradCam(clf, img.data, { activation: act, prob: out.prob[0] });
          assert.equal(auto.target, out.prob[0] >= clf.threshold.value ? "PNEUMONIA" : "NORMAL");

          const meta = await sharp(auto.overlayPng).metadata();
          assert.equal(meta.format, "png");
          assert.equal(meta.width, 224);
          assert.equal(meta.height, 224);
          maps.push(pos.heatmap);
        }
        const diff = (a: Float32Array, b: Float32Array) =>
          a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0);
        assert.ok(diff(maps[0], maps[1]) > 0.5, "different X-rays give different heatmaps");
        assert.ok(diff(maps[0], maps[2]) > 0.5, "different X-rays give different heatmaps");
      } finally {
        await c?.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test("explain: colormap and upsampling", () => {
  assert.deepEqual(jet(0), [0, 0, 128]);
  assert.deepEqual(jet(1), [128, 0, 0]);
  assert.deepEqual(jet(0.5), [128, 255, 128]);
  const up = upsample(Float32Array.of(0, 1, 2, 3), 2, 2, 4);
  assert.equal(up.length, 16);
  assert.equal(up[0], 0); // corners clamp to the source corners
  assert.equal(up[15], 3);
  assert.ok(up[5] > 0 && up[5] < up[10]);
});
