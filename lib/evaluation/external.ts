/**
 * External test sets as first-class citizens of a run: each is stored as
 * `predictions-ext-<key>.json`, keyed by the name the user gives (`--name`) or by the set's
 * content hash, with its provenance (folder, labels CSV, content hash, counts). Two different
 * sets never share a key: a clash is refused, never silently overwritten.
 */
import { resolve } from "node:path";
import { sha256Hex } from "../data/images.ts";
import { type LabelledItem, type LabelledSet, setHash } from "../data/labelled.ts";
import { listPredictionFiles, loadPredictions, type PredictionsSource } from "./evaluate.ts";
import { exists } from "../util/fs.ts";
import { RunFolder } from "../runs/mod.ts";

/** Split key of an external set: `ext-<slug of name>`. */
export function externalKey(name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  if (!slug) throw new Error(`external set name "${name}" has no letters or digits`);
  return `ext-${slug}`;
}

/** The set's items with the sha256 of each file (unreadable files keep no hash). */
export async function hashItems(
  items: readonly LabelledItem[],
): Promise<(LabelledItem & { sha256?: string })[]> {
  const out = [];
  for (const it of items) {
    try {
      out.push({ ...it, sha256: await sha256Hex(await Deno.readFile(it.path)) });
    } catch {
      out.push({ ...it });
    }
  }
  return out;
}

export interface ExternalTarget {
  key: string;
  name: string;
  sha256: string;
  path: string;
}

/**
 * Where an external set goes in `runDir`: `ext-<name>` or `ext-<hash prefix>`. Throws when that
 * key already holds a different set (other content hash), unless `replace`.
 */
export async function externalTarget(
  runDir: string,
  set: LabelledSet,
  hashed: readonly { sha256?: string; rel: string; label: number }[],
  opts: { name?: string; replace?: boolean } = {},
): Promise<ExternalTarget> {
  const sha256 = setHash(hashed);
  // Unnamed: the key this very set is already stored under, if any, else its hash prefix.
  const name = opts.name ?? await storedName(runDir, sha256) ?? sha256.slice(0, 12);
  const key = externalKey(name);
  const path = new RunFolder(runDir).predictionsPath(key);
  if (!opts.replace && (await exists(path))) {
    const old = (await loadPredictions(path)).source;
    if (old?.sha256 !== sha256) {
      throw new Error(
        `${path} already holds another set (${old?.dataRoot ?? "unknown folder"}, sha256 ` +
          `${old?.sha256?.slice(0, 12) ?? "unknown"}; this one: ${resolve(set.root)}, ` +
          `${sha256.slice(0, 12)}): give it another --name, or --replace`,
      );
    }
  }
  return { key, name, sha256, path };
}

async function storedName(runDir: string, sha256: string): Promise<string | undefined> {
  for (const [key, path] of Object.entries(await listPredictionFiles(runDir))) {
    if (!key.startsWith("ext-")) continue;
    const src = (await loadPredictions(path)).source;
    if (src?.sha256 === sha256) return src.name ?? key.slice(4);
  }
  return undefined;
}

/** Provenance stored in the predictions file of an external set. */
export function externalSource(
  set: LabelledSet,
  target: ExternalTarget,
  counts: PredictionsSource["counts"],
  split?: string,
): PredictionsSource {
  return {
    dataRoot: resolve(set.root),
    ...(split ? { split } : {}),
    ...(set.labels ? { labels: set.labels } : {}),
    name: target.name,
    sha256: target.sha256,
    counts,
    createdAt: new Date().toISOString(),
  };
}
