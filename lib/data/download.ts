/**
 * Getting the data set for users who do not have it: a resumable HTTP download (`<file>.part`
 * + `Range`), a sha256 check, then unpacking into `data/chest_xray/{train,val,test}`.
 */
import { basename, dirname, join } from "node:path";
import { Progress } from "../util/progress.ts";
import { fileSize, hashFile, isDirectory } from "../util/fs.ts";
import { ChecksumError, downloadResumable as download } from "../util/download.ts";
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

export { ChecksumError };

export interface DownloadOptions {
  /** Expected sha256 (hex); a mismatch deletes the download and throws ChecksumError. */
  sha256?: string;
  headers?: Record<string, string>;
  /** Attempts after a cut connection, each resuming where the last stopped (default 3). */
  retries?: number;
  /** Show a byte progress bar (default true). */
  progress?: boolean | { write: (text: string) => void };
  fetchImpl?: typeof fetch;
  /** Pause before retry n is n times this (default 1000 ms). */
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

/** sha256 of a file, streamed (archives are too big to read whole). */
export function sha256File(path: string): Promise<string> {
  return hashFile(path, "sha256");
}

/**
 * Download `url` to `dest` with the shared resumable downloader (lib/util/download.ts),
 * checking sha256. A `dest` with another checksum is fetched again; a network error before
 * the first byte is retried too (archive hosts drop connections).
 */
export async function downloadResumable(
  url: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<DownloadResult> {
  const show = opts.progress ?? true;
  const result = await download(url, dest, {
    hash: "sha256",
    expected: opts.sha256,
    staleDest: "refetch",
    retryUnreachable: true,
    headers: opts.headers,
    retries: opts.retries,
    retryDelayMs: opts.retryDelayMs,
    progress: show !== false,
    progressOptions: typeof show === "object" ? { write: show.write } : undefined,
    fetchImpl: opts.fetchImpl,
  });
  const { path, bytes, digest, resumed, cached } = result;
  return { path, bytes, sha256: digest, resumed, cached };
}

/** The shallowest folder under `dir` that has `train/`, `val/` or `test/` with class folders. */
export async function findDatasetRoot(dir: string, depth = 3): Promise<string | null> {
  let level = [dir];
  for (let d = 0; d <= depth && level.length > 0; d++) {
    const next: string[] = [];
    for (const folder of level) {
      for (const split of ["train", "test", "val"]) {
        if (
          (await isDirectory(join(folder, split, "NORMAL"))) ||
          (await isDirectory(join(folder, split, "PNEUMONIA")))
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
  if (await isDirectory(target)) {
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
    if (!(await isDirectory(join(target, "val"))) && (await isDirectory(join(target, "train")))) {
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
