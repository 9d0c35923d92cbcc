import assert from "node:assert/strict";
import { join } from "node:path";
import { crc32, decodeEntry, encodeEntry } from "../lib/features/cache.ts";
import { extractFeatures, type FeatureRequest } from "../lib/features/extract.ts";
import { exportOnnx } from "../lib/onnx/export.ts";
import { openSession } from "../lib/onnx/session.ts";
import { tinySpec } from "../lib/onnx/tiny.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { decodeImage } from "../lib/data/images.ts";
import { sharedDir } from "../lib/util/paths.ts";

const opts = { sanitizeResources: false, sanitizeOps: false }; // ORT and sharp keep handles
const SIZE = 32;
const spec = tinySpec({ height: SIZE, width: SIZE });
const weights = { weights: formulaWeights(weightLayout(spec)), md5: "tiny-formula" };
const OUTPUTS = ["cat", "probs"];
const trainDir = join(sharedDir(), "data", "chest_xray", "train");
const images = [
  "NORMAL/IM-0115-0001.jpeg",
  "NORMAL/IM-0117-0001.jpeg",
  "NORMAL/IM-0119-0001.jpeg",
  "PNEUMONIA/person1000_bacteria_2931.jpeg",
  "PNEUMONIA/person1000_virus_1681.jpeg",
  "PNEUMONIA/person1001_bacteria_2932.jpeg",
].map((rel) => ({ path: join(trainDir, rel) }));

function request(
  cacheRoot: string,
  items: { path: string }[],
  extra: Partial<FeatureRequest<{ path: string }>> = {},
): FeatureRequest<{ path: string }> {
  return {
    net: "resnet50",
    spec,
    weights,
    outputs: OUTPUTS,
    items,
    batchSize: 4,
    threads: 1,
    progress: false,
    cacheRoot,
    ...extra,
  };
}

/** The same features computed directly (decode + ORT), without the cache. */
async function direct(paths: string[]): Promise<Record<string, Float32Array[]>> {
  const model = await openSession(
    exportOnnx(spec, weights.weights, { outputs: OUTPUTS, preprocessing: "caffe" }),
    { threads: 1 },
  );
  const out: Record<string, Float32Array[]> = { cat: [], probs: [] };
  for (const p of paths) {
    const img = await decodeImage(p, SIZE);
    const r = await model.run({ image: { data: img.data, shape: [1, SIZE, SIZE, 3] } });
    for (const o of OUTPUTS) out[o].push(r[o].data.slice());
  }
  await model.close();
  return out;
}

function maxRel(a: Float32Array, r: Float32Array): number {
  let d = 0, s = 0;
  r.forEach((v, i) => {
    d = Math.max(d, Math.abs(a[i] - v));
    s = Math.max(s, Math.abs(v));
  });
  return d / s;
}

Deno.test("entry encoding round-trips and detects damage", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926); // standard check value
  const x = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 100);
  assert.deepEqual(decodeEntry(encodeEntry(x, false), 50), x);
  const half = decodeEntry(encodeEntry(x, true), 50) as Float32Array;
  assert.ok(maxRel(half, x) < 1e-3);
  assert.equal(encodeEntry(x, true).length, 16 + 100);
  // Out of float16 range: stored as float32 instead of overflowing to Infinity.
  const big = Float32Array.of(1e6, -2, 3);
  assert.deepEqual(decodeEntry(encodeEntry(big, true), 3), big);
  const bytes = encodeEntry(x, false);
  bytes[40] ^= 1;
  assert.equal(decodeEntry(bytes, 50), "checksum mismatch");
  assert.match(decodeEntry(bytes.subarray(0, 100), 50) as string, /length/);
  assert.match(decodeEntry(encodeEntry(x, false), 49) as string, /expected 49/);
});

Deno.test(
  "features: computed once, then read from the cache; damage recomputed; bad images skipped",
  opts,
  async () => {
    const tmp = await Deno.makeTempDir({ prefix: "cxr-features-" });
    try {
      const broken = join(tmp, "broken.jpeg");
      await Deno.writeTextFile(broken, "not a jpeg");
      const items = [...images.slice(0, 3), { path: broken }, ...images.slice(3)];
      const root = join(tmp, "cache");

      const first = await extractFeatures(request(root, items));
      assert.equal(first.stats.hits, 0);
      assert.equal(first.stats.computed, 6);
      assert.equal(first.stats.failed.length, 1);
      assert.equal(first.stats.failed[0].item.path, broken);
      assert.deepEqual(first.items.map((i) => i.path), images.map((i) => i.path));
      assert.deepEqual(first.shapes, [[9, 9, 16], [3]]);
      const ref = await direct(images.map((i) => i.path));
      for (const [o, name] of OUTPUTS.entries()) {
        for (let i = 0; i < images.length; i++) {
          const err = maxRel(first.get(i, o), ref[name][i]);
          assert.ok(err <= 1e-6, `${name} image ${i}: ${err}`);
        }
      }
      const b = first.batch([4, 1], 1);
      assert.deepEqual(b.subarray(3, 6), ref.probs[1]);

      const second = await extractFeatures(request(root, items));
      assert.equal(second.stats.hits, 6);
      assert.equal(second.stats.computed, 0);
      assert.equal(second.stats.failed.length, 1);
      for (let i = 0; i < images.length; i++) assert.deepEqual(second.get(i, 0), first.get(i, 0));

      // Truncate one entry and flip a byte in another: both are detected and recomputed.
      const e0 = join(first.cacheDir, first.sha256[0].slice(0, 2), `${first.sha256[0]}.bin`);
      const e1 = join(first.cacheDir, first.sha256[1].slice(0, 2), `${first.sha256[1]}.bin`);
      await Deno.truncate(e0, 100);
      const bytes = await Deno.readFile(e1);
      bytes[bytes.length - 5] ^= 0xff;
      await Deno.writeFile(e1, bytes);
      const third = await extractFeatures(request(root, items));
      assert.equal(third.stats.corrupt, 2);
      assert.equal(third.stats.hits, 4);
      assert.equal(third.stats.computed, 2);
      assert.deepEqual(third.get(1, 0), first.get(1, 0));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
);

Deno.test("features: an interrupted extraction resumes where it stopped", opts, async () => {
  const tmp = await Deno.makeTempDir({ prefix: "cxr-features-" });
  try {
    const ac = new AbortController();
    const req = request(tmp, images, {
      batchSize: 2,
      signal: ac.signal,
      onBatch: () => ac.abort(),
    });
    await assert.rejects(extractFeatures(req));
    const resumed = await extractFeatures(request(tmp, images, { batchSize: 2 }));
    assert.equal(resumed.stats.hits, 2);
    assert.equal(resumed.stats.computed, 4);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("features: float16 storage halves entries and stays within 1e-3", opts, async () => {
  const tmp = await Deno.makeTempDir({ prefix: "cxr-features-" });
  try {
    const items = images.slice(0, 2);
    const f32 = await extractFeatures(request(tmp, items));
    const f16 = await extractFeatures(request(tmp, items, { float16: true }));
    assert.notEqual(f16.cacheDir, f32.cacheDir); // dtype is part of the key
    assert.equal(f16.stats.computed, 2);
    for (let i = 0; i < items.length; i++) {
      const err = maxRel(f16.get(i, 0), f32.get(i, 0));
      assert.ok(err <= 1e-3, `float16 error ${err}`);
      const size =
        (await Deno.stat(join(f16.cacheDir, f16.sha256[i].slice(0, 2), `${f16.sha256[i]}.bin`)))
          .size;
      assert.equal(size, 16 + 2 * (9 * 9 * 16 + 3));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test(
  "features: an export that fails stops the decode worker started beside it",
  opts,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "cxr-features-" });
    try {
      const broken = new Map(weights.weights);
      broken.delete("c1"); // the first conv's weights
      const t = performance.now();
      await assert.rejects(
        extractFeatures(request(root, images, { weights: { weights: broken, md5: "broken" } })),
        /missing weight c1/,
      );
      assert.ok(performance.now() - t < 60_000, "returned (the worker did not keep it waiting)");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
