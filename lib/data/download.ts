/**
 * Getting the data set for users who do not have it: a resumable HTTP download (`<file>.part`
 * + `Range`), a sha256 check, then unpacking into `data/chest_xray/{train,val,test}`.
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { Progress } from "../util/progress.ts";
import { unzipFile } from "./zip.ts";

/** Mendeley Data, Kermany et al. V2 (doi:10.17632/rscbjbr9sj.2), CC BY 4.0. */
export const MENDELEY = {
  doi: "10.17632/rscbjbr9sj.2",
  fileName: "ChestXRay2017.zip",
  /** Lists the files with their download URL, size and sha256. */
  filesApi:
    "https://data.mendeley.com/public-api/datasets/rscbjbr9sj/files?folder_id=root&version=2",
  /** Used when the files API cannot be read. */
  fallbackUrl:
    "https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded",
};

/** Kaggle copy (train 5,216 / val 16 / test 624); needs KAGGLE_USERNAME + KAGGLE_KEY. */
export const KAGGLE = {
  dataset: "paultimothymooney/chest-xray-pneumonia",
  fileName: "chest-xray-pneumonia.zip",
  url: "https://www.kaggle.com/api/v1/datasets/download/paultimothymooney/chest-xray-pneumonia",
};

/**
 * The 16 images Kaggle moved from Mendeley's train into `val`; recreating that split makes a
 * Mendeley download match the Kaggle layout the original project used.
 */
export const KAGGLE_VAL_FILES: readonly string[] = [
  ...[1427, 1430, 1431, 1436, 1437, 1438, 1440, 1442].map((n) =>
    `NORMAL/NORMAL2-IM-${n}-0001.jpeg`
  ),
  ...[
    "person1946_bacteria_4874",
    "person1946_bacteria_4875",
    "person1947_bacteria_4876",
    "person1949_bacteria_4880",
    "person1950_bacteria_4881",
    "person1951_bacteria_4882",
    "person1952_bacteria_4883",
    "person1954_bacteria_4886",
  ].map((n) => `PNEUMONIA/${n}.jpeg`),
];

export class ChecksumError extends Error {
  readonly file: string;
  constructor(file: string, expected: string, actual: string) {
    super(`checksum mismatch for ${file}: expected sha256 ${expected}, got ${actual}`);
    this.name = "ChecksumError";
    this.file = file;
  }
}

export interface DownloadOptions {
  /** Expected sha256 (hex); a mismatch deletes the download and throws ChecksumError. */
  sha256?: string;
  headers?: Record<string, string>;
  /** Attempts after a cut connection, each resuming where the last stopped (default 3). */
  retries?: number;
  /** Show a byte progress bar (default true). */
  progress?: boolean | { write: (text: string) => void };
  fetchImpl?: typeof fetch;
  /** Milliseconds between attempts (default 1000). */
  retryDelayMs?: number;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  /** Some bytes came from an earlier, interrupted attempt. */
  resumed: boolean;
  /** The finished file was already there (and matched the checksum, if one was given). */
  cached: boolean;
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** sha256 of a file, streamed (archives are too big to read whole). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { read: true });
  try {
    for await (const chunk of file.readable) hash.update(chunk);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${e instanceof Error ? e.message : e}`);
  }
  return hash.digest("hex");
}

/**
 * Download `url` to `dest`, resuming `dest.part` with an HTTP Range request after a cut
 * connection (here or in an earlier run). The file appears at `dest` only once complete and,
 * when `sha256` is given, verified.
 */
export async function downloadResumable(
  url: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<DownloadResult> {
  const fetchImpl = opts.fetchImpl ?? fetch;
  const expected = opts.sha256?.toLowerCase();
  const existing = await fileSize(dest);
  if (existing !== null) {
    const actual = await sha256File(dest);
    if (!expected || actual === expected) {
      return { path: dest, bytes: existing, sha256: actual, resumed: false, cached: true };
    }
    await Deno.remove(dest); // stale or damaged: fetch again
  }
  await Deno.mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const retries = opts.retries ?? 3;
  const show = opts.progress ?? true;
  let progress: Progress | null = null;
  let resumed = false;
  let lastError: unknown = null;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 1000));
    let offset = (await fileSize(part)) ?? 0;
    const headers: Record<string, string> = { ...opts.headers };
    if (offset > 0) headers["Range"] = `bytes=${offset}-`;
    let res: Response;
    try {
      res = await fetchImpl(url, { headers, redirect: "follow" });
    } catch (e) {
      lastError = e;
      continue; // network error before any byte: retry
    }
    let total: number | null = null;
    if (res.status === 416 && offset > 0) {
      await res.body?.cancel();
      break; // the part file already holds everything: verify below
    } else if (res.status === 206 && offset > 0) {
      const range = /bytes (\d+)-\d+\/(\d+|\*)/.exec(res.headers.get("content-range") ?? "");
      if (!range || Number(range[1]) !== offset) {
        await res.body?.cancel();
        await Deno.remove(part);
        lastError = new Error(
          `server answered a different range (${res.headers.get("content-range")})`,
        );
        continue;
      }
      total = range[2] === "*" ? null : Number(range[2]);
      resumed = true;
    } else if (res.ok) {
      offset = 0; // server ignored Range: start over
      const len = res.headers.get("content-length");
      total = len === null ? null : Number(len);
    } else {
      await res.body?.cancel();
      throw new Error(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`);
    }
    if (show && !progress) {
      progress = new Progress(`download ${basename(dest)}`, {
        total: total ?? undefined,
        unit: "B",
        write: typeof show === "object" ? show.write : undefined,
      });
    }
    if (progress && total !== null) progress.total = total;
    if (progress) progress.done_ = offset;
    const file = await Deno.open(part, {
      write: true,
      create: true,
      append: offset > 0,
      truncate: offset === 0,
    });
    let written = offset;
    try {
      for await (const chunk of res.body ?? []) {
        await file.write(chunk);
        written += chunk.length;
        progress?.tick(chunk.length);
      }
    } catch (e) {
      lastError = e; // cut connection: keep the part, resume on the next attempt
      continue;
    } finally {
      file.close();
    }
    if (total !== null && written < total) {
      lastError = new Error(`connection closed after ${written} of ${total} bytes`);
      continue;
    }
    lastError = null;
    break;
  }
  if (lastError !== null) {
    const have = (await fileSize(part)) ?? 0;
    throw new Error(
      `download of ${url} interrupted (${have} bytes kept in ${part}; run again to resume): ${
        lastError instanceof Error ? lastError.message : lastError
      }`,
    );
  }
  progress?.done();
  const actual = await sha256File(part);
  if (expected && actual !== expected) {
    await Deno.remove(part);
    throw new ChecksumError(url, expected, actual);
  }
  await Deno.rename(part, dest);
  const bytes = (await fileSize(dest)) ?? 0;
  return { path: dest, bytes, sha256: actual, resumed, cached: false };
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** The shallowest folder under `dir` that has `train/`, `val/` or `test/` with class folders. */
export async function findDatasetRoot(dir: string, depth = 3): Promise<string | null> {
  let level = [dir];
  for (let d = 0; d <= depth && level.length > 0; d++) {
    const next: string[] = [];
    for (const folder of level) {
      for (const split of ["train", "test", "val"]) {
        if (
          (await isDir(join(folder, split, "NORMAL"))) ||
          (await isDir(join(folder, split, "PNEUMONIA")))
        ) return folder;
      }
      for await (const entry of Deno.readDir(folder)) {
        if (entry.isDirectory && entry.name !== "__MACOSX") next.push(join(folder, entry.name));
      }
    }
    level = next.sort();
  }
  return null;
}

/**
 * Unpack `archive` and install its chest_xray tree at `target` (e.g. `data/chest_xray`).
 * A Mendeley archive has no `val/`: the 16 Kaggle val images are moved there from train.
 */
export async function installArchive(
  archive: string,
  target: string,
  opts: { force?: boolean; progress?: boolean | { write: (text: string) => void } } = {},
): Promise<{ root: string; files: number; notes: string[] }> {
  const notes: string[] = [];
  if (await isDir(target)) {
    if (!opts.force) throw new Error(`${target} already exists (use --force to replace it)`);
    await Deno.remove(target, { recursive: true });
  }
  const parent = dirname(target);
  await Deno.mkdir(parent, { recursive: true });
  const scratch = await Deno.makeTempDir({ dir: parent, prefix: ".unpack-" });
  try {
    const show = opts.progress ?? true;
    const progress = show
      ? new Progress(`unpack ${basename(archive)}`, {
        unit: "B",
        write: typeof show === "object" ? show.write : undefined,
      })
      : undefined;
    const { files } = await unzipFile(archive, scratch, { progress });
    progress?.done({ files: String(files) });
    const root = await findDatasetRoot(scratch);
    if (!root) {
      throw new Error(`${archive} holds no chest_xray layout (train/NORMAL, train/PNEUMONIA, ...)`);
    }
    await Deno.rename(root, target);
    if (!(await isDir(join(target, "val"))) && (await isDir(join(target, "train")))) {
      const present: string[] = [];
      for (const rel of KAGGLE_VAL_FILES) {
        if (await fileSize(join(target, "train", rel)) !== null) present.push(rel);
      }
      if (present.length === KAGGLE_VAL_FILES.length) {
        for (const rel of present) {
          await Deno.mkdir(dirname(join(target, "val", rel)), { recursive: true });
          await Deno.rename(join(target, "train", rel), join(target, "val", rel));
        }
        notes.push(
          `created val/ from the ${present.length} images Kaggle uses as val (moved out of train/)`,
        );
      } else {
        notes.push(
          "archive has no val/ split (and not the 16 Kaggle val images): val stays absent",
        );
      }
    }
    return { root: target, files, notes };
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}
