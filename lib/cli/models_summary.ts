/**
 * `deno task models:summary --model densenet121 [--trainable-from LAYER] [--head] [--json]`:
 * a Keras-style summary of one of the three bases (notop, 224x224x3).
 */
import { getNetSpec, NET_INFO, NET_NAMES, parseNetName } from "../models/registry.ts";
import { withHead } from "../models/head.ts";
import { formatSummary, summarize } from "../models/summary.ts";
import { parseCli, usageError } from "./args.ts";
import { runCli } from "./entry.ts";

const USAGE = `usage: deno task models:summary --model <${NET_NAMES.join("|")}> [options]
  --model NAME            network (case-insensitive)
  --trainable-from LAYER  layers from LAYER on (Keras order) are trainable, earlier ones frozen;
                          "default" = the net's fine-tuning default (${
  NET_NAMES.map((n) => `${n}: ${NET_INFO[n].defaultUnfreezeFrom ?? "none"}`).join(", ")
})
  --include-top           the ImageNet classifier top (as include_top=True)
  --head                  append cxr's head (head_pool, head_dropout, head_dense)
  --json                  print the summary as JSON
  --help                  this text`;

export function main(args: string[]): number {
  const cli = { usage: USAGE, prefix: "models:summary" };
  const values = parseCli(args, {
    model: { type: "string" },
    "trainable-from": { type: "string" },
    "include-top": { type: "boolean", default: false },
    head: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  }, cli);
  if (typeof values === "number") return values;
  if (!values.model) return usageError(cli, "--model is required");
  try {
    const net = parseNetName(values.model);
    let spec = getNetSpec(net, { includeTop: values["include-top"] });
    if (values.head) spec = withHead(spec);
    let from = values["trainable-from"] ?? null;
    if (from === "default") from = NET_INFO[net].defaultUnfreezeFrom;
    const summary = summarize(spec, from);
    console.log(values.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
    return 0;
  } catch (e) {
    console.error(`models:summary: ${(e as Error).message}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await runCli("models:summary", main));
