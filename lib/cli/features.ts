/**
 * `deno task features --model resnet50 [--cut conv5_block3_1_conv|head] [--weights formula]
 *  [--data DIR] [--split train] [--limit N] [--batch 16] [--threads N] [--float16]`:
 * computes (or reads from the cache) the frozen part's activations for a whole split and
 * reports img/s and cache hits. `--cut LAYER` caches the pooled features and the frontier of cutting the net at LAYER
 * (the first trainable layer); `--cut head` (default) caches the pooled features.
 */
import { parseCli, positiveInt, usageError } from "./args.ts";
import { getNetSpec, NET_INFO, NET_NAMES, parseNetName } from "../models/registry.ts";
import { withHead } from "../models/head.ts";
import { cutAt } from "../models/graph.ts";
import { weightLayout } from "../models/layout.ts";
import { defaultWeightsChoice, resolveWeights } from "../models/weights/resolve.ts";
import { scanDataset, type SplitName } from "../data/dataset.ts";
import { extractFeatures, POOLED_LAYER } from "../features/extract.ts";
import { defaultThreads } from "../onnx/session.ts";
import { dataDir } from "../util/paths.ts";
import type { NetName } from "../models/spec.ts";
import { runCli } from "./entry.ts";

const USAGE = `usage: deno task features --model <${NET_NAMES.join("|")}> [options]
  --model NAME     network (case-insensitive)
  --cut LAYER      first trainable layer: cache the pooled features and the frozen frontier feeding it (e.g. ${
  NET_NAMES.map((n) => NET_INFO[n].defaultUnfreezeFrom).filter(Boolean).join(", ")
});
                   "head" (default): pooled features (global average of the last conv block)
  --weights W      imagenet | none | formula | path/to/weights.h5 (default: CXR_WEIGHTS or imagenet)
  --data DIR       dataset root (default: CXR_DATA or data/chest_xray)
  --split NAME     train | val | test (default train)
  --limit N        only the first N images of the split
  --batch N        images per ONNX Runtime run (default 16)
  --threads N      ONNX Runtime threads (default: cores)
  --float16        store float16 (half the disk; see lib/features/cache.ts)
  --quiet          no progress bar
  --help           this text`;

/** The layers cached for `cut`: the pooled layer for "head", else the frontier of the cut. */
export function cutOutputs(net: NetName, cut: string): string[] {
  if (cut === "head") return [POOLED_LAYER];
  // Exactly what `deno task train` reads for a fine-tuning run (pooled features for phase 1,
  // the cut's frontier for phase 2), so precomputed entries are the training's cache hits.
  return [POOLED_LAYER, ...cutAt(withHead(getNetSpec(net)), cut).frontier];
}

export async function main(args: string[]): Promise<number> {
  const cli = { usage: USAGE, prefix: "features" };
  const values = parseCli(args, {
    model: { type: "string" },
    cut: { type: "string", default: "head" },
    weights: { type: "string" },
    data: { type: "string" },
    split: { type: "string", default: "train" },
    limit: { type: "string" },
    batch: { type: "string" },
    threads: { type: "string" },
    float16: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  }, cli);
  if (typeof values === "number") return values;
  if (!values.model) return usageError(cli, "--model is required");
  let net: NetName, batchSize: number, threads: number, limit: number | undefined;
  let outputs: string[];
  const split = values.split as SplitName;
  try {
    net = parseNetName(values.model);
    batchSize = positiveInt("batch", values.batch, 16);
    threads = positiveInt("threads", values.threads, defaultThreads());
    limit = positiveInt("limit", values.limit, undefined);
    if (!["train", "val", "test"].includes(split)) {
      throw new Error(`--split must be train, val or test, got "${split}"`);
    }
    outputs = cutOutputs(net, values.cut);
  } catch (e) {
    return usageError(cli, (e as Error).message);
  }
  try {
    const dataset = await scanDataset(values.data ?? dataDir());
    let items = dataset.items.filter((i) => i.split === split);
    if (items.length === 0) {
      console.error(`features: no images in split "${split}" under ${dataset.root}`);
      return 1;
    }
    if (limit !== undefined) items = items.slice(0, limit);
    const choice = values.weights ?? defaultWeightsChoice();
    const weights = await resolveWeights(net, choice, weightLayout(getNetSpec(net)), {
      progress: !values.quiet,
    });
    console.log(
      `features: ${net} cut ${values.cut} -> [${outputs.join(", ")}]; weights ${weights.label}; ` +
        `${items.length} ${split} images; batch ${batchSize}, ${threads} threads` +
        (values.float16 ? ", float16" : ""),
    );
    const set = await extractFeatures({
      net,
      weights,
      outputs,
      items,
      batchSize,
      threads,
      float16: values.float16,
      progress: !values.quiet,
    });
    const s = set.stats;
    const shapes = set.shapes.map((sh) => `[${sh.join("x")}]`).join(" ");
    console.log(
      `features: ${set.items.length} images ${shapes} in ${s.seconds.toFixed(1)} s ` +
        `(${s.imgPerSec.toFixed(1)} img/s overall): cache hits ${s.hits}, computed ${s.computed}` +
        (s.computed > 0 ? ` at ${s.computedPerSec.toFixed(1)} img/s` : "") +
        `, corrupt entries recomputed ${s.corrupt}, failed ${s.failed.length}`,
    );
    for (const f of s.failed) console.error(`  skipped ${f.item.rel}: ${f.error}`);
    console.log(`features: cache ${set.cacheDir}`);
    return 0;
  } catch (e) {
    console.error(`features: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runCli("features", main));
