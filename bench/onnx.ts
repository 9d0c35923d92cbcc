/**
 * ONNX Runtime throughput per net, each figure next to an anchor measured in the same run:
 * - export/reference: our classifier export (preprocessing in the graph, as the pipeline runs it)
 *   against a reference export of the same architecture (a plain graph: no in-graph
 *   preprocessing, one output), both on images already decoded in memory, measured in
 *   alternating rounds so load changes hit both alike;
 * - export/torchvision: our export against torchvision's trunk of the same net exported by
 *   torch.onnx (another exporter; random weights), in the same rotation, when Debian's
 *   python3-torch and python3-torchvision are there; skipped with a note otherwise;
 * - pipeline/raw: the whole feature pipeline from JPEG files (hash, decode + preprocess
 *   overlapped with inference, cache writes; empty cache) against raw ORT on our export, in
 *   steady state: from the end of the first batch (which pays the fresh session's warm-up,
 *   once per extraction of thousands of images) to the end;
 * - no-spin/spin: raw ORT as we run it (idle threads do not spin) over ORT's default spinning;
 * - PyTorch CPU (the same torchvision trunk) when `/usr/bin/python3 -c 'import torch'` works;
 *   skipped with a note otherwise.
 * Absolute img/s are printed only next to the load average (before and after).
 *
 *   deno run -A bench/onnx.ts [--nets resnet50,densenet121,vgg16] [--images 96] [--batch 16]
 *                             [--rounds 3] [--tune 8,16,32] [--threads N]
 *
 * Weights are `formula` (not ImageNet): speed does not depend on the values.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getNetSpec, parseNetName } from "../lib/models/registry.ts";
import type { NetName, NetWeights } from "../lib/models/spec.ts";
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
    images: { type: "string", default: "96" },
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
async function rawOrt(
  model: OnnxModel,
  input: string,
  data: Float32Array,
  b: number,
  channelsFirst = false,
) {
  const per = 224 * 224 * 3;
  const shape = (n: number) => channelsFirst ? [n, 3, 224, 224] : [n, 224, 224, 3];
  const feed = (i: number, n: number) => ({
    [input]: { data: data.subarray(i * per, (i + n) * per), shape: shape(n) },
  });
  await model.run(feed(0, Math.min(b, items.length))); // first run allocates and picks kernels
  const t = performance.now();
  for (let i = 0; i < items.length; i += b) await model.run(feed(i, Math.min(b, items.length - i)));
  return items.length / ((performance.now() - t) / 1000);
}

/** NHWC pixels as NCHW (torchvision's layout), outside any timing. */
function toNchw(nhwc: Float32Array, n: number): Float32Array {
  const out = new Float32Array(nhwc.length);
  const hw = 224 * 224;
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < hw; p++) {
      for (let c = 0; c < 3; c++) out[i * 3 * hw + c * hw + p] = nhwc[(i * hw + p) * 3 + c];
    }
  }
  return out;
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
  "export/torchvision",
  "pipeline/raw",
  "pipeline/reference",
  `goal >= ${GOAL * 100}%`,
  "ORT/PyTorch CPU",
  "no-spin/spin",
]];
const absolute: string[][] = [[
  "net",
  "reference img/s",
  "torchvision export",
  "raw img/s",
  "pipeline img/s",
  "PyTorch",
]];
const notes: string[] = [];
const tuning: string[] = [];
const nchw = toNchw(pixels, items.length);
for (const net of nets) {
  const base = getNetSpec(net);
  const weights = formulaWeights(weightLayout(base));
  const tmp = await Deno.makeTempDir({ prefix: "cxr-bench-onnx-" });
  try {
    // PyTorch first, writing torchvision's export of the same trunk for the ORT rotation.
    const tvPath = join(tmp, `${net}-torchvision.onnx`);
    const torch = await torchAnchor(net, {
      images: Math.min(items.length, 32),
      batch,
      threads,
      exportTo: tvPath,
    });
    if (typeof torch === "string") notes.push(torch);
    const ort = await rawRotation(net, weights, typeof torch === "number" ? tvPath : null);
    const pipeline = await pipelineSteady(net, weights, join(tmp, "cache"));
    const torchImgs = typeof torch === "number" ? torch : null;
    const { raw, ref, spin, tv } = ort;
    ratios.push([
      net,
      pct(raw / ref),
      tv ? pct(raw / tv) : "skipped",
      pct(pipeline / raw),
      pct(pipeline / ref),
      [raw / ref, pipeline / raw].every((x) => x >= GOAL) ? "met" : "NOT met",
      torchImgs ? `${(raw / torchImgs).toFixed(1)}x` : "skipped",
      `${(raw / spin).toFixed(2)}x`,
    ]);
    absolute.push([
      net,
      ref.toFixed(1),
      tv ? tv.toFixed(1) : "-",
      raw.toFixed(1),
      pipeline.toFixed(1),
      torchImgs ? torchImgs.toFixed(1) : "-",
    ]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/**
 * Raw ORT img/s (medians over the rounds) of our export, the reference export, our export with
 * spinning threads and, when given, torchvision's export: one session each, in rounds of
 * rotating order so a load that drifts during the run favours no one.
 */
async function rawRotation(net: NetName, weights: NetWeights, torchvisionOnnx: string | null) {
  const base = getNetSpec(net);
  const spec = withHead(base);
  const outputs = [POOLED_LAYER];
  const ours = exportOnnx(spec, weights, { outputs, preprocessing: base.preprocessing });
  const sessions = {
    raw: await openSession(ours, { threads }),
    ref: await openSession(exportOnnx(spec, weights, { outputs }), { threads }),
    spin: await openSession(ours, { threads, spinning: true }),
    tv: torchvisionOnnx ? await openSession(torchvisionOnnx, { threads }) : null,
  };
  const prepared = preprocessInput(pixels, base.preprocessing);
  for (const b of tune) {
    const r = await rawOrt(sessions.raw, IMAGE_INPUT, pixels, b);
    tuning.push(`${net} batch ${b}: raw ORT ${r.toFixed(1)} img/s (load ${loadAverage()})`);
  }
  const times: Record<string, number[]> = { raw: [], ref: [], spin: [], tv: [] };
  const runs = [
    () => rawOrt(sessions.raw, IMAGE_INPUT, pixels, batch).then((x) => times.raw.push(x)),
    () =>
      rawOrt(sessions.ref, sessions.ref.inputNames[0], prepared, batch).then((x) =>
        times.ref.push(x)
      ),
    () => rawOrt(sessions.spin, IMAGE_INPUT, pixels, batch).then((x) => times.spin.push(x)),
  ];
  const tv = sessions.tv;
  if (tv) {
    runs.push(() => rawOrt(tv, tv.inputNames[0], nchw, batch, true).then((x) => times.tv.push(x)));
  }
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < runs.length; k++) await runs[(k + r) % runs.length]();
  }
  for (const m of Object.values(sessions)) await m?.close();
  return {
    raw: median(times.raw),
    ref: median(times.ref),
    spin: median(times.spin),
    tv: tv ? median(times.tv) : null,
  };
}

/**
 * The feature pipeline's img/s (extractFeatures into an empty cache) in steady state: from the
 * end of its first batch to the end. The first batch pays the fresh session's warm-up, which
 * a real extraction pays once over thousands of images and `rawOrt` does before timing.
 */
async function pipelineSteady(net: NetName, weights: NetWeights, cacheRoot: string) {
  const layout = weightLayout(getNetSpec(net));
  const marks: { t: number; n: number }[] = []; // after each batch: time, images computed
  await extractFeatures({
    net,
    weights: { weights, md5: weightsMd5(weights, layout) },
    outputs: [POOLED_LAYER],
    items,
    batchSize: batch,
    threads,
    progress: false,
    cacheRoot,
    onBatch: (n) => marks.push({ t: performance.now(), n }),
  });
  const [first, last] = [marks[0], marks.at(-1)];
  if (!first || !last || last.n <= first.n) return 0;
  return (last.n - first.n) / ((last.t - first.t) / 1000);
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
    "torchvision = torchvision's trunk of the same net (random weights) exported by torch.onnx, fed NCHW; " +
    "pipeline = hash + decode/preprocess (overlapped) + ORT + cache writes, steady state after the first batch; " +
    "no-spin/spin = raw ORT with idle threads not spinning (our setting) over ORT's default.",
);
