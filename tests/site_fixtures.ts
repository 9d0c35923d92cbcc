/**
 * Patient-disjoint slices of the shared training images, for the robustness, calibration and
 * external-set tests: a "site" made of patients that another slice never contains.
 */
import { join } from "node:path";
import { patientId } from "../lib/data/patients.ts";
import { sharedDir } from "../lib/util/paths.ts";

export const TRAIN = join(sharedDir(), "data", "chest_xray", "train");

export function hasTrainData(): boolean {
  try {
    return Deno.statSync(join(TRAIN, "NORMAL")).isDirectory;
  } catch {
    return false;
  }
}

export interface SliceItem {
  path: string;
  rel: string;
  label: 0 | 1;
  patient: string;
}

function bucket(patient: string, buckets: number): number {
  let h = 2166136261;
  for (let i = 0; i < patient.length; i++) h = Math.imul(h ^ patient.charCodeAt(i), 16777619);
  return (h >>> 0) % buckets;
}

/**
 * Up to `perClass` images per class whose patients fall in hash bucket `slice` of `buckets`:
 * two different slices never share a patient. Sorted by name, first image of each patient first.
 */
export function patientSlice(slice: number, perClass: number, buckets = 10): SliceItem[] {
  const out: SliceItem[] = [];
  for (const [label, cls] of (["NORMAL", "PNEUMONIA"] as const).entries()) {
    const names = [...Deno.readDirSync(join(TRAIN, cls))].map((e) => e.name)
      .filter((n) => /\.jpe?g$/i.test(n) && bucket(patientId(n), buckets) === slice).sort();
    const seen = new Set<string>();
    const first = names.filter((n) => !seen.has(patientId(n)) && seen.add(patientId(n)));
    for (const n of first.slice(0, perClass)) {
      out.push({
        path: join(TRAIN, cls, n),
        rel: `train/${cls}/${n}`,
        label: label as 0 | 1,
        patient: patientId(n),
      });
    }
  }
  return out;
}
