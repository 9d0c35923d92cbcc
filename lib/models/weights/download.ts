/**
 * Downloads a large file the way Keras' `get_file` does, made robust: bytes stream into
 * `<dest>.part` (resumed with an HTTP Range request after a cut connection, within a call and
 * across calls), the md5 is checked, and only a verified file is renamed to `dest`. A `dest`
 * that already exists with the right md5 is reused without any request.
 */
import { dirname } from "node:path";
import { Progress, type ProgressOptions } from "../../util/progress.ts";
import { fileMd5 } from "./md5.ts";

export interface DownloadOptions {
  /** Expected md5 (hex); the file is rejected (and not kept) when it differs. */
  md5?: string;
  /** Show a progress bar (default true). */
  progress?: boolean;
  /** Extra progress options (e.g. `write` to capture it). */
  progressOptions?: ProgressOptions;
  /** Fetch implementation (tests, proxies). */
  fetchImpl?: typeof fetch;
  /** Attempts after a cut connection before giving up (the `.part` is kept). Default 4. */
  retries?: number;
  /** Pause before retry n is n times this (default 1000 ms). */
  retryDelayMs?: number;
}

export interface DownloadResult {
  path: string;
  md5: string;
  /** Some bytes came from an earlier, interrupted attempt. */
  resumed: boolean;
  /** `dest` already existed (with the expected md5) and nothing was fetched. */
  cached: boolean;
}

/** A download that failed; names the URL and the destination. */
export class DownloadError extends Error {
  constructor(readonly url: string, readonly dest: string, message: string) {
    super(`download ${url} -> ${dest}: ${message}`);
    this.name = "DownloadError";
  }
}

async function fileSize(path: string): Promise<number | null> {
  try {
    const info = await Deno.stat(path);
    return info.isFile ? info.size : null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Total size from `Content-Range: bytes a-b/total` or `Content-Length`. */
function totalSize(response: Response, offset: number): number | undefined {
  const range = response.headers.get("content-range")?.match(/\/(\d+)\s*$/);
  if (range) return Number(range[1]);
  const length = response.headers.get("content-length");
  return length === null ? undefined : offset + Number(length);
}

/**
 * One attempt: appends to `part` from its current size. Returns true when the body was complete,
 * false when the connection was cut (the bytes received so far stay in `part`).
 */
async function attempt(
  url: string,
  part: string,
  fetchImpl: typeof fetch,
  progress: { bar?: Progress; show: boolean; options?: ProgressOptions; label: string },
): Promise<{ complete: boolean; resumedFrom: number }> {
  let offset = (await fileSize(part)) ?? 0;
  const headers: HeadersInit = offset > 0 ? { Range: `bytes=${offset}-` } : {};
  const response = await fetchImpl(url, { headers });
  if (response.status === 416 && offset > 0) {
    // The part is already whole (or longer than the file): let the md5 check decide.
    await response.body?.cancel();
    return { complete: true, resumedFrom: offset };
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status} ${response.statusText}`);
  }
  if (offset > 0 && response.status !== 206) offset = 0; // server ignored Range: start over
  const total = totalSize(response, offset);
  if (!progress.bar) {
    progress.bar = new Progress(progress.label, {
      total,
      unit: "B",
      quiet: !progress.show,
      ...progress.options,
    });
    progress.bar.tick(offset);
  } else if (total !== undefined) {
    progress.bar.total = total;
  }
  using file = await Deno.open(part, {
    write: true,
    create: true,
    append: offset > 0,
    truncate: offset === 0,
  });
  let received = offset;
  if (offset === 0) progress.bar.done_ = 0;
  try {
    for await (const chunk of response.body ?? []) {
      let written = 0;
      while (written < chunk.length) written += await file.write(chunk.subarray(written));
      received += chunk.length;
      progress.bar.tick(chunk.length);
    }
  } catch {
    return { complete: false, resumedFrom: offset };
  }
  return { complete: total === undefined || received >= total, resumedFrom: offset };
}

/**
 * Downloads `url` to `dest` (see the module comment). Throws a `DownloadError` naming the URL
 * and `dest` on HTTP errors, repeated cuts, or an md5 mismatch (then neither `dest` nor the
 * `.part` is kept).
 */
export async function downloadFile(
  url: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<DownloadResult> {
  const expected = opts.md5?.toLowerCase();
  if ((await fileSize(dest)) !== null) {
    const md5 = await fileMd5(dest);
    if (expected === undefined || md5 === expected) {
      return { path: dest, md5, resumed: false, cached: true };
    }
    throw new DownloadError(
      url,
      dest,
      `${dest} exists but its md5 is ${md5}, expected ${expected}: delete it to download again`,
    );
  }
  await Deno.mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const fetchImpl = opts.fetchImpl ?? fetch;
  const retries = opts.retries ?? 4;
  const progress = {
    show: opts.progress ?? true,
    options: opts.progressOptions,
    label: `download ${url.split("/").at(-1)}`,
    bar: undefined as Progress | undefined,
  };
  let resumed = false;
  let complete = false;
  for (let i = 0; i <= retries && !complete; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, i * (opts.retryDelayMs ?? 1000)));
    let result: { complete: boolean; resumedFrom: number };
    try {
      result = await attempt(url, part, fetchImpl, progress);
    } catch (error) {
      // A network error after some bytes came through is a cut like any other: retry.
      if (error instanceof TypeError && progress.bar && i < retries) continue;
      throw new DownloadError(
        url,
        dest,
        `${(error as Error).message}` +
          ((await fileSize(part))
            ? ` (partial download kept in ${part}; run again to resume)`
            : ""),
      );
    }
    if (result.resumedFrom > 0) resumed = true;
    complete = result.complete;
  }
  if (!complete) {
    throw new DownloadError(
      url,
      dest,
      `connection cut ${retries + 1} times; partial download kept in ${part}; run again to resume`,
    );
  }
  const md5 = await fileMd5(part);
  if (expected !== undefined && md5 !== expected) {
    await Deno.remove(part).catch(() => {});
    progress.bar?.done({ md5: "MISMATCH" });
    throw new DownloadError(
      url,
      dest,
      `md5 mismatch: got ${md5}, expected ${expected} (file discarded)`,
    );
  }
  await Deno.rename(part, dest);
  progress.bar?.done();
  return { path: dest, md5, resumed, cached: false };
}
