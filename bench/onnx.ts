/**
 * ONNX Runtime throughput per net: raw ORT on images already decoded in memory vs the whole
 * feature pipeline from JPEG files (hash, decode + preprocess overlapped with inference, cache
 * writes; empty cache), next to the anchors measured on the 2-core reference machine.
 *
 *   deno run -A bench/onnx.ts [--nets resnet50,densenet121,vgg16] [--images 64] [--batch 16]
 *                             [--tune 8,16,32] [--threads N]
 *
 * Weights are `formula` (not ImageNet): speed does not depend on the values.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { getNetSpec, parseNetName } from "../lib/models/registry.ts";
import { withHead } from "../lib/models/head.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { weightsMd5 } from "../lib/models/weights/md5.ts";
import { scanDataset } from "../lib/data/dataset.ts";
import { decodeImage } from "../lib/data/images.ts";
import { exportOnnx, IMAGE_INPUT } from "../lib/onnx/export.ts";
import { defaultThreads, openSession } from "../lib/onnx/session.ts";
import { extractFeatures, POOLED_LAYER } from "../lib/features/extract.ts";
import { dataDir, sharedDir } from "../lib/util/paths.ts";
import type { NetName } from "../lib/models/spec.ts";

/** img/s on the 2-core reference machine (batch 16, 224x224). */
const ANCHORS: Record<NetName, { ort: number; torch: number }> = {
  resnet50: { ort: 27, torch: 5.2 },
  densenet121: { ort: 23, torch: 6.7 },
  vgg16: { ort: 7, torch: 2.5 },
};
const GOAL = 0.95;

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    nets: { type: "string", default: "resnet50,densenet121,vgg16" },
    images: { type: "string", default: "64" },
    batch: { type: "string", default: "16" },
    tune: { type: "string", default: "" },
    threads: { type: "string" },
    data: { type: "string" },
  },
});
const nets = values.nets.split(",").map(parseNetName);
const nImages = Number(values.images);
const batch = Number(values.batch);
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

async function rawOrt(model: Awaited<ReturnType<typeof openSession>>, b: number): Promise<number> {
  const per = 224 * 224 * 3;
  // Warm-up run (first run allocates and picks kernels).
  await model.run({
    [IMAGE_INPUT]: { data: pixels.subarray(0, b * per), shape: [b, 224, 224, 3] },
  });
  const t = performance.now();
  for (let i = 0; i < items.length; i += b) {
    const n = Math.min(b, items.length - i);
    await model.run({
      [IMAGE_INPUT]: { data: pixels.subarray(i * per, (i + n) * per), shape: [n, 224, 224, 3] },
    });
  }
  return items.length / ((performance.now() - t) / 1000);
}

const load = () => Deno.loadavg()[0].toFixed(1);
console.log(
  `ONNX Runtime benchmark: ${items.length} train JPEGs, ${threads} threads, batch ${batch}, ` +
    `formula weights (not ImageNet); load average ${load()} on ${navigator.hardwareConcurrency} cores`,
);
const rows: string[][] = [[
  "net",
  "raw ORT img/s",
  "pipeline img/s",
  "pipeline/raw",
  `goal >= ${GOAL * 100}%`,
  "anchor ORT",
  "anchor PyTorch CPU",
]];
const tuning: string[] = [];
for (const net of nets) {
  const base = getNetSpec(net);
  const spec = withHead(base);
  const layout = weightLayout(base);
  const weights = formulaWeights(layout);
  const model = await openSession(
    exportOnnx(spec, weights, { outputs: [POOLED_LAYER], preprocessing: base.preprocessing }),
    { threads },
  );
  for (const b of tune) {
    tuning.push(`${net} batch ${b}: raw ORT ${(await rawOrt(model, b)).toFixed(1)} img/s`);
  }
  const raw = await rawOrt(model, batch);
  await model.close();
  const cacheRoot = await Deno.makeTempDir({ prefix: "cxr-bench-onnx-" });
  try {
    // Warm the OS file cache so both sides read the JPEGs from memory.
    const set = await extractFeatures({
      net,
      weights: { weights, md5: weightsMd5(weights, layout) },
      outputs: [POOLED_LAYER],
      items,
      batchSize: batch,
      threads,
      progress: false,
      cacheRoot,
    });
    const pipeline = set.stats.computedPerSec;
    const ratio = pipeline / raw;
    rows.push([
      net,
      raw.toFixed(1),
      pipeline.toFixed(1),
      `${(ratio * 100).toFixed(0)}%`,
      ratio >= GOAL ? "met" : "NOT met",
      `~${ANCHORS[net].ort}`,
      `${ANCHORS[net].torch}`,
    ]);
  } finally {
    await Deno.remove(cacheRoot, { recursive: true });
  }
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const r of rows) console.log(r.map((v, c) => v.padEnd(widths[c])).join("  "));
for (const t of tuning) console.log(t);
console.log(
  `pipeline = hash + decode/preprocess (overlapped) + ORT + cache writes, export/session excluded; ` +
    `load average now ${load()} (other processes slow both columns alike).`,
);
