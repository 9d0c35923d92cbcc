/**
 * Named threshold profiles of a run: the operating point chosen on validation (`validation`,
 * read from classifier.json, never written here) and site profiles (`site:<name>`) re-chosen on
 * a user's labelled local images by `deno task calibrate`. Site profiles live in their own file
 * (`thresholds.json`), so calibrating can never change the validation threshold.
 */
import { join } from "node:path";
import { exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { parseClassifierMeta } from "../inference/meta.ts";
import { CLASSIFIER_META_FILE, EVALUATION_FILE, RunFolder, THRESHOLDS_FILE } from "../runs/mod.ts";

export { THRESHOLDS_FILE };
export const VALIDATION_PROFILE = "validation";

/** Where a site profile's images came from. */
export interface ProfileData {
  /** Folder (absolute) and, for non-Kaggle folders, the labels CSV. */
  path: string;
  labels?: string;
  /** sha256 over the sorted "<image sha256> <label>" lines: same images and labels, same hash. */
  sha256: string;
  n: number;
  positives: number;
  negatives: number;
  patients: number | null;
}

export interface ThresholdProfile {
  /** `validation` or `site:<name>`. */
  name: string;
  value: number;
  /** How it was chosen: "sens95" etc. for validation, "target-sensitivity" for a site. */
  method: string;
  targetSensitivity?: number;
  /** Sensitivity/specificity on the images it was chosen on (null when unknown). */
  sensitivity: number | null;
  specificity: number | null;
  /** 95% bootstrap CI of what the chosen threshold gives (threshold re-chosen per resample). */
  ci?: { sensitivity: [number, number]; specificity: [number, number] };
  data?: ProfileData;
  warnings?: string[];
  createdAt?: string;
}

interface ThresholdsFile {
  format: "cxr-thresholds/1";
  profiles: Record<string, ThresholdProfile>;
}

const SITE_NAME = /^site:[a-z0-9][a-z0-9._-]{0,63}$/;

/** `NAME` or `site:NAME` -> `site:name`; throws a one-line error for anything else. */
export function siteProfileName(name: string): string {
  if (name === VALIDATION_PROFILE || name === `site:${VALIDATION_PROFILE}`) {
    throw new Error(
      `profile name "${name}" is reserved: the validation threshold is never replaced`,
    );
  }
  const full = name.startsWith("site:") ? name : `site:${name}`;
  if (!SITE_NAME.test(full)) {
    throw new Error(
      `profile name "${name}": use site:NAME with NAME of lowercase letters, digits, ".", "_", "-"`,
    );
  }
  return full;
}

/** The validation profile, from classifier.json (what the server applies). */
export async function validationProfile(runDir: string): Promise<ThresholdProfile> {
  const path = join(runDir, CLASSIFIER_META_FILE);
  if (await exists(path)) {
    const meta = parseClassifierMeta(await Deno.readTextFile(path), path);
    return {
      name: VALIDATION_PROFILE,
      value: meta.threshold.value,
      method: meta.threshold.method,
      sensitivity: meta.threshold.val_sensitivity,
      specificity: meta.threshold.val_specificity,
    };
  }
  const evalPath = new RunFolder(runDir).evaluationPath;
  if (!(await exists(evalPath))) {
    throw new Error(
      `${runDir}: neither ${CLASSIFIER_META_FILE} nor ${EVALUATION_FILE} holds a threshold`,
    );
  }
  const ev = await readJson<{
    threshold: { method: string; value: number; val_sensitivity: number; val_specificity: number };
  }>(evalPath);
  return {
    name: VALIDATION_PROFILE,
    value: ev.threshold.value,
    method: ev.threshold.method,
    sensitivity: ev.threshold.val_sensitivity,
    specificity: ev.threshold.val_specificity,
  };
}

async function readSiteFile(runDir: string): Promise<ThresholdsFile> {
  const path = new RunFolder(runDir).thresholdsPath;
  if (!(await exists(path))) return { format: "cxr-thresholds/1", profiles: {} };
  const raw = await readJson<Partial<ThresholdsFile>>(path);
  if (!raw || typeof raw.profiles !== "object" || raw.profiles === null) {
    throw new Error(`${path}: missing "profiles" object`);
  }
  for (const [name, p] of Object.entries(raw.profiles)) {
    if (!SITE_NAME.test(name) || typeof p?.value !== "number" || !(p.value >= 0 && p.value <= 1)) {
      throw new Error(`${path}: profiles["${name}"] is not a valid site profile`);
    }
  }
  return { format: "cxr-thresholds/1", profiles: raw.profiles };
}

/** The site profiles of a run, by name (none when it has no thresholds.json). */
export async function listSiteProfiles(runDir: string): Promise<ThresholdProfile[]> {
  const site = await readSiteFile(runDir);
  return Object.keys(site.profiles).sort().map((k) => site.profiles[k]);
}

/** Every profile of a run: validation first, then site profiles by name. */
export async function listProfiles(runDir: string): Promise<ThresholdProfile[]> {
  return [await validationProfile(runDir), ...await listSiteProfiles(runDir)];
}

/** The profile called `name` (default validation); the error lists the ones that exist. */
export async function resolveProfile(runDir: string, name?: string): Promise<ThresholdProfile> {
  if (!name || name === VALIDATION_PROFILE) return await validationProfile(runDir);
  const all = await listProfiles(runDir);
  const full = name.startsWith("site:") ? name : `site:${name}`;
  const hit = all.find((p) => p.name === full);
  if (!hit) {
    throw new Error(
      `threshold profile "${name}" not found in ${runDir} (has: ${
        all.map((p) => p.name).join(", ")
      })`,
    );
  }
  return hit;
}

/**
 * Store a site profile. Refuses `validation` and any non-`site:` name; refuses to replace a
 * profile of the same name chosen on other data unless `replace` (same data: replaced).
 */
export async function saveSiteProfile(
  runDir: string,
  profile: ThresholdProfile,
  opts: { replace?: boolean } = {},
): Promise<string> {
  const name = siteProfileName(profile.name);
  const file = await readSiteFile(runDir);
  const old = file.profiles[name];
  if (old && !opts.replace && old.data?.sha256 !== profile.data?.sha256) {
    throw new Error(
      `profile ${name} already exists in ${runDir}, chosen on other data (${
        old.data?.path ?? "?"
      }, ${old.data?.n ?? "?"} images); pick another --name or pass --replace`,
    );
  }
  file.profiles[name] = { ...profile, name };
  const path = new RunFolder(runDir).thresholdsPath;
  await writeJsonAtomic(path, file, 1);
  return path;
}
