/**
 * The one entry point of every cxr CLI: runs its `main`, and turns anything it throws into one
 * line `<prefix>: <what went wrong, naming the file or flag>; <what to do>` and exit 1 (2 for a
 * UsageError), instead of Deno's "error: Uncaught ..." and a stack trace. `--debug` (anywhere in
 * the arguments) or CXR_DEBUG=1 prints the stack as well.
 */

/** A bad flag or flag value: exit code 2, like the option errors parseCli reports. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What to do about an OS error, keyed by the errno Deno puts in its messages. */
const OS_HINTS: Record<number, string> = {
  1: "not permitted here; point CXR_OUTPUTS (or the flag naming it) at a folder you can write",
  2: "check the path (and the flag or variable that names it)",
  13: "check its permissions, or point CXR_OUTPUTS at a folder you can write",
  17: "it already exists; remove it or choose another name",
  20: "a file stands where a folder is expected; check the path",
  21: "a folder stands where a file is expected; check the path",
  24: "too many open files; raise the limit (ulimit -n)",
  28: "the disk is full; free space or point CXR_OUTPUTS at another disk",
  30: "the file system is read-only; point CXR_OUTPUTS at a writable folder",
  98: "the port is taken; choose another --port (0 picks a free one)",
  99: "that address is not on this machine; check --host",
  122: "the disk quota is exceeded; free space or point CXR_OUTPUTS elsewhere",
};

/** Node-style codes (node:http/net errors) mapped to the same hints. */
const CODE_ERRNO: Record<string, number> = {
  ENOENT: 2,
  EACCES: 13,
  EPERM: 13,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EMFILE: 24,
  ENOSPC: 28,
  EROFS: 30,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  EDQUOT: 122,
};

/** The one-line message for an error: its own message plus, for OS errors, what to do. */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const msg = e.message.replace(/\s*\n\s*/g, " ").trim() || e.name;
  const code = (e as { code?: unknown }).code;
  const errno = Number(msg.match(/\(os error (\d+)\)/)?.[1] ?? CODE_ERRNO[String(code)] ?? NaN);
  const hint = OS_HINTS[errno];
  if (hint) return `${msg}; ${hint}`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `${msg}; check the host name`;
  return msg;
}

export function debugWanted(args: readonly string[]): boolean {
  return args.includes("--debug") || ["1", "true", "yes"].includes(Deno.env.get("CXR_DEBUG") ?? "");
}

/**
 * Runs `main(args without --debug)` and returns its exit code; a throw prints one line (and the
 * stack when debugging) and gives 1, or 2 for a UsageError.
 */
export async function runCli(
  prefix: string,
  main: (args: string[]) => number | Promise<number>,
  args: string[] = Deno.args,
  err: (line: string) => void = (l) => console.error(l),
): Promise<number> {
  const debug = debugWanted(args);
  const fail = (e: unknown): number => {
    err(`${prefix}: ${describeError(e)}`);
    if (debug && e instanceof Error && e.stack) err(e.stack);
    return e instanceof UsageError ? 2 : 1;
  };
  // A rejection nobody awaited (a background task) ends the run the same clean way.
  const onStray = (ev: PromiseRejectionEvent | ErrorEvent) => {
    ev.preventDefault();
    Deno.exit(fail("reason" in ev ? ev.reason : ev.error));
  };
  globalThis.addEventListener("unhandledrejection", onStray);
  globalThis.addEventListener("error", onStray);
  try {
    return await main(args.filter((a) => a !== "--debug"));
  } catch (e) {
    return fail(e);
  } finally {
    globalThis.removeEventListener("unhandledrejection", onStray);
    globalThis.removeEventListener("error", onStray);
  }
}
