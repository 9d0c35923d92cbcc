/**
 * Unpack a zip archive from disk one entry at a time (central directory + fflate's inflate), so
 * a 1.2 GB data set archive never has to sit in memory whole. CRC-checked; entries that would
 * escape the destination folder are refused.
 */
import { inflateSync } from "fflate";
import { dirname, join, normalize, sep } from "node:path";
import type { Progress } from "../util/progress.ts";

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  isDirectory: boolean;
}

/** A zip that cannot be read; `file` names the archive. */
export class ZipError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`bad zip archive ${file}: ${message}`);
    this.name = "ZipError";
    this.file = file;
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (zip/PNG polynomial). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function readAt(file: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/** The entries listed in the central directory of the zip at `path`. */
export async function listZip(path: string): Promise<ZipEntry[]> {
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    const tailLen = Math.min(size, 65535 + 22);
    const tail = await readAt(file, size - tailLen, tailLen);
    const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tv.getUint32(i, true) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      throw new ZipError(path, "no end-of-central-directory record (not a zip, or cut short)");
    }
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    // ZIP64: the locator sits just before the EOCD record.
    if (
      (cdOffset === 0xffffffff || count === 0xffff) && eocd >= 20 &&
      tv.getUint32(eocd - 20, true) === 0x07064b50
    ) {
      const z64 = Number(tv.getBigUint64(eocd - 20 + 8, true));
      const rec = await readAt(file, z64, 56);
      const rv = new DataView(rec.buffer);
      if (rv.getUint32(0, true) !== 0x06064b50) throw new ZipError(path, "bad ZIP64 end record");
      count = Number(rv.getBigUint64(32, true));
      cdSize = Number(rv.getBigUint64(40, true));
      cdOffset = Number(rv.getBigUint64(48, true));
    }
    const cd = await readAt(file, cdOffset, cdSize);
    if (cd.length !== cdSize) throw new ZipError(path, "central directory cut short");
    const v = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
    const entries: ZipEntry[] = [];
    const decoder = new TextDecoder();
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || v.getUint32(p, true) !== 0x02014b50) {
        throw new ZipError(path, `central directory entry ${i} is damaged`);
      }
      const method = v.getUint16(p + 10, true);
      const crc = v.getUint32(p + 16, true);
      let compressedSize = v.getUint32(p + 20, true);
      let uncompressed = v.getUint32(p + 24, true);
      const nameLen = v.getUint16(p + 28, true);
      const extraLen = v.getUint16(p + 30, true);
      const commentLen = v.getUint16(p + 32, true);
      let localHeaderOffset = v.getUint32(p + 42, true);
      const name = decoder.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // ZIP64 extra field (id 1): 8-byte values for the fields that overflowed, in order.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = v.getUint16(e, true);
        const len = v.getUint16(e + 2, true);
        if (id === 1) {
          let q = e + 4;
          if (uncompressed === 0xffffffff) {
            uncompressed = Number(v.getBigUint64((q += 8) - 8, true));
          }
          if (compressedSize === 0xffffffff) {
            compressedSize = Number(v.getBigUint64((q += 8) - 8, true));
          }
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(v.getBigUint64(q, true));
        }
        e += 4 + len;
      }
      entries.push({
        name,
        method,
        crc32: crc,
        compressedSize,
        size: uncompressed,
        localHeaderOffset,
        isDirectory: name.endsWith("/"),
      });
      p = extraEnd + commentLen;
    }
    return entries;
  } finally {
    file.close();
  }
}

/** Mac resource forks and Finder files that some archives (Kaggle's) carry. */
function isJunk(name: string): boolean {
  return name.startsWith("__MACOSX/") ||
    name.split("/").some((part) => part.startsWith("._") || part === ".DS_Store");
}

/**
 * Extract every entry of `zipPath` under `destDir`. Returns the number of files written.
 * Progress, when given, ticks uncompressed bytes.
 */
export async function unzipFile(
  zipPath: string,
  destDir: string,
  opts: { progress?: Progress } = {},
): Promise<{ files: number; bytes: number; skipped: number }> {
  const entries = await listZip(zipPath);
  const root = normalize(destDir);
  const file = await Deno.open(zipPath, { read: true });
  let files = 0;
  let bytes = 0;
  let skipped = 0;
  try {
    for (const entry of entries) {
      if (isJunk(entry.name)) {
        skipped++;
        continue;
      }
      const target = normalize(join(root, entry.name));
      if (entry.name.startsWith("/") || (target !== root && !target.startsWith(root + sep))) {
        throw new ZipError(zipPath, `entry "${entry.name}" would be written outside ${destDir}`);
      }
      if (entry.isDirectory) {
        await Deno.mkdir(target, { recursive: true });
        continue;
      }
      const header = await readAt(file, entry.localHeaderOffset, 30);
      const hv = new DataView(header.buffer);
      if (header.length < 30 || hv.getUint32(0, true) !== 0x04034b50) {
        throw new ZipError(zipPath, `local header of "${entry.name}" is damaged`);
      }
      const dataStart = entry.localHeaderOffset + 30 + hv.getUint16(26, true) +
        hv.getUint16(28, true);
      const packed = await readAt(file, dataStart, entry.compressedSize);
      if (packed.length !== entry.compressedSize) {
        throw new ZipError(zipPath, `"${entry.name}" is cut short`);
      }
      let data: Uint8Array;
      if (entry.method === 0) data = packed;
      else if (entry.method === 8) {
        try {
          data = inflateSync(packed, { out: new Uint8Array(entry.size) });
        } catch (e) {
          throw new ZipError(
            zipPath,
            `"${entry.name}" does not inflate: ${e instanceof Error ? e.message : e}`,
          );
        }
      } else {throw new ZipError(
          zipPath,
          `"${entry.name}" uses unsupported compression method ${entry.method}`,
        );}
      if (data.length !== entry.size || crc32(data) !== entry.crc32) {
        throw new ZipError(zipPath, `"${entry.name}" fails its CRC check (corrupt archive)`);
      }
      await Deno.mkdir(dirname(target), { recursive: true });
      await Deno.writeFile(target, data);
      files++;
      bytes += data.length;
      opts.progress?.tick(data.length);
    }
  } finally {
    file.close();
  }
  return { files, bytes, skipped };
}
