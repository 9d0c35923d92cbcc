/**
 * What every classifier answers to (one run's classifier.onnx, or an ensemble of runs), apart
 * from how it is loaded: classifier.ts and ensemble.ts both build one, so the type sits below
 * them both.
 */
import type { NetName } from "../models/spec.ts";
import type { IntensityMode } from "../data/intensity.ts";
import type { ClassifierMeta, ThresholdInfo, WeightsInfo } from "./meta.ts";

export interface PredictResult {
  /** P(pneumonia) per image. */
  prob: Float32Array;
  /** The Grad-CAM layer's activation [N,h,w,C] (NHWC), when the model outputs it. */
  gradcam?: { data: Float32Array; shape: number[] };
}

export interface Classifier {
  /** Run id (or file stem) naming this model in the API. */
  id: string;
  /** The net, or "ensemble" for an ensemble of runs (lib/inference/ensemble.ts). */
  net: NetName | "ensemble";
  threshold: ThresholdInfo;
  weights: WeightsInfo;
  /** Name of the layer whose activation `predict` returns for Grad-CAM, or null. */
  gradcamLayer: string | null;
  /** Where the package lives (run directory), for Grad-CAM's tail weights; null when unknown. */
  runDir: string | null;
  meta: ClassifierMeta;
  /** Intensity normalisation `predict` applies before the graph (meta.intensity; absent: off). */
  intensity?: IntensityMode;
  /**
   * images: [N,224,224,3] RGB 0..255 (NHWC), as decoded (lib/data/images.ts); the run's
   * intensity normalisation is applied here, on a copy, so every caller feeds the same pixels.
   */
  predict(images: Float32Array, n: number): Promise<PredictResult>;
  /** Why the model can no longer answer (its worker died twice, lib/inference/worker.ts), or null. */
  unavailable?: () => string | null;
  close(): Promise<void>;
}
