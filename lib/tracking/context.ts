/** Run tags MLflow's own client sets from the context (user, source, git commit). */
import { basename, join } from "node:path";
import { PROJECT_ROOT } from "../util/paths.ts";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

export function currentUser(): string {
  return env("MLFLOW_TRACKING_USER") ?? env("USER") ?? env("LOGNAME") ?? "unknown";
}

/** HEAD's commit read from .git (no git process); null outside a checkout. */
export function gitCommit(root = PROJECT_ROOT): string | null {
  try {
    const head = Deno.readTextFileSync(join(root, ".git", "HEAD")).trim();
    if (!head.startsWith("ref: ")) return /^[0-9a-f]{40}$/.test(head) ? head : null;
    const ref = head.slice(5);
    try {
      return Deno.readTextFileSync(join(root, ".git", ref)).trim();
    } catch {
      const packed = Deno.readTextFileSync(join(root, ".git", "packed-refs"));
      const line = packed.split("\n").find((l) => l.endsWith(` ${ref}`));
      return line ? line.split(" ")[0] : null;
    }
  } catch {
    return null;
  }
}

/** mlflow.user, mlflow.source.{name,type,git.commit} like `mlflow.start_run` records. */
export function contextTags(): Record<string, string> {
  const tags: Record<string, string> = {
    "mlflow.user": currentUser(),
    "mlflow.source.type": "LOCAL",
    "mlflow.source.name": basename(Deno.mainModule ?? "cxr"),
  };
  const commit = gitCommit();
  if (commit) tags["mlflow.source.git.commit"] = commit;
  return tags;
}
