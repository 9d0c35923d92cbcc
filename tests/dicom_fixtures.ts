/** The shared DICOM corpus (../shared/data/dicom) and its MANIFEST.tsv rows. */
import { join } from "node:path";
import { sharedDir } from "../lib/util/paths.ts";

export const DICOM_DIR = join(sharedDir(), "data", "dicom");
export const hasCorpus = (() => {
  try {
    return Deno.statSync(join(DICOM_DIR, "MANIFEST.tsv")).isFile;
  } catch {
    return false;
  }
})();

export interface CorpusRow {
  file: string;
  expect: string;
  label: string;
  note: string;
}

export function corpusRows(): CorpusRow[] {
  const lines = Deno.readTextFileSync(join(DICOM_DIR, "MANIFEST.tsv")).trim().split("\n");
  return lines.slice(1).map((l) => {
    const [file, expect, label, , note] = l.split("\t");
    return { file, expect, label, note };
  });
}
