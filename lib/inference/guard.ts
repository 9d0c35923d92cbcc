/**
 * The out-of-distribution guard: before a label is shown, does the input look like the frontal
 * chest radiographs the models were trained on?
 *
 * Two checks. (1) DICOM tags, when there are any: Modality must be a radiograph (CR, DX, DR),
 * BodyPartExamined CHEST when present, ViewPosition frontal (PA/AP) when present. (2) An image
 * score: the Mahalanobis distance of a small appearance descriptor of the 224x224 model input
 * (see guardFeatures) from the training images, with a Ledoit-Wolf shrunk covariance. The
 * descriptor is the same for every net, costs a few milliseconds, and is fitted on every training
 * image in minutes on a laptop; frozen-network features would tie the guard to one net and one
 * set of stand-in weights.
 *
 * The fit sees each training image twice: as it is and through one seeded draw of plausible
 * acquisition changes (GUARD_AUGMENT), so other scanners' contrast, noise or framing are not
 * mistaken for foreign images.
 *
 * The threshold is the 99.5th percentile of the distances of one half of the validation images;
 * the other half measures the false-alarm rate, and generated foreign images (1/f colour noise, a
 * page of text, rotated and inverted X-rays) must all land above it. `score` = distance /
 * threshold, so a score above 1 is flagged.
 */
import type { DicomTags } from "../data/dicom.ts";
import { mulberry32 } from "../util/random.ts";
import type { AugmentStep } from "../data/shifts.ts";

export const GUARD_FORMAT = "cxr-guard/1";
export const GUARD_FILE = "guard.json";
export const GUARD_MESSAGE = "This does not look like a frontal chest radiograph";
/** Quantile of the calibration distances used as the threshold. */
export const GUARD_QUANTILE = 0.995;

const THUMB = 8;
const BINS = 16;
const EXTRAS = 7;
export const FEATURE_DIMS = THUMB * THUMB + BINS + EXTRAS;

/** A fitted guard as stored in guard.json. */
export interface GuardModel {
  format: string;
  dims: number;
  mean: number[];
  /** Inverse of the shrunk covariance, row-major dims x dims. */
  precision: number[];
  threshold: number;
  shrinkage: number;
  fit: {
    /** Training images the mean and covariance came from (each also once augmented). */
    train: number;
    /** Validation images that set the threshold, and those that measured false alarms. */
    calibration: number;
    heldOut: number;
    protocol: string;
    seed: number;
    createdAt: string;
  };
  /** Held-out validation: images flagged / images. */
  falseAlarms: { flagged: number; n: number; rate: number };
  /** Generated foreign images: name and score (all must be > 1). */
  foreign: { name: string; score: number }[];
  /**
   * Held-out validation images under each robustness-suite shift (lib/data/shifts.ts): the
   * share flagged. Present when fitted with `shifts`.
   */
  shifts?: { kind: string; severity: number; key: string; flagged: number; n: number }[];
}

export interface GuardVerdict {
  /** True when the input looks like a frontal chest radiograph (both checks pass). */
  ok: boolean;
  /** GUARD_MESSAGE when flagged, otherwise null. */
  message: string | null;
  /** Why it was flagged, one plain sentence each. */
  reasons: string[];
  /** Image score (distance / threshold; > 1 is flagged), or null with no fitted guard. */
  score: number | null;
  /** The score's threshold (1), or null with no fitted guard. */
  threshold: number | null;
  /** Whether DICOM tags were checked (false for JPEG/PNG). */
  tagsChecked: boolean;
}

/**
 * The appearance descriptor of a [size,size,3] RGB 0..255 image: the 8x8 grey thumbnail scaled
 * to zero mean and unit spread (layout, whatever the exposure: an inverted or rotated chest
 * lands far away), a 16-bin histogram, edge energy at 1 and 4 pixels, colourfulness, mean and
 * spread of the thumbnail, and its left-right symmetry.
 */
export function guardFeatures(rgb: Float32Array, size = 224): Float64Array {
  const n = size * size;
  if (rgb.length !== n * 3) throw new Error(`guard: expected ${size}x${size}x3 floats`);
  const grey = new Float64Array(n);
  const f = new Float64Array(FEATURE_DIMS);
  const h0 = THUMB * THUMB;
  let colour = 0;
  for (let i = 0; i < n; i++) {
    const r = rgb[i * 3], g = rgb[i * 3 + 1], b = rgb[i * 3 + 2];
    const v = (r + g + b) / 3;
    grey[i] = v;
    colour += Math.abs(r - g) + Math.abs(g - b);
    f[h0 + Math.min(BINS - 1, Math.max(0, Math.floor(v / 256 * BINS)))] += 1 / n;
  }
  const thumb = new Float64Array(THUMB * THUMB);
  let gx = 0, gy = 0, gx4 = 0;
  for (let y = 0; y < size; y++) {
    const ty = Math.min(THUMB - 1, Math.floor(y * THUMB / size));
    for (let x = 0; x < size; x++) {
      const v = grey[y * size + x];
      thumb[ty * THUMB + Math.min(THUMB - 1, Math.floor(x * THUMB / size))] += v;
      if (x > 0) gx += Math.abs(v - grey[y * size + x - 1]);
      if (x > 3) gx4 += Math.abs(v - grey[y * size + x - 4]);
      if (y > 0) gy += Math.abs(v - grey[(y - 1) * size + x]);
    }
  }
  const cells = THUMB * THUMB;
  let mean = 0, spread = 0;
  for (let i = 0; i < cells; i++) mean += (thumb[i] /= n / cells) / cells;
  for (let i = 0; i < cells; i++) spread += (thumb[i] - mean) ** 2 / cells;
  spread = Math.sqrt(spread) + 1e-6;
  let symmetry = 0;
  for (let i = 0; i < cells; i++) f[i] = (thumb[i] - mean) / spread;
  for (let y = 0; y < THUMB; y++) {
    for (let x = 0; x < THUMB; x++) symmetry += f[y * THUMB + x] * f[y * THUMB + THUMB - 1 - x];
  }
  const e = h0 + BINS;
  f.set([gx / n, gy / n, gx4 / n, colour / n].map((v) => v / 25.5), e);
  f.set([mean / 255, spread / 255, symmetry / cells], e + 4);
  return f;
}

/** Mean and Ledoit-Wolf shrunk covariance of `rows` (each FEATURE_DIMS long). */
export function shrunkCovariance(
  rows: readonly Float64Array[],
): { mean: Float64Array; cov: Float64Array; shrinkage: number } {
  const n = rows.length;
  const d = rows[0].length;
  if (n < 2) throw new Error(`guard: need at least 2 images to fit, got ${n}`);
  const mean = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += r[j] / n;
  const xs = rows.map((r) => r.map((v, j) => v - mean[j]));
  const s = new Float64Array(d * d);
  for (const x of xs) {
    for (let i = 0; i < d; i++) {
      const xi = x[i] / n;
      if (xi === 0) continue;
      for (let j = i; j < d; j++) s[i * d + j] += xi * x[j];
    }
  }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) s[i * d + j] = s[j * d + i];
  let mu = 0;
  for (let i = 0; i < d; i++) mu += s[i * d + i] / d;
  let delta = 0, sNorm = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const v = s[i * d + j];
      sNorm += v * v;
      delta += (v - (i === j ? mu : 0)) ** 2;
    }
  }
  // beta = (1/n^2) sum_k ||x_k x_k^T - S||_F^2, with ||xx^T - S||^2 = |x|^4 - 2 x^T S x + ||S||^2.
  let beta = 0;
  for (const x of xs) {
    let sq = 0, quad = 0;
    for (let i = 0; i < d; i++) {
      sq += x[i] * x[i];
      let row = 0;
      for (let j = 0; j < d; j++) row += s[i * d + j] * x[j];
      quad += x[i] * row;
    }
    beta += sq * sq - 2 * quad + sNorm;
  }
  beta /= n * n;
  const shrinkage = delta > 0 ? Math.min(1, Math.max(0, beta / delta)) : 1;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < d * d; i++) cov[i] = (1 - shrinkage) * s[i];
  for (let i = 0; i < d; i++) cov[i * d + i] += shrinkage * mu + 1e-9;
  return { mean, cov, shrinkage };
}

/** Inverse of a symmetric positive-definite matrix through its Cholesky factor. */
export function spdInverse(a: Float64Array, d: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * d + j];
      for (let k = 0; k < j; k++) sum -= l[i * d + k] * l[j * d + k];
      if (i === j) {
        if (!(sum > 0)) throw new Error("guard: covariance is not positive definite");
        l[i * d + i] = Math.sqrt(sum);
      } else {
        l[i * d + j] = sum / l[j * d + j];
      }
    }
  }
  // inv(L) by forward substitution, then inv(A) = inv(L)^T inv(L).
  const li = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    for (let i = c; i < d; i++) {
      let sum = i === c ? 1 : 0;
      for (let k = c; k < i; k++) sum -= l[i * d + k] * li[k * d + c];
      li[i * d + c] = sum / l[i * d + i];
    }
  }
  const inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      let sum = 0;
      for (let k = j; k < d; k++) sum += li[k * d + i] * li[k * d + j];
      inv[i * d + j] = sum;
      inv[j * d + i] = sum;
    }
  }
  return inv;
}

/** Mahalanobis distance of a descriptor from the fitted training distribution. */
export function guardDistance(
  model: Pick<GuardModel, "mean" | "precision" | "dims">,
  f: Float64Array,
): number {
  const d = model.dims;
  const diff = new Float64Array(d);
  for (let i = 0; i < d; i++) diff[i] = f[i] - model.mean[i];
  let sum = 0;
  for (let i = 0; i < d; i++) {
    let row = 0;
    for (let j = 0; j < d; j++) row += model.precision[i * d + j] * diff[j];
    sum += diff[i] * row;
  }
  return Math.sqrt(Math.max(0, sum));
}

/** The q-quantile (linear interpolation) of `values`. */
export function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
}

const RADIOGRAPHY = new Set(["CR", "DX", "DR"]);
const FRONTAL = new Set(["PA", "AP"]);

/** Reasons the DICOM tags say this is not a frontal chest radiograph (empty when fine). */
export function tagReasons(tags: DicomTags | undefined): string[] {
  if (!tags) return [];
  const reasons: string[] = [];
  if (tags.modality && !RADIOGRAPHY.has(tags.modality)) {
    reasons.push(`Modality ${tags.modality} is not a radiograph (CR, DX or DR expected)`);
  }
  if (tags.bodyPartExamined && tags.bodyPartExamined !== "CHEST") {
    reasons.push(`Body part ${tags.bodyPartExamined} is not CHEST`);
  }
  if (tags.viewPosition && !FRONTAL.has(tags.viewPosition)) {
    reasons.push(`View ${tags.viewPosition} is not frontal (PA or AP expected)`);
  }
  return reasons;
}

/** Both checks on one model input (224x224 RGB 0..255) and its DICOM tags, if any. */
export function assessInput(
  model: GuardModel | null,
  rgb: Float32Array,
  tags?: DicomTags,
): GuardVerdict {
  const reasons = tagReasons(tags);
  let score: number | null = null;
  if (model) {
    score = guardDistance(model, guardFeatures(rgb)) / model.threshold;
    if (score > 1) {
      reasons.push(
        `image score ${score.toFixed(2)} is above 1 (unlike the training X-rays)`,
      );
    }
  }
  const ok = reasons.length === 0;
  return {
    ok,
    message: ok ? null : GUARD_MESSAGE,
    reasons,
    score: score === null ? null : Math.round(score * 1000) / 1000,
    threshold: model ? 1 : null,
    tagsChecked: tags !== undefined,
  };
}

/** Reads and checks guard.json. */
export async function loadGuard(path: string): Promise<GuardModel> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`cannot read guard ${path}: ${(e as Error).message}`);
  }
  const g = raw as GuardModel;
  if (g?.format !== GUARD_FORMAT) throw new Error(`${path}: not a ${GUARD_FORMAT} file`);
  if (
    g.dims !== FEATURE_DIMS || g.mean?.length !== g.dims ||
    g.precision?.length !== g.dims * g.dims || !(g.threshold > 0)
  ) {
    throw new Error(`${path}: guard has the wrong shape (refit with deno task guard)`);
  }
  return g;
}

// ---- generated foreign images ----

/** 1/f-like colour noise (a photo-ish texture): octaves of smoothly upsampled random values. */
function colourNoise(size: number, rand: () => number): Float32Array {
  const out = new Float32Array(size * size * 3);
  for (let c = 0; c < 3; c++) {
    for (let octave = 2, amp = 1; octave <= 64; octave *= 2, amp /= 2) {
      const grid = Float32Array.from({ length: (octave + 1) ** 2 }, () => rand());
      for (let y = 0; y < size; y++) {
        const gy = y / size * octave, y0 = Math.floor(gy), fy = gy - y0;
        for (let x = 0; x < size; x++) {
          const gx = x / size * octave, x0 = Math.floor(gx), fx = gx - x0;
          const at = (yy: number, xx: number) => grid[yy * (octave + 1) + xx];
          const v = (at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy) +
            (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy;
          out[(y * size + x) * 3 + c] += v * amp * 128;
        }
      }
    }
  }
  return out.map((v) => Math.min(255, v));
}

/** A white page with lines of dark glyph-like 5x7 marks (no font needed). */
function textPage(size: number, rand: () => number): Float32Array {
  const out = new Float32Array(size * size * 3).fill(245);
  for (let line = 12; line + 14 < size; line += 18) {
    let x = 10;
    while (x < size - 20) {
      const word = 2 + Math.floor(rand() * 7);
      for (let w = 0; w < word && x < size - 12; w++, x += 8) {
        for (let gy = 0; gy < 7; gy++) {
          for (let gx = 0; gx < 5; gx++) {
            if (rand() < 0.45) {
              for (let p = 0; p < 2; p++) {
                const i = ((line + gy * 2 + p) * size + x + gx) * 3;
                out[i] = out[i + 1] = out[i + 2] = 20;
              }
            }
          }
        }
      }
      x += 8;
    }
  }
  return out;
}

function rotate90(rgb: Float32Array, size: number): Float32Array {
  const out = new Float32Array(rgb.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const s = (y * size + x) * 3, d = (x * size + (size - 1 - y)) * 3;
      out[d] = rgb[s];
      out[d + 1] = rgb[s + 1];
      out[d + 2] = rgb[s + 2];
    }
  }
  return out;
}

/**
 * Clearly foreign inputs built from a seed and a few real X-rays: colour noise, a page of text,
 * and each X-ray rotated by 90 degrees and inverted.
 */
export function foreignImages(
  xrays: readonly Float32Array[],
  seed = 7,
  size = 224,
): { name: string; rgb: Float32Array }[] {
  const rand = mulberry32(seed);
  const out = [
    { name: "colour noise", rgb: colourNoise(size, rand) },
    { name: "grey noise", rgb: colourNoise(size, rand).map((_, i, a) => a[i - (i % 3)]) },
    { name: "text page", rgb: textPage(size, rand) },
  ];
  xrays.forEach((x, i) => {
    out.push({ name: `x-ray ${i + 1} rotated 90°`, rgb: rotate90(x, size) });
    out.push({ name: `x-ray ${i + 1} inverted`, rgb: x.map((v) => 255 - v) });
  });
  return out;
}

// ---- fitting on a dataset ----

export interface FitOptions {
  /** Dataset root (Kaggle layout); its patient-disjoint split gives train and validation. */
  data: string;
  seed?: number;
  /** Stratified subsample of the training part (all by default). */
  trainImages?: number;
  /** Also measure the flag rate of held-out images under the robustness suite's shifts. */
  shifts?: boolean;
  progress?: boolean;
}

/**
 * Plausible acquisition variation (other scanners, exposures, collimation, positioning): each
 * training image also enters the fit once through a seeded draw of these, so the guard learns
 * them as chest X-rays and keeps flagging what is not one (noise, text, rotated or inverted).
 */
export const GUARD_AUGMENT: readonly AugmentStep[] = [
  { kind: "contrast", p: 0.5, range: [0.6, 1.3] },
  { kind: "gamma", p: 0.5, range: [0.7, 1.6] },
  { kind: "brightness", p: 0.5, range: [-30, 30] },
  { kind: "blur", p: 0.3, range: [0.3, 2] },
  { kind: "noise", p: 0.5, range: [0, 14] },
  { kind: "zoom", p: 0.5, range: [1, 1.3] },
  { kind: "rotation", p: 0.5, range: [-10, 10] },
  { kind: "jpeg", p: 0.3, range: [20, 90] },
];

/**
 * Descriptors of `items` in order (corrupt files skipped), plus up to `keep` decoded images;
 * with `augment`, also one descriptor per image of a seeded GUARD_AUGMENT draw.
 */
async function describe<T extends { path: string }>(
  items: readonly T[],
  progress: boolean,
  keep = 0,
  augment: (() => number) | null = null,
): Promise<{ features: Float64Array[]; kept: Float32Array[] }> {
  const { loadBatches } = await import("../data/loader.ts");
  const { applyShifts, drawAugmentation } = await import("../data/shifts.ts");
  const features: Float64Array[] = [];
  const kept: Float32Array[] = [];
  const per = 224 * 224 * 3;
  const opts = { batchSize: 32, progress: progress ? undefined : false as const };
  for await (const batch of loadBatches(items, opts)) {
    for (let i = 0; i < batch.items.length; i++) {
      const rgb = batch.data.subarray(i * per, (i + 1) * per);
      features.push(guardFeatures(rgb));
      if (augment) {
        const shifted = await applyShifts(rgb.slice(), drawAugmentation(GUARD_AUGMENT, augment));
        features.push(guardFeatures(shifted));
      }
      if (kept.length < keep) kept.push(rgb.slice());
    }
  }
  return { features, kept };
}

/**
 * Fits the guard on the training part of the patient split, sets its threshold on half of the
 * validation patients and measures false alarms on the other half and on generated foreign images.
 */
export async function fitGuard(opts: FitOptions): Promise<GuardModel> {
  const { scanDataset } = await import("../data/dataset.ts");
  const { makeSplits, DEFAULT_SEED } = await import("../data/splits.ts");
  const seed = opts.seed ?? DEFAULT_SEED;
  const progress = opts.progress ?? false;
  const ds = await scanDataset(opts.data);
  const splits = makeSplits(ds.items, {
    protocol: "patient",
    seed,
    subset: opts.trainImages ? { train: opts.trainImages } : undefined,
  });
  if (splits.train.length < 10 || splits.val.length < 10) {
    throw new Error(
      `guard: too few images (train ${splits.train.length}, validation ${splits.val.length})`,
    );
  }
  const train = await describe(splits.train, progress, 0, mulberry32(seed + 1));
  const { mean, cov, shrinkage } = shrunkCovariance(train.features);
  const precision = spdInverse(cov, FEATURE_DIMS);
  const model: GuardModel = {
    format: GUARD_FORMAT,
    dims: FEATURE_DIMS,
    mean: [...mean],
    precision: [...precision],
    threshold: 1,
    shrinkage,
    fit: {
      train: train.features.length / 2,
      calibration: 0,
      heldOut: 0,
      protocol: "patient",
      seed,
      createdAt: new Date().toISOString(),
    },
    falseAlarms: { flagged: 0, n: 0, rate: 0 },
    foreign: [],
  };
  // Validation patients alternate between calibration and held-out halves (sorted by id).
  const patients = [...new Set(splits.val.map((i) => i.patient))].sort();
  const half = new Set(patients.filter((_, i) => i % 2 === 0));
  const calItems = splits.val.filter((i) => half.has(i.patient));
  const heldItems = splits.val.filter((i) => !half.has(i.patient));
  const cal = await describe(calItems, progress, 3);
  const held = await describe(heldItems, progress, opts.shifts ? heldItems.length : 0);
  model.threshold = quantile(cal.features.map((f) => guardDistance(model, f)), GUARD_QUANTILE);
  const flagged = held.features.filter((f) => guardDistance(model, f) > model.threshold).length;
  model.fit.calibration = cal.features.length;
  model.fit.heldOut = held.features.length;
  model.falseAlarms = {
    flagged,
    n: held.features.length,
    rate: held.features.length ? flagged / held.features.length : 0,
  };
  model.foreign = foreignImages(cal.kept).map(({ name, rgb }) => ({
    name,
    score: Math.round(guardDistance(model, guardFeatures(rgb)) / model.threshold * 1000) / 1000,
  }));
  if (opts.shifts) model.shifts = await flagsUnderShifts(model, held.kept, progress);
  return model;
}

/** Share of `images` flagged under each suite shift at severities 1..3. */
async function flagsUnderShifts(
  model: GuardModel,
  images: readonly Float32Array[],
  progress: boolean,
): Promise<NonNullable<GuardModel["shifts"]>> {
  const { SUITE_KINDS, suiteShift, applyShift, shiftKey } = await import("../data/shifts.ts");
  const { Progress } = await import("../util/progress.ts");
  const bar = progress
    ? new Progress("guard shifts", { total: SUITE_KINDS.length * 3, unit: "shift" })
    : null;
  const out: NonNullable<GuardModel["shifts"]> = [];
  for (const kind of SUITE_KINDS) {
    for (const severity of [1, 2, 3] as const) {
      const shift = suiteShift(kind, severity);
      let flagged = 0;
      for (const img of images) {
        const f = guardFeatures(await applyShift(img, shift));
        if (guardDistance(model, f) > model.threshold) flagged++;
      }
      out.push({ kind, severity, key: shiftKey(shift), flagged, n: images.length });
      bar?.tick(1);
      if (kind === "invert") break; // one severity: inversion has no strength
    }
  }
  bar?.done();
  return out;
}
