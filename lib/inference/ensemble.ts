/**
 * An ensemble of trained runs served as one model: `ensemble.json` in its run folder names the
 * member runs (sibling folders), how their probabilities are combined, and the ensemble's own
 * threshold (chosen on validation by lib/ensemble/build.ts). Each member keeps its own
 * preprocessing and intensity normalisation: the ensemble feeds every member the same decoded
 * image and combines what they answer.
 */
import { resolve } from "node:path";
import type { Classifier, PredictResult } from "./model.ts";
import type { ThresholdInfo, WeightsInfo } from "./meta.ts";

export { ENSEMBLE_META_FILE } from "../runs/mod.ts";
export const ENSEMBLE_FORMAT = "cxr-ensemble/1";
/** The `net` of an ensemble in runs, reports and the API (`?model=ensemble`). */
export const ENSEMBLE_NET = "ensemble";

/** "prob": mean of the member probabilities; "logit": sigmoid of the mean of their logits. */
export type EnsembleCombine = "prob" | "logit";
export const ENSEMBLE_COMBINES: readonly EnsembleCombine[] = ["prob", "logit"];

export interface EnsembleMeta {
  format: string;
  runId: string;
  net: typeof ENSEMBLE_NET;
  combine: EnsembleCombine;
  /** Member run ids; their folders are siblings of the ensemble's (`../<runId>`). */
  members: string[];
  threshold: ThresholdInfo;
  weights: WeightsInfo;
  createdAt?: string;
}

/** Probabilities are clamped this far from 0 and 1 before a logit. */
const EPS = 1e-7;

function logit(p: number): number {
  const q = Math.min(1 - EPS, Math.max(EPS, p));
  return Math.log(q / (1 - q));
}

/** Combines per-member probabilities (members x items) into one probability per item. */
export function combineProbs(
  probs: ArrayLike<number>[],
  combine: EnsembleCombine,
): Float32Array {
  if (probs.length === 0) throw new Error("ensemble: no member probabilities");
  const n = probs[0].length;
  if (probs.some((p) => p.length !== n)) throw new Error("ensemble: members disagree on n");
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (const p of probs) s += combine === "logit" ? logit(p[i]) : p[i];
    const mean = s / probs.length;
    out[i] = combine === "logit" ? 1 / (1 + Math.exp(-mean)) : mean;
  }
  return out;
}

/** Parses ensemble.json; errors name the file and the field. */
export function parseEnsembleMeta(text: string, where: string): EnsembleMeta {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (raw.format !== ENSEMBLE_FORMAT) fail(`field "format" must be "${ENSEMBLE_FORMAT}"`);
  if (!Array.isArray(raw.members) || raw.members.length < 2) {
    fail(`field "members" must list at least two run ids`);
  }
  const members = raw.members as unknown[];
  if (members.some((m) => typeof m !== "string" || !m || /[\\/]/.test(m))) {
    fail(`field "members" must hold run ids (folder names), got ${JSON.stringify(members)}`);
  }
  const combine = raw.combine as EnsembleCombine;
  if (!ENSEMBLE_COMBINES.includes(combine)) {
    fail(`field "combine" must be prob | logit, got ${JSON.stringify(raw.combine)}`);
  }
  const t = raw.threshold as ThresholdInfo | undefined;
  if (!t || typeof t.value !== "number" || !(t.value >= 0 && t.value <= 1)) {
    fail(`field "threshold.value" must be a number in [0,1]`);
  }
  if (typeof raw.runId !== "string" || !raw.runId) fail(`field "runId" missing`);
  return {
    format: ENSEMBLE_FORMAT,
    runId: raw.runId as string,
    net: ENSEMBLE_NET,
    combine,
    members: members as string[],
    threshold: t!,
    weights: (raw.weights ?? { label: "unknown", md5: "", isImageNet: false }) as WeightsInfo,
    ...(typeof raw.createdAt === "string" ? { createdAt: raw.createdAt } : {}),
  };
}

/** Folders of the members of the ensemble in `dir`. */
export function memberDirs(dir: string, meta: EnsembleMeta): string[] {
  return meta.members.map((m) => resolve(dir, "..", m));
}

/**
 * The ensemble as a Classifier over already loaded members (in `meta.members` order).
 * `owned`: members this ensemble opened itself and closes with it.
 */
export function ensembleClassifier(
  dir: string,
  meta: EnsembleMeta,
  members: Classifier[],
  owned: Classifier[],
): Classifier {
  // Each member normalises its own input; the ensemble's answer names their mode when they
  // share one (and none, "per member", when they do not).
  const modes = new Set(members.map((m) => m.intensity ?? "off"));
  const shared = modes.size === 1 ? [...modes][0] : undefined;
  return {
    id: meta.runId,
    net: ENSEMBLE_NET,
    threshold: meta.threshold,
    weights: meta.weights,
    gradcamLayer: null,
    runDir: dir,
    // Serving and reports read these fields; an ensemble has no graph of its own.
    meta: {
      format: meta.format,
      runId: meta.runId,
      net: ENSEMBLE_NET,
      gradcamLayer: null,
      threshold: meta.threshold,
      weights: meta.weights,
      inputs: members[0].meta.inputs,
      outputs: [],
      gradcamTail: null,
      intensity: shared ?? "off",
      members: meta.members,
      combine: meta.combine,
    },
    intensity: shared,
    async predict(images: Float32Array, n: number): Promise<PredictResult> {
      const probs: Float32Array[] = [];
      for (const m of members) probs.push((await m.predict(images, n)).prob);
      return { prob: combineProbs(probs, meta.combine) };
    },
    async close() {
      for (const m of owned) await m.close();
    },
  };
}
