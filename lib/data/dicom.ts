/**
 * DICOM (PS3.10 files, and bare little-endian datasets from older exports) -> the 8-bit display
 * image a radiologist's viewer would show, for lib/data/images.ts.
 *
 * Parsing is dicom-parser's; compressed frames go to well-kept codecs: JPEG baseline through sharp
 * (libjpeg-turbo), JPEG lossless through jpeg-lossless-decoder-js, JPEG-LS and JPEG 2000 through
 * Cornerstone's CharLS and OpenJPEG wasm builds. RLE Lossless (PS3.5 G) is decoded here: it is
 * PackBits over byte planes, and the only npm decoders live inside viewer bundles.
 *
 * Display pipeline (PS3.3 C.11): stored value (BitsStored, sign) -> Modality LUT (rescale slope and
 * intercept) -> VOI window (C.11.2.1.2: the first window when several; LINEAR, LINEAR_EXACT or
 * SIGMOID) or, with no window, the stored range actually used (min..max of the frame; 8-bit
 * unscaled images are shown as stored) -> 0..255, inverted for MONOCHROME1 (or an INVERSE
 * presentation LUT). RGB stays RGB. Multi-frame objects give frame 1 and say so.
 *
 * Only non-identifying tags are read into `DicomTags`: patient, study and institution fields are
 * never looked at, so they cannot leak into logs, runs, MLflow or API answers.
 */
import dicomParser from "dicom-parser";
import sharp from "sharp";
import { Inflate } from "fflate";

/** A DICOM problem stated for a person; `code` is stable for the API. */
export class DicomError extends Error {
  readonly code:
    | "not_dicom"
    | "corrupt_dicom"
    | "no_pixel_data"
    | "unsupported_transfer_syntax"
    | "unsupported_image"
    | "decode_failed";
  constructor(code: DicomError["code"], message: string) {
    super(message);
    this.name = "DicomError";
    this.code = code;
  }
}

/** The non-identifying tags used to display the image (returned by the API). */
export interface DicomTags {
  modality: string | null;
  bodyPartExamined: string | null;
  viewPosition: string | null;
  photometricInterpretation: string;
  bitsAllocated: number;
  bitsStored: number;
  rows: number;
  columns: number;
  frames: number;
  transferSyntax: { uid: string; name: string };
  rescale: { slope: number; intercept: number } | null;
  /** The VOI window applied, or how the range was chosen when there is none. */
  window: { center: number; width: number; function: string; source: "tags" | "pixel range" } | {
    source: "as stored";
  };
}

export interface DicomImage {
  /** Display pixels, HWC uint8, `channels` per pixel. */
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
  tags: DicomTags;
  /** Things a reader should be told (frame 1 of several, ignored LUTs). */
  warnings: string[];
}

const EXPLICIT_LE = "1.2.840.10008.1.2.1";
const DEFLATED_LE = "1.2.840.10008.1.2.1.99";
const TRANSFER_SYNTAXES: Record<string, string> = {
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  [EXPLICIT_LE]: "Explicit VR Little Endian",
  [DEFLATED_LE]: "Deflated Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
  "1.2.840.10008.1.2.5": "RLE Lossless",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
  "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless (Process 14)",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1 (Process 14, Selection Value 1)",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
};
const NATIVE = new Set([
  "1.2.840.10008.1.2",
  EXPLICIT_LE,
  "1.2.840.10008.1.2.1.99",
  "1.2.840.10008.1.2.2",
]);

/** Largest frame decoded (pixels), as for uploads. */
const MAX_PIXELS = 100_000_000;

function hasPreamble(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 &&
    bytes[130] === 0x43 && bytes[131] === 0x4d; // "DICM"
}

const isUpper = (b: number) => b >= 0x41 && b <= 0x5a;

/**
 * How a dataset without the 128-byte preamble starts: "explicit" when its first element has a VR,
 * "implicit" when it looks like a group 0008 element with a sane length, otherwise null.
 */
function bareDataset(bytes: Uint8Array): "explicit" | "implicit" | null {
  if (bytes.length < 8) return null;
  const group = bytes[0] | (bytes[1] << 8);
  if (group !== 0x0008 && group !== 0x0002) return null;
  if (isUpper(bytes[4]) && isUpper(bytes[5])) return "explicit";
  const len = new DataView(bytes.buffer, bytes.byteOffset + 4, 4).getUint32(0, true);
  return len < 1024 ? "implicit" : null;
}

/** True for Part 10 files (DICM at 128) and for bare datasets that start like DICOM. */
export function isDicom(bytes: Uint8Array): boolean {
  return hasPreamble(bytes) || bareDataset(bytes) !== null;
}

/** The first 132 bytes of a file: enough for the DICM signature and a bare dataset's start. */
export async function readHead(path: string): Promise<Uint8Array> {
  const file = await Deno.open(path);
  try {
    const head = new Uint8Array(132);
    let n = 0;
    while (n < head.length) {
      const r = await file.read(head.subarray(n));
      if (r === null) break;
      n += r;
    }
    return head.subarray(0, n);
  } finally {
    file.close();
  }
}

/** The magic check on a file (for folders with extension-less DICOM files). */
export async function isDicomFile(path: string): Promise<boolean> {
  try {
    return hasPreamble(await readHead(path));
  } catch {
    return false;
  }
}

/** A deflated dataset may not inflate past this: a small upload must not become gigabytes. */
const MAX_INFLATED_BYTES = 512 * 1024 * 1024;

/**
 * Inflates raw deflate data, refusing output beyond `cap` bytes. The input is pushed in small
 * pieces so a "zip bomb" is stopped after a few megabytes, not after it has filled memory.
 */
export function inflateCapped(data: Uint8Array, cap: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const inflater = new Inflate((chunk) => {
    total += chunk.length;
    if (total > cap) {
      throw new DicomError(
        "unsupported_image",
        `the deflated DICOM dataset inflates past ${Math.round(cap / 2 ** 20)} MB`,
      );
    }
    chunks.push(chunk);
  });
  const piece = 16 * 1024;
  for (let at = 0; at < data.length; at += piece) {
    inflater.push(data.subarray(at, at + piece), at + piece >= data.length);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function parse(bytes: Uint8Array): { ds: dicomParser.DataSet; ts: string } {
  const bare = hasPreamble(bytes) ? null : bareDataset(bytes);
  if (!hasPreamble(bytes) && !bare) {
    throw new DicomError("not_dicom", "not a DICOM file (no DICM signature, no DICOM dataset)");
  }
  let deflated = false;
  const options: dicomParser.ParseDicomOptions = {
    // dicom-parser 1.8 parses the returned array from offset 0 (its own inflaters keep the
    // header in front, which it then misreads), so hand it the inflated dataset alone.
    inflater: ((arr: Uint8Array, position: number) => {
      deflated = true;
      return inflateCapped(arr.subarray(position), MAX_INFLATED_BYTES);
    }) as unknown as dicomParser.ParseDicomOptions["inflater"],
  };
  if (bare) options.TransferSyntaxUID = bare === "explicit" ? EXPLICIT_LE : "1.2.840.10008.1.2";
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, options);
  } catch (e) {
    const inner = (e as { exception?: unknown } | null)?.exception ?? e;
    if (inner instanceof DicomError) throw inner;
    const why = errText(e);
    throw new DicomError(
      "corrupt_dicom",
      /overrun|end of buffer|past the end/i.test(why)
        ? `the DICOM file ends before its data does (truncated): ${why}`
        : `unreadable DICOM (truncated or corrupt): ${why}`,
    );
  }
  // After inflation the header's elements point into the original bytes, not ds.byteArray.
  if (deflated) return { ds, ts: DEFLATED_LE };
  const ts = options.TransferSyntaxUID ?? ds.string("x00020010")?.replace(/\0/g, "").trim() ??
    EXPLICIT_LE;
  return { ds, ts };
}

/**
 * dicom-parser throws strings, Errors or `{ exception, dataSet }`, prefixed "dicomParser.fn: ";
 * keep the part a person can use.
 */
function errText(e: unknown): string {
  const inner = e && typeof e === "object" && "exception" in e
    ? (e as { exception: unknown }).exception
    : e;
  const msg = typeof inner === "string"
    ? inner
    : inner instanceof Error
    ? inner.message
    : String(inner);
  return msg.replace(/^dicomParser[.:][A-Za-z0-9_.]+:\s*/, "");
}

function num(ds: dicomParser.DataSet, tag: string, index = 0): number | null {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return null;
  const v = ds.floatString(tag, index);
  return v === undefined || !Number.isFinite(v) ? null : v;
}

function str(ds: dicomParser.DataSet, tag: string): string | null {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return null;
  const v = ds.string(tag)?.trim();
  return v ? v.toUpperCase() : null;
}

function us(ds: dicomParser.DataSet, tag: string, fallback: number): number {
  const el = ds.elements[tag];
  if (!el || el.length < 2) return fallback;
  return ds.uint16(tag) ?? fallback;
}

/** Non-identifying geometry and display tags. */
function readTags(ds: dicomParser.DataSet, ts: string) {
  const framesRaw = num(ds, "x00280008");
  return {
    modality: str(ds, "x00080060"),
    bodyPartExamined: str(ds, "x00180015"),
    viewPosition: str(ds, "x00185101"),
    photometric: str(ds, "x00280004") ?? "MONOCHROME2",
    samples: us(ds, "x00280002", 1),
    planar: us(ds, "x00280006", 0),
    rows: us(ds, "x00280010", 0),
    columns: us(ds, "x00280011", 0),
    bitsAllocated: us(ds, "x00280100", 8),
    bitsStored: us(ds, "x00280101", us(ds, "x00280100", 8)),
    signed: us(ds, "x00280103", 0) === 1,
    frames: framesRaw && framesRaw > 1 ? Math.floor(framesRaw) : 1,
    slope: num(ds, "x00281053"),
    intercept: num(ds, "x00281052"),
    center: num(ds, "x00281050"),
    width: num(ds, "x00281051"),
    voiFunction: str(ds, "x00281056") ?? "LINEAR",
    presentationLut: str(ds, "x20500020"),
    bigEndian: ts === "1.2.840.10008.1.2.2",
  };
}
type Tags = ReturnType<typeof readTags>;

/** Stored samples of one frame, interleaved, before any LUT. */
interface Samples {
  values: ArrayLike<number>;
  /** Samples per pixel in `values` (1 or 3). */
  channels: number;
}

function frameBytes(t: Tags): number {
  return t.rows * t.columns * t.samples * (t.bitsAllocated / 8);
}

/** Uncompressed frame 1, honouring BitsStored, sign, byte order and planar configuration. */
function nativeSamples(ds: dicomParser.DataSet, el: dicomParser.Element, t: Tags): Samples {
  if (![8, 16, 32].includes(t.bitsAllocated)) {
    throw new DicomError("unsupported_image", `BitsAllocated ${t.bitsAllocated} is not supported`);
  }
  const need = frameBytes(t);
  const have = Math.min(el.length, ds.byteArray.length - el.dataOffset);
  if (have < need) {
    throw new DicomError(
      "corrupt_dicom",
      `truncated pixel data: frame 1 needs ${need} bytes, the file holds ${Math.max(0, have)}`,
    );
  }
  const offset = ds.byteArray.byteOffset + el.dataOffset;
  const n = need / (t.bitsAllocated / 8);
  const le = !t.bigEndian;
  const plain = t.bitsStored >= t.bitsAllocated && !t.signed;
  // Aligned little-endian samples with nothing to mask are read in place, without a copy.
  if (plain && t.bitsAllocated === 8) {
    return { values: new Uint8Array(ds.byteArray.buffer, offset, n), channels: t.samples };
  }
  if (plain && t.bitsAllocated === 16 && le && offset % 2 === 0) {
    return { values: new Uint16Array(ds.byteArray.buffer, offset, n), channels: t.samples };
  }
  let values: Float64Array | Int32Array;
  if (t.bitsAllocated === 8) {
    values = new Int32Array(new Uint8Array(ds.byteArray.buffer, offset, n));
  } else if (t.bitsAllocated === 16 && le && offset % 2 === 0) {
    values = new Int32Array(new Uint16Array(ds.byteArray.buffer, offset, n));
  } else {
    const view = new DataView(ds.byteArray.buffer, offset, need);
    values = t.bitsAllocated === 16 ? new Int32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) {
      values[i] = t.bitsAllocated === 16 ? view.getUint16(i * 2, le) : view.getUint32(i * 4, le);
    }
  }
  return { values: maskStored(values, t), channels: t.samples };
}

/** Keeps the BitsStored low bits (overlays may sit above) and applies the sign. */
function maskStored<A extends Float64Array | Int32Array>(values: A, t: Tags): A {
  const bits = Math.min(t.bitsStored, 32);
  if (bits >= t.bitsAllocated && !t.signed) return values;
  const span = 2 ** bits;
  for (let i = 0; i < values.length; i++) {
    let v = values[i] % span;
    if (v < 0) v += span;
    if (t.signed && v >= span / 2) v -= span;
    values[i] = v;
  }
  return values;
}

/** PlanarConfiguration 1 (RRR..GGG..BBB) -> interleaved. */
function interleave(values: ArrayLike<number>, pixels: number): Float64Array {
  const out = new Float64Array(pixels * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < pixels; i++) out[i * 3 + c] = values[c * pixels + i];
  }
  return out;
}

/** The compressed bytes of frame 1. */
function encapsulatedFrame(ds: dicomParser.DataSet, el: dicomParser.Element, t: Tags): Uint8Array {
  const fragments = el.fragments ?? [];
  if (fragments.length === 0) {
    throw new DicomError("corrupt_dicom", "encapsulated pixel data has no fragments");
  }
  try {
    if (t.frames === 1) {
      return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, fragments.length);
    }
    if ((el.basicOffsetTable ?? []).length > 0) {
      return dicomParser.readEncapsulatedImageFrame(ds, el, 0);
    }
    return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, 1);
  } catch (e) {
    throw new DicomError("corrupt_dicom", `cannot read the compressed frame: ${errText(e)}`);
  }
}

/** PS3.5 Annex G: a header of segment offsets, each segment PackBits over one byte plane. */
export function decodeRle(
  data: Uint8Array,
  t: Pick<Tags, "rows" | "columns" | "samples" | "bitsAllocated">,
): Uint8Array {
  const pixels = t.rows * t.columns;
  const bytesPer = t.bitsAllocated / 8;
  const segments = t.samples * bytesPer;
  if (data.length < 64) throw new DicomError("decode_failed", "RLE frame shorter than its header");
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dv.getUint32(0, true) !== segments) {
    throw new DicomError(
      "decode_failed",
      `RLE header has ${dv.getUint32(0, true)} segments, expected ${segments}`,
    );
  }
  // Output: little-endian samples, planar by sample (converted to interleaved by the caller).
  const out = new Uint8Array(pixels * segments);
  for (let s = 0; s < segments; s++) {
    const start = dv.getUint32(4 + s * 4, true);
    const end = s + 1 < segments ? dv.getUint32(8 + s * 4, true) : data.length;
    const sample = Math.floor(s / bytesPer);
    const byteInSample = bytesPer - 1 - (s % bytesPer); // segments go most significant first
    let i = start;
    let p = 0;
    const put = (b: number) => {
      if (p < pixels) out[(sample * pixels + p) * bytesPer + byteInSample] = b;
      p++;
    };
    while (i < end && p < pixels) {
      const n = data[i++];
      if (n < 128) {
        for (let k = 0; k <= n && i < end; k++) put(data[i++]);
      } else if (n > 128) {
        const b = data[i++];
        for (let k = 0; k < 257 - n; k++) put(b);
      }
    }
    if (p < pixels) {
      throw new DicomError(
        "decode_failed",
        `RLE segment ${s + 1} ends early (${p} of ${pixels} pixels)`,
      );
    }
  }
  return out;
}

interface WasmDecoder {
  getEncodedBuffer(n: number): Uint8Array;
  decode(): void;
  getFrameInfo(): {
    width: number;
    height: number;
    bitsPerSample: number;
    componentCount: number;
    isSigned: boolean;
  };
  getDecodedBuffer(): Uint8Array;
  delete(): void;
}

const wasmModules = new Map<string, Promise<Record<string, new () => WasmDecoder>>>();

/** Loads an Emscripten codec once, with its .wasm read from node_modules and its logging off. */
function wasmModule(which: "openjpeg" | "charls"): Promise<Record<string, new () => WasmDecoder>> {
  let p = wasmModules.get(which);
  if (!p) {
    p = (async () => {
      const [factory, wasmUrl] = which === "openjpeg"
        ? [
          (await import("@cornerstonejs/codec-openjpeg/decodewasmjs")).default,
          import.meta.resolve("@cornerstonejs/codec-openjpeg/decodewasm"),
        ]
        : [
          (await import("@cornerstonejs/codec-charls/decodewasmjs")).default,
          import.meta.resolve("@cornerstonejs/codec-charls/decodewasm"),
        ];
      const wasmBinary = await Deno.readFile(new URL(wasmUrl));
      const quiet = () => {};
      return await factory({ wasmBinary, print: quiet, printErr: quiet });
    })();
    wasmModules.set(which, p);
  }
  return p;
}

async function wasmDecode(
  which: "openjpeg" | "charls",
  frame: Uint8Array,
  label: string,
): Promise<Samples> {
  const mod = await wasmModule(which);
  const decoder = new mod[which === "openjpeg" ? "J2KDecoder" : "JpegLSDecoder"]();
  try {
    decoder.getEncodedBuffer(frame.length).set(frame);
    try {
      decoder.decode();
    } catch {
      throw new DicomError(
        "decode_failed",
        `the ${label} data cannot be decoded (corrupt or not ${label})`,
      );
    }
    const info = decoder.getFrameInfo();
    const buf = decoder.getDecodedBuffer();
    const n = info.width * info.height * info.componentCount;
    const values = new Float64Array(n);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const wide = info.bitsPerSample > 8;
    if (buf.length < n * (wide ? 2 : 1)) {
      throw new DicomError("decode_failed", `${label} decoder returned too few bytes`);
    }
    for (let i = 0; i < n; i++) {
      values[i] = wide
        ? (info.isSigned ? dv.getInt16(i * 2, true) : dv.getUint16(i * 2, true))
        : (info.isSigned ? dv.getInt8(i) : dv.getUint8(i));
    }
    return { values, channels: info.componentCount };
  } finally {
    decoder.delete();
  }
}

async function jpegSamples(frame: Uint8Array, t: Tags): Promise<Samples> {
  try {
    let pipeline = sharp(frame, { failOn: "error" });
    if (t.samples === 1) pipeline = pipeline.toColourspace("b-w");
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (info.width !== t.columns || info.height !== t.rows) {
      throw new Error(`JPEG is ${info.width}x${info.height}, the tags say ${t.columns}x${t.rows}`);
    }
    const channels = info.channels >= 3 ? 3 : 1;
    const values = new Float64Array(info.width * info.height * channels);
    for (let i = 0, j = 0; i < values.length; i += channels, j += info.channels) {
      for (let c = 0; c < channels; c++) values[i + c] = data[j + c];
    }
    return { values, channels };
  } catch (e) {
    throw new DicomError(
      "decode_failed",
      `the JPEG data cannot be decoded: ${(e as Error).message}`,
    );
  }
}

async function jpegLosslessSamples(frame: Uint8Array, t: Tags): Promise<Samples> {
  const { Decoder } = await import("jpeg-lossless-decoder-js");
  let out: ArrayBuffer;
  try {
    const copy = frame.slice();
    out = new Decoder().decode(copy.buffer, 0, copy.length, t.bitsAllocated > 8 ? 2 : 1);
  } catch (e) {
    throw new DicomError(
      "decode_failed",
      `the JPEG Lossless data cannot be decoded: ${(e as Error).message}`,
    );
  }
  const n = t.rows * t.columns * t.samples;
  const values = new Float64Array(n);
  const dv = new DataView(out);
  const wide = t.bitsAllocated > 8;
  if (out.byteLength < n * (wide ? 2 : 1)) {
    throw new DicomError("decode_failed", "JPEG Lossless frame is smaller than the tags say");
  }
  for (let i = 0; i < n; i++) values[i] = wide ? dv.getUint16(i * 2, true) : dv.getUint8(i);
  return { values: maskStored(values, t), channels: t.samples };
}

async function frameSamples(
  ds: dicomParser.DataSet,
  el: dicomParser.Element,
  t: Tags,
  ts: string,
): Promise<Samples> {
  if (NATIVE.has(ts)) {
    const s = nativeSamples(ds, el, t);
    return t.samples === 3 && t.planar === 1
      ? { values: interleave(s.values, t.rows * t.columns), channels: 3 }
      : s;
  }
  const frame = encapsulatedFrame(ds, el, t);
  const name = TRANSFER_SYNTAXES[ts] ?? ts;
  switch (ts) {
    case "1.2.840.10008.1.2.5": {
      const bytes = decodeRle(frame, t);
      const perSample = t.bitsAllocated / 8;
      const planar = new Float64Array(t.rows * t.columns * t.samples);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < planar.length; i++) {
        planar[i] = perSample === 1
          ? bytes[i]
          : perSample === 2
          ? dv.getUint16(i * 2, true)
          : dv.getUint32(i * 4, true);
      }
      const values = maskStored(planar, t);
      return t.samples === 3
        ? { values: interleave(values, t.rows * t.columns), channels: 3 }
        : { values, channels: 1 };
    }
    case "1.2.840.10008.1.2.4.50":
    case "1.2.840.10008.1.2.4.51":
      return await jpegSamples(frame, t);
    case "1.2.840.10008.1.2.4.57":
    case "1.2.840.10008.1.2.4.70":
      return await jpegLosslessSamples(frame, t);
    case "1.2.840.10008.1.2.4.80":
    case "1.2.840.10008.1.2.4.81":
      return await wasmDecode("charls", frame, name);
    case "1.2.840.10008.1.2.4.90":
    case "1.2.840.10008.1.2.4.91":
      return await wasmDecode("openjpeg", frame, name);
    default:
      throw new DicomError(
        "unsupported_transfer_syntax",
        `transfer syntax ${ts} (${name === ts ? "unknown" : name}) is not supported`,
      );
  }
}

/** PS3.3 C.11.2.1.2 window functions, output 0..255. */
function windowFn(center: number, width: number, fn: string): (x: number) => number {
  if (fn === "SIGMOID") return (x) => 255 / (1 + Math.exp(-4 * (x - center) / width));
  if (fn === "LINEAR_EXACT") {
    return (x) =>
      x <= center - width / 2
        ? 0
        : x > center + width / 2
        ? 255
        : ((x - center) / width + 0.5) * 255;
  }
  const lo = center - 0.5 - (width - 1) / 2;
  const hi = center - 0.5 + (width - 1) / 2;
  return (x) => x <= lo ? 0 : x > hi ? 255 : ((x - (center - 0.5)) / (width - 1) + 0.5) * 255;
}

/** Modality LUT then VOI window (or range) on a grey frame -> uint8, inverted for MONOCHROME1. */
/** What the grey display pipeline reads from the tags (exported for its unit test). */
export type GreyDisplayTags = Pick<
  Tags,
  | "slope"
  | "intercept"
  | "center"
  | "width"
  | "voiFunction"
  | "bitsStored"
  | "signed"
  | "photometric"
  | "presentationLut"
>;

/** Stored grey values -> display uint8: modality LUT, VOI window (or range), MONOCHROME1. */
export function toDisplayGrey(
  values: ArrayLike<number>,
  t: GreyDisplayTags,
): { pixels: Uint8Array; window: DicomTags["window"] } {
  const slope = t.slope ?? 1;
  const intercept = t.intercept ?? 0;
  const n = values.length;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  let f: (x: number) => number;
  let window: DicomTags["window"];
  const validWindow = t.center !== null && t.width !== null &&
    (t.voiFunction === "LINEAR" ? t.width >= 1 : t.width > 0);
  if (validWindow) {
    f = windowFn(t.center!, t.width!, t.voiFunction);
    window = { center: t.center!, width: t.width!, function: t.voiFunction, source: "tags" };
  } else if (t.bitsStored <= 8 && !t.signed && slope === 1 && intercept === 0) {
    f = (x) => x;
    window = { source: "as stored" };
  } else {
    // The range of the modality values actually used (a negative slope swaps the ends).
    const [a, b] = [lo * slope + intercept, hi * slope + intercept];
    const [mlo, mhi] = a <= b ? [a, b] : [b, a];
    const span = mhi > mlo ? mhi - mlo : 1;
    f = (x) => (x - mlo) / span * 255;
    window = {
      center: (mlo + mhi) / 2,
      width: mhi - mlo,
      function: "LINEAR",
      source: "pixel range",
    };
  }
  const invert = (t.photometric === "MONOCHROME1") !== (t.presentationLut === "INVERSE");
  const display = (v: number) => {
    const y = Math.min(255, Math.max(0, Math.round(f(v * slope + intercept))));
    return invert ? 255 - y : y;
  };
  const pixels = new Uint8Array(n);
  // Stored values are integers: one lookup table over the range used, instead of the window
  // arithmetic per pixel (a 2000x1600 frame has 3.2 M pixels but at most 65,536 values).
  const integer = Number.isInteger(lo) && Number.isInteger(hi) && hi - lo < 1 << 20;
  if (integer) {
    const lut = new Uint8Array(hi - lo + 1);
    for (let v = lo; v <= hi; v++) lut[v - lo] = display(v);
    for (let i = 0; i < n; i++) pixels[i] = lut[values[i] - lo];
  } else {
    for (let i = 0; i < n; i++) pixels[i] = display(values[i]);
  }
  return { pixels, window };
}

/** RGB (or native YBR_FULL) samples -> uint8 RGB. */
function toDisplayRgb(values: ArrayLike<number>, t: Tags, photometric: string): Uint8Array {
  const out = new Uint8Array(values.length);
  const max = 2 ** Math.min(t.bitsStored, 16) - 1;
  const scale = max > 255 ? 255 / max : 1;
  const clamp = (v: number) => Math.min(255, Math.max(0, Math.round(v)));
  for (let i = 0; i < values.length; i += 3) {
    let r = values[i] * scale;
    let g = values[i + 1] * scale;
    let b = values[i + 2] * scale;
    if (photometric === "YBR_FULL") {
      const [y, cb, cr] = [r, g, b];
      r = y + 1.402 * (cr - 128);
      g = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128);
      b = y + 1.772 * (cb - 128);
    }
    out[i] = clamp(r);
    out[i + 1] = clamp(g);
    out[i + 2] = clamp(b);
  }
  return out;
}

/** Decodes frame 1 of a DICOM object into display pixels; throws DicomError. */
export async function decodeDicom(
  bytes: Uint8Array,
  maxPixels = MAX_PIXELS,
): Promise<DicomImage> {
  const { ds, ts } = parse(bytes);
  const t = readTags(ds, ts);
  const el = pixelDataOf(ds);
  checkDecodable(t, ts, maxPixels);
  const samples = await frameSamples(ds, el, t, ts);
  if (samples.values.length < t.rows * t.columns * samples.channels) {
    throw new DicomError("decode_failed", "the decoded frame is smaller than the tags say");
  }
  const display = samples.channels === 1
    ? { ...toDisplayGrey(samples.values, t), channels: 1 as const }
    : {
      // Native YBR_FULL is converted here; codecs hand back RGB already.
      pixels: toDisplayRgb(samples.values, t, NATIVE.has(ts) ? t.photometric : "RGB"),
      window: { source: "as stored" } as DicomTags["window"],
      channels: 3 as const,
    };
  return {
    pixels: display.pixels,
    width: t.columns,
    height: t.rows,
    channels: display.channels,
    tags: publicTags(t, ts, display.window),
    warnings: readerWarnings(ds, t),
  };
}

/** The Pixel Data element, or the reason there is no image to show. */
function pixelDataOf(ds: dicomParser.DataSet): dicomParser.Element {
  const el = ds.elements.x7fe00010;
  if (el) return el;
  if (ds.elements.x7fe00008 || ds.elements.x7fe00009) {
    throw new DicomError(
      "unsupported_image",
      "Float Pixel Data (parametric maps) is not supported",
    );
  }
  throw new DicomError("no_pixel_data", "no image in this DICOM file (it has no Pixel Data)");
}

/** Size, photometric interpretation and transfer syntax this reader can show. */
function checkDecodable(t: Tags, ts: string, maxPixels: number): void {
  if (t.rows <= 0 || t.columns <= 0) {
    throw new DicomError(
      "corrupt_dicom",
      `bad image size ${t.columns}x${t.rows} in the DICOM tags`,
    );
  }
  if (t.rows * t.columns > maxPixels) {
    throw new DicomError(
      "unsupported_image",
      `image of ${t.columns}x${t.rows} pixels is too large (limit ${maxPixels})`,
    );
  }
  const grey = t.photometric === "MONOCHROME1" || t.photometric === "MONOCHROME2";
  const colour = ["RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"].includes(t.photometric);
  if (!grey && !colour) {
    throw new DicomError(
      "unsupported_image",
      `photometric interpretation ${t.photometric} is not supported`,
    );
  }
  if (!NATIVE.has(ts) && !TRANSFER_SYNTAXES[ts]) {
    throw new DicomError("unsupported_transfer_syntax", `transfer syntax ${ts} is not supported`);
  }
}

/** What a reader should be told: frame 1 of several, LUT sequences not applied. */
function readerWarnings(ds: dicomParser.DataSet, t: Tags): string[] {
  const warnings: string[] = [];
  if (t.frames > 1) warnings.push(`multi-frame DICOM (${t.frames} frames): frame 1 is shown`);
  if (ds.elements.x00283000) {
    warnings.push("the Modality LUT Sequence is ignored (rescale slope/intercept used)");
  }
  if (ds.elements.x00283010 && t.center === null) {
    warnings.push("the VOI LUT Sequence is ignored (pixel range used)");
  }
  return warnings;
}

/** The non-identifying tags returned with the image. */
function publicTags(t: Tags, ts: string, window: DicomTags["window"]): DicomTags {
  return {
    modality: t.modality,
    bodyPartExamined: t.bodyPartExamined,
    viewPosition: t.viewPosition,
    photometricInterpretation: t.photometric,
    bitsAllocated: t.bitsAllocated,
    bitsStored: t.bitsStored,
    rows: t.rows,
    columns: t.columns,
    frames: t.frames,
    transferSyntax: { uid: ts, name: TRANSFER_SYNTAXES[ts] ?? "unknown" },
    rescale: t.slope !== null || t.intercept !== null
      ? { slope: t.slope ?? 1, intercept: t.intercept ?? 0 }
      : null,
    window,
  };
}
