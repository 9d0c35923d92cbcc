/**
 * `deno task notebooks`: execute the teaching notebooks headless on Deno's Jupyter kernel and
 * save executed copies, HTML exports and an index page under outputs/notebooks/.
 *
 * Jupyter's nbclient (Debian: python3-nbclient, python3-nbconvert) drives the kernel; the
 * notebooks read their settings from CXR_* environment variables, so CI runs the quick profile
 * on a subset without editing them.
 */
import { parseArgs } from "node:util";
import { basename, delimiter as SEP, join, resolve } from "node:path";
import { cacheDir, outputsDir, PROJECT_ROOT } from "../util/paths.ts";
import { runCli } from "./entry.ts";

const USAGE = `Usage: deno task notebooks [--only VGG16|ResNet50|DenseNet121] [--profile quick|full]
                           [--out DIR] [--no-html] [--timeout SECONDS]
       deno task notebooks --install-kernel
Executes notebooks/*.ipynb on Deno's kernel: executed copies, HTML exports and index.html go
to outputs/notebooks/. --install-kernel installs the "deno" kernelspec for Jupyter / VS Code
(through npx when this Deno comes from npx, so it survives npx cache cleans).`;

export const NOTEBOOKS = ["VGG16", "ResNet50", "DenseNet121"] as const;

const PYTHON = "/usr/bin/python3";

async function commandOk(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * How Jupyter starts this Deno as a kernel. A Deno run through npx lives in npx's cache, whose
 * path changes with every cache clean or version: the kernelspec then calls npx with the exact
 * version instead of pointing into the cache.
 */
export function kernelArgv(execPath = Deno.execPath(), version = Deno.version.deno): string[] {
  const launcher = /[\\/]_npx[\\/]/.test(execPath) ? ["npx", "-y", `deno@${version}`] : [execPath];
  return [...launcher, "jupyter", "--kernel", "--conn", "{connection_file}"];
}

/** kernel.json of the "deno" kernel (the name the notebooks ask for). */
export function kernelSpecJson(argv = kernelArgv()): string {
  return JSON.stringify({ argv, display_name: "Deno", language: "typescript" }, null, 2) + "\n";
}

/**
 * Writes `<root>/kernels/deno/kernel.json` unless it already says the same: returns whether it
 * wrote. Headless runs use a private root (JUPYTER_PATH) and leave the user's Jupyter alone.
 */
export async function writeKernelSpec(root: string, text = kernelSpecJson()): Promise<boolean> {
  const dir = join(root, "kernels", "deno");
  const path = join(dir, "kernel.json");
  const current = await Deno.readTextFile(path).catch(() => null);
  if (current === text) return false;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, text);
  return true;
}

/** The user's Jupyter data folder (JUPYTER_DATA_DIR, else ~/.local/share/jupyter). */
function userJupyterDir(): string {
  const own = Deno.env.get("JUPYTER_DATA_DIR");
  if (own) return own;
  const xdg = Deno.env.get("XDG_DATA_HOME");
  return join(xdg || join(Deno.env.get("HOME") ?? ".", ".local", "share"), "jupyter");
}

export interface ExecuteOptions {
  /** Folder for the executed copies (and HTML exports, index.html). */
  out: string;
  html?: boolean;
  /** Seconds per cell. */
  timeout?: number;
  /** Extra environment for the kernels (e.g. CXR_PROFILE). */
  env?: Record<string, string>;
  /** Stream nbclient's messages (default true). */
  verbose?: boolean;
}

/** One notebook's line in `<out>/summary.json` (written by tools/run_notebooks.py). */
export interface NotebookResult {
  name: string;
  status: "ok" | "FAILED";
  seconds: number;
  ipynb: string;
  html?: string;
}

/**
 * Executes `paths` on a private "deno" kernelspec (under the cache folder, rewritten only when
 * it changes; the user's Jupyter setup is untouched) and writes an index page. Relative CXR_*
 * paths in the kernels resolve against this process's working directory, as they do here.
 */
export async function executeNotebooks(
  paths: string[],
  opts: ExecuteOptions,
): Promise<{ code: number; results: NotebookResult[] }> {
  const jupyterRoot = join(cacheDir(), "jupyter");
  await writeKernelSpec(jupyterRoot);
  const inherited = Deno.env.get("JUPYTER_PATH");
  const env: Record<string, string> = {
    ...opts.env,
    JUPYTER_PATH: inherited ? `${jupyterRoot}${SEP}${inherited}` : jupyterRoot,
    PWD: Deno.cwd(),
  };
  const args = [join(PROJECT_ROOT, "tools", "run_notebooks.py"), ...paths, "--out", opts.out];
  if (opts.html) args.push("--html");
  if (opts.timeout) args.push("--timeout", String(opts.timeout));
  const verbose = opts.verbose ?? true;
  const res = await new Deno.Command(PYTHON, {
    args,
    env,
    stdout: verbose ? "inherit" : "null",
    stderr: verbose ? "inherit" : "null",
  }).output();
  const results = await readJsonFile<NotebookResult[]>(join(opts.out, "summary.json")) ?? [];
  if (opts.html) await writeIndex(opts.out, results);
  return { code: res.code, results };
}

async function readJsonFile<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

/** `<out>/index.html`: one line per executed notebook, linking its HTML export and .ipynb. */
export async function writeIndex(out: string, results: NotebookResult[]): Promise<string> {
  const esc = (t: string) =>
    t.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
  const rows = results.map((r) =>
    `<tr><td>${r.html ? `<a href="${esc(r.html)}">${esc(r.name)}</a>` : esc(r.name)}</td>` +
    `<td class="${r.status === "ok" ? "ok" : "failed"}">${esc(r.status)}</td>` +
    `<td style="text-align:right">${r.seconds.toFixed(0)} s</td>` +
    `<td><a href="${esc(r.ipynb)}">${esc(r.ipynb)}</a></td></tr>`
  ).join("\n");
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cxr notebooks</title>
<style>body{font-family:sans-serif;margin:2em;max-width:50em}td,th{padding:4px 12px;text-align:left}
.ok{color:#2a7d2a}.failed{color:#b00020;font-weight:bold}</style></head><body>
<h1>cxr teaching notebooks, executed</h1>
<p>Executed on ${esc(new Date().toISOString())} by <code>deno task notebooks</code>
(profile ${esc(Deno.env.get("CXR_PROFILE") ?? "from each notebook's settings cell")}).
Open a notebook's page to read it with its outputs; the <code>.ipynb</code> opens in Jupyter or
VS Code with the outputs in place.</p>
<table><thead><tr><th>notebook</th><th>status</th><th>time</th><th>executed notebook</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<p>Research and teaching material, not a diagnostic device.</p>
</body></html>
`;
  const path = join(out, "index.html");
  await Deno.writeTextFile(path, page);
  return path;
}

/** Executes the notebooks; returns the process exit code. */
export async function runNotebooks(argv: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      options: {
        only: { type: "string", multiple: true },
        profile: { type: "string" },
        out: { type: "string" },
        "no-html": { type: "boolean" },
        timeout: { type: "string" },
        "install-kernel": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values["install-kernel"]) {
    const root = userJupyterDir();
    const wrote = await writeKernelSpec(root);
    const path = join(root, "kernels", "deno", "kernel.json");
    console.log(
      `${wrote ? "installed" : "already up to date"}: ${path} (${kernelArgv().join(" ")})`,
    );
    return 0;
  }
  const only = values.only ?? [...NOTEBOOKS];
  for (const name of only) {
    if (!(NOTEBOOKS as readonly string[]).includes(name)) {
      console.error(`error: unknown notebook '${name}' (--only takes ${NOTEBOOKS.join(", ")})`);
      return 2;
    }
  }
  if (values.profile && !["quick", "full"].includes(values.profile)) {
    console.error(`error: --profile must be quick or full, got '${values.profile}'`);
    return 2;
  }
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0)) {
    console.error(`error: --timeout must be a whole number of seconds, got '${values.timeout}'`);
    return 2;
  }
  if (!(await commandOk(PYTHON, ["-c", "import nbclient, nbformat"]))) {
    console.error(
      `error: Jupyter's nbclient is missing for ${PYTHON}.\n` +
        "Install it with: sudo apt-get install python3-nbclient python3-nbconvert",
    );
    return 1;
  }
  const out = resolve(values.out ?? join(outputsDir(), "notebooks"));
  const paths = only.map((n) => join(PROJECT_ROOT, "notebooks", `${n}.ipynb`));
  console.log(`Executing ${paths.map((p) => basename(p)).join(", ")} -> ${out}`);
  const { code } = await executeNotebooks(paths, {
    out,
    html: !values["no-html"],
    timeout,
    env: values.profile ? { CXR_PROFILE: values.profile } : {},
  });
  if (!values["no-html"]) console.log(`Open ${join(out, "index.html")} in a browser.`);
  return code;
}

if (import.meta.main) Deno.exit(await runCli("notebooks", runNotebooks));
