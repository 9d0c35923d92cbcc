/**
 * On-disk activation cache: one small file per (feature configuration, image).
 *
 * A configuration (net, architecture, weights md5, output layers, preprocessing, input size,
 * storage dtype) hashes to a folder `<cacheDir>/features/<net>-<hash16>/` holding `key.json`
 * (the key in clear) and `<sha[0:2]>/<sha256 of the image file>.bin`. Each entry is written to
 * a temp file and renamed, so a crash leaves either nothing or a whole entry; a header with the
 * element count and a CRC32 of the payload catches truncated or damaged files, which are then
 * recomputed. Entries already written are hits on the next run, so an interrupted extraction
 * resumes where it stopped.
 *
 * Entry layout (little-endian): "CXF1" | dtype u32 (1 float32, 2 float16) | count u32 |
 * crc32 u32 | payload (all outputs concatenated in key order, each NHWC without batch).
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { cacheDir } from "../util/paths.ts";
import { writeFileAtomic } from "../util/fs.ts";

const MAGIC = 0x31465843; // "CXF1" read as little-endian u32
const HEADER_BYTES = 16;
const DTYPE_F32 = 1;
const DTYPE_F16 = 2;
/** Largest finite float16. */
const F16_MAX = 65504;

/** What a cached feature depends on. */
export interface FeatureKey {
  net: string;
  /** sha256 of the architecture (JSON of the NetSpec used). */
  specHash: string;
  weightsMd5: string;
  outputs: string[];
  /** Per output, shape without batch (NHWC or flat). */
  shapes: number[][];
  preprocessing: string;
  /** How images become the input tensor, e.g. "nearest-224". */
  decode: string;
  float16: boolean;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** sha256 hex of a string. */
export function sha256Text(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** One configuration's folder of entries. */
export class FeatureCache {
  readonly dir: string;
  readonly key: FeatureKey;
  /** Elements per image (all outputs together). */
  readonly count: number;

  constructor(key: FeatureKey, root = join(cacheDir(), "features")) {
    this.key = key;
    const hash = sha256Text(JSON.stringify(key)).slice(0, 16);
    this.dir = join(root, `${key.net}-${hash}`);
    this.count = key.shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  }

  /** Creates the folder and writes key.json (idempotent). */
  async init(): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true });
    const keyPath = join(this.dir, "key.json");
    try {
      await Deno.stat(keyPath);
    } catch {
      await writeFileAtomic(
        keyPath,
        new TextEncoder().encode(JSON.stringify(this.key, null, 2) + "\n"),
      );
    }
  }

  /** Path of the entry for an image with this sha256. */
  entryPath(sha256: string): string {
    return join(this.dir, sha256.slice(0, 2), `${sha256}.bin`);
  }

  /**
   * Reads an entry: the features, or null when absent. A damaged entry (bad header, wrong
   * length, checksum mismatch) is reported through `onCorrupt` and counts as absent.
   */
  read(
    sha256: string,
    opts: { verify?: boolean; onCorrupt?: (why: string) => void } = {},
  ): Float32Array | null {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(this.entryPath(sha256));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    const result = decodeEntry(bytes, this.count, opts.verify ?? true);
    if (typeof result === "string") {
      opts.onCorrupt?.(`${this.entryPath(sha256)}: ${result}`);
      return null;
    }
    return result;
  }

  /** Writes an entry atomically (temp file + rename). */
  async write(sha256: string, features: Float32Array): Promise<void> {
    if (features.length !== this.count) {
      throw new Error(`feature cache: entry has ${features.length} values, expected ${this.count}`);
    }
    const path = this.entryPath(sha256);
    await Deno.mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, encodeEntry(features, this.key.float16));
  }
}

/** Serialises features (float16 only when every value fits float16's range). */
export function encodeEntry(features: Float32Array, float16: boolean): Uint8Array {
  const useF16 = float16 && features.every((v) => Math.abs(v) <= F16_MAX || Number.isNaN(v));
  const payload = useF16
    ? new Uint8Array(Float16Array.from(features).buffer)
    : new Uint8Array(features.buffer, features.byteOffset, features.byteLength);
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, useF16 ? DTYPE_F16 : DTYPE_F32, true);
  view.setUint32(8, features.length, true);
  view.setUint32(12, crc32(payload), true);
  out.set(payload, HEADER_BYTES);
  return out;
}

/** Parses an entry; returns the reason as a string when it is damaged. */
export function decodeEntry(
  bytes: Uint8Array,
  expectedCount: number,
  verify = true,
): Float32Array | string {
  if (bytes.length < HEADER_BYTES) return `truncated header (${bytes.length} bytes)`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) return "not a cxr feature entry (bad magic)";
  const dtype = view.getUint32(4, true);
  const count = view.getUint32(8, true);
  if (count !== expectedCount) return `holds ${count} values, expected ${expectedCount}`;
  const width = dtype === DTYPE_F32 ? 4 : dtype === DTYPE_F16 ? 2 : 0;
  if (width === 0) return `unknown dtype ${dtype}`;
  if (bytes.length !== HEADER_BYTES + count * width) {
    return `length ${bytes.length} bytes, expected ${HEADER_BYTES + count * width}`;
  }
  // Copy so the payload is aligned for typed-array views.
  const payload = bytes.slice(HEADER_BYTES);
  if (verify && crc32(payload) !== view.getUint32(12, true)) return "checksum mismatch";
  return dtype === DTYPE_F32
    ? new Float32Array(payload.buffer)
    : Float32Array.from(new Float16Array(payload.buffer));
}
