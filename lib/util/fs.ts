/** Small file-system helpers shared across areas; errors name the file. */
import { createHash } from "node:crypto";

/** Read and parse JSON; errors name the file. */
export async function readJson<T>(path: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Replaces `path` atomically: `write` fills a temporary file beside it, which is then renamed
 * over `path` (atomic on one filesystem), so a crash leaves the old file or the new one, never
 * half of one. The temporary is removed when `write` or the rename fails.
 */
export async function replaceAtomically(
  path: string,
  write: (tmp: string) => Promise<void> | void,
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await write(tmp);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Writes bytes or text to `path` atomically (see `replaceAtomically`). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await replaceAtomically(
    path,
    (tmp) => typeof data === "string" ? Deno.writeTextFile(tmp, data) : Deno.writeFile(tmp, data),
  );
}

/** Writes `value` as JSON (+ newline) atomically; `indent` as in JSON.stringify (default none). */
export async function writeJsonAtomic(
  path: string,
  value: unknown,
  indent?: number,
): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, indent) + "\n");
}

/** `readJson`, or null when there is no file (a file that cannot be parsed is still an error). */
export async function readJsonIfExists<T>(path: string): Promise<T | null> {
  return (await statOrNull(path)) ? await readJson<T>(path) : null;
}

/** `readJson`, or null when the file is missing or unreadable (a fresh start, not an error). */
export async function readJsonOrNull<T>(path: string): Promise<T | null> {
  try {
    return await readJson<T>(path);
  } catch {
    return null;
  }
}

/** `Deno.stat`, or null when nothing is there (other errors, e.g. permissions, still throw). */
export async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Whether anything (file, folder) can be stat'ed at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `path` is a regular file. */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** Whether `path` is a directory. */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** Size of the regular file at `path`, or null when there is none. */
export async function fileSize(path: string): Promise<number | null> {
  const info = await statOrNull(path);
  return info?.isFile ? info.size : null;
}

/** Hex digest of a file, streamed in chunks so large archives and `.h5` files need little memory. */
export async function hashFile(path: string, algorithm: "md5" | "sha256"): Promise<string> {
  const hash = createHash(algorithm);
  try {
    using file = await Deno.open(path, { read: true });
    const buffer = new Uint8Array(1 << 20);
    for (let n = await file.read(buffer); n !== null; n = await file.read(buffer)) {
      hash.update(buffer.subarray(0, n));
    }
  } catch (e) {
    throw new Error(`cannot read ${path}: ${e instanceof Error ? e.message : e}`);
  }
  return hash.digest("hex");
}
