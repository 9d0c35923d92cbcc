/**
 * `classifier.json`: what a reader of `classifier.onnx` needs besides the graph (which net, the
 * operating threshold chosen on validation, the starting weights, tensor names).
 */
import type { NetName } from "../models/spec.ts";
import { type IntensityMode, parseIntensityMode } from "../data/intensity.ts";

import { CLASSIFIER_META_FILE, CLASSIFIER_ONNX_FILE, GRADCAM_TAIL_STEM } from "../runs/mod.ts";

/** The package's file names (owned by lib/runs), re-exported for inference and serving. */
export { CLASSIFIER_META_FILE, CLASSIFIER_ONNX_FILE, GRADCAM_TAIL_STEM };
export const CLASSIFIER_FORMAT = "cxr-classifier/1";

const NETS: readonly NetName[] = ["vgg16", "resnet50", "densenet121"];

export interface ThresholdInfo {
  /** "sens95" | "youden" | "0.5" (lib/evaluation/threshold.ts), or "default" when none was chosen. */
  method: string;
  value: number;
  /** Validation sensitivity/specificity at `value`; null when unknown. */
  val_sensitivity: number | null;
  val_specificity: number | null;
}

export interface WeightsInfo {
  /** e.g. "imagenet", "formula (not ImageNet)". */
  label: string;
  md5: string;
  isImageNet: boolean;
  source?: string;
  choice?: string;
}

export interface TensorInfo {
  name: string;
  /** -1 for the dynamic batch dimension. */
  shape: number[];
  dtype: "float32";
  role?: "image" | "probability" | "gradcam";
  description?: string;
}

export interface ClassifierMeta {
  format: string;
  runId: string;
  /** A net, or "ensemble" (lib/inference/ensemble.ts: no graph of its own). */
  net: NetName | "ensemble";
  /** Keras layer whose activation classifier.onnx also outputs for Grad-CAM, or null. */
  gradcamLayer: string | null;
  threshold: ThresholdInfo;
  weights: WeightsInfo;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** File stem (relative to the package dir) of the Grad-CAM tail weights, when written. */
  gradcamTail: string | null;
  /** Dropout rate of the head (for rebuilding the head spec; inert at inference). */
  dropout?: number;
  /**
   * Intensity normalisation applied to the RGB image before `classifier.onnx` (lib/data/
   * intensity.ts; not in the graph: CLAHE has no ONNX operator). "off" for older packages.
   */
  intensity: IntensityMode;
  /** True for packages whose head was never trained (the demo): outputs are meaningless. */
  untrained?: boolean;
  /** Ensembles only: member run ids and how their probabilities are combined. */
  members?: string[];
  combine?: "prob" | "logit";
  createdAt?: string;
}

function fail(where: string, msg: string): never {
  throw new Error(`${where}: ${msg}`);
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Parses and checks classifier.json, naming the file and field on error. */
export function parseClassifierMeta(text: string, where = CLASSIFIER_META_FILE): ClassifierMeta {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(where, `not valid JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== "object") fail(where, "expected a JSON object");
  const net = raw.net as NetName;
  if (!NETS.includes(net)) {
    fail(where, `field "net" must be one of ${NETS.join(", ")}, got ${JSON.stringify(raw.net)}`);
  }
  const runId = typeof raw.runId === "string" && raw.runId
    ? raw.runId
    : fail(where, `field "runId" missing`);
  const t = (raw.threshold ?? {}) as Record<string, unknown>;
  const value = num(t.value) ?? 0.5;
  if (value < 0 || value > 1) fail(where, `field "threshold.value" must be in [0,1], got ${value}`);
  const w = (raw.weights ?? {}) as Record<string, unknown>;
  const isImageNet = w.isImageNet === true;
  const label = typeof w.label === "string" && w.label
    ? w.label
    : (typeof w.choice === "string" ? w.choice : "unknown") + (isImageNet ? "" : " (not ImageNet)");
  const inputs = Array.isArray(raw.inputs) && raw.inputs.length ? raw.inputs as TensorInfo[] : [{
    name: "image",
    shape: [-1, 224, 224, 3],
    dtype: "float32" as const,
    role: "image" as const,
  }];
  const gradcamLayer = typeof raw.gradcamLayer === "string" && raw.gradcamLayer
    ? raw.gradcamLayer
    : null;
  const outputs = Array.isArray(raw.outputs) && raw.outputs.length
    ? raw.outputs as TensorInfo[]
    : [{
      name: "head_dense",
      shape: [-1, 1],
      dtype: "float32" as const,
      role: "probability" as const,
    }];
  return {
    format: typeof raw.format === "string" ? raw.format : CLASSIFIER_FORMAT,
    runId,
    net,
    gradcamLayer,
    threshold: {
      method: typeof t.method === "string" ? t.method : "default",
      value,
      val_sensitivity: num(t.val_sensitivity),
      val_specificity: num(t.val_specificity),
    },
    weights: {
      label,
      md5: typeof w.md5 === "string" ? w.md5 : "",
      isImageNet,
      ...(typeof w.source === "string" ? { source: w.source } : {}),
      ...(typeof w.choice === "string" ? { choice: w.choice } : {}),
    },
    inputs,
    outputs,
    gradcamTail: typeof raw.gradcamTail === "string" && raw.gradcamTail ? raw.gradcamTail : null,
    ...(num(raw.dropout) !== null ? { dropout: num(raw.dropout)! } : {}),
    ...(raw.untrained === true ? { untrained: true } : {}),
    intensity: raw.intensity === undefined
      ? "off"
      : parseIntensityMode(String(raw.intensity), `${where}: field "intensity"`),
    ...(typeof raw.createdAt === "string" ? { createdAt: raw.createdAt } : {}),
  };
}
