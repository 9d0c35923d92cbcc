/**
 * `deno task notebooks`: execute the teaching notebooks headless on Deno's Jupyter kernel and
 * save executed copies (and HTML exports) under outputs/notebooks/.
 *
 * Jupyter's nbclient (Debian: python3-nbclient, python3-nbconvert) drives the kernel; the
 * notebooks read their settings from CXR_* environment variables, so CI runs the quick profile
 * on a subset without editing them.
 */
import { parseArgs } from "node:util";
import { basename, join } from "node:path";
import { outputsDir, PROJECT_ROOT } from "../util/paths.ts";
import { runCli } from "./entry.ts";

const USAGE = `Usage: deno task notebooks [--only VGG16|ResNet50|DenseNet121] [--profile quick|full]
                           [--out DIR] [--no-html] [--timeout SECONDS]
Executes notebooks/*.ipynb on Deno's kernel; executed copies go to outputs/notebooks/.`;

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

/** Installs Deno's kernelspec (`deno jupyter --install`) when Jupyter does not list it yet. */
async function ensureDenoKernel(): Promise<void> {
  const home = Deno.env.get("HOME") ?? "";
  const spec = join(home, ".local/share/jupyter/kernels/deno/kernel.json");
  try {
    const text = await Deno.readTextFile(spec);
    if (text.includes(Deno.execPath())) return;
  } catch { /* not installed yet */ }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["jupyter", "--install", "--force"],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("`deno jupyter --install` failed: see the messages above");
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
  if (!(await commandOk(PYTHON, ["-c", "import nbclient, nbformat"]))) {
    console.error(
      `error: Jupyter's nbclient is missing for ${PYTHON}.\n` +
        "Install it with: sudo apt-get install python3-nbclient python3-nbconvert",
    );
    return 1;
  }
  await ensureDenoKernel();
  const out = values.out ?? join(outputsDir(), "notebooks");
  const paths = only.map((n) => join(PROJECT_ROOT, "notebooks", `${n}.ipynb`));
  const env: Record<string, string> = {};
  if (values.profile) env.CXR_PROFILE = values.profile;
  const args = [join(PROJECT_ROOT, "tools", "run_notebooks.py"), ...paths, "--out", out];
  if (!values["no-html"]) args.push("--html");
  if (values.timeout) args.push("--timeout", values.timeout);
  console.log(`Executing ${paths.map((p) => basename(p)).join(", ")} -> ${out}`);
  const res = await new Deno.Command(PYTHON, {
    args,
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return res.code;
}

if (import.meta.main) Deno.exit(await runCli("notebooks", runNotebooks));
