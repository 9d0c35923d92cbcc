/**
 * Where cxr reads and writes, each overridable by an environment variable so that notebooks,
 * the CLI, the server, tests and CI agree without copying data into the project.
 */
import { isAbsolute, join, resolve } from "node:path";
import { inKernel } from "./jupyter.ts";

function env(name: string): string | undefined {
  try {
    const v = Deno.env.get(name);
    return v === undefined || v === "" ? undefined : v;
  } catch {
    return undefined; // no --allow-env: use defaults
  }
}

/** Repository root (the folder holding deno.json). */
export const PROJECT_ROOT: string = resolve(new URL("../..", import.meta.url).pathname);

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Where a relative path is looked up: see `resolveUserPath`. */
export interface PathContext {
  /** Inside a Jupyter kernel, whose working directory is the notebook's folder. */
  kernel: boolean;
  /** The directory the user launched from (a kernel inherits the shell's PWD). */
  launchDir?: string;
}

function pathContext(): PathContext {
  return { kernel: inKernel(), launchDir: env("PWD") };
}

/**
 * Absolute form of a path the user gave (a CXR_* variable, a --flag, a notebook setting).
 * Outside a notebook a relative path is relative to the working directory, as for any CLI
 * (`deno task` runs from the repository root). A notebook kernel runs in notebooks/, so there
 * a relative path is looked up in the directory Jupyter was launched from, then in the
 * repository root: the first that has it wins, else the repository root (where `deno task`
 * would put it).
 */
export function resolveUserPath(path: string, ctx: PathContext = pathContext()): string {
  if (isAbsolute(path) || !ctx.kernel) return resolve(path);
  const bases = ctx.launchDir && isAbsolute(ctx.launchDir) ? [ctx.launchDir] : [];
  for (const base of [...bases, PROJECT_ROOT]) {
    if (exists(resolve(base, path))) return resolve(base, path);
  }
  return resolve(PROJECT_ROOT, path);
}

/** Kaggle-layout dataset root `chest_xray/` (`CXR_DATA`, default `data/chest_xray`). */
export function dataDir(): string {
  return resolveUserPath(env("CXR_DATA") ?? join(PROJECT_ROOT, "data", "chest_xray"));
}

/** All generated files (`CXR_OUTPUTS`, default `outputs/`). */
export function outputsDir(): string {
  return resolveUserPath(env("CXR_OUTPUTS") ?? join(PROJECT_ROOT, "outputs"));
}

/** Activation cache (`CXR_CACHE`, default `outputs/cache`). */
export function cacheDir(): string {
  return resolveUserPath(env("CXR_CACHE") ?? join(outputsDir(), "cache"));
}

/** Training runs (`outputs/runs/<run-id>`). */
export function runsDir(): string {
  return join(outputsDir(), "runs");
}

/** A run given as a directory path or as a run id under `runsDir()` (clear error when neither). */
export async function resolveRunDir(run: string): Promise<string> {
  try {
    if ((await Deno.stat(run)).isDirectory) return resolve(run);
  } catch { /* not a path: a run id */ }
  const dir = join(runsDir(), run);
  try {
    if ((await Deno.stat(dir)).isDirectory) return dir;
  } catch { /* reported below */ }
  throw new Error(`run "${run}" not found (neither a run directory nor ${dir})`);
}

/** The read-only shared material (`CXR_SHARED`, default `../shared` beside the repo). */
export function sharedDir(): string {
  return resolveUserPath(env("CXR_SHARED") ?? join(PROJECT_ROOT, "..", "shared"));
}

/** `../shared/reference` (formula weights' reference outputs, layouts, DenseNet h5). */
export function referenceDir(): string {
  return join(sharedDir(), "reference");
}
