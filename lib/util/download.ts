/**
 * The one resumable HTTP downloader (data archives, Keras weights): bytes stream into
 * `<dest>.part`, resumed with an HTTP `Range` request after a cut connection (within a call and
 * across calls); the file's md5 or sha256 is checked and only a verified file is renamed to
 * `dest`. A `dest` already there with the expected hash is reused without any request.
 */
import { basename, dirname } from "node:path";
import { Progress, type ProgressOptions } from "./progress.ts";
import { fileSize, hashFile } from "./fs.ts";

export type HashAlgorithm = "md5" | "sha256";

export interface ResumableDownloadOptions {
  /** Digest computed over the file (and checked when `expected` is given). */
  hash: HashAlgorithm;
  /** Expected digest (hex); a mismatch discards the download and throws ChecksumError. */
  expected?: string;
  /** `dest` exists with another digest: fetch it again, or refuse (default "error"). */
  staleDest?: "refetch" | "error";
  headers?: Record<string, string>;
  /** Attempts after a cut connection, each resuming where the last stopped (default 3). */
  retries?: number;
  /** Pause before retry n is n times this (default 1000 ms). */
  retryDelayMs?: number;
  /**
   * Retry a network error before any byte arrived in this call too (default false: an
   * unreachable server fails fast; a cut after some bytes is always retried).
   */
  retryUnreachable?: boolean;
  /** Show a byte progress bar (default true). */
  progress?: boolean;
  /** Extra progress options (e.g. `write` to capture it). */
  progressOptions?: ProgressOptions;
  /** Progress label (default `download <basename of dest>`). */
  label?: string;
  /** Fetch implementation (tests, proxies). */
  fetchImpl?: typeof fetch;
}

export interface ResumableDownloadResult {
  path: string;
  bytes: number;
  /** Hex digest (`hash` algorithm) of the file at `path`. */
  digest: string;
  /** Some bytes came from an earlier, interrupted attempt. */
  resumed: boolean;
  /** `dest` already existed (with the expected digest) and nothing was fetched. */
  cached: boolean;
}

/** A download that failed; names the URL and the destination. */
export class DownloadError extends Error {
  constructor(readonly url: string, readonly dest: string, message: string) {
    super(`download ${url} -> ${dest}: ${message}`);
    this.name = "DownloadError";
  }
}

/** The downloaded bytes do not have the expected digest (nothing is kept). */
export class ChecksumError extends DownloadError {
  /** The URL (kept under this name for the data area's callers). */
  readonly file: string;
  constructor(
    url: string,
    dest: string,
    readonly algorithm: HashAlgorithm,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      url,
      dest,
      `${algorithm} mismatch: got ${actual}, expected ${expected} (checksum mismatch; file discarded)`,
    );
    this.name = "ChecksumError";
    this.file = url;
  }
}

type Attempt = { complete: true; resumedFrom: number } | {
  complete: false;
  resumedFrom: number;
  cause: string;
};

interface ProgressState {
  bar?: Progress;
  show: boolean;
  options?: ProgressOptions;
  label: string;
}

/** Total size from `Content-Range: bytes a-b/total` or `Content-Length`. */
function totalSize(response: Response, offset: number): number | undefined {
  const range = response.headers.get("content-range")?.match(/\/(\d+)\s*$/);
  if (range) return Number(range[1]);
  const length = response.headers.get("content-length");
  return length === null ? undefined : offset + Number(length);
}

/** One attempt: appends to `part` from its current size; a cut keeps the bytes received. */
async function attempt(
  url: string,
  part: string,
  opts: ResumableDownloadOptions,
  progress: ProgressState,
): Promise<Attempt> {
  let offset = (await fileSize(part)) ?? 0;
  const headers: Record<string, string> = { ...opts.headers };
  if (offset > 0) headers["Range"] = `bytes=${offset}-`;
  const response = await (opts.fetchImpl ?? fetch)(url, { headers, redirect: "follow" });
  if (response.status === 416 && offset > 0) {
    // The part is already whole (or longer than the file): let the checksum decide.
    await response.body?.cancel();
    return { complete: true, resumedFrom: offset };
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status} ${response.statusText}`);
  }
  if (offset > 0 && response.status === 206) {
    const start = /bytes (\d+)-/.exec(response.headers.get("content-range") ?? "");
    if (start && Number(start[1]) !== offset) {
      await response.body?.cancel();
      await Deno.remove(part);
      const cause = `server answered a different range (${response.headers.get("content-range")})`;
      return { complete: false, resumedFrom: 0, cause };
    }
  } else if (offset > 0) {
    offset = 0; // server ignored Range: start over
  }
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
  if (offset === 0) progress.bar.done_ = 0;
  using file = await Deno.open(part, {
    write: true,
    create: true,
    append: offset > 0,
    truncate: offset === 0,
  });
  let received = offset;
  try {
    for await (const chunk of response.body ?? []) {
      let written = 0;
      while (written < chunk.length) written += await file.write(chunk.subarray(written));
      received += chunk.length;
      progress.bar.tick(chunk.length);
    }
  } catch (error) {
    return { complete: false, resumedFrom: offset, cause: (error as Error).message };
  }
  if (total !== undefined && received < total) {
    return {
      complete: false,
      resumedFrom: offset,
      cause: `connection closed after ${received} of ${total} bytes`,
    };
  }
  return { complete: true, resumedFrom: offset };
}

/**
 * Downloads `url` to `dest` (see the module comment). Throws a `DownloadError` naming the URL
 * and `dest` on HTTP errors or repeated cuts (the `.part` is kept to resume), and a
 * `ChecksumError` on a digest mismatch (neither `dest` nor the `.part` is kept).
 */
export async function downloadResumable(
  url: string,
  dest: string,
  opts: ResumableDownloadOptions,
): Promise<ResumableDownloadResult> {
  const expected = opts.expected?.toLowerCase();
  const existing = await fileSize(dest);
  if (existing !== null) {
    const digest = await hashFile(dest, opts.hash);
    if (expected === undefined || digest === expected) {
      return { path: dest, bytes: existing, digest, resumed: false, cached: true };
    }
    if (opts.staleDest !== "refetch") {
      throw new DownloadError(
        url,
        dest,
        `${dest} exists but its ${opts.hash} is ${digest}, expected ${expected}: delete it to download again`,
      );
    }
    await Deno.remove(dest); // stale or damaged: fetch again
  }
  await Deno.mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const retries = opts.retries ?? 3;
  const progress: ProgressState = {
    show: opts.progress ?? true,
    options: opts.progressOptions,
    label: opts.label ?? `download ${basename(dest)}`,
  };
  let resumed = false;
  let cut = "";
  for (let i = 0; i <= retries; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, i * (opts.retryDelayMs ?? 1000)));
    let result: Attempt;
    try {
      result = await attempt(url, part, opts, progress);
    } catch (error) {
      // A network error (fetch's TypeError) after some bytes came through is a cut like any
      // other: retry. HTTP errors are final.
      const retry = progress.bar !== undefined || opts.retryUnreachable === true;
      if (error instanceof TypeError && retry && i < retries) {
        cut = error.message;
        continue;
      }
      const kept = await fileSize(part);
      throw new DownloadError(
        url,
        dest,
        (error as Error).message +
          (kept ? ` (partial download kept in ${part}; run again to resume)` : ""),
      );
    }
    if (result.resumedFrom > 0) resumed = true;
    if (result.complete) {
      cut = "";
      break;
    }
    cut = result.cause;
  }
  if (cut) {
    const kept = (await fileSize(part)) ?? 0;
    throw new DownloadError(
      url,
      dest,
      `connection cut ${
        retries + 1
      } times (${cut}); partial download kept in ${part} (${kept} bytes); run again to resume`,
    );
  }
  const digest = await hashFile(part, opts.hash);
  if (expected !== undefined && digest !== expected) {
    await Deno.remove(part).catch(() => {});
    progress.bar?.done({ [opts.hash]: "MISMATCH" });
    throw new ChecksumError(url, dest, opts.hash, expected, digest);
  }
  await Deno.rename(part, dest);
  progress.bar?.done();
  return { path: dest, bytes: (await fileSize(dest)) ?? 0, digest, resumed, cached: false };
}
