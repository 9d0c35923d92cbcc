/**
 * `deno task mlflow:sync [--uri URL] [--spool DIR]`: replays MLflow records spooled while the
 * tracking server was unreachable (outputs/mlflow-spool/), in order and without duplicates,
 * and prints what it did. Exit 0 when nothing is left pending, 1 otherwise.
 */
import { spoolRoot, syncSpool } from "../tracking/spool.ts";
import { parseCli } from "./args.ts";
import { runCli } from "./entry.ts";

const USAGE = `usage: deno task mlflow:sync [--uri URL] [--spool DIR]
  --uri URL    send to this tracking server instead of the one each run was opened with
               (runs become new runs there, with every spooled record)
  --spool DIR  spool folder (default outputs/mlflow-spool)
Credentials: MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD, http://user:pw@host in
--uri, or MLFLOW_TRACKING_URI's user info for the same server (never stored or printed).`;

export async function main(
  args: string[],
  write: (s: string) => void = console.log,
): Promise<number> {
  const values = parseCli(args, {
    uri: { type: "string" },
    spool: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, { usage: USAGE, prefix: "mlflow:sync", io: { out: write, err: (l) => console.error(l) } });
  if (typeof values === "number") return values;
  const root = values.spool ?? spoolRoot();
  const result = await syncSpool({ uri: values.uri, root });
  if (result.runs.length === 0) {
    write(`mlflow:sync: nothing to replay in ${root}`);
    return 0;
  }
  for (const r of result.runs) {
    const where = r.remoteRunId ? `run ${r.remoteRunId}` : "run not created yet";
    const status = r.ended ? `ended ${r.ended}` : "still open";
    let line = `${r.runName} [${r.key}] -> ${r.uri} ${where}: delivered ${r.delivered}, ` +
      `pending ${r.pending}, ${status}`;
    if (r.rejected > 0) line += `, ${r.rejected} rejected by the server (see state.json)`;
    if (r.error) line += ` — ${r.outcome}: ${r.error}`;
    write(line);
  }
  write(`mlflow:sync: replayed ${result.replayed} records, ${result.pending} pending`);
  return result.pending === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await runCli("mlflow:sync", main));
