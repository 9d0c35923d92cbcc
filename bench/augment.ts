/**
 * What `--augment-views K` and `--intensity` cost: per net, the cold frozen-base extraction of
 * N training images (the anchor, measured in the same run) against the same images' augmented
 * views (draw + transforms + extraction), extrapolated to the ~4590 training images of the
 * full profile: the minutes each K adds to a net's first training. Also the time of the
 * transforms alone and of the intensity normalisations per image. Print with the load average.
 */
import { join } from "node:path";
import { decodeImage } from "../lib/data/images.ts";
import { normalizeIntensity } from "../lib/data/intensity.ts";
import { applyShifts } from "../lib/data/shifts.ts";
import { scanDataset } from "../lib/data/dataset.ts";
import { extractFeatures, featureSpec, POOLED_LAYER } from "../lib/features/extract.ts";
import { viewItems } from "../lib/features/views.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { NET_NAMES } from "../lib/models/registry.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { sharedDir } from "../lib/util/paths.ts";

const N = Number(Deno.env.get("CXR_BENCH_AUGMENT_IMAGES") ?? 48);
const N_TRAIN = 4590;
const data = join(sharedDir(), "data", "chest_xray");
const all = (await scanDataset(data)).items.filter((i) => i.split === "train");
const step = Math.floor(all.length / N);
const items = Array.from({ length: N }, (_, k) => all[k * step]);
const load = () => (Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" "));
console.log(`${N} training images (every ${step}th), formula weights, cold cache; load ${load()}`);

// Transforms and normalisation alone (no net).
const decoded = await Promise.all(items.map((i) => decodeImage(i.path, 224)));
const views = viewItems(items, { seed: 42, augmentViews: 1, augmentFlip: false });
let t = performance.now();
for (let k = 0; k < N; k++) await applyShifts(decoded[k].data, views[k].shifts);
const transformMs = (performance.now() - t) / N;
const normMs: Record<string, number> = {};
for (const mode of ["equalize", "clahe"] as const) {
  t = performance.now();
  for (const d of decoded) await normalizeIntensity(d.data, 224, mode);
  normMs[mode] = (performance.now() - t) / N;
}
console.log(
  `per image: augmentation transforms ${transformMs.toFixed(1)} ms; equalize ${
    normMs.equalize.toFixed(1)
  } ms, clahe ${normMs.clahe.toFixed(1)} ms`,
);

console.log("net           images img/s  views img/s  view/image  +min per K (4590 images)");
for (const net of [...NET_NAMES].reverse()) {
  const spec = featureSpec(net, [POOLED_LAYER]);
  const weights = { weights: formulaWeights(weightLayout(spec)), md5: `bench-${net}` };
  const cacheRoot = await Deno.makeTempDir({ prefix: "cxr-bench-augment-" });
  try {
    // computedPerSec: decode (+ transforms) + inference + cache writes, not the ONNX export.
    const run = async (list: typeof items) =>
      (await extractFeatures({
        net,
        weights,
        outputs: [POOLED_LAYER],
        items: list,
        progress: false,
        cacheRoot,
      })).stats.computedPerSec;
    await run(all.slice(1, 9)); // warm-up: sessions, sharp, the decode worker
    const images = await run(items);
    const viewsRate = await run(views);
    console.log(
      `${net.padEnd(13)} ${images.toFixed(1).padStart(12)} ${viewsRate.toFixed(1).padStart(11)} ` +
        `${(images / viewsRate).toFixed(2).padStart(11)} ${
          (N_TRAIN / viewsRate / 60).toFixed(1).padStart(12)
        }`,
    );
  } finally {
    await Deno.remove(cacheRoot, { recursive: true });
  }
}
console.log(`load after: ${load()}`);
