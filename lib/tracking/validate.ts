/**
 * MLflow's limits (mlflow/utils/validation.py, 2.17) checked before anything is spooled or
 * written, so a bad name fails at the call site instead of blocking a replay later; no
 * stricter than MLflow's own (Unicode letters and digits, `:` outside Windows).
 */
import type { ParamValue } from "./types.ts";

export const MAX_METRICS_PER_BATCH = 1000;
export const MAX_PARAMS_TAGS_PER_BATCH = 100;
export const MAX_ENTITIES_PER_BATCH = 1000;
export const MAX_ENTITY_KEY_LENGTH = 250;
/** 6000 since MLflow 2.x (500 before); longer values are truncated like MLFLOW_TRUNCATE_LONG_VALUES. */
export const MAX_PARAM_VAL_LENGTH = 6000;
export const MAX_TAG_VAL_LENGTH = 8000;

const isWindows = (() => {
  try {
    return Deno.build.os === "windows";
  } catch {
    return false;
  }
})();

/** Python's `\w` on str: Unicode letters and digits, and `_` (`re.match(r"^[/\w.\- :]*$")`). */
const VALID_NAME = isWindows ? /^[/\p{L}\p{N}_.\- ]*$/u : /^[/\p{L}\p{N}_.\- :]*$/u;

/** posixpath.normpath, enough to tell whether a name "would resolve to another path". */
function normpath(p: string): string {
  if (p === "") return ".";
  const initial = p.startsWith("/") ? (p.startsWith("//") && !p.startsWith("///") ? 2 : 1) : 0;
  const out: string[] = [];
  for (const c of p.split("/")) {
    if (c === "" || c === ".") continue;
    if (c !== ".." || (initial === 0 && out.length === 0) || out.at(-1) === "..") out.push(c);
    else if (out.length > 0) out.pop();
  }
  const joined = "/".repeat(initial) + out.join("/");
  return joined === "" ? "." : joined;
}

/** Throws a clear error for a key MLflow would reject (bad characters, path-like, too long). */
export function validateKey(kind: "metric" | "param" | "tag", key: string): void {
  if (!VALID_NAME.test(key)) {
    throw new Error(
      `Invalid ${kind} name: '${key}'. Names may only contain alphanumerics, underscores (_), ` +
        `dashes (-), periods (.), spaces ( )${isWindows ? "" : ", colon(:)"} and slashes (/).`,
    );
  }
  // mlflow.utils.validation.path_not_unique
  const norm = normpath(key);
  if (norm !== key || norm === "." || norm.startsWith("..") || norm.startsWith("/")) {
    throw new Error(
      `Invalid ${kind} name: '${key}' would resolve to '${norm}' when treated as a path`,
    );
  }
  if ([...key].length > MAX_ENTITY_KEY_LENGTH) {
    throw new Error(`Invalid ${kind} name: '${key.slice(0, 50)}...' longer than 250 characters`);
  }
}

/** A metric value as protobuf JSON (and the spool) writes it: NaN/±Infinity as strings. */
export function metricValueJson(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
}

/** Inverse of metricValueJson; `null` (how older spools stored non-finite values) is NaN. */
export function metricValueFromJson(v: unknown): number {
  if (v === null || v === undefined) return NaN;
  return typeof v === "number" ? v : Number(v);
}

/** Python's `value[:limit]`, counted in code points like Python's len. */
function truncate(s: string, limit: number): string {
  if (s.length <= limit) return s;
  const chars = [...s];
  return chars.length > limit ? chars.slice(0, limit).join("") : s;
}

export function paramString(value: ParamValue): string {
  return truncate(typeof value === "string" ? value : String(value), MAX_PARAM_VAL_LENGTH);
}

export function tagString(value: string): string {
  return truncate(value, MAX_TAG_VAL_LENGTH);
}

export function validateMetric(key: string, value: number, step: number, timestamp: number): void {
  validateKey("metric", key);
  if (typeof value !== "number") throw new Error(`Metric '${key}': value ${value} is not a number`);
  if (!Number.isInteger(step)) throw new Error(`Metric '${key}': step ${step} is not an integer`);
  if (!Number.isInteger(timestamp) || timestamp < 0) {
    throw new Error(`Metric '${key}': timestamp ${timestamp} is not a non-negative integer (ms)`);
  }
}

export interface KeyValue {
  key: string;
  value: string;
}
export interface MetricRecord {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}
export interface Batch {
  metrics: MetricRecord[];
  params: KeyValue[];
  tags: KeyValue[];
}

/** Splits a batch into requests within log-batch's per-request limits, order preserved. */
export function chunkBatch(batch: Batch): Batch[] {
  const out: Batch[] = [];
  let p = 0, t = 0, m = 0;
  while (p < batch.params.length || t < batch.tags.length || m < batch.metrics.length) {
    const params = batch.params.slice(p, p + MAX_PARAMS_TAGS_PER_BATCH);
    const tags = batch.tags.slice(t, t + MAX_PARAMS_TAGS_PER_BATCH);
    const room = Math.min(
      MAX_METRICS_PER_BATCH,
      MAX_ENTITIES_PER_BATCH - params.length - tags.length,
    );
    const metrics = batch.metrics.slice(m, m + room);
    p += params.length;
    t += tags.length;
    m += metrics.length;
    out.push({ metrics, params, tags });
  }
  return out;
}
