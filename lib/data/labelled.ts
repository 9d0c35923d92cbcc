/**
 * A labelled image folder from elsewhere (an external test set, a site's calibration sample),
 * in any of three shapes:
 *
 * - Kaggle layout: `DIR/{train,val,test}/{NORMAL,PNEUMONIA}/*` (all splits, or one with `split`);
 * - class folders: `DIR/{NORMAL,PNEUMONIA}/*`;
 * - any folder with a labels CSV (`file,label`; file relative to DIR, label 0/1 or
 *   NORMAL/PNEUMONIA, header optional), given explicitly or found as `DIR/labels.csv`.
 *
 * Images are read later by the one decoding path (lib/data/images.ts), so whatever it reads
 * (and DICOM, once it does) works here too. Its content hash keys the set.
 */
import { isAbsolute, join, relative, resolve } from "node:path";
import { createHash } from "node:crypto";
import { parse } from "csv-parse/sync";
import {
  badNameWarning,
  CLASS_NAMES,
  DatasetError,
  isImageFile,
  scanDataset,
  type SplitName,
} from "./dataset.ts";
import { patientId } from "./patients.ts";
import { isDirectory, isFile } from "../util/fs.ts";

export interface LabelledItem {
  path: string;
  /** Relative to the set's root, forward slashes. */
  rel: string;
  label: 0 | 1;
  patient: string;
}

export interface LabelledSet {
  root: string;
  /** The labels CSV used, when any. */
  labels?: string;
  layout: "kaggle" | "class-folders" | "csv";
  items: LabelledItem[];
  warnings: string[];
}

const LABELS_FILE = "labels.csv";

function parseLabel(raw: string): 0 | 1 | null {
  const v = raw.trim().toUpperCase();
  if (v === "0" || v === "NORMAL") return 0;
  if (v === "1" || v === "PNEUMONIA") return 1;
  return null;
}

/** Read a `file,label` CSV (header optional); errors name the file and line. */
export async function readLabelsCsv(csvPath: string, root: string): Promise<LabelledSet> {
  let text: string;
  try {
    text = await Deno.readTextFile(csvPath);
  } catch (e) {
    throw new Error(`cannot read labels CSV ${csvPath}: ${(e as Error).message}`);
  }
  let rows: string[][];
  try {
    rows = parse(text, { skip_empty_lines: true, trim: true, relax_column_count: true });
  } catch (e) {
    throw new Error(`${csvPath}: not valid CSV (${(e as Error).message})`);
  }
  const items: LabelledItem[] = [];
  const warnings: string[] = [];
  rows.forEach((row, i) => {
    if (
      i === 0 && row.length >= 2 && parseLabel(row[1]) === null && /file|path|image/i.test(row[0])
    ) {
      return; // header
    }
    if (row.length < 2) throw new Error(`${csvPath}:${i + 1}: expected "file,label", got "${row}"`);
    const label = parseLabel(row[1]);
    if (label === null) {
      throw new Error(
        `${csvPath}:${i + 1}: label "${row[1]}" must be 0, 1, NORMAL or PNEUMONIA`,
      );
    }
    const path = isAbsolute(row[0]) ? row[0] : join(root, row[0]);
    items.push({
      path,
      rel: relative(root, path).split("\\").join("/"),
      label,
      patient: patientId(path),
    });
  });
  const present: LabelledItem[] = [];
  for (const it of items) {
    if (await isFile(it.path)) present.push(it);
    else warnings.push(`listed in ${csvPath} but missing, skipped: ${it.path}`);
  }
  if (present.length === 0) throw new Error(`${csvPath}: no listed image exists under ${root}`);
  return { root, labels: resolve(csvPath), layout: "csv", items: present, warnings };
}

/** Read a labelled folder (see the module comment); `split` picks one Kaggle split. */
export async function readLabelledFolder(
  dir: string,
  opts: { labels?: string; split?: SplitName } = {},
): Promise<LabelledSet> {
  const root = resolve(dir);
  if (!(await isDirectory(root))) throw new DatasetError(root, `not a folder: ${root}`);
  const csv = opts.labels ??
    ((await isFile(join(root, LABELS_FILE))) ? join(root, LABELS_FILE) : "");
  if (csv) return await readLabelsCsv(resolve(csv), root);
  const classFolders = await Promise.all(CLASS_NAMES.map((c) => isDirectory(join(root, c))));
  if (classFolders.some(Boolean)) {
    // DIR/{NORMAL,PNEUMONIA}: scan it as the one split of a virtual Kaggle root.
    const items: LabelledItem[] = [];
    const warnings: string[] = [];
    for (const [label, cls] of CLASS_NAMES.entries()) {
      if (!classFolders[label]) {
        warnings.push(`missing class folder: ${join(root, cls)}`);
        continue;
      }
      for await (const e of Deno.readDir(join(root, cls))) {
        if (!(e.isFile || e.isSymlink) || e.name.startsWith(".")) continue;
        const badName = await badNameWarning(join(root, cls, e.name));
        if (badName) {
          warnings.push(badName);
          continue;
        }
        if (!await isImageFile(join(root, cls, e.name))) {
          warnings.push(`not an image file, skipped: ${join(root, cls, e.name)}`);
          continue;
        }
        items.push({
          path: join(root, cls, e.name),
          rel: `${cls}/${e.name}`,
          label: label as 0 | 1,
          patient: patientId(e.name),
        });
      }
    }
    items.sort((a, b) => a.rel.localeCompare(b.rel));
    return { root, layout: "class-folders", items, warnings };
  }
  const scanned = await scanDataset(root);
  const items = scanned.items.filter((i) => !opts.split || i.split === opts.split).map((i) => ({
    path: i.path,
    rel: i.rel,
    label: i.label,
    patient: i.patient,
  }));
  if (items.length === 0) {
    throw new DatasetError(
      root,
      `${root} has no ${opts.split ?? ""} images (expected ${root}/${
        opts.split ?? "<split>"
      }/{NORMAL,PNEUMONIA}/, ${root}/{NORMAL,PNEUMONIA}/ or a ${LABELS_FILE})`,
    );
  }
  return { root, layout: "kaggle", items, warnings: scanned.warnings };
}

/**
 * Content hash of a labelled set: sha256 over the sorted "<image sha256> <label>" lines, so the
 * same images with the same labels hash the same wherever the folder lives.
 */
export function setHash(items: readonly { sha256?: string; rel: string; label: number }[]): string {
  const lines = items.map((i) => `${i.sha256 ?? i.rel} ${i.label}`).sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}
