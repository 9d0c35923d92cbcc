/**
 * A runnable classifier package without training or ImageNet weights: `formula` base weights
 * (deterministic, not ImageNet) and a head fitted in closed form to separate two reference
 * images (one NORMAL, one PNEUMONIA) so probabilities are neither all 0 nor all 1.
 * For tests, benchmarks and demos of the server before real runs exist; labelled "not ImageNet".
 */
import { join } from "node:path";
import { withHead } from "../models/head.ts";
import { weightLayout } from "../models/layout.ts";
import { getNetSpec, NET_INFO } from "../models/registry.ts";
import type { NetName, NetWeights } from "../models/spec.ts";
import { formulaWeights } from "../models/weights/formula.ts";
import { weightsMd5 } from "../models/weights/md5.ts";
import { decodeImage } from "../data/images.ts";
import { type Classifier, loadClassifier } from "./classifier.ts";
import { type ClassifierPackage, writeClassifierPackage } from "./package.ts";
import { mulberry32 } from "../util/random.ts";
import type { IntensityMode } from "../data/intensity.ts";

export interface SyntheticOptions {
  net?: NetName;
  /** Two JPEGs: [NORMAL, PNEUMONIA]; the head puts them at about 0.2 and 0.8. */
  anchors: [string, string];
  runId?: string;
  seed?: number;
  /** Intensity normalisation recorded in the package (and applied when probing the anchors). */
  intensity?: IntensityMode;
}

/** GAP of an NHWC activation [1,h,w,C] -> [C]. */
function spatialMean(data: Float32Array, shape: number[]): Float64Array {
  const c = shape[shape.length - 1];
  const hw = data.length / c;
  const out = new Float64Array(c);
  for (let i = 0; i < data.length; i++) out[i % c] += data[i] / hw;
  return out;
}

/**
 * Writes a formula-weights classifier package into runDir. The head weight is the difference
 * of the two anchors' pooled features plus seeded noise, shifted and scaled so the logit goes
 * from -1.4 (NORMAL anchor) to +1.4 (PNEUMONIA anchor) with a bias near 0.
 */
export async function writeSyntheticClassifier(
  runDir: string,
  opts: SyntheticOptions,
): Promise<ClassifierPackage> {
  const net = opts.net ?? "densenet121";
  const spec = withHead(getNetSpec(net));
  const layout = weightLayout(spec);
  const weights: NetWeights = formulaWeights(layout);
  const gradcamLayer = NET_INFO[net].gradcamLayer;
  // Only the head's input features matter: GAP of the last base layer (for VGG16 that is
  // block5_pool, after the Grad-CAM layer), so probe with the head zeroed first.
  const pooledFrom = spec.layers.find((l) => l.name === "head_pool")!.inputs[0];
  const denseIn = layout.find((l) => l.layer === "head_dense")!.weights[0].shape[0];
  weights.set("head_dense", {
    kernel: { shape: [denseIn, 1], data: new Float32Array(denseIn) },
    bias: { shape: [1], data: new Float32Array(1) },
  });
  const runId = opts.runId ?? `${net}-synthetic-formula`;
  const weightsInfo = {
    label: "formula (not ImageNet)",
    md5: weightsMd5(weights, layout),
    isImageNet: false,
    source: "formula",
    choice: "formula",
  };
  await writeClassifierPackage(runDir, {
    runId,
    spec,
    weights,
    weightsInfo,
    gradcamLayer: pooledFrom,
    intensity: opts.intensity,
  });
  const probeClassifier = await loadClassifier(runDir);
  const feats: Float64Array[] = [];
  try {
    for (const path of opts.anchors) {
      const img = await decodeImage(path, 224);
      const out = await probeClassifier.predict(img.data, 1);
      feats.push(spatialMean(out.gradcam!.data, out.gradcam!.shape));
    }
  } finally {
    await probeClassifier.close();
  }
  const rand = mulberry32(opts.seed ?? 7);
  const diff = feats[1].map((v, i) => v - feats[0][i]);
  const norm = Math.sqrt(diff.reduce((s, v) => s + v * v, 0)) || 1;
  let w = diff.map((v) => v / norm + 0.3 * (rand() - 0.5) / Math.sqrt(denseIn));
  const dot = (f: Float64Array) => f.reduce((s, v, i) => s + v * w[i], 0);
  // Shift w so the anchors' scores straddle 0 with no bias: Grad-CAM ignores the bias, and a
  // large one would leave the heatmap of one class empty.
  const sum = (f: Float64Array) => f.reduce((s, v) => s + v, 0);
  const shift = -(dot(feats[0]) + dot(feats[1])) / ((sum(feats[0]) + sum(feats[1])) || 1);
  w = w.map((v) => v + shift);
  const [d0, d1] = [dot(feats[0]), dot(feats[1])];
  const scale = 2.8 / ((d1 - d0) || 1);
  const kernel = Float32Array.from(w, (v) => v * scale);
  const bias = -scale * (d0 + d1) / 2;
  weights.set("head_dense", {
    kernel: { shape: [denseIn, 1], data: kernel },
    bias: { shape: [1], data: Float32Array.of(bias) },
  });
  weightsInfo.md5 = weightsMd5(weights, layout);
  return await writeClassifierPackage(runDir, {
    runId,
    spec,
    weights,
    weightsInfo,
    gradcamLayer,
    threshold: { method: "0.5", value: 0.5, val_sensitivity: null, val_specificity: null },
    intensity: opts.intensity,
    untrained: true,
  });
}

/** writeSyntheticClassifier + loadClassifier. */
export async function syntheticClassifier(
  runDir: string,
  opts: SyntheticOptions,
): Promise<Classifier> {
  await writeSyntheticClassifier(runDir, opts);
  return await loadClassifier(runDir);
}

/** The first NORMAL and PNEUMONIA training images (sorted by name) under a Kaggle-layout root. */
export function defaultAnchors(trainDir: string): [string, string] {
  const first = (cls: string) =>
    join(
      trainDir,
      cls,
      [...Deno.readDirSync(join(trainDir, cls))].map((e) => e.name).filter((n) =>
        /\.(jpe?g|png)$/i.test(n)
      ).sort()[0],
    );
  return [first("NORMAL"), first("PNEUMONIA")];
}
