/**
 * Reads a Kaggle-layout tree `chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*` into a flat list
 * of labelled items. Labels come from the folder names (NORMAL=0, PNEUMONIA=1), patients from
 * the file names. Absent splits and odd files are reported, not fatal: the shared copy has only
 * `train`, and a stray `.DS_Store` must not stop a run.
 */
import { basename, join, resolve } from "node:path";
import { dataDir } from "../util/paths.ts";
import { statOrNull } from "../util/fs.ts";
import { patientId } from "./patients.ts";
import { isDicomFile } from "./dicom.ts";

export type SplitName = "train" | "val" | "test";
export type ClassName = "NORMAL" | "PNEUMONIA";

export const SPLITS: readonly SplitName[] = ["train", "val", "test"];
/** Index = label (Keras flow_from_directory sorts class folders alphabetically: same order). */
export const CLASS_NAMES: readonly ClassName[] = ["NORMAL", "PNEUMONIA"];

export interface ImageItem {
  /** Absolute path. */
  path: string;
  /** Path relative to the dataset root, with forward slashes: `train/NORMAL/x.jpeg`. */
  rel: string;
  split: SplitName;
  /** NORMAL=0, PNEUMONIA=1. */
  label: 0 | 1;
  className: ClassName;
  patient: string;
}

export interface ScannedDataset {
  root: string;
  /** Sorted by `rel`. */
  items: ImageItem[];
  /** Splits whose folder does not exist under `root`. */
  missingSplits: SplitName[];
  /** Empty or missing class folders, skipped non-image files, unexpected folders. */
  warnings: string[];
}

/**
 * Extensions read as images (those Keras' flow_from_directory lists that sharp can decode, and
 * DICOM). Other files are read too when they carry the DICM signature (PACS exports often have
 * no extension).
 */
export const IMAGE_EXTENSIONS: readonly string[] = [
  ".jpeg",
  ".jpg",
  ".png",
  ".tif",
  ".tiff",
  ".dcm",
  ".dicom",
];

/** A dataset root that cannot be used at all (wrong path, no split folders). */
export class DatasetError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.name = "DatasetError";
    this.path = path;
  }
}

function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * Whether a folder entry is read as an image: a known extension, or (for other names that are
 * not hidden) the DICM signature, since PACS exports often have no extension.
 */
export async function isImageFile(path: string): Promise<boolean> {
  const name = basename(path);
  if (isImageName(name)) return true;
  return !name.startsWith(".") && await isDicomFile(path);
}

/**
 * The warning for a folder entry whose name is not valid UTF-8, or null. Deno lists such names
 * with U+FFFD in place of the bad bytes and cannot open them under that name, which used to
 * surface later as a misleading "No such file or directory".
 */
export async function badNameWarning(path: string): Promise<string | null> {
  if (!basename(path).includes("\uFFFD") || await statOrNull(path)) return null;
  return `file name is not valid UTF-8, skipped (rename it to read it): ${path}`;
}

async function listDir(path: string): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(path)) entries.push(entry);
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Scan `root` (default `dataDir()`: `CXR_DATA` or `data/chest_xray`). */
export async function scanDataset(root: string = dataDir()): Promise<ScannedDataset> {
  const abs = resolve(root);
  const info = await statOrNull(abs);
  if (!info) {
    throw new DatasetError(
      abs,
      `dataset folder not found: ${abs} (expected chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}; ` +
        `set --data or CXR_DATA, or run \`deno task data:download\`)`,
    );
  }
  if (!info.isDirectory) throw new DatasetError(abs, `dataset path is not a folder: ${abs}`);

  const items: ImageItem[] = [];
  const missingSplits: SplitName[] = [];
  const warnings: string[] = [];
  for (const split of SPLITS) {
    const splitDir = join(abs, split);
    const splitInfo = await statOrNull(splitDir);
    if (!splitInfo?.isDirectory) {
      missingSplits.push(split);
      continue;
    }
    for (const entry of await listDir(splitDir)) {
      if (!(CLASS_NAMES as readonly string[]).includes(entry.name) && !entry.name.startsWith(".")) {
        warnings.push(
          `unexpected ${entry.isDirectory ? "folder" : "file"} skipped: ${
            join(splitDir, entry.name)
          }`,
        );
      }
    }
    for (const [label, className] of CLASS_NAMES.entries()) {
      const classDir = join(splitDir, className);
      const classInfo = await statOrNull(classDir);
      if (!classInfo?.isDirectory) {
        warnings.push(`missing class folder: ${classDir}`);
        continue;
      }
      let found = 0;
      for (const entry of await listDir(classDir)) {
        const path = join(classDir, entry.name);
        const badName = await badNameWarning(path);
        if (badName) {
          warnings.push(badName);
          continue;
        }
        if (!entry.isFile && !entry.isSymlink) {
          warnings.push(`unexpected folder skipped: ${path}`);
          continue;
        }
        if (!await isImageFile(path)) {
          // Hidden files (.DS_Store) are noise; anything else is worth naming.
          if (!entry.name.startsWith(".")) warnings.push(`not an image file, skipped: ${path}`);
          continue;
        }
        found++;
        items.push({
          path,
          rel: `${split}/${className}/${entry.name}`,
          split,
          label: label as 0 | 1,
          className,
          patient: patientId(entry.name),
        });
      }
      if (found === 0) warnings.push(`empty class folder (no images): ${classDir}`);
    }
  }
  if (missingSplits.length === SPLITS.length) {
    const nested = await statOrNull(join(abs, "chest_xray"));
    throw new DatasetError(
      abs,
      `no train/val/test folders in ${abs}` +
        (nested?.isDirectory ? ` (did you mean ${join(abs, "chest_xray")}?)` : ""),
    );
  }
  items.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return { root: abs, items, missingSplits, warnings };
}

/** Counts per split and class: `{ train: [n0, n1], ... }` (absent splits are [0, 0]). */
export function countByClass(items: readonly ImageItem[]): Record<SplitName, [number, number]> {
  const counts: Record<SplitName, [number, number]> = { train: [0, 0], val: [0, 0], test: [0, 0] };
  for (const item of items) counts[item.split][item.label]++;
  return counts;
}
