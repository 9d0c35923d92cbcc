/**
 * Augmented views through the activation cache: seeded draws, one cache key per view, the
 * cached features of a view equal decode -> transforms -> net, a second pass is all hits, and
 * the per-epoch pick is a pure function of (seed, epoch, image).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeImage } from "../lib/data/images.ts";
import { applyShifts } from "../lib/data/shifts.ts";
import { extractFeatures } from "../lib/features/extract.ts";
import { entryKey, pickView, viewItems, viewRows } from "../lib/features/views.ts";
import { exportOnnx } from "../lib/onnx/export.ts";
import { openSession } from "../lib/onnx/session.ts";
import { tinySpec } from "../lib/onnx/tiny.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { sharedDir } from "../lib/util/paths.ts";

const opts = { sanitizeResources: false, sanitizeOps: false }; // ORT and sharp keep handles
const TRAIN = join(sharedDir(), "data", "chest_xray", "train");
const train = ["NORMAL/IM-0115-0001.jpeg", "PNEUMONIA/person1000_bacteria_2931.jpeg"].map((r) => ({
  path: join(TRAIN, r),
  rel: `train/${r}`,
}));

Deno.test("views: seeded draws, distinct per view, keyed by image, seed, view and transforms", () => {
  const config = { seed: 42, augmentViews: 3, augmentFlip: false };
  const views = viewItems(train, config);
  assert.equal(views.length, 6);
  assert.deepEqual(viewItems(train, config), views, "same seed, same views");
  assert.deepEqual(views.map((v) => v.view), [1, 2, 3, 1, 2, 3]);
  assert.ok(views.every((v) => v.shifts.every((s) => s.kind !== "hflip")), "no flip by default");
  const keys = views.map((v) => entryKey("f".repeat(64), v));
  assert.equal(new Set([...keys, "f".repeat(64)]).size, 7, "every view its own cache entry");
  const reseeded = viewItems(train, { ...config, seed: 43 }).map((v) =>
    entryKey("f".repeat(64), v)
  );
  assert.ok(reseeded.every((k) => !keys.includes(k)), "another seed, other entries");
  assert.equal(
    entryKey("abc", { ...train[0], view: undefined }),
    "abc",
    "the image itself keeps its sha256 as key",
  );
  const flips = viewItems(
    Array.from({ length: 20 }, (_, i) => ({ path: "", rel: `x${i}` })),
    { ...config, augmentFlip: true },
  );
  assert.ok(flips.some((v) => v.shifts.some((s) => s.kind === "hflip")), "--augment-flip flips");

  const rows = [[0, 5, 6, 7], [1]];
  const picks = Array.from({ length: 40 }, (_, e) => pickView(rows, 0, e + 1, 42));
  assert.deepEqual(picks, Array.from({ length: 40 }, (_, e) => pickView(rows, 0, e + 1, 42)));
  assert.deepEqual([...new Set(picks)].sort(), [0, 5, 6, 7], "every view gets drawn");
  assert.ok(Array.from({ length: 10 }, (_, e) => pickView(rows, 1, e, 1)).every((r) => r === 1));
});

Deno.test(
  "views: cached through the frozen net once, equal to decode -> transforms -> net",
  opts,
  async () => {
    const SIZE = 32;
    const spec = tinySpec({ height: SIZE, width: SIZE });
    const weights = { weights: formulaWeights(weightLayout(spec)), md5: "tiny-formula" };
    const root = await Deno.makeTempDir({ prefix: "cxr-views-" });
    const views = viewItems(train, { seed: 7, augmentViews: 2, augmentFlip: false });
    const items = [...train, ...views];
    const req = {
      net: "resnet50" as const,
      spec,
      weights,
      outputs: ["probs"],
      items,
      threads: 1,
      progress: false,
      cacheRoot: root,
    };
    try {
      const fs = await extractFeatures(req);
      assert.equal(fs.stats.computed, 6);
      assert.equal(new Set(fs.entryKeys).size, 6);
      assert.deepEqual(fs.sha256.slice(2), [
        fs.sha256[0],
        fs.sha256[0],
        fs.sha256[1],
        fs.sha256[1],
      ]);
      assert.deepEqual(viewRows(fs.items, [0, 1]), [[0, 2, 3], [1, 4, 5]]);
      const model = await openSession(
        exportOnnx(spec, weights.weights, { outputs: ["probs"], preprocessing: "caffe" }),
        { threads: 1 },
      );
      try {
        for (let i = 2; i < items.length; i++) {
          const img = await decodeImage(items[i].path, SIZE);
          const x = await applyShifts(img.data, views[i - 2].shifts);
          const r = await model.run({ image: { data: x, shape: [1, SIZE, SIZE, 3] } });
          assert.deepEqual(fs.get(i, 0), r.probs.data, `view ${i}`);
        }
      } finally {
        await model.close();
      }
      const again = await extractFeatures(req);
      assert.deepEqual([again.stats.hits, again.stats.computed], [6, 0]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
