/**
 * Writes the servable part of a run directory: classifier.onnx (raw RGB in, preprocessing
 * in-graph, outputs head_dense and the Grad-CAM layer's activation), classifier.json, and the
 * weights Grad-CAM needs between that layer and head_dense (gradcam_tail.json/.bin).
 * Training (G) calls this at the end of a run; tests call it with formula weights.
 */
import { join } from "node:path";
import { subgraph } from "../models/graph.ts";
import { NET_INFO } from "../models/registry.ts";
import type { NetSpec, NetWeights } from "../models/spec.ts";
import { saveWeights } from "../models/weights/io.ts";
import type { IntensityMode } from "../data/intensity.ts";
import { exportOnnx } from "../onnx/export.ts";
import {
  CLASSIFIER_FORMAT,
  CLASSIFIER_META_FILE,
  CLASSIFIER_ONNX_FILE,
  type ClassifierMeta,
  GRADCAM_TAIL_STEM,
  type ThresholdInfo,
  type WeightsInfo,
} from "./meta.ts";
import { writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";

export interface ClassifierPackageInput {
  runId: string;
  /** The whole classifier as trained: base + head (withHead), output head_dense. */
  spec: NetSpec;
  /** Every weight of `spec` (frozen base and trained tail/head merged). */
  weights: NetWeights;
  /** Where the base weights came from (ResolvedWeights' label/md5/isImageNet/source/choice). */
  weightsInfo: WeightsInfo;
  /** Operating threshold chosen on validation; default 0.5 ("default", unknown sens/spec). */
  threshold?: ThresholdInfo;
  /** Default NET_INFO[net].gradcamLayer; null: no Grad-CAM output. */
  gradcamLayer?: string | null;
  /** Head dropout rate used in training (recorded; inert at inference). */
  dropout?: number;
  /** Intensity normalisation the run trained with (applied before the graph; default off). */
  intensity?: IntensityMode;
  /** Set for demo packages never trained on labelled data (the page says UNTRAINED). */
  untrained?: boolean;
}

export interface ClassifierPackage {
  onnxPath: string;
  metaPath: string;
  meta: ClassifierMeta;
}

/** Output name of the probability in classifier.onnx. */
export const PROBABILITY_OUTPUT = "head_dense";

/** Exports and writes classifier.onnx, classifier.json and gradcam_tail.* into runDir. */
export async function writeClassifierPackage(
  runDir: string,
  input: ClassifierPackageInput,
): Promise<ClassifierPackage> {
  const { spec, weights } = input;
  if (!spec.layers.some((l) => l.name === PROBABILITY_OUTPUT)) {
    throw new Error(
      `writeClassifierPackage: spec has no "${PROBABILITY_OUTPUT}" layer (wrap the base with withHead)`,
    );
  }
  const gradcamLayer = input.gradcamLayer === undefined
    ? NET_INFO[spec.name].gradcamLayer
    : input.gradcamLayer;
  const outputs = gradcamLayer ? [PROBABILITY_OUTPUT, gradcamLayer] : [PROBABILITY_OUTPUT];
  const onnx = exportOnnx(spec, weights, {
    outputs,
    preprocessing: spec.preprocessing,
    metadata: { runId: input.runId, net: spec.name },
  });
  await Deno.mkdir(runDir, { recursive: true });
  const gradcam = gradcamLayer ? await writeGradcamTail(runDir, spec, weights, gradcamLayer) : null;
  const meta = classifierMeta(input, gradcamLayer ?? null, gradcam?.shape ?? null);
  const onnxPath = join(runDir, CLASSIFIER_ONNX_FILE);
  const metaPath = join(runDir, CLASSIFIER_META_FILE);
  // Write-then-rename so a reader never sees half a model.
  await writeFileAtomic(onnxPath, onnx);
  await writeJsonAtomic(metaPath, meta, 2);
  return { onnxPath, metaPath, meta };
}

/**
 * gradcam_tail.{json,bin}: the weights from the Grad-CAM layer to head_dense (Grad-CAM's
 * gradient runs in tfjs over them); returns that layer's shape ([-1, h, w, c]).
 */
async function writeGradcamTail(
  runDir: string,
  spec: NetSpec,
  weights: NetWeights,
  layer: string,
): Promise<{ shape: number[] | null }> {
  const tail = subgraph(spec, [layer], [PROBABILITY_OUTPUT]);
  const tailWeights: NetWeights = new Map();
  for (const l of tail.layers) {
    if (l.kind === "InputLayer") continue; // the Grad-CAM layer itself is fed, not computed
    const w = weights.get(l.name);
    if (w && Object.keys(w).length > 0) tailWeights.set(l.name, w);
  }
  await saveWeights(join(runDir, GRADCAM_TAIL_STEM), tailWeights);
  const input0 = tail.layers[0];
  return { shape: input0.kind === "InputLayer" ? [-1, ...input0.shape.map((d) => d ?? -1)] : null };
}

/** classifier.json's content (see ClassifierMeta in meta.ts). */
function classifierMeta(
  input: ClassifierPackageInput,
  gradcamLayer: string | null,
  gradcamShape: number[] | null,
): ClassifierMeta {
  const { spec } = input;
  return {
    format: CLASSIFIER_FORMAT,
    runId: input.runId,
    net: spec.name,
    gradcamLayer,
    threshold: input.threshold ?? {
      method: "default",
      value: 0.5,
      val_sensitivity: null,
      val_specificity: null,
    },
    weights: input.weightsInfo,
    ...(input.untrained ? { untrained: true } : {}),
    inputs: [{
      name: "image",
      shape: [-1, 224, 224, 3],
      dtype: "float32",
      role: "image",
      description: `RGB 0..255 NHWC; ${spec.preprocessing} preprocess_input is in the graph` +
        (input.intensity && input.intensity !== "off"
          ? `; intensity "${input.intensity}" must be applied before (lib/data/intensity.ts)`
          : ""),
    }],
    outputs: [
      {
        name: PROBABILITY_OUTPUT,
        shape: [-1, 1],
        dtype: "float32",
        role: "probability",
        description: "P(pneumonia)",
      },
      ...(gradcamLayer
        ? [{
          name: gradcamLayer,
          shape: gradcamShape ?? [-1],
          dtype: "float32" as const,
          role: "gradcam" as const,
          description: "Grad-CAM layer activation, NHWC",
        }]
        : []),
    ],
    gradcamTail: gradcamLayer ? GRADCAM_TAIL_STEM : null,
    ...(input.dropout !== undefined ? { dropout: input.dropout } : {}),
    intensity: input.intensity ?? "off",
    createdAt: new Date().toISOString(),
  };
}
