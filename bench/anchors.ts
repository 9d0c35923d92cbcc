/**
 * What the benchmarks share: the load average printed next to every absolute figure, a plain
 * table printer, and the PyTorch CPU anchor (bench/torch_anchor.py under Debian's python3).
 */
import { join } from "node:path";

/** The 1/5/15-minute load averages as /proc/loadavg gives them ("n/a" elsewhere). */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

/** Prints rows as left-aligned columns (the first row is the header). */
export function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((v, c) => v.padEnd(widths[c])).join("  "));
}

const PYTHON = "/usr/bin/python3";

/**
 * img/s of torchvision's `net` (its trunk and global pooling) on PyTorch CPU in this run, or a
 * note saying why the anchor is skipped (no python3, no torch/torchvision, or the script
 * failed). With `exportTo`, the script first writes that trunk as ONNX there.
 */
export async function torchAnchor(
  net: string,
  opts: { images: number; batch: number; threads: number; exportTo?: string },
): Promise<number | string> {
  const script = join(import.meta.dirname!, "torch_anchor.py");
  let out: Deno.CommandOutput;
  try {
    const args = [script, net, String(opts.images), String(opts.batch), String(opts.threads)];
    out = await new Deno.Command(PYTHON, {
      args: opts.exportTo ? [...args, opts.exportTo] : args,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    return `PyTorch CPU anchor skipped: cannot run ${PYTHON} (${(e as Error).message})`;
  }
  const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) ?? "";
  if (out.code === 3) {
    return `PyTorch CPU anchor skipped: ${PYTHON} has no torch/torchvision (${err}; ` +
      "Debian: apt install python3-torch python3-torchvision)";
  }
  const value = Number(new TextDecoder().decode(out.stdout).trim());
  if (out.code !== 0 || !(value > 0)) {
    return `PyTorch CPU anchor for ${net} failed (exit ${out.code}): ${err}`;
  }
  return value;
}
