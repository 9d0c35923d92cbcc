/**
 * Image decoding with sharp (libvips): JPEG/PNG/TIFF, 8- or 16-bit, gray/RGB/CMYK, with or
 * without alpha -> RGB float32 (HWC, 0..255) squashed to `size` x `size`, like Keras'
 * `flow_from_directory(target_size=(size, size))`.
 *
 * Interpolation. Keras' default for `flow_from_directory` is `interpolation="nearest"`, i.e.
 * PIL `Image.resize(..., NEAREST)`. sharp's own "nearest" shrinks on load and samples other
 * pixels, so the default here decodes at full size with sharp and then samples exactly PIL's
 * pixels (source index = floor((i + 0.5) * in / out), the same double arithmetic as Pillow's
 * ImagingScaleAffine). Images already at `size` x `size` (the shared copy) are not resampled
 * at all, as in Keras. Smoother kernels (`bilinear`, `bicubic`, `lanczos`) use sharp's resize
 * with `fit: "fill"` (squash, aspect ratio not kept); they are close to, not equal to, PIL's.
 *
 * Colour, matching PIL's `convert("RGB")` where it is sensible: gray -> three equal channels;
 * alpha is dropped (not composited); 16-bit -> 8-bit by libvips' scaling (v >> 8; PIL would
 * clip everything above 255 to white); CMYK -> sRGB through libvips' colour management (PIL
 * uses a naive formula). EXIF orientation is ignored, as in Keras.
 * Truncated or corrupt files raise `ImageDecodeError` (sharp `failOn: "warning"`, like PIL
 * without LOAD_TRUNCATED_IMAGES).
 *
 * DICOM (the DICM signature, or a bare dataset in a `.dcm` file) goes through lib/data/dicom.ts to
 * its 8-bit display image first (modality LUT, VOI window, MONOCHROME1 inversion), then the same
 * resize as everything else; `dicom` carries the non-identifying tags used and any warnings.
 */
import sharp from "sharp";
import {
  decodeDicom,
  DicomError,
  type DicomImage,
  type DicomTags,
  isDicom,
  readHead,
} from "./dicom.ts";

export type Interpolation = "nearest" | "bilinear" | "bicubic" | "lanczos";

export interface DecodedImage {
  /** HWC RGB, 0..255, `size * size * 3` values. */
  data: Float32Array;
  /** Size of the source image before resizing. */
  width: number;
  height: number;
  /** sha256 of the file bytes (hex). */
  sha256: string;
  /** Set for DICOM input: the tags used for display and what the reader should be told. */
  dicom?: { tags: DicomTags; warnings: string[] };
}

export interface DecodeOptions {
  interpolation?: Interpolation;
  /** Name used in error messages when `src` is bytes. */
  name?: string;
  /** Refuse images with more pixels than this (sharp limitInputPixels; default 2^28). */
  maxPixels?: number;
}

/** A file that could not be read or decoded; `file` names it, `dicom` is set for DICOM problems. */
export class ImageDecodeError extends Error {
  readonly file: string;
  readonly dicom: DicomError | null;
  /** The problem without the "cannot decode image FILE:" prefix. */
  readonly reason: string;
  constructor(file: string, message: string, dicom: DicomError | null = null) {
    super(`cannot decode image ${file}: ${message}`);
    this.name = "ImageDecodeError";
    this.file = file;
    this.reason = message;
    this.dicom = dicom;
  }
}

/** DICOM by content: the DICM signature, or (for `.dcm`/`.dicom` names) a bare dataset. */
export function looksLikeDicom(bytes: Uint8Array, name: string): boolean {
  const lower = name.toLowerCase();
  if (bytes.length >= 132 && String.fromCharCode(...bytes.subarray(128, 132)) === "DICM") {
    return true;
  }
  return (lower.endsWith(".dcm") || lower.endsWith(".dicom")) && isDicom(bytes);
}

/** Display pixels of a DICOM file, as ImageDecodeError on failure. */
async function dicomPixels(
  bytes: Uint8Array,
  name: string,
  maxPixels?: number,
): Promise<DicomImage> {
  try {
    return await decodeDicom(bytes, maxPixels);
  } catch (e) {
    if (e instanceof DicomError) throw new ImageDecodeError(name, e.message, e);
    throw new ImageDecodeError(name, e instanceof Error ? e.message : String(e));
  }
}

/** Squashes display pixels (uint8 HWC, 1 or 3 channels) to `size` x `size` RGB float32. */
async function resizeDisplay(
  img: { pixels: Uint8Array; width: number; height: number; channels: 1 | 3 },
  size: number,
  interpolation: Interpolation,
): Promise<Float32Array> {
  if (interpolation === "nearest" || (img.width === size && img.height === size)) {
    return resizeNearestRgb(img.pixels, img.width, img.height, size, img.channels);
  }
  const raw = { width: img.width, height: img.height, channels: img.channels };
  const { data, info } = await sharp(img.pixels, { raw })
    .resize(size, size, { fit: "fill", kernel: SHARP_KERNEL[interpolation] })
    .raw().toBuffer({ resolveWithObject: true });
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return resizeNearestRgb(pixels, size, size, size, info.channels as 1 | 3);
}

/** Hex sha256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

const SHARP_KERNEL: Record<Exclude<Interpolation, "nearest">, "linear" | "cubic" | "lanczos3"> = {
  bilinear: "linear",
  bicubic: "cubic",
  lanczos: "lanczos3",
};

/**
 * Pillow's NEAREST resize (ImagingScaleAffine): source index for output i is
 * floor(0.5 * scale + i * scale), accumulated in doubles.
 */
function pilNearestIndex(inSize: number, outSize: number): Int32Array {
  const scale = inSize / outSize;
  const index = new Int32Array(outSize);
  let pos = scale * 0.5;
  for (let i = 0; i < outSize; i++) {
    index[i] = Math.min(inSize - 1, Math.max(0, Math.trunc(pos)));
    pos += scale;
  }
  return index;
}

/**
 * Squash a uint8 HWC image with 1 (gray) or 3 (RGB) channels to `size` x `size` RGB with
 * Pillow's nearest rule; gray is replicated into the three channels.
 */
export function resizeNearestRgb(
  pixels: Uint8Array,
  width: number,
  height: number,
  size: number,
  channels: 1 | 3 = 3,
): Float32Array {
  const out = new Float32Array(size * size * 3);
  const xs = width === size
    ? Int32Array.from({ length: size }, (_, i) => i)
    : pilNearestIndex(width, size);
  const ys = height === size
    ? Int32Array.from({ length: size }, (_, i) => i)
    : pilNearestIndex(height, size);
  let o = 0;
  for (let y = 0; y < size; y++) {
    const row = ys[y] * width;
    for (let x = 0; x < size; x++) {
      const s = (row + xs[x]) * channels;
      if (channels === 1) {
        const v = pixels[s];
        out[o++] = v;
        out[o++] = v;
        out[o++] = v;
      } else {
        out[o++] = pixels[s];
        out[o++] = pixels[s + 1];
        out[o++] = pixels[s + 2];
      }
    }
  }
  return out;
}

/** Decode a file (path) or encoded bytes into `size` x `size` RGB float32. */
export async function decodeImage(
  src: string | Uint8Array,
  size = 224,
  opts: DecodeOptions = {},
): Promise<DecodedImage> {
  const name = typeof src === "string" ? src : (opts.name ?? "<bytes>");
  if (!Number.isInteger(size) || size <= 0) throw new Error(`image size must be > 0, got ${size}`);
  let bytes: Uint8Array;
  if (typeof src === "string") {
    try {
      bytes = await Deno.readFile(src);
    } catch (e) {
      throw new ImageDecodeError(name, e instanceof Error ? e.message : String(e));
    }
  } else {
    bytes = src;
  }
  if (bytes.length === 0) throw new ImageDecodeError(name, "empty file");
  const sha256 = await sha256Hex(bytes);
  const interpolation = opts.interpolation ?? "nearest";
  if (looksLikeDicom(bytes, name)) {
    const img = await dicomPixels(bytes, name, opts.maxPixels);
    const data = await resizeDisplay(img, size, interpolation);
    return {
      data,
      width: img.width,
      height: img.height,
      sha256,
      dicom: { tags: img.tags, warnings: img.warnings },
    };
  }
  try {
    // metadata() reads the header only: it gives the source size for smooth kernels and
    // rejects non-images early with sharp's "unsupported image format".
    const meta = await sharp(bytes, { failOn: "warning" }).metadata();
    const width = meta.width;
    const height = meta.height;
    if (!width || !height) throw new Error("image has no size");
    const resample = width !== size || height !== size;
    // 8-bit gray without alpha (most original X-rays) is sampled before it becomes RGB: the
    // full-size colour conversion would triple the work for identical channels.
    const plainGray = meta.space === "b-w" && meta.depth === "uchar" && !meta.hasAlpha;
    let pipeline = sharp(bytes, { failOn: "warning", limitInputPixels: opts.maxPixels ?? 1 << 28 });
    pipeline = plainGray && interpolation === "nearest"
      ? pipeline.toColourspace("b-w")
      : pipeline.toColourspace("srgb").removeAlpha();
    if (interpolation !== "nearest" && resample) {
      pipeline = pipeline.resize(size, size, { fit: "fill", kernel: SHARP_KERNEL[interpolation] });
    }
    const { data: raw, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 1 && info.channels !== 3) {
      throw new Error(`expected 1 or 3 channels after conversion, got ${info.channels}`);
    }
    const pixels = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    const data = resizeNearestRgb(pixels, info.width, info.height, size, info.channels);
    return { data, width, height, sha256 };
  } catch (e) {
    throw new ImageDecodeError(name, e instanceof Error ? e.message : String(e));
  }
}

/** Header-only facts (no pixel decode): size, channels, bit depth, format. */
export async function imageInfo(
  path: string,
): Promise<{ width: number; height: number; channels: number; depth: string; format: string }> {
  let head: Uint8Array;
  try {
    head = await readHead(path);
  } catch (e) {
    throw new ImageDecodeError(path, e instanceof Error ? e.message : String(e));
  }
  if (looksLikeDicom(head, path)) {
    const img = await dicomPixels(await Deno.readFile(path), path);
    return {
      width: img.width,
      height: img.height,
      channels: img.channels,
      depth: `${img.tags.bitsStored}-bit`,
      format: "dicom",
    };
  }
  try {
    const meta = await sharp(path).metadata();
    if (!meta.width || !meta.height) throw new Error("image has no size");
    return {
      width: meta.width,
      height: meta.height,
      channels: meta.channels ?? 0,
      depth: String(meta.depth ?? "?"),
      format: String(meta.format ?? "?"),
    };
  } catch (e) {
    throw new ImageDecodeError(path, e instanceof Error ? e.message : String(e));
  }
}
