/**
 * Turns an upload (multipart field `image`, or a raw image/jpeg|image/png|application/dicom body) into the
 * classifier's input, in memory only. Every check fails with an HttpError naming what was wrong:
 * size is capped while reading, the image header is inspected before any pixel is decoded, and
 * a truncated file is an error rather than a half-grey image.
 */
import sharp from "sharp";
import { type DecodedImage, decodeImage, ImageDecodeError } from "../data/images.ts";
import { type DicomError, type DicomTags, isDicom } from "../data/dicom.ts";
import { HttpError } from "./errors.ts";

export interface UploadLimits {
  /** Largest accepted body in bytes (default 20 MB). */
  maxBytes: number;
  /** Largest accepted image in pixels (default 50 megapixels). */
  maxPixels: number;
  /** Smallest accepted side in pixels (default 16). */
  minSide: number;
}

export const DEFAULT_LIMITS: UploadLimits = {
  maxBytes: 20 * 1024 * 1024,
  maxPixels: 50_000_000,
  minSide: 16,
};

export interface DecodedUpload {
  /** [size,size,3] RGB 0..255, squashed to size x size like Keras' flow_from_directory. */
  rgb: Float32Array;
  width: number;
  height: number;
  format: "jpeg" | "png" | "dicom";
  bytes: number;
  sha256: string;
  /** DICOM only: the non-identifying tags used for display, and warnings (frame 1 of 3...). */
  dicom?: { tags: DicomTags; warnings: string[] };
}

const RAW_TYPES = new Set(["image/jpeg", "image/jpg", "image/png", "application/dicom"]);

/** What a clinician reads when the file is not an image at all. */
export const NOT_AN_IMAGE = "This file is not a JPEG, PNG or DICOM X-ray";

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** How a body may be read: its deadline, and the account its bytes are charged to. */
export interface BodyReadOptions {
  /** The whole body must arrive within this many ms, else 408 (default: no deadline). */
  timeoutMs?: number;
  /** Charged with each chunk as it arrives; throws (503) when the server's budget is spent. */
  account?: { add(bytes: number): void };
}

/** Reads the body, refusing (413) as soon as it exceeds maxBytes, (408) when too slow. */
export async function readBodyCapped(
  req: Request,
  maxBytes: number,
  opts: BodyReadOptions = {},
): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new HttpError(
      413,
      "payload_too_large",
      `upload of ${mb(declared)} exceeds the limit of ${mb(maxBytes)}`,
    );
  }
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  let late = false;
  // Cancelling the reader ends a pending read() at once, however slowly the client sends.
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
    late = true;
    reader.cancel().catch(() => {});
  }, opts.timeoutMs);
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (late) {
        throw new HttpError(
          408,
          "body_timeout",
          `upload not received within ${opts.timeoutMs} ms (${total} bytes arrived); send it faster or raise --body-timeout-ms`,
        );
      }
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        throw new HttpError(
          413,
          "payload_too_large",
          `upload exceeds the limit of ${mb(maxBytes)}`,
        );
      }
      opts.account?.add(value.byteLength);
      chunks.push(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, "body_aborted", `upload interrupted: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** The image bytes of a request: multipart field `image` or a raw JPEG/PNG body. */
export async function extractImageBytes(
  req: Request,
  maxBytes: number,
  opts: BodyReadOptions = {},
): Promise<Uint8Array> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "multipart/form-data" && !RAW_TYPES.has(type)) {
    throw new HttpError(
      415,
      "unsupported_media_type",
      `Content-Type ${
        JSON.stringify(type || "(none)")
      } not accepted: send multipart/form-data with a field "image", or a raw image/jpeg, image/png or application/dicom body`,
    );
  }
  const body = await readBodyCapped(req, maxBytes, opts);
  if (body.byteLength === 0) {
    throw new HttpError(
      400,
      "empty_body",
      "request body is empty: send a JPEG, PNG or DICOM image",
    );
  }
  if (type !== "multipart/form-data") return body;
  let form: FormData;
  try {
    form = await new Response(body as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": req.headers.get("content-type")! },
    })
      .formData();
  } catch (e) {
    throw new HttpError(
      400,
      "bad_multipart",
      `cannot parse multipart/form-data body: ${(e as Error).message}`,
    );
  }
  const field = form.get("image");
  if (field === null) {
    throw new HttpError(
      400,
      "missing_field",
      `multipart body has no field "image" (fields: ${[...form.keys()].join(", ") || "none"})`,
    );
  }
  if (typeof field === "string") {
    throw new HttpError(400, "bad_field", `multipart field "image" must be a file, got text`);
  }
  const bytes = new Uint8Array(await field.arrayBuffer());
  if (bytes.byteLength === 0) {
    throw new HttpError(400, "empty_body", `multipart field "image" is empty`);
  }
  return bytes;
}

/** "jpeg" | "png" | "dicom" from the magic bytes (DICM, or a bare DICOM dataset), or null. */
export function sniffFormat(bytes: Uint8Array): "jpeg" | "png" | "dicom" | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return "jpeg";
  }
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return "png";
  return isDicom(bytes) ? "dicom" : null;
}

/** HTTP status and code for each DICOM problem (all 4xx: the file, not the server, is at fault). */
const DICOM_STATUS: Record<DicomError["code"], [number, string]> = {
  not_dicom: [400, "not_an_image"],
  corrupt_dicom: [400, "corrupt_image"],
  decode_failed: [400, "corrupt_image"],
  no_pixel_data: [422, "no_image"],
  unsupported_transfer_syntax: [422, "unsupported_dicom"],
  unsupported_image: [422, "unsupported_dicom"],
};

/** DICOM upload -> decoded image, or a 4xx naming the problem. */
async function decodeDicomUpload(
  bytes: Uint8Array,
  limits: UploadLimits,
  size: number,
): Promise<DecodedImage> {
  let decoded: DecodedImage;
  try {
    decoded = await decodeImage(bytes, size, { name: "upload.dcm", maxPixels: limits.maxPixels });
  } catch (e) {
    if (e instanceof ImageDecodeError && e.dicom) {
      const [status, code] = DICOM_STATUS[e.dicom.code];
      const what = code === "not_an_image" ? `${NOT_AN_IMAGE}: ` : "DICOM: ";
      throw new HttpError(status, code, `${what}${e.dicom.message}`);
    }
    throw new HttpError(
      400,
      "corrupt_image",
      `cannot decode the DICOM file: ${(e as Error).message}`,
    );
  }
  checkSize(decoded.width, decoded.height, limits);
  return decoded;
}

function checkSize(width: number, height: number, limits: UploadLimits): void {
  if (width * height > limits.maxPixels) {
    throw new HttpError(
      422,
      "image_too_large",
      `image is ${width}x${height} (${
        (width * height / 1e6).toFixed(1)
      } megapixels); the limit is ${(limits.maxPixels / 1e6).toFixed(1)} megapixels`,
    );
  }
  if (width < limits.minSide || height < limits.minSide) {
    throw new HttpError(
      422,
      "image_too_small",
      `image is ${width}x${height}; each side must be at least ${limits.minSide} pixels`,
    );
  }
}

/** What the file's header says, read without decoding a pixel (DICOM: sizes known after decode). */
export interface UploadHeader {
  format: "jpeg" | "png" | "dicom";
  width: number;
  height: number;
}

/**
 * Checks the signature and, for JPEG/PNG, the header's dimensions (sharp metadata: no pixel is
 * decoded), so oversized or tiny images are refused cheaply, before waiting for a decode slot.
 */
export async function inspectUpload(
  bytes: Uint8Array,
  limits: UploadLimits = DEFAULT_LIMITS,
): Promise<UploadHeader> {
  const format = sniffFormat(bytes);
  if (!format) {
    throw new HttpError(400, "not_an_image", `${NOT_AN_IMAGE} (unrecognised file signature)`);
  }
  if (format === "dicom") return { format, width: 0, height: 0 };
  let meta: { width?: number; height?: number };
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new HttpError(
      400,
      "corrupt_image",
      `cannot read the ${format.toUpperCase()} header: ${(e as Error).message}`,
    );
  }
  const { width = 0, height = 0 } = meta;
  checkSize(width, height, limits);
  return { format, width, height };
}

/**
 * Decodes an inspected upload to [size,size,3] RGB 0..255 with the same decoder (and nearest
 * resize) as training, so served inputs match trained ones. The decoder refuses more pixels
 * than the header claimed, so a lying header cannot make it allocate more.
 */
export async function decodeUpload(
  bytes: Uint8Array,
  header: UploadHeader,
  limits: UploadLimits = DEFAULT_LIMITS,
  size = 224,
): Promise<DecodedUpload> {
  if (header.format === "dicom") {
    const d = await decodeDicomUpload(bytes, limits, size);
    return {
      rgb: d.data,
      width: d.width,
      height: d.height,
      format: "dicom",
      bytes: bytes.byteLength,
      sha256: d.sha256,
      dicom: d.dicom,
    };
  }
  let decoded: DecodedImage;
  try {
    decoded = await decodeImage(bytes, size, {
      name: "upload",
      maxPixels: Math.max(1, header.width * header.height),
    });
  } catch (e) {
    throw new HttpError(
      400,
      "corrupt_image",
      `cannot decode the ${header.format.toUpperCase()} image (truncated or corrupt): ${
        (e as Error).message
      }`,
    );
  }
  return {
    rgb: decoded.data,
    width: header.width,
    height: header.height,
    format: header.format,
    bytes: bytes.byteLength,
    sha256: decoded.sha256,
  };
}
