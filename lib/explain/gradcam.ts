/**
 * Grad-CAM (Selvaraju et al. 2017) for any cxr classifier at its Grad-CAM layer.
 *
 * classifier.onnx already outputs that layer's activation A [1,h,w,C]. The gradient of the
 * logit (pre-sigmoid head_dense) with respect to A is computed with tfjs on the small subgraph
 * from that layer to head_dense (for VGG16 it includes block5_pool, a max pool, so the general
 * autodiff path is used rather than a closed form). That small graph runs on tfjs' cpu backend:
 * tfjs-backend-wasm 4.22's MaxPoolGrad drops part of the gradient on ReLU activations (found
 * by tests/explain_gradcam.test.ts), and the tail is tiny. alpha_k = spatial mean of the gradient,
 * heatmap = ReLU(sum_k alpha_k A_k) / max, upsampled to the image and overlaid with a jet
 * colormap as a PNG.
 */
import sharp from "sharp";
import { join } from "node:path";
import type { Classifier } from "../inference/classifier.ts";
import type { Explainer } from "./explainer.ts";
import { GRADCAM_TAIL_STEM, RunFolder } from "../runs/mod.ts";
import { subgraph } from "../models/graph.ts";
import { withHead } from "../models/head.ts";
import { getNetSpec } from "../models/registry.ts";
import type { LayerSpec, NetSpec, NetWeights } from "../models/spec.ts";
import { buildTfModel } from "../models/tfjs.ts";
import { loadWeights } from "../models/weights/io.ts";
import { initBackend, tf } from "../tf/backend.ts";

export type GradCamTarget = "predicted" | "pneumonia" | "normal";

export interface GradCamOptions {
  /** The Grad-CAM layer activation [1,h,w,C] if predict already computed it. */
  activation?: { data: Float32Array; shape: number[] };
  /** Whose evidence to show (default "predicted": the class on the classifier's side of its threshold). */
  target?: GradCamTarget;
  /** P(pneumonia) if predict already computed it (saves a second run for target "predicted"). */
  prob?: number;
  /** Heatmap opacity in the overlay (default 0.45). */
  alpha?: number;
}

export interface GradCamResult {
  /** h*w, row-major, in 0..1 (all zeros when no region supports the target). */
  heatmap: Float32Array;
  h: number;
  w: number;
  /** The X-ray with the heatmap over it (size x size PNG). */
  overlayPng: Uint8Array;
  /** The jet-coloured heatmap alone, its alpha rising with the evidence (size x size RGBA PNG). */
  heatmapPng: Uint8Array;
  layer: string;
  target: "NORMAL" | "PNEUMONIA";
  prob: number;
}

interface Tail {
  model: tf.LayersModel;
  layer: string;
}

const tails = new WeakMap<Classifier, Promise<Tail>>();

/** The classifier spec with head_dense emitting the logit (Grad-CAM differentiates the score). */
function logitSpec(net: Classifier["net"], dropout?: number): NetSpec {
  if (net === "ensemble") throw new Error("Grad-CAM needs one net, not an ensemble");
  const spec = withHead(getNetSpec(net), dropout === undefined ? {} : { dropout });
  return {
    ...spec,
    layers: spec.layers.map((l): LayerSpec =>
      l.name === "head_dense" && l.kind === "Dense" ? { ...l, activation: "linear" } : l
    ),
  };
}

async function loadTail(c: Classifier): Promise<Tail> {
  const layer = c.gradcamLayer;
  if (!layer) throw new Error(`model ${c.id} has no Grad-CAM layer output`);
  if (!c.runDir) throw new Error(`model ${c.id}: no package directory for the Grad-CAM weights`);
  const candidates = [
    join(c.runDir, c.meta.gradcamTail ?? GRADCAM_TAIL_STEM),
    new RunFolder(c.runDir).trainedWeightsStem,
  ];
  let weights: NetWeights | null = null;
  const errors: string[] = [];
  for (const stem of candidates) {
    try {
      weights = await loadWeights(stem);
      break;
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (!weights) throw new Error(`model ${c.id}: no Grad-CAM tail weights (${errors.join("; ")})`);
  const sub = subgraph(logitSpec(c.net, c.meta.dropout), [layer], ["head_dense"]);
  for (const l of sub.layers) {
    const hasWeights = l.kind === "Conv2D" || l.kind === "Dense" || l.kind === "BatchNormalization";
    if (hasWeights && !weights.has(l.name)) {
      throw new Error(`model ${c.id}: Grad-CAM tail weights lack layer "${l.name}"`);
    }
  }
  const model = await onCpu(() =>
    Promise.resolve(buildTfModel(sub, weights, { trainable: false }))
  );
  return { model, layer };
}

let cpuQueue: Promise<unknown> = Promise.resolve();

/**
 * Runs fn with tfjs' cpu backend active, one caller at a time, and restores the previous
 * backend (tfjs backends are process-global).
 */
async function onCpu<T>(fn: () => Promise<T>): Promise<T> {
  const run = cpuQueue.then(async () => {
    await initBackend();
    const previous = tf.getBackend();
    if (previous !== "cpu") await tf.setBackend("cpu");
    try {
      return await fn();
    } finally {
      if (previous !== "cpu") await tf.setBackend(previous);
    }
  });
  cpuQueue = run.catch(() => {});
  return await run;
}

/** Grad-CAM heatmap (h*w in 0..1) from activation [1,h,w,C] through the tail model. */
async function camFromActivation(
  tail: Tail,
  activation: { data: Float32Array; shape: number[] },
  sign: 1 | -1,
): Promise<{ heatmap: Float32Array; h: number; w: number }> {
  const [, h, w, ch] = activation.shape;
  const cam = tf.tidy(() => {
    const a = tf.tensor4d(activation.data, [1, h, w, ch]);
    const score = (x: tf.Tensor) =>
      tf.mul(tail.model.apply(x, { training: false }) as tf.Tensor, sign).sum() as tf.Scalar;
    const grad = tf.grad(score)(a);
    const weights = grad.mean([1, 2], true); // [1,1,1,C]
    const map = tf.relu(a.mul(weights).sum(-1)).reshape([h, w]);
    const max = map.max();
    return tf.where(max.greater(0), map.div(max), tf.zerosLike(map)) as tf.Tensor2D;
  });
  const heatmap = (await cam.data()) as Float32Array;
  cam.dispose();
  return { heatmap: Float32Array.from(heatmap), h, w };
}

/** Jet-like colormap: 0 blue -> cyan -> yellow -> 1 red. */
export function jet(v: number): [number, number, number] {
  const c = (x: number) => Math.round(255 * Math.min(1, Math.max(0, x)));
  return [c(1.5 - Math.abs(4 * v - 3)), c(1.5 - Math.abs(4 * v - 2)), c(1.5 - Math.abs(4 * v - 1))];
}

/** Bilinear upsampling of an h*w map to size*size (align-corners=false, like tf.image.resize). */
export function upsample(map: Float32Array, h: number, w: number, size: number): Float32Array {
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    const sy = Math.min(h - 1, Math.max(0, (y + 0.5) * h / size - 0.5));
    const y0 = Math.floor(sy), y1 = Math.min(h - 1, y0 + 1), fy = sy - y0;
    for (let x = 0; x < size; x++) {
      const sx = Math.min(w - 1, Math.max(0, (x + 0.5) * w / size - 0.5));
      const x0 = Math.floor(sx), x1 = Math.min(w - 1, x0 + 1), fx = sx - x0;
      const top = map[y0 * w + x0] * (1 - fx) + map[y0 * w + x1] * fx;
      const bottom = map[y1 * w + x0] * (1 - fx) + map[y1 * w + x1] * fx;
      out[y * size + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/** The X-ray (RGB 0..255, size*size*3) blended with the jet-coloured heatmap, as PNG bytes. */
export async function overlayHeatmap(
  image: Float32Array,
  imageSize: number,
  heatmap: Float32Array,
  h: number,
  w: number,
  alpha = 0.45,
): Promise<Uint8Array> {
  const up = upsample(heatmap, h, w, imageSize);
  const rgb = new Uint8Array(imageSize * imageSize * 3);
  for (let i = 0; i < up.length; i++) {
    // Weak evidence stays mostly transparent so the anatomy remains readable.
    const a = alpha * Math.min(1, up[i] * 1.5);
    const [r, g, b] = jet(up[i]);
    rgb[3 * i] = Math.round((1 - a) * image[3 * i] + a * r);
    rgb[3 * i + 1] = Math.round((1 - a) * image[3 * i + 1] + a * g);
    rgb[3 * i + 2] = Math.round((1 - a) * image[3 * i + 2] + a * b);
  }
  const png = await sharp(rgb, { raw: { width: imageSize, height: imageSize, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(png);
}

/**
 * The jet-coloured heatmap as an RGBA PNG whose alpha follows the evidence (as in the overlay), so
 * a page can lay it over the X-ray at any opacity.
 */
export async function heatmapRgbaPng(
  heatmap: Float32Array,
  h: number,
  w: number,
  size: number,
): Promise<Uint8Array> {
  const up = upsample(heatmap, h, w, size);
  const rgba = new Uint8Array(size * size * 4);
  for (let i = 0; i < up.length; i++) {
    const [r, g, b] = jet(up[i]);
    rgba.set([r, g, b, Math.round(255 * Math.min(1, up[i] * 1.5))], 4 * i);
  }
  const png = await sharp(rgba, { raw: { width: size, height: size, channels: 4 } }).png()
    .toBuffer();
  return new Uint8Array(png);
}

/** Grad-CAM of `classifier` for one image [224,224,3] RGB 0..255. */
export async function gradCam(
  classifier: Classifier,
  image: Float32Array,
  opts: GradCamOptions = {},
): Promise<GradCamResult> {
  let tail = tails.get(classifier);
  if (!tail) {
    tail = loadTail(classifier);
    tails.set(classifier, tail);
    tail.catch(() => tails.delete(classifier)); // retry next time instead of caching a failure
  }
  const t = await tail;
  const imageSize = Math.round(Math.sqrt(image.length / 3));
  if (imageSize * imageSize * 3 !== image.length) {
    throw new Error(`gradCam: image must be square RGB, got ${image.length} values`);
  }
  let activation = opts.activation;
  let prob = opts.prob ?? NaN;
  if (!activation || Number.isNaN(prob)) {
    const out = await classifier.predict(image, 1);
    if (!out.gradcam) throw new Error(`model ${classifier.id} did not output ${t.layer}`);
    activation ??= out.gradcam;
    prob = out.prob[0];
  }
  const wanted = opts.target ?? "predicted";
  const target = wanted === "pneumonia"
    ? "PNEUMONIA"
    : wanted === "normal"
    ? "NORMAL"
    : prob >= classifier.threshold.value
    ? "PNEUMONIA"
    : "NORMAL";
  const { heatmap, h, w } = await onCpu(() =>
    camFromActivation(t, activation!, target === "PNEUMONIA" ? 1 : -1)
  );
  const overlayPng = await overlayHeatmap(image, imageSize, heatmap, h, w, opts.alpha ?? 0.45);
  const heatmapPng = await heatmapRgbaPng(heatmap, h, w, imageSize);
  return { heatmap, h, w, overlayPng, heatmapPng, layer: t.layer, target, prob };
}

/** gradCam shaped as the server's Explainer (reuses predict's activation and probability). */
export const gradCamExplainer: Explainer = (classifier, image, ctx) =>
  gradCam(classifier, image, { activation: ctx.activation, prob: ctx.prob });
