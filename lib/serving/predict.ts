/**
 * POST /v1/predict: upload -> checks -> decode -> every chosen model (+ Grad-CAM) -> JSON.
 * Only the decode and the models hold a limiter slot; the body is read and its header checked
 * before, so bad input is refused at once and slow senders never hold a slot.
 */
import { Buffer } from "node:buffer";
import sharp from "sharp";
import type { Explainer } from "../explain/explainer.ts";
import type { Classifier } from "../inference/classifier.ts";
import { IMAGE_SIZE } from "../inference/classifier.ts";
import { assessInput, type GuardModel, type GuardVerdict } from "../inference/guard.ts";
import { HttpError, jsonResponse } from "./errors.ts";
import { type BodyBudget, type ConcurrencyLimiter, deadlineSignal } from "./limiter.ts";
import type { BatcherSet, ItemResult } from "./batcher.ts";
import {
  intensityOf,
  type ModelEntry,
  type ModelRegistry,
  thresholdOf,
  untrainedOf,
  weightsOf,
} from "./models.ts";
import type { ThresholdProfile } from "../evaluation/profiles.ts";
import {
  type DecodedUpload,
  decodeUpload,
  extractImageBytes,
  inspectUpload,
  type UploadHeader,
  type UploadLimits,
} from "./upload.ts";

export const NOTICE = "Research prototype, not a diagnostic device. Not for clinical decisions.";

export interface PredictDeps {
  registry: ModelRegistry;
  limiter: ConcurrencyLimiter;
  limits: UploadLimits;
  /** Upload bytes held by all requests together. */
  budget: BodyBudget;
  /** The body must arrive within this -> 408. */
  bodyTimeoutMs: number;
  /** From a complete upload to the answer, queue wait included -> 504. */
  timeoutMs: number;
  explain?: Explainer;
  /** The fitted out-of-distribution guard; null checks DICOM tags only. */
  guard?: GuardModel | null;
  /** Concurrent requests grouped into one ORT call per model; null: each request alone. */
  batchers?: BatcherSet | null;
  log?: (line: string) => void;
}

const QUERY_PARAMS = ["model", "explain", "force", "threshold"];

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function round(x: number, digits = 6): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** `explain` is "gradcam" or absent; no other query parameter is known. */
function wantsGradcam(url: URL): boolean {
  for (const k of url.searchParams.keys()) {
    if (!QUERY_PARAMS.includes(k)) {
      throw new HttpError(
        400,
        "bad_parameter",
        `unknown query parameter ${JSON.stringify(k)} (known: ${QUERY_PARAMS.join(", ")})`,
      );
    }
  }
  const explain = url.searchParams.get("explain");
  if (explain !== null && explain !== "gradcam" && explain !== "") {
    throw new HttpError(
      400,
      "bad_parameter",
      `explain must be "gradcam", got ${JSON.stringify(explain)}`,
    );
  }
  return explain === "gradcam";
}

/** `force=true` asks for probabilities even when the guard flags the image. */
function wantsForce(url: URL): boolean {
  const v = url.searchParams.get("force");
  if (v === null || v === "false" || v === "0") return false;
  if (v === "" || v === "true" || v === "1") return true;
  throw new HttpError(
    400,
    "bad_parameter",
    `force must be true or false, got ${JSON.stringify(v)}`,
  );
}

/** The model input [size,size,3] 0..255 as a PNG. */
async function previewPng(rgb: Float32Array, size: number): Promise<Uint8Array> {
  const png = await sharp(Uint8Array.from(rgb), { raw: { width: size, height: size, channels: 3 } })
    .png().toBuffer();
  return new Uint8Array(png);
}

/** A model's entry when the guard withholds its answer: no probability, no label. */
function withheld(m: ModelEntry, threshold: ThresholdProfile): Record<string, unknown> {
  const c = m.classifier;
  return {
    model: c.id,
    net: c.net,
    displayName: m.displayName,
    probability: null,
    label: null,
    withheld: true,
    threshold: thresholdOf(m, threshold),
    weights: weightsOf(c),
    untrained: untrainedOf(c),
    latency_ms: 0,
  };
}

async function gradcamOf(
  deps: PredictDeps,
  c: Classifier,
  img: DecodedUpload,
  ctx: Parameters<Explainer>[2],
): Promise<Record<string, unknown>> {
  if (!deps.explain || c.gradcamLayer === null) {
    return { gradcam_error: `Grad-CAM is not available for model ${c.id}` };
  }
  try {
    const ex = await deps.explain(c, img.rgb, ctx);
    return {
      gradcam: {
        layer: ex.layer,
        target: ex.target,
        width: ex.w,
        height: ex.h,
        png_base64: toBase64(ex.overlayPng),
        ...(ex.heatmapPng ? { heatmap_png_base64: toBase64(ex.heatmapPng) } : {}),
      },
    };
  } catch (e) {
    deps.log?.(`gradcam error for ${c.id}: ${(e as Error).stack}`);
    return { gradcam_error: `Grad-CAM failed: ${(e as Error).message}` };
  }
}

/** A model's answer block for one image (latency filled in by the caller). */
function resultOf(
  m: ModelEntry,
  prob: number,
  threshold: ThresholdProfile,
): Record<string, unknown> {
  const c = m.classifier;
  return {
    model: c.id,
    net: c.net,
    displayName: m.displayName,
    probability: round(prob),
    label: prob >= threshold.value ? "PNEUMONIA" : "NORMAL",
    threshold: thresholdOf(m, threshold),
    weights: weightsOf(c),
    untrained: untrainedOf(c),
    intensity: intensityOf(c),
    latency_ms: 0,
  };
}

/** The answer block of one model, with Grad-CAM when asked, from its prediction `out`. */
async function finishModel(
  deps: PredictDeps,
  m: ModelEntry,
  img: DecodedUpload,
  gradcam: boolean,
  threshold: ThresholdProfile,
  out: ItemResult,
  t1: number,
): Promise<Record<string, unknown>> {
  const result = resultOf(m, out.prob, threshold);
  if (gradcam) {
    const ctx = { prob: out.prob, activation: out.gradcam };
    Object.assign(result, await gradcamOf(deps, m.classifier, img, ctx));
  }
  result.latency_ms = round(performance.now() - t1, 2);
  return result;
}

async function runModel(
  deps: PredictDeps,
  m: ModelEntry,
  img: DecodedUpload,
  gradcam: boolean,
  threshold: ThresholdProfile,
): Promise<Record<string, unknown>> {
  const t1 = performance.now();
  const out = await m.classifier.predict(img.rgb, 1);
  const item = { prob: out.prob[0], gradcam: out.gradcam };
  return await finishModel(deps, m, img, gradcam, threshold, item, t1);
}

/** What a request asks for, checked before its body is read. */
interface PredictRequest {
  gradcam: boolean;
  force: boolean;
  selected: ModelEntry[];
  thresholds: ThresholdProfile[];
}

function parsePredict(deps: PredictDeps, url: URL): PredictRequest {
  const gradcam = wantsGradcam(url);
  const force = wantsForce(url);
  const selected = deps.registry.select(url.searchParams.get("model"));
  const thresholds = selected.map((m) =>
    deps.registry.profile(m, url.searchParams.get("threshold"))
  );
  return { gradcam, force, selected, thresholds };
}

/** The `image` block of an answer: what was received and, where useful, what the models saw. */
async function imageBlock(img: DecodedUpload, gradcam: boolean) {
  return {
    width: img.width,
    height: img.height,
    format: img.format,
    bytes: img.bytes,
    sha256: img.sha256,
    ...(img.dicom ? { dicom: img.dicom.tags, warnings: img.dicom.warnings } : {}),
    // What the models saw (browsers cannot show DICOM; Grad-CAM layers go over it).
    ...(img.format === "dicom" || gradcam
      ? { preview_png_base64: toBase64(await previewPng(img.rgb, IMAGE_SIZE)) }
      : {}),
  };
}

/** Decode, guard and every chosen model: the work done inside a limiter slot. */
async function answer(
  deps: PredictDeps,
  p: PredictRequest,
  bytes: Uint8Array,
  header: UploadHeader,
  signal: AbortSignal,
  t0: number,
): Promise<Response> {
  const img = await decodeUpload(bytes, header, deps.limits, IMAGE_SIZE);
  const verdict: GuardVerdict = assessInput(deps.guard ?? null, img.rgb, img.dicom?.tags);
  // Never a silent prediction on a foreign image: withheld unless asked for.
  const withhold = !verdict.ok && !p.force;
  const results = [];
  for (const [k, m] of p.selected.entries()) {
    signal.throwIfAborted(); // past the deadline: the 504 is sent, stop spending the slot
    results.push(
      withhold
        ? withheld(m, p.thresholds[k])
        : await runModel(deps, m, img, p.gradcam, p.thresholds[k]),
    );
  }
  return jsonResponse({
    image: await imageBlock(img, p.gradcam),
    guard: { ...verdict, withheld: withhold },
    results,
    latency_ms: round(performance.now() - t0, 2),
    notice: NOTICE,
  });
}

/**
 * The batched variant of `answer`: decode and guard in a limiter slot, then each model through
 * its batcher (outside the slot, so up to maxBatch requests can meet there), then Grad-CAM in a
 * slot again; one deadline across the three steps.
 */
async function answerBatched(
  deps: PredictDeps,
  p: PredictRequest,
  bytes: Uint8Array,
  header: UploadHeader,
  batchers: BatcherSet,
  deadline: AbortSignal,
  t0: number,
): Promise<Response> {
  // Tell each batcher this request is coming, so it waits for it (within its window).
  const withdraw = p.selected.map((m) => batchers.of(m.classifier).expect());
  try {
    const { img, verdict, image } = await deps.limiter.run(async () => {
      const img = await decodeUpload(bytes, header, deps.limits, IMAGE_SIZE);
      const verdict = assessInput(deps.guard ?? null, img.rgb, img.dicom?.tags);
      return { img, verdict, image: await imageBlock(img, p.gradcam) };
    }, deadline);
    const withhold = !verdict.ok && !p.force;
    const t1 = performance.now();
    const outs = p.selected.map((m) =>
      withhold ? null : batchers.of(m.classifier).predict(img.rgb, deadline)
    );
    withdraw.forEach((f) => f());
    for (const o of outs) o?.catch(() => {}); // one rejection answers; the others are moot
    const predicted = await Promise.all(outs);
    const finish = async (signal?: AbortSignal) => {
      const results = [];
      for (const [k, m] of p.selected.entries()) {
        signal?.throwIfAborted(); // past the deadline: stop spending the slot
        const out = predicted[k];
        results.push(
          out === null
            ? withheld(m, p.thresholds[k])
            : await finishModel(deps, m, img, p.gradcam, p.thresholds[k], out, t1),
        );
      }
      return results;
    };
    // Grad-CAM is heavy (a backward pass): it runs in a slot like the decode.
    const results = p.gradcam && !withhold
      ? await deps.limiter.run(finish, deadline)
      : await finish();
    return jsonResponse({
      image,
      guard: { ...verdict, withheld: withhold },
      results,
      latency_ms: round(performance.now() - t0, 2),
      notice: NOTICE,
    });
  } finally {
    withdraw.forEach((f) => f());
  }
}

/**
 * The /v1/predict route handler. The body is read (within its deadline, charged to the upload
 * budget) and its header checked before a slot is taken; the decode and models run in the slot
 * (with batching: decode in the slot, the models through their batchers, see answerBatched).
 */
export function predictRoute(deps: PredictDeps): (req: Request, url: URL) => Promise<Response> {
  const batchers = deps.batchers ?? null;
  return async (req, url) => {
    const p = parsePredict(deps, url);
    // Refuse before reading the body when no place is free anyway.
    if (deps.limiter.saturated) throw deps.limiter.busyError();
    const t0 = performance.now();
    const account = deps.budget.open();
    try {
      const bytes = await extractImageBytes(req, deps.limits.maxBytes, {
        timeoutMs: deps.bodyTimeoutMs,
        account,
      });
      const header = await inspectUpload(bytes, deps.limits);
      const deadline = deadlineSignal(deps.timeoutMs, req.signal);
      try {
        if (batchers) {
          return await answerBatched(deps, p, bytes, header, batchers, deadline.signal, t0);
        }
        return await deps.limiter.run(
          (signal) => answer(deps, p, bytes, header, signal, t0),
          deadline.signal,
        );
      } finally {
        deadline.clear();
      }
    } finally {
      account.release();
    }
  };
}
