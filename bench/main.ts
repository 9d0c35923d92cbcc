/**
 * `deno task bench`: runs each area's benchmark as its own process (so one's memory and
 * threads do not skew another's) and prints their tables, figures next to their anchors.
 *
 *   deno task bench                 all of them
 *   deno task bench onnx serving    only these
 */
import { join } from "node:path";
import { PROJECT_ROOT } from "../lib/util/paths.ts";

export const BENCHES = ["data", "onnx", "training", "augment", "serving"] as const;

/** Runs the named benchmarks in turn; returns the names that failed. */
export async function runBenches(names: readonly string[]): Promise<string[]> {
  const failed: string[] = [];
  for (const name of names) {
    if (!(BENCHES as readonly string[]).includes(name)) {
      throw new Error(`unknown benchmark '${name}' (have: ${BENCHES.join(", ")})`);
    }
    const script = join(PROJECT_ROOT, "bench", `${name}.ts`);
    console.log(`\n=== bench/${name}.ts`);
    const start = performance.now();
    const { code } = await new Deno.Command(Deno.execPath(), {
      // --allow-all: the serving benchmark reads the server's peak RSS from /proc/<pid>/status,
      // which Deno only allows under --allow-all.
      args: ["run", "--allow-all", script],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    const secs = ((performance.now() - start) / 1000).toFixed(1);
    console.log(
      `=== bench/${name}.ts: ${code === 0 ? "ok" : `FAILED (exit ${code})`} in ${secs} s`,
    );
    if (code !== 0) failed.push(name);
  }
  return failed;
}

if (import.meta.main) {
  const names = Deno.args.length > 0 ? Deno.args : [...BENCHES];
  try {
    const failed = await runBenches(names);
    Deno.exit(failed.length > 0 ? 1 : 0);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
