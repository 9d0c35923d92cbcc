/**
 * Train / validation / test splits, under one of two named protocols:
 *
 * - `seed` mirrors the original Keras project: train = official train, validation = official
 *   test (624), test = official val (16). Its validation numbers are test-set numbers in
 *   disguise (the test set chose the epoch), which is why it is not the default.
 * - `patient` (default for honest numbers): validation = a stratified, patient-disjoint,
 *   seeded fraction of official train; test = official test; official val (16) is unused.
 *
 * Every result carries a leak check: the patients that appear in two splits.
 */
import type { ImageItem, SplitName } from "./dataset.ts";
import { mulberry32, shuffled } from "../util/random.ts";

export type SplitProtocol = "patient" | "seed";

export interface SplitOptions {
  protocol: SplitProtocol;
  /** Share of official-train images carved out as validation (patient protocol). */
  valFraction?: number;
  seed?: number;
  /** Stratified, seeded subsample of each split (after splitting), e.g. for quick runs. */
  subset?: { train?: number; val?: number; test?: number };
}

export interface SplitLeak {
  a: SplitName;
  b: SplitName;
  patients: string[];
}

export interface Splits {
  protocol: SplitProtocol;
  train: ImageItem[];
  val: ImageItem[];
  test: ImageItem[];
  leaks: SplitLeak[];
  notes: string[];
}

export const DEFAULT_VAL_FRACTION = 0.12;
export const DEFAULT_SEED = 42;

/** The project PRNG under the name splits has always exported. */
export const seededRandom: (seed: number) => () => number = mulberry32;

/** A derived seed per purpose, so that e.g. the test subset does not move when val changes. */
function subSeed(seed: number, purpose: string): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < purpose.length; i++) {
    h = Math.imul(h ^ purpose.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}

function byRel(a: ImageItem, b: ImageItem): number {
  return a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0;
}

/** Patients present in two splits, for every pair of splits. */
export function leakCheck(splits: Record<SplitName, readonly ImageItem[]>): SplitLeak[] {
  const names: SplitName[] = ["train", "val", "test"];
  const patients = new Map(names.map((n) => [n, new Set(splits[n].map((it) => it.patient))]));
  const leaks: SplitLeak[] = [];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const a = names[i];
      const b = names[j];
      const shared = [...patients.get(a)!].filter((p) => patients.get(b)!.has(p)).sort();
      leaks.push({ a, b, patients: shared });
    }
  }
  return leaks;
}

/**
 * Carve a patient-disjoint validation set from `items`, stratified by class: each patient goes
 * wholly to one side; per class, patients (seeded shuffle) join validation while that brings
 * the class's validation image count closer to `fraction` of the class's images.
 */
export function patientDisjointSplit(
  items: readonly ImageItem[],
  fraction: number,
  seed: number,
): { train: ImageItem[]; val: ImageItem[] } {
  const byPatient = new Map<string, ImageItem[]>();
  for (const item of items) {
    const list = byPatient.get(item.patient);
    if (list) list.push(item);
    else byPatient.set(item.patient, [item]);
  }
  // Stratum of a patient = majority label of its images (in this data set patients never mix).
  const strata = new Map<number, string[]>();
  for (const [patient, list] of byPatient) {
    const positives = list.filter((it) => it.label === 1).length;
    const stratum = positives * 2 >= list.length ? 1 : 0;
    const s = strata.get(stratum);
    if (s) s.push(patient);
    else strata.set(stratum, [patient]);
  }
  const valPatients = new Set<string>();
  for (const stratum of [...strata.keys()].sort()) {
    const patients = strata.get(stratum)!.sort(); // sorted first: independent of input order
    const total = patients.reduce((n, p) => n + byPatient.get(p)!.length, 0);
    const target = fraction * total;
    let taken = 0;
    for (const p of shuffled(patients, seededRandom(subSeed(seed, `val-${stratum}`)))) {
      const n = byPatient.get(p)!.length;
      if (Math.abs(taken + n - target) < Math.abs(taken - target)) {
        valPatients.add(p);
        taken += n;
      }
      if (taken >= target) break;
    }
  }
  const train: ImageItem[] = [];
  const val: ImageItem[] = [];
  for (const item of items) (valPatients.has(item.patient) ? val : train).push(item);
  return { train: train.sort(byRel), val: val.sort(byRel) };
}

/** `n` items keeping the class ratio (largest remainder), seeded; sorted by `rel`. */
export function stratifiedSubset(
  items: readonly ImageItem[],
  n: number,
  seed: number,
): ImageItem[] {
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`subset size must be a whole number >= 0, got ${n}`);
  }
  if (n >= items.length) return items.slice().sort(byRel);
  const classes: ImageItem[][] = [[], []];
  for (const item of items.slice().sort(byRel)) classes[item.label].push(item);
  const exact = classes.map((c) => (n * c.length) / items.length);
  const quota = exact.map(Math.floor);
  let left = n - quota[0] - quota[1];
  for (const k of [0, 1].sort((a, b) => (exact[b] - quota[b]) - (exact[a] - quota[a]))) {
    if (left > 0 && quota[k] < classes[k].length) {
      quota[k]++;
      left--;
    }
  }
  const out: ImageItem[] = [];
  for (const k of [0, 1]) {
    out.push(
      ...shuffled(classes[k], seededRandom(subSeed(seed, `subset-${k}`))).slice(0, quota[k]),
    );
  }
  return out.sort(byRel);
}

/** Build the splits of `items` (from `scanDataset`) under `opts.protocol`. */
export function makeSplits(items: readonly ImageItem[], opts: SplitOptions): Splits {
  const protocol = opts.protocol;
  if (protocol !== "patient" && protocol !== "seed") {
    throw new Error(`unknown split protocol "${protocol}" (expected "patient" or "seed")`);
  }
  const valFraction = opts.valFraction ?? DEFAULT_VAL_FRACTION;
  if (!(valFraction > 0 && valFraction < 1)) {
    throw new Error(`valFraction must be between 0 and 1 (exclusive), got ${valFraction}`);
  }
  const seed = opts.seed ?? DEFAULT_SEED;
  const official: Record<SplitName, ImageItem[]> = { train: [], val: [], test: [] };
  for (const item of items) official[item.split].push(item);
  for (const list of Object.values(official)) list.sort(byRel);

  const notes: string[] = [];
  let train: ImageItem[];
  let val: ImageItem[];
  let test: ImageItem[];
  if (protocol === "seed") {
    train = official.train;
    val = official.test;
    test = official.val;
    notes.push(
      "protocol seed (original project): validation = official test, test = official val",
    );
    if (official.test.length === 0) notes.push("official test split absent: validation is empty");
    if (official.val.length === 0) notes.push("official val split absent: test is empty");
  } else {
    ({ train, val } = patientDisjointSplit(official.train, valFraction, seed));
    test = official.test;
    notes.push(
      `protocol patient: validation = patient-disjoint stratified ${
        Math.round(valFraction * 100)
      }% of official train (seed ${seed}), test = official test`,
    );
    if (official.val.length > 0) {
      notes.push(`official val (${official.val.length} images) unused under the patient protocol`);
    }
    if (official.test.length === 0) notes.push("official test split absent: test is empty");
  }
  if (official.train.length === 0) notes.push("official train split absent or empty");

  const subset = opts.subset ?? {};
  if (subset.train !== undefined) {
    train = stratifiedSubset(train, subset.train, subSeed(seed, "train"));
  }
  if (subset.val !== undefined) val = stratifiedSubset(val, subset.val, subSeed(seed, "val"));
  if (subset.test !== undefined) test = stratifiedSubset(test, subset.test, subSeed(seed, "test"));
  if (opts.subset) {
    notes.push(`subset: ${train.length}/${val.length}/${test.length} (train/val/test)`);
  }

  return { protocol, train, val, test, leaks: leakCheck({ train, val, test }), notes };
}

/** Total number of patients found in more than one split. */
export function leakCount(splits: Pick<Splits, "leaks">): number {
  return splits.leaks.reduce((n, leak) => n + leak.patients.length, 0);
}
