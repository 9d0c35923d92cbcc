/**
 * Data benchmark: image decode throughput (sharp) on 224 shared JPEGs and on large synthetic
 * originals, and the batch loader with and without prefetch against a busy consumer.
 * Anchor: decode must outrun the slowest consumer of images, ONNX Runtime feature extraction
 * (ResNet50 ~27 img/s, DenseNet121 ~23 img/s on this 2-core machine, batch 16).
 */
import sharp from "sharp";
import dicomParser from "dicom-parser";
import { join } from "node:path";
import { scanDataset } from "../lib/data/dataset.ts";
import { decodeImage } from "../lib/data/images.ts";
import { loadBatches } from "../lib/data/loader.ts";
import { sharedDir } from "../lib/util/paths.ts";

const N = 224;
const ANCHOR = "> 27 img/s (ORT ResNet50)";

async function timeIt(fn: () => Promise<number>): Promise<{ n: number; seconds: number }> {
  const start = performance.now();
  const n = await fn();
  return { n, seconds: (performance.now() - start) / 1000 };
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* stands in for model compute on the main thread */ }
}

/**
 * The corpus's 12-bit explicit-VR file grown to width x height: Rows/Columns rewritten in place and
 * the (last) Pixel Data element replaced by a gradient of that size.
 */
function bigDicom(src: Uint8Array, width: number, height: number): Uint8Array {
  const ds = dicomParser.parseDicom(src);
  const pd = ds.elements.x7fe00010;
  const head = src.slice(0, pd.dataOffset);
  const view = new DataView(head.buffer);
  view.setUint16(ds.elements.x00280010.dataOffset, height, true);
  view.setUint16(ds.elements.x00280011.dataOffset, width, true);
  view.setUint32(pd.dataOffset - 4, width * height * 2, true); // OW: 4-byte length before data
  const out = new Uint8Array(head.length + width * height * 2);
  out.set(head);
  const px = new DataView(out.buffer, head.length);
  for (let i = 0; i < width * height; i++) px.setUint16(i * 2, (i * 7) % 4096, true);
  return out;
}

const scan = await scanDataset(join(sharedDir(), "data", "chest_xray"));
const step = Math.floor(scan.items.length / N);
const items = Array.from({ length: N }, (_, i) => scan.items[i * step]);
// Warm up sharp (library load, thread pool).
await decodeImage(items[0].path);

const rows: [string, number, number, string][] = [];
const add = (name: string, r: { n: number; seconds: number }, anchor = ANCHOR) =>
  rows.push([name, r.n, r.n / r.seconds, anchor]);

add(
  "decode 224px JPEG, 1 at a time",
  await timeIt(async () => {
    for (const it of items) await decodeImage(it.path);
    return items.length;
  }),
);
add(
  "decode 224px JPEG, 4 concurrent",
  await timeIt(async () => {
    await pool(items, 4, async (it) => void (await decodeImage(it.path)));
    return items.length;
  }),
);

// Users' copies are the originals: mostly single-channel, ~1,000-2,900 px a side.
const big: Uint8Array[] = [];
for (let i = 0; i < 12; i++) {
  const w = 2000, h = 1600;
  const px = new Uint8Array(w * h);
  for (let j = 0; j < px.length; j++) px[j] = ((j % w) * 3 + Math.floor(j / w) * 5 + i * 17) & 0xff;
  big.push(
    new Uint8Array(
      await sharp(px, { raw: { width: w, height: h, channels: 1 } }).toColourspace("b-w").jpeg({
        quality: 90,
      })
        .toBuffer(),
    ),
  );
}
add(
  "decode 2000x1600 gray JPEG -> 224 (nearest), 4 conc.",
  await timeIt(async () => {
    await pool(big, 4, async (b) => void (await decodeImage(b)));
    return big.length;
  }),
);
add(
  "decode 2000x1600 gray JPEG -> 224 (bilinear), 4 conc.",
  await timeIt(async () => {
    await pool(
      big,
      4,
      async (b) => void (await decodeImage(b, 224, { interpolation: "bilinear" })),
    );
    return big.length;
  }),
);

// Radiographs from a PACS: 12-bit DICOM with a VOI window, same size as the JPEGs above.
const dicom = bigDicom(
  await Deno.readFile(join(sharedDir(), "data", "dicom", "mono2_12bit_window.dcm")),
  2000,
  1600,
);
add(
  "decode 2000x1600 12-bit DICOM (window) -> 224, 4 conc.",
  await timeIt(async () => {
    await pool(Array(12).fill(dicom), 4, async (b) => void (await decodeImage(b)));
    return 12;
  }),
  "anchor: the 2000x1600 JPEG row above",
);

// Loader against a consumer that computes 40 ms per batch of 16 (~400 img/s: decode-bound).
for (const prefetch of [0, 1, 2]) {
  add(
    `loadBatches b=16 prefetch=${prefetch} + 40 ms/batch consumer`,
    await timeIt(async () => {
      let n = 0;
      for await (const batch of loadBatches(items, { batchSize: 16, prefetch, progress: false })) {
        n += batch.items.length;
        busy(40);
      }
      return n;
    }),
    "prefetch > 0 faster than 0",
  );
}

console.log(`data benchmark (sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips})`);
console.log(`${"case".padEnd(58)} ${"images".padStart(6)} ${"img/s".padStart(8)}  anchor`);
for (const [name, n, rate, anchor] of rows) {
  console.log(
    `${name.padEnd(58)} ${String(n).padStart(6)} ${rate.toFixed(1).padStart(8)}  ${anchor}`,
  );
}
