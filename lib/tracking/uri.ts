/**
 * Tracking URIs: which backend a URI selects, the experiment name, and credentials kept out of
 * sight. A password in `http://user:pw@host` is used for basic auth (as MLflow's Python client
 * does through `requests`) but never stored or shown: state.json, run.json, tags, logs and
 * `mlflow:sync` output get the URI with its user info removed (`redactUri` for free text).
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { outputsDir } from "../util/paths.ts";

export const DEFAULT_EXPERIMENT = "cxr";

/** MLflow's own URIs for hosted backends cxr cannot talk to (no REST endpoint of ours). */
const HOSTED = new Set(["databricks", "databricks-uc", "uc"]);

export type TrackingTarget =
  | {
    kind: "rest";
    /** Base URL without user info (safe to store and print). */
    uri: string;
    username?: string;
    password?: string;
  }
  | { kind: "file"; root: string; uri: string };

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env
  }
}

/** Default file store location: outputs/mlruns. */
export function defaultMlrunsDir(): string {
  return join(outputsDir(), "mlruns");
}

/** The tracking URI openTracker would use for `uri` (null = off). */
export function resolveTrackingUri(uri?: string | null): string | null {
  if (uri === null) return null;
  if (uri !== undefined && uri !== "") return uri;
  return env("MLFLOW_TRACKING_URI") ?? defaultMlrunsDir();
}

/** `explicit`, else MLFLOW_EXPERIMENT_NAME, else "cxr" (MLflow's own precedence). */
export function resolveExperimentName(explicit?: string): string {
  return explicit || env("MLFLOW_EXPERIMENT_NAME") || DEFAULT_EXPERIMENT;
}

/** `s` with every `scheme://user:password@` turned into `scheme://user:***@`. */
export function redactUri(s: string): string {
  return s.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s:]*):[^/@\s]*@/gi, "$1$2:***@");
}

/** Splits user info off an http(s) URL: the base to store and the credentials to use. */
export function splitCredentials(
  uri: string,
): { uri: string; username?: string; password?: string } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`invalid MLflow tracking URI '${redactUri(uri)}'`);
  }
  if (url.username === "" && url.password === "") return { uri: uri.replace(/\/+$/, "") };
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  url.username = "";
  url.password = "";
  return { uri: url.href.replace(/\/+$/, ""), username, password };
}

/**
 * What a tracking URI selects. Throws a one-line error for URIs cxr cannot use (databricks,
 * sqlite:, postgresql:, s3:, ...) instead of taking them for a folder name.
 */
export function parseTrackingUri(uri: string): TrackingTarget {
  if (/^https?:\/\//i.test(uri)) return { kind: "rest", ...splitCredentials(uri) };
  const unsupported = (why: string) =>
    new Error(
      `MLflow tracking URI '${redactUri(uri)}' is not supported (${why}): use an MLflow ` +
        `server over REST (http(s)://host:port) or a file store (a folder or file:///path)`,
    );
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1].toLowerCase();
  if (HOSTED.has(uri.toLowerCase()) || (scheme && HOSTED.has(scheme))) {
    throw unsupported("hosted Databricks tracking");
  }
  // one letter + ':' is a Windows drive, not a scheme
  if (scheme && scheme !== "file" && scheme.length > 1) {
    throw unsupported(`'${scheme}:' backends need MLflow's Python store`);
  }
  const root = scheme === "file" ? fileURLToPath(uri) : resolve(uri);
  return { kind: "file", root, uri: scheme === "file" ? uri : root };
}

/**
 * Credentials for a stored (credential-free) REST URI: MLFLOW_TRACKING_USERNAME/PASSWORD, else
 * the user info of MLFLOW_TRACKING_URI when it points at the same server.
 */
export function credentialsFor(uri: string): { username?: string; password?: string } {
  const username = env("MLFLOW_TRACKING_USERNAME");
  const password = env("MLFLOW_TRACKING_PASSWORD");
  if (username !== undefined && password !== undefined) return { username, password };
  const fromEnv = env("MLFLOW_TRACKING_URI");
  if (fromEnv && /^https?:\/\//i.test(fromEnv)) {
    const split = splitCredentials(fromEnv);
    if (split.username !== undefined && split.uri === splitCredentials(uri).uri) {
      return { username: split.username, password: split.password };
    }
  }
  return {};
}
