/**
 * Unpack a zip archive from disk as a stream through fflate's `Unzip`, so a 1.2 GB data set
 * archive never has to sit in memory whole (one entry at a time). Entries that would escape the
 * destination folder are refused; a damaged or cut-short archive is a `ZipError`.
 */
import { Unzip, type UnzipFile, UnzipInflate } from "fflate";
import { dirname, join, normalize, sep } from "node:path";
import type { Progress } from "../util/progress.ts";

/** A zip that cannot be read; `file` names the archive. */
export class ZipError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`bad zip archive ${file}: ${message}`);
    this.name = "ZipError";
    this.file = file;
  }
}

/** Mac resource forks and Finder files that some archives (Kaggle's) carry. */
function isJunk(name: string): boolean {
  return name.startsWith("__MACOSX/") ||
    name.split("/").some((part) => part.startsWith("._") || part === ".DS_Store");
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** What one unpacking has done so far; entries are handled synchronously inside `push`. */
class Extraction {
  files = 0;
  bytes = 0;
  skipped = 0;
  entries = 0;
  failure: ZipError | null = null;
  /** Entries started and not yet complete (left over at the end: the archive was cut short). */
  readonly open = new Set<string>();
  readonly writes: Promise<void>[] = [];

  constructor(
    readonly zipPath: string,
    readonly destDir: string,
    readonly progress?: Progress,
  ) {}

  /** Unzip's per-entry callback. */
  onEntry(entry: UnzipFile): void {
    this.entries++;
    if (isJunk(entry.name)) {
      this.skipped++;
      return; // never started: fflate drops its data
    }
    const root = normalize(this.destDir);
    const target = normalize(join(root, entry.name));
    if (entry.name.startsWith("/") || (target !== root && !target.startsWith(root + sep))) {
      throw new ZipError(this.zipPath, `entry "${entry.name}" would be written outside ${root}`);
    }
    if (entry.name.endsWith("/")) {
      this.writes.push(Deno.mkdir(target, { recursive: true }));
      return;
    }
    if (entry.compression !== 0 && entry.compression !== 8) {
      throw new ZipError(
        this.zipPath,
        `"${entry.name}" uses unsupported compression method ${entry.compression}`,
      );
    }
    this.read(entry, target);
  }

  read(entry: UnzipFile, target: string): void {
    const chunks: Uint8Array[] = [];
    this.open.add(entry.name);
    entry.ondata = (err, chunk, final) => {
      if (err) {
        this.failure ??= new ZipError(this.zipPath, `"${entry.name}" does not inflate: ${err}`);
        return;
      }
      chunks.push(chunk);
      if (!final) return;
      this.open.delete(entry.name);
      const data = concat(chunks);
      if (entry.originalSize !== undefined && data.length !== entry.originalSize) {
        this.failure ??= new ZipError(this.zipPath, `"${entry.name}" has the wrong size`);
        return;
      }
      this.writes.push(
        Deno.mkdir(dirname(target), { recursive: true }).then(() => Deno.writeFile(target, data)),
      );
      this.files++;
      this.bytes += data.length;
      this.progress?.tick(data.length);
    };
    entry.start();
  }

  /** Waits for the writes so far; throws the first failure. */
  async settle(): Promise<void> {
    if (this.failure) throw this.failure;
    await Promise.all(this.writes.splice(0));
  }
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
  const x = new Extraction(zipPath, destDir, opts.progress);
  const unzip = new Unzip((entry) => x.onEntry(entry));
  unzip.register(UnzipInflate);
  const push = (chunk: Uint8Array, final = false) => {
    try {
      unzip.push(chunk, final);
    } catch (e) {
      if (e instanceof ZipError) throw e;
      throw new ZipError(zipPath, `${(e as Error).message} (damaged or cut short)`);
    }
  };
  const file = await Deno.open(zipPath, { read: true });
  for await (const chunk of file.readable) { // leaving the loop early closes the file
    push(chunk);
    await x.settle();
  }
  push(new Uint8Array(0), true);
  await x.settle();
  if (x.entries === 0) throw new ZipError(zipPath, "no entries (not a zip archive, or empty)");
  if (x.open.size > 0) {
    throw new ZipError(zipPath, `cut short inside "${[...x.open][0]}"`);
  }
  return { files: x.files, bytes: x.bytes, skipped: x.skipped };
}
