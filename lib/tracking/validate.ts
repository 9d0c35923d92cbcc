/**
 * MLflow's limits (mlflow/utils/validation.py, 2.x) checked before anything is spooled or
 * written, so a bad name fails at the call site instead of blocking a replay later.
 */
import type { ParamValue } from "./types.ts";

export const MAX_METRICS_PER_BATCH = 1000;
export const MAX_PARAMS_TAGS_PER_BATCH = 100;
export const MAX_ENTITIES_PER_BATCH = 1000;
export const MAX_ENTITY_KEY_LENGTH = 250;
/** 6000 since MLflow 2.x (500 before); longer values are truncated like MLFLOW_TRUNCATE_LONG_VALUES. */
export const MAX_PARAM_VAL_LENGTH = 6000;
export const MAX_TAG_VAL_LENGTH = 5000;

const VALID_NAME = /^[/\w.\- ]*$/;

/** Throws a clear error for a key MLflow would reject (bad characters, path-like, too long). */
export function validateKey(kind: "metric" | "param" | "tag", key: string): void {
  if (key === "") throw new Error(`Invalid ${kind} name: empty`);
  if (!VALID_NAME.test(key)) {
    throw new Error(
      `Invalid ${kind} name: '${key}'. Names may only contain alphanumerics, underscores (_), ` +
        `dashes (-), periods (.), spaces ( ), and slashes (/).`,
    );
  }
  const parts = key.split("/");
  if (key.startsWith("/") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new Error(`Invalid ${kind} name: '${key}' would resolve to another path`);
  }
  if (key.length > MAX_ENTITY_KEY_LENGTH) {
    throw new Error(`Invalid ${kind} name: '${key.slice(0, 50)}...' longer than 250 characters`);
  }
}

export function paramString(value: ParamValue): string {
  const s = typeof value === "string" ? value : String(value);
  return s.length > MAX_PARAM_VAL_LENGTH ? s.slice(0, MAX_PARAM_VAL_LENGTH) : s;
}

export function tagString(value: string): string {
  return value.length > MAX_TAG_VAL_LENGTH ? value.slice(0, MAX_TAG_VAL_LENGTH) : value;
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
