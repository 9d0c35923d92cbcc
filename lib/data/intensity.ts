/**
 * Intensity normalisation of a decoded image: the one function every path calls between decoding
 * and the net (feature extraction for training, `Classifier.predict` for evaluation, serving,
 * Grad-CAM and notebooks), so a run sees the same pixels everywhere. It runs on the 224x224
 * image, after resizing, so the result does not depend on the source resolution.
 *
 * - `off`: pixels unchanged (the original project).
 * - `equalize`: global histogram equalisation of the grey levels (the classic CDF mapping;
 *   written here because sharp has no global equalisation, only `normalise`, a linear stretch).
 * - `clahe`: contrast-limited adaptive histogram equalisation by sharp/libvips (`hist_local`),
 *   8x8 tiles and slope limit 3, close to OpenCV's usual setting.
 *
 * X-rays are grey: the normalised modes work on grey levels (a colour input becomes its Rec.601
 * luma, rounded) and write the same value to the three channels. Not expressible in an ONNX
 * graph (CLAHE), so it stays outside classifier.onnx and `classifier.json` records it.
 */
import sharp from "sharp";

export type IntensityMode = "off" | "equalize" | "clahe";
export const INTENSITY_MODES: readonly IntensityMode[] = ["off", "equalize", "clahe"];

/**
 * What a new run uses unless told otherwise: `equalize`. Chosen on the shift suite over the
 * patient-disjoint validation (README, "What each defence changed"): on full-data runs it kept
 * validation ROC-AUC and raised the specificity left under acquisition shifts for every net.
 * Runs saved before it record their own mode (a missing mode means `off`).
 */
export const DEFAULT_INTENSITY: IntensityMode = "equalize";

/** CLAHE tiles per side and slope limit (libvips' `maxSlope`, OpenCV's clipLimit analogue). */
export const CLAHE = { tilesPerSide: 8, maxSlope: 3 } as const;

/** Checks a user-given mode; the error names the accepted values. */
export function parseIntensityMode(v: string, where = "intensity"): IntensityMode {
  if (!(INTENSITY_MODES as readonly string[]).includes(v)) {
    throw new Error(`${where} must be one of ${INTENSITY_MODES.join(" | ")}, got "${v}"`);
  }
  return v as IntensityMode;
}

/** HWC RGB floats (0..255) -> grey levels 0..255 (uint8; channels equal: their value). */
export function toGrey(rgb: Float32Array): Uint8Array {
  const n = rgb.length / 3;
  const grey = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    const r = rgb[j], g = rgb[j + 1], b = rgb[j + 2];
    const v = r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b;
    grey[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
  }
  return grey;
}

function greyToRgb(grey: Uint8Array): Float32Array {
  const out = new Float32Array(grey.length * 3);
  for (let i = 0, j = 0; i < grey.length; i++, j += 3) {
    out[j] = out[j + 1] = out[j + 2] = grey[i];
  }
  return out;
}

/** Global histogram equalisation: v -> round(255 (cdf(v) - cdf_min) / (n - cdf_min)). */
export function equalizeGrey(grey: Uint8Array): Uint8Array {
  const hist = new Uint32Array(256);
  for (let i = 0; i < grey.length; i++) hist[grey[i]]++;
  const lut = new Uint8Array(256);
  let cdf = 0;
  let cdfMin = -1;
  for (let v = 0; v < 256; v++) {
    cdf += hist[v];
    if (cdfMin < 0 && cdf > 0) cdfMin = cdf;
    const span = grey.length - cdfMin;
    lut[v] = span > 0 ? Math.round((255 * Math.max(0, cdf - cdfMin)) / span) : v;
  }
  const out = new Uint8Array(grey.length);
  for (let i = 0; i < grey.length; i++) out[i] = lut[grey[i]];
  return out;
}

/** CLAHE of a square grey image with sharp (libvips hist_local). */
export async function claheGrey(grey: Uint8Array, size: number): Promise<Uint8Array> {
  const tile = Math.max(1, Math.round(size / CLAHE.tilesPerSide));
  const out = await sharp(grey, { raw: { width: size, height: size, channels: 1 } })
    .clahe({ width: tile, height: tile, maxSlope: CLAHE.maxSlope })
    .toColourspace("b-w") // libvips hands back sRGB otherwise
    .raw()
    .toBuffer();
  if (out.byteLength !== grey.length) {
    throw new Error(`clahe: expected ${grey.length} grey levels, got ${out.byteLength}`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Normalises one `size` x `size` RGB image (0..255, HWC); `off` returns the input itself. */
export async function normalizeIntensity(
  rgb: Float32Array,
  size: number,
  mode: IntensityMode,
): Promise<Float32Array> {
  if (mode === "off") return rgb;
  if (rgb.length !== size * size * 3) {
    throw new Error(`normalizeIntensity: expected ${size}x${size}x3 values, got ${rgb.length}`);
  }
  const grey = toGrey(rgb);
  return greyToRgb(mode === "equalize" ? equalizeGrey(grey) : await claheGrey(grey, size));
}

/** Normalises `n` images stored one after the other in `batch` (in place when the mode is on). */
export async function normalizeBatch(
  batch: Float32Array,
  n: number,
  size: number,
  mode: IntensityMode,
): Promise<Float32Array> {
  if (mode === "off") return batch;
  const per = size * size * 3;
  for (let k = 0; k < n; k++) {
    const one = batch.subarray(k * per, (k + 1) * per);
    one.set(await normalizeIntensity(one, size, mode));
  }
  return batch;
}
