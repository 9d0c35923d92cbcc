/**
 * Acquisition shifts and augmentations over decoded images: one seeded transform module for the
 * robustness suite (fixed severities) and for training-time augmentation (random draws).
 *
 * An image is what `decodeImage` returns: square RGB, HWC, float32 0..255. Every transform
 * returns a new image of the same size, rounded and clipped to 0..255 as an 8-bit file would be,
 * and is deterministic: a `Shift` is a plain JSON object (kind, value, and for some kinds a seed
 * or an offset), so it can key a cache entry and replay exactly.
 *
 * | kind       | value                                         | suite severities 1/2/3 |
 * | ---------- | --------------------------------------------- | ---------------------- |
 * | contrast   | factor around the image mean (1 = identity)   | 0.75 / 0.55 / 0.35     |
 * | gamma      | exponent on v/255 (1 = identity; >1 darker)   | 1.4 / 1.9 / 2.6        |
 * | brightness | grey levels added (0 = identity)              | 25 / 50 / 80           |
 * | blur       | Gaussian sigma in pixels (sharp)              | 1 / 2 / 3.5            |
 * | noise      | Gaussian sigma in grey levels; `seed`         | 6 / 12 / 24            |
 * | resample   | side fraction kept, then back up (Keras rule) | 0.5 / 0.33 / 0.2       |
 * | jpeg       | JPEG quality, re-encoded by sharp             | 40 / 20 / 8            |
 * | zoom       | zoom factor >= 1 (crop 1/value); `dx`, `dy`   | 1.15 / 1.35 / 1.6      |
 * | rotation   | degrees, counter-clockwise                    | 5 / 10 / 20            |
 * | invert     | none (grey-level inversion: a sanity case)    | 1 / 1 / 1              |
 * | translate  | fraction of the side moved along (`dx`, `dy`) | (augmentation only)    |
 * | hflip      | none (mirror left-right)                      | (augmentation only)    |
 *
 * Geometric kinds (zoom, rotation, translate, hflip) share one bilinear affine warp written here
 * (zero fill outside the image): sharp's rotate grows the canvas and its affine needs the output
 * placement worked out around it, while a 224 px warp is a few lines and 2 ms. Blur and JPEG use
 * sharp (libvips); resample shrinks with sharp (as a lower-resolution export would) and enlarges
 * with the pipeline's own nearest rule, exactly what `decodeImage` would do to such a file.
 */
import sharp, { type Sharp } from "sharp";
import { resizeNearestRgb } from "./images.ts";
import { mulberry32 } from "../util/random.ts";

export const SHIFT_KINDS = [
  "contrast",
  "gamma",
  "brightness",
  "blur",
  "noise",
  "resample",
  "jpeg",
  "zoom",
  "rotation",
  "invert",
  "translate",
  "hflip",
] as const;
export type ShiftKind = typeof SHIFT_KINDS[number];

/** The ten kinds of the robustness suite, in report order. */
export const SUITE_KINDS: readonly ShiftKind[] = SHIFT_KINDS.slice(0, 10);

/** One transform: `value` in the kind's unit (table above). JSON-safe: it can key a cache. */
export interface Shift {
  kind: ShiftKind;
  value: number;
  /** noise: PRNG seed of the noise field (default 0). */
  seed?: number;
  /** zoom: crop position in the free margin, -1..1 (0 = centre); translate: direction. */
  dx?: number;
  dy?: number;
}

/** A decoded square RGB image (HWC, 0..255). */
export type Pixels = Float32Array;

/** Suite values per kind for severities 1, 2, 3 (mild, moderate, strong). */
export const SUITE_SEVERITIES: Readonly<Record<ShiftKind, readonly [number, number, number]>> = {
  contrast: [0.75, 0.55, 0.35],
  gamma: [1.4, 1.9, 2.6],
  brightness: [25, 50, 80],
  blur: [1, 2, 3.5],
  noise: [6, 12, 24],
  resample: [0.5, 0.33, 0.2],
  jpeg: [40, 20, 8],
  zoom: [1.15, 1.35, 1.6],
  rotation: [5, 10, 20],
  invert: [1, 1, 1],
  translate: [0.04, 0.08, 0.15],
  hflip: [1, 1, 1],
};

/** The suite's shift of `kind` at `severity` (1..3); `seed` feeds the noise field. */
export function suiteShift(kind: ShiftKind, severity: 1 | 2 | 3, seed = 0): Shift {
  const value = SUITE_SEVERITIES[kind][severity - 1];
  return kind === "noise" ? { kind, value, seed } : { kind, value };
}

/** Short stable text of a shift, e.g. `rotation=10`, `zoom=1.2@0.3,-0.1`, `noise=12#7`. */
export function shiftKey(s: Shift): string {
  let key = `${s.kind}=${+s.value.toPrecision(6)}`;
  if (s.dx !== undefined || s.dy !== undefined) key += `@${s.dx ?? 0},${s.dy ?? 0}`;
  if (s.seed !== undefined) key += `#${s.seed}`;
  return key;
}

/** Throws a one-line error naming the field when a shift is outside its valid range. */
export function validateShift(s: Shift): void {
  const bad = (why: string): never => {
    throw new Error(`shift ${JSON.stringify(s)}: ${why}`);
  };
  if (!(SHIFT_KINDS as readonly string[]).includes(s.kind)) {
    bad(`unknown kind; use one of ${SHIFT_KINDS.join(", ")}`);
  }
  if (!Number.isFinite(s.value)) bad("value must be a finite number");
  const v = s.value;
  const rules: Partial<Record<ShiftKind, [boolean, string]>> = {
    contrast: [v >= 0, "contrast factor must be >= 0"],
    gamma: [v > 0, "gamma must be > 0"],
    blur: [v === 0 || (v >= 0.3 && v <= 100), "blur sigma must be 0 or in [0.3, 100]"],
    noise: [v >= 0, "noise sigma must be >= 0"],
    resample: [v > 0 && v <= 1, "resample fraction must be in (0, 1]"],
    jpeg: [Number.isInteger(v) && v >= 1 && v <= 100, "JPEG quality must be a whole number 1..100"],
    zoom: [v >= 1 && v <= 10, "zoom factor must be in [1, 10]"],
    translate: [Math.abs(v) <= 1, "translate fraction must be in [-1, 1]"],
  };
  const rule = rules[s.kind];
  if (rule && !rule[0]) bad(rule[1]);
  for (const k of ["dx", "dy"] as const) {
    const o = s[k];
    if (o !== undefined && !(Math.abs(o) <= 1)) bad(`${k} must be in [-1, 1]`);
  }
}

function sideOf(img: Pixels): number {
  const side = Math.round(Math.sqrt(img.length / 3));
  if (side < 1 || side * side * 3 !== img.length) {
    throw new Error(`expected a square RGB image (side*side*3 floats), got ${img.length} values`);
  }
  return side;
}

/** Round and clip to 0..255 in place (what writing an 8-bit file would do). */
function quantize(img: Pixels): Pixels {
  for (let i = 0; i < img.length; i++) {
    const v = Math.round(img[i]);
    img[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return img;
}

function pointwise(img: Pixels, f: (v: number) => number): Pixels {
  const out = new Float32Array(img.length);
  for (let i = 0; i < img.length; i++) out[i] = f(img[i]);
  return quantize(out);
}

function mean(img: Pixels): number {
  let s = 0;
  for (let i = 0; i < img.length; i++) s += img[i];
  return s / img.length;
}

/** Standard normal draws (Box-Muller) from a mulberry32 stream. */
function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = 1 - rand(); // (0, 1]
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * rand();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

/**
 * Bilinear warp: output pixel (x, y) samples the source at `inv` applied to its centre-relative
 * coordinates ([a, b, c, d, tx, ty]: sx = a x + b y + tx, sy = c x + d y + ty); zero outside.
 */
function warp(img: Pixels, side: number, inv: readonly number[]): Pixels {
  const [a, b, c, d, tx, ty] = inv;
  const out = new Float32Array(img.length);
  const h = (side - 1) / 2;
  const at = (x: number, y: number, ch: number) =>
    x < 0 || y < 0 || x >= side || y >= side ? 0 : img[(y * side + x) * 3 + ch];
  let o = 0;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const sx = a * (x - h) + b * (y - h) + tx + h;
      const sy = c * (x - h) + d * (y - h) + ty + h;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      for (let ch = 0; ch < 3; ch++) {
        out[o++] = (1 - fy) * ((1 - fx) * at(x0, y0, ch) + fx * at(x0 + 1, y0, ch)) +
          fy * ((1 - fx) * at(x0, y0 + 1, ch) + fx * at(x0 + 1, y0 + 1, ch));
      }
    }
  }
  return quantize(out);
}

async function viaSharp(
  img: Pixels,
  side: number,
  f: (s: Sharp) => Sharp,
): Promise<{ data: Uint8Array; width: number; height: number }> {
  const raw = Uint8Array.from(quantize(Float32Array.from(img)));
  const { data, info } = await f(sharp(raw, { raw: { width: side, height: side, channels: 3 } }))
    .raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), ...info };
}

/** Apply one shift; returns a new image. */
export async function applyShift(img: Pixels, s: Shift): Promise<Pixels> {
  validateShift(s);
  const side = sideOf(img);
  const v = s.value;
  switch (s.kind) {
    case "contrast": {
      const m = mean(img);
      return pointwise(img, (p) => m + v * (p - m));
    }
    case "gamma":
      return pointwise(img, (p) => 255 * Math.pow(Math.max(0, p) / 255, v));
    case "brightness":
      return pointwise(img, (p) => p + v);
    case "invert":
      return pointwise(img, (p) => 255 - p);
    case "noise": {
      const g = gaussian(mulberry32(s.seed ?? 0));
      // One noise value per pixel, the same on the three channels (grey detector noise).
      const out = new Float32Array(img.length);
      for (let i = 0; i < img.length; i += 3) {
        const n = v * g();
        out[i] = img[i] + n;
        out[i + 1] = img[i + 1] + n;
        out[i + 2] = img[i + 2] + n;
      }
      return quantize(out);
    }
    case "blur": {
      if (v === 0) return quantize(Float32Array.from(img));
      const r = await viaSharp(img, side, (p) => p.blur(v));
      return Float32Array.from(r.data);
    }
    case "jpeg": {
      // Encode to a file's bytes, then decode them (raw() after jpeg() would skip the codec).
      const raw = Uint8Array.from(quantize(Float32Array.from(img)));
      const file = await sharp(raw, { raw: { width: side, height: side, channels: 3 } })
        .jpeg({ quality: v }).toBuffer();
      const { data } = await sharp(file).toColourspace("srgb").removeAlpha().raw()
        .toBuffer({ resolveWithObject: true });
      return Float32Array.from(data);
    }
    case "resample": {
      const small = Math.max(1, Math.round(side * v));
      if (small === side) return quantize(Float32Array.from(img));
      const r = await viaSharp(img, side, (p) => p.resize(small, small, { fit: "fill" }));
      return resizeNearestRgb(r.data, r.width, r.height, side, 3);
    }
    case "zoom": {
      const k = 1 / v; // source pixels per output pixel
      const margin = (side - 1) / 2 * (1 - k);
      return warp(img, side, [k, 0, 0, k, (s.dx ?? 0) * margin, (s.dy ?? 0) * margin]);
    }
    case "rotation": {
      const t = v * Math.PI / 180; // counter-clockwise on screen (y down): inverse rotates back
      const cos = Math.cos(t), sin = Math.sin(t);
      return warp(img, side, [cos, -sin, sin, cos, 0, 0]);
    }
    case "translate": {
      const dx = s.dx ?? 1, dy = s.dy ?? 0;
      return warp(img, side, [1, 0, 0, 1, -v * dx * side, -v * dy * side]);
    }
    case "hflip":
      return warp(img, side, [-1, 0, 0, 1, 0, 0]);
  }
}

/** Apply shifts in order (each one's 8-bit output feeds the next). */
export async function applyShifts(img: Pixels, shifts: readonly Shift[]): Promise<Pixels> {
  let out = img;
  for (const s of shifts) out = await applyShift(out, s);
  return out === img ? Float32Array.from(img) : out;
}

/** One entry of an augmentation policy: apply `kind` with probability `p`, value in `range`. */
export interface AugmentStep {
  kind: ShiftKind;
  /** Probability of applying this step (default 1). */
  p?: number;
  /** [lo, hi]: value drawn uniformly (integers for jpeg). Default: `AUGMENT_RANGES[kind]`. */
  range?: readonly [number, number];
}

/**
 * Mild default ranges for training-time augmentation of chest radiographs (the suite's
 * severities 1-2 at most; hflip is listed but off unless a policy names it).
 */
export const AUGMENT_RANGES: Readonly<Record<ShiftKind, readonly [number, number]>> = {
  contrast: [0.8, 1.2],
  gamma: [0.8, 1.25],
  brightness: [-20, 20],
  blur: [0.3, 1.2],
  noise: [0, 6],
  resample: [0.5, 1],
  jpeg: [40, 95],
  zoom: [1, 1.085], // a crop of 0.85-1.0 of the area
  rotation: [-10, 10],
  invert: [1, 1],
  translate: [0, 0.05],
  hflip: [1, 1],
};

/**
 * Draw a concrete Shift for `step` from `rand` (e.g. `mulberry32(seed)`): same stream, same
 * shift. Offsets (zoom, translate) and noise seeds are drawn from the same stream.
 */
export function drawShift(step: AugmentStep, rand: () => number): Shift {
  const [lo, hi] = step.range ?? AUGMENT_RANGES[step.kind];
  let value = lo + (hi - lo) * rand();
  if (step.kind === "jpeg") value = Math.round(value);
  const s: Shift = { kind: step.kind, value };
  if (step.kind === "noise") s.seed = Math.floor(rand() * 2 ** 31);
  if (step.kind === "zoom") {
    s.dx = 2 * rand() - 1;
    s.dy = 2 * rand() - 1;
  }
  if (step.kind === "translate") {
    const t = 2 * Math.PI * rand();
    s.dx = Math.cos(t);
    s.dy = Math.sin(t);
  }
  validateShift(s);
  return s;
}

/**
 * Draw an augmentation: each step applies with its probability, in policy order. Always
 * consumes the same number of draws per step, so later steps do not depend on earlier coins.
 */
export function drawAugmentation(policy: readonly AugmentStep[], rand: () => number): Shift[] {
  const out: Shift[] = [];
  for (const step of policy) {
    const apply = rand() < (step.p ?? 1);
    const s = drawShift(step, rand);
    if (apply) out.push(s);
  }
  return out;
}
