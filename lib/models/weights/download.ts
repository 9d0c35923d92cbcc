/**
 * Downloads a large file the way Keras' `get_file` does, made robust by the shared resumable
 * downloader (lib/util/download.ts): bytes stream into `<dest>.part` (resumed with an HTTP Range
 * request after a cut connection, within a call and across calls), the md5 is checked, and only
 * a verified file is renamed to `dest`. A `dest` that already exists with the right md5 is
 * reused without any request; one with another md5 is refused, not overwritten.
 */
import type { ProgressOptions } from "../../util/progress.ts";
import { DownloadError, downloadResumable } from "../../util/download.ts";

export { DownloadError };

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
  const result = await downloadResumable(url, dest, {
    hash: "md5",
    expected: opts.md5,
    staleDest: "error",
    retries: opts.retries ?? 4,
    retryDelayMs: opts.retryDelayMs,
    progress: opts.progress,
    progressOptions: opts.progressOptions,
    label: `download ${url.split("/").at(-1)}`,
    fetchImpl: opts.fetchImpl,
  });
  return { path: result.path, md5: result.digest, resumed: result.resumed, cached: result.cached };
}
