/**
 * ONNX Runtime throughput per net, each figure next to an anchor measured in the same run:
 * - export/reference: our classifier export (preprocessing in the graph, as the pipeline runs it)
 *   against a reference export of the same architecture (a plain graph: no in-graph
 *   preprocessing, one output), both on images already decoded in memory, measured in
 *   alternating rounds so load changes hit both alike;
 * - pipeline/raw: the whole feature pipeline from JPEG files (hash, decode + preprocess
 *   overlapped with inference, cache writes; empty cache) against raw ORT on our export;
 * - no-spin/spin: raw ORT as we run it (idle threads do not spin) over ORT's default spinning;
 * - PyTorch CPU (torchvision, random weights) when `/usr/bin/python3 -c 'import torch'` works;
 *   skipped with a note otherwise.
 * Absolute img/s are printed only next to the load average (before and after).
 *
 *   deno run -A bench/onnx.ts [--nets resnet50,densenet121,vgg16] [--images 64] [--batch 16]
 *                             [--rounds 3] [--tune 8,16,32] [--threads N]
 *
 * Weights are `formula` (not ImageNet): speed does not depend on the values.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getNetSpec, parseNetName } from "../lib/models/registry.ts";
import { withHead } from "../lib/models/head.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { preprocessInput } from "../lib/models/preprocess.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { weightsMd5 } from "../lib/models/weights/md5.ts";
import { scanDataset } from "../lib/data/dataset.ts";
import { decodeImage } from "../lib/data/images.ts";
import { exportOnnx, IMAGE_INPUT } from "../lib/onnx/export.ts";
import { defaultThreads, type OnnxModel, openSession } from "../lib/onnx/session.ts";
import { extractFeatures, POOLED_LAYER } from "../lib/features/extract.ts";
import { dataDir, sharedDir } from "../lib/util/paths.ts";
import { loadAverage, printTable, torchAnchor } from "./anchors.ts";

const GOAL = 0.95;

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    nets: { type: "string", default: "resnet50,densenet121,vgg16" },
    images: { type: "string", default: "64" },
    batch: { type: "string", default: "16" },
    rounds: { type: "string", default: "3" },
    tune: { type: "string", default: "" },
    threads: { type: "string" },
    data: { type: "string" },
  },
});
const nets = values.nets.split(",").map(parseNetName);
const nImages = Number(values.images);
const batch = Number(values.batch);
const rounds = Math.max(1, Number(values.rounds));
const tune = values.tune ? values.tune.split(",").map(Number) : [];
const threads = values.threads ? Number(values.threads) : defaultThreads();

async function findData(): Promise<string> {
  for (
    const dir of [
      values.data,
      Deno.env.get("CXR_DATA"),
      dataDir(),
      join(sharedDir(), "data", "chest_xray"),
    ]
  ) {
    if (!dir) continue;
    try {
      await Deno.stat(join(dir, "train"));
      return dir;
    } catch { /* try the next */ }
  }
  throw new Error("no dataset found (set CXR_DATA or --data)");
}

const dataset = await scanDataset(await findData());
const train = dataset.items.filter((i) => i.split === "train");
// Both classes: every k-th image.
const step = Math.max(1, Math.floor(train.length / nImages));
const items = train.filter((_, i) => i % step === 0).slice(0, nImages);
const decoded = await Promise.all(items.map((i) => decodeImage(i.path, 224)));
const pixels = new Float32Array(items.length * 224 * 224 * 3);
decoded.forEach((d, k) => pixels.set(d.data, k * d.data.length));

/** img/s of `model` over every image in batches of `b` (after one warm-up batch). */
async function rawOrt(model: OnnxModel, input: string, data: Float32Array, b: number) {
  const per = 224 * 224 * 3;
  const feed = (i: number, n: number) => ({
    [input]: { data: data.subarray(i * per, (i + n) * per), shape: [n, 224, 224, 3] },
  });
  await model.run(feed(0, Math.min(b, items.length))); // first run allocates and picks kernels
  const t = performance.now();
  for (let i = 0; i < items.length; i += b) await model.run(feed(i, Math.min(b, items.length - i)));
  return items.length / ((performance.now() - t) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (r: number) => `${(r * 100).toFixed(0)}%`;

const loadBefore = loadAverage();
console.log(
  `ONNX Runtime benchmark: ${items.length} train JPEGs, ${threads} threads, batch ${batch}, ` +
    `${rounds} alternating rounds, formula weights (not ImageNet), ` +
    `${navigator.hardwareConcurrency} cores; load average before: ${loadBefore}`,
);
const ratios: string[][] = [[
  "net",
  "export/reference",
  "pipeline/raw",
  "pipeline/reference",
  `goal >= ${GOAL * 100}%`,
  "ORT/PyTorch CPU",
  "no-spin/spin",
]];
const absolute: string[][] = [["net", "reference img/s", "raw img/s", "pipeline img/s", "PyTorch"]];
const notes: string[] = [];
const tuning: string[] = [];
for (const net of nets) {
  const base = getNetSpec(net);
  const spec = withHead(base);
  const layout = weightLayout(base);
  const weights = formulaWeights(layout);
  const outputs = [POOLED_LAYER];
  // Ours: what extractFeatures runs. Reference: the same net as a plain one-output graph.
  const ours = await openSession(
    exportOnnx(spec, weights, { outputs, preprocessing: base.preprocessing }),
    { threads },
  );
  const reference = await openSession(exportOnnx(spec, weights, { outputs }), { threads });
  // ORT's default (idle threads spin): what openSession turned off, measured alongside.
  const spinning = await openSession(
    exportOnnx(spec, weights, { outputs, preprocessing: base.preprocessing }),
    { threads, spinning: true },
  );
  const refInput = reference.inputNames[0];
  const prepared = preprocessInput(pixels, base.preprocessing);
  for (const b of tune) {
    const r = await rawOrt(ours, IMAGE_INPUT, pixels, b);
    tuning.push(`${net} batch ${b}: raw ORT ${r.toFixed(1)} img/s (load ${loadAverage()})`);
  }
  const raws: number[] = [];
  const refs: number[] = [];
  const spins: number[] = [];
  const runs = [
    () => rawOrt(ours, IMAGE_INPUT, pixels, batch).then((x) => raws.push(x)),
    () => rawOrt(reference, refInput, prepared, batch).then((x) => refs.push(x)),
    () => rawOrt(spinning, IMAGE_INPUT, pixels, batch).then((x) => spins.push(x)),
  ];
  // Each round in another order, so a load that drifts during the run favours no one.
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < runs.length; k++) await runs[(k + r) % runs.length]();
  }
  for (const m of [ours, reference, spinning]) await m.close();
  const raw = median(raws);
  const ref = median(refs);
  const spin = median(spins);
  const cacheRoot = await Deno.makeTempDir({ prefix: "cxr-bench-onnx-" });
  let pipeline = 0;
  try {
    const set = await extractFeatures({
      net,
      weights: { weights, md5: weightsMd5(weights, layout) },
      outputs,
      items,
      batchSize: batch,
      threads,
      progress: false,
      cacheRoot,
    });
    pipeline = set.stats.computedPerSec;
  } finally {
    await Deno.remove(cacheRoot, { recursive: true });
  }
  const torch = await torchAnchor(net, { images: Math.min(items.length, 32), batch, threads });
  if (typeof torch === "string") notes.push(torch);
  const torchImgs = typeof torch === "number" ? torch : null;
  ratios.push([
    net,
    pct(raw / ref),
    pct(pipeline / raw),
    pct(pipeline / ref),
    [raw / ref, pipeline / raw].every((x) => x >= GOAL) ? "met" : "NOT met",
    torchImgs ? `${(raw / torchImgs).toFixed(1)}x` : "skipped",
    `${(raw / spin).toFixed(2)}x`,
  ]);
  absolute.push([
    net,
    ref.toFixed(1),
    raw.toFixed(1),
    pipeline.toFixed(1),
    torchImgs ? torchImgs.toFixed(1) : "-",
  ]);
}
const loadAfter = loadAverage();
console.log("\nratios (one run; each against its anchor measured just before or alongside it):");
printTable(ratios);
console.log(`\nabsolute img/s (load average before ${loadBefore}; after ${loadAfter}):`);
printTable(absolute);
for (const t of tuning) console.log(t);
for (const n of new Set(notes)) console.log(`note: ${n}`);
console.log(
  "export = classifier graph with in-graph preprocessing; reference = the same architecture " +
    "exported as a plain graph (no preprocessing, one output) fed preprocessed pixels; " +
    "pipeline = hash + decode/preprocess (overlapped) + ORT + cache writes (export/session excluded); " +
    "no-spin/spin = raw ORT with idle threads not spinning (our setting) over ORT's default.",
);
