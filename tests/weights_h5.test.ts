import assert from "node:assert/strict";
import { join } from "node:path";
import { referenceDir } from "../lib/util/paths.ts";
import type { WeightLayout } from "../lib/models/layout.ts";
import type { NetName, NetWeights } from "../lib/models/spec.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import {
  kindFromWeightName,
  readKerasH5,
  WeightsFileError,
  writeKerasH5,
} from "../lib/models/weights/h5.ts";
import { weightsMd5 } from "../lib/models/weights/md5.ts";

const DENSENET_H5 = join(referenceDir(), "densenet121_formula_notop.h5");

async function kerasLayouts(): Promise<Record<NetName, WeightLayout>> {
  return JSON.parse(await Deno.readTextFile(join(referenceDir(), "keras_layouts.json")));
}

/** Exact equality of two NetWeights over `layout` (every value, bit for bit). */
function assertSameWeights(actual: NetWeights, expected: NetWeights, layout: WeightLayout) {
  let count = 0;
  for (const entry of layout) {
    for (const w of entry.weights) {
      const a = actual.get(entry.layer)?.[w.kind];
      const e = expected.get(entry.layer)?.[w.kind];
      assert.ok(a, `missing ${entry.layer}/${w.kind}`);
      assert.ok(e);
      assert.deepEqual(a.shape, w.shape, `${entry.layer}/${w.kind} shape`);
      assert.equal(a.data.length, e.data.length);
      for (let i = 0; i < a.data.length; i++) {
        if (!Object.is(a.data[i], e.data[i])) {
          assert.fail(`${entry.layer}/${w.kind}[${i}]: ${a.data[i]} != ${e.data[i]}`);
        }
      }
      count++;
    }
  }
  assert.equal(actual.size, expected.size);
  return count;
}

/** A tiny 3-layer layout for fast error-path tests. */
const TINY: WeightLayout = [
  { layer: "input_1", weights: [] },
  {
    layer: "block1_conv1",
    weights: [{ kind: "kernel", shape: [3, 3, 3, 4] }, { kind: "bias", shape: [4] }],
  },
  { layer: "block1_pool", weights: [] },
  {
    layer: "bn",
    weights: [
      { kind: "gamma", shape: [4] },
      { kind: "beta", shape: [4] },
      { kind: "moving_mean", shape: [4] },
      { kind: "moving_variance", shape: [4] },
    ],
  },
];

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cxr-weights-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readKerasH5: DenseNet121 reference h5 equals the formula weights exactly", async () => {
  const layout = (await kerasLayouts()).densenet121;
  const fromFile = await readKerasH5(DENSENET_H5, layout);
  const expected = formulaWeights(layout);
  const tensors = assertSameWeights(fromFile, expected, layout);
  assert.equal(tensors, 604); // 120 conv kernels + 121 BNs x 4
  assert.equal(weightsMd5(fromFile, layout), weightsMd5(expected, layout));
});

for (const net of ["vgg16", "resnet50"] as const) {
  Deno.test(`writeKerasH5 -> readKerasH5 round trip: ${net}`, async () => {
    const layout = (await kerasLayouts())[net];
    const weights = formulaWeights(layout);
    await withTempDir(async (dir) => {
      const path = join(dir, `${net}.h5`);
      await writeKerasH5(path, layout, weights);
      const back = await readKerasH5(path, layout);
      assertSameWeights(back, weights, layout);
    });
  });
}

Deno.test("readKerasH5: Keras 1 weight names are matched by position and shape", async () => {
  const weights = formulaWeights(TINY);
  await withTempDir(async (dir) => {
    const path = join(dir, "keras1.h5");
    const suffix = { kernel: "W", bias: "b", gamma: "gamma", beta: "beta" } as Record<
      string,
      string
    >;
    await writeKerasH5(path, TINY, weights, {
      weightName: (layer, kind, i) => `${layer}_${suffix[kind] ?? `running_${i}`}_1:0`,
      kerasVersion: "1.2.2",
    });
    assert.equal(kindFromWeightName("block1_conv1_W_1:0"), null);
    assertSameWeights(await readKerasH5(path, TINY), weights, TINY);
  });
});

Deno.test("readKerasH5: Keras 2 names are matched by kind even when stored out of order", async () => {
  const weights = formulaWeights(TINY);
  const reversed: WeightLayout = TINY.map((e) => ({ ...e, weights: [...e.weights].reverse() }));
  await withTempDir(async (dir) => {
    const path = join(dir, "reversed.h5");
    await writeKerasH5(path, reversed, weights);
    assertSameWeights(await readKerasH5(path, TINY), weights, TINY);
  });
});

Deno.test("readKerasH5: chunked layer_names / weight_names attributes", async () => {
  const layout = (await kerasLayouts()).densenet121;
  const small = layout.slice(0, 40);
  const weights = formulaWeights(small);
  await withTempDir(async (dir) => {
    const path = join(dir, "chunked.h5");
    // A 64-byte limit forces the chunking Keras does for attributes over 64 KiB.
    await writeKerasH5(path, small, weights, { attributeLimit: 64 });
    const { default: h5wasm } = await import("h5wasm/node");
    const file = new h5wasm.File(path, "r");
    const attrs = Object.keys(file.attrs);
    const bnAttrs = Object.keys((file.get("conv1/bn") as InstanceType<typeof h5wasm.Group>).attrs);
    file.close();
    assert.ok(!attrs.includes("layer_names"), attrs.join());
    assert.ok(attrs.includes("layer_names0") && attrs.includes("layer_names9"), attrs.join());
    // 4 names of <= 26 bytes: 104 > 64, split like np.array_split into 2 x 52 bytes.
    assert.deepEqual(bnAttrs.sort(), ["weight_names0", "weight_names1"]);
    assertSameWeights(await readKerasH5(path, small), weights, small);
  });
});

Deno.test("readKerasH5: layer names that differ are matched in Keras order", async () => {
  const weights = formulaWeights(TINY);
  const renamed: WeightLayout = TINY.map((e) => ({ ...e, layer: `old_${e.layer}` }));
  const renamedWeights: NetWeights = new Map(
    [...weights].map(([name, tensors]) => [`old_${name}`, tensors]),
  );
  await withTempDir(async (dir) => {
    const path = join(dir, "renamed.h5");
    await writeKerasH5(path, renamed, renamedWeights);
    assertSameWeights(await readKerasH5(path, TINY), weights, TINY);
  });
});

Deno.test("readKerasH5: clear errors for bad files", async (t) => {
  const weights = formulaWeights(TINY);
  await withTempDir(async (dir) => {
    const good = join(dir, "good.h5");
    await writeKerasH5(good, TINY, weights);

    await t.step("truncated file", async () => {
      const bytes = await Deno.readFile(DENSENET_H5);
      const path = join(dir, "truncated.h5");
      await Deno.writeFile(path, bytes.subarray(0, bytes.length - 100_000));
      const layout = (await kerasLayouts()).densenet121;
      const error = await assertRejectsWith(() => readKerasH5(path, layout), path);
      assert.match(error.message, /truncated/);
    });

    await t.step("not an HDF5 file", async () => {
      const path = join(dir, "page.h5");
      await Deno.writeTextFile(path, "<html>403 Forbidden</html>\n");
      const error = await assertRejectsWith(() => readKerasH5(path, TINY), path);
      assert.match(error.message, /not an HDF5 file/);
    });

    await t.step("missing file", async () => {
      const path = join(dir, "absent.h5");
      const error = await assertRejectsWith(() => readKerasH5(path, TINY), path);
      assert.match(error.message, /no such weights file/);
    });

    await t.step("missing layer", async () => {
      const more: WeightLayout = [
        ...TINY,
        { layer: "extra_dense", weights: [{ kind: "kernel", shape: [4, 2] }] },
      ];
      const error = await assertRejectsWith(() => readKerasH5(good, more), good);
      assert.match(error.message, /layer extra_dense \(kernel \[4, 2\]\) is not in the file/);
      assert.equal(error.layer, "extra_dense");
    });

    await t.step("wrong shape", async () => {
      const wrong: WeightLayout = TINY.map((e) =>
        e.layer === "block1_conv1"
          ? {
            ...e,
            weights: [{ kind: "kernel", shape: [3, 3, 3, 8] }, { kind: "bias", shape: [8] }],
          }
          : e
      );
      const error = await assertRejectsWith(() => readKerasH5(good, wrong), good);
      assert.match(error.message, /layer block1_conv1/);
      assert.match(error.message, /\[3, 3, 3, 4\]/);
      assert.match(error.message, /\[3, 3, 3, 8\]/);
      assert.equal(error.layer, "block1_conv1");
    });

    await t.step("listed layer group or weight dataset missing", async () => {
      const { default: h5wasm } = await import("h5wasm/node");
      const path = join(dir, "holes.h5");
      const file = new h5wasm.File(path, "w");
      file.create_attribute("layer_names", ["a", "b"], null, "S1");
      file.create_group("a").create_attribute("weight_names", ["a/kernel:0"], null, "S10");
      file.close();
      const layout: WeightLayout = [{ layer: "a", weights: [{ kind: "kernel", shape: [2] }] }];
      const noGroup = await assertRejectsWith(() => readKerasH5(path, layout), path);
      assert.match(noGroup.message, /layer b is listed in layer_names but has no group/);
      const onlyA = new h5wasm.File(path, "a");
      onlyA.delete_attribute("layer_names");
      onlyA.create_attribute("layer_names", ["a"], null, "S1");
      onlyA.close();
      const missing = await assertRejectsWith(() => readKerasH5(path, layout), path);
      assert.match(
        missing.message,
        /layer a: weight a\/kernel:0 is listed in weight_names but missing/,
      );
    });

    await t.step("wrong number of weights in a layer", async () => {
      const noBias: WeightLayout = TINY.map((e) =>
        e.layer === "block1_conv1" ? { ...e, weights: [e.weights[0]] } : e
      );
      const error = await assertRejectsWith(() => readKerasH5(good, noBias), good);
      assert.match(error.message, /block1_conv1: expected 1 weights \(kernel \[3, 3, 3, 4\]\)/);
    });
  });
});

async function assertRejectsWith(
  fn: () => Promise<unknown>,
  file: string,
): Promise<WeightsFileError> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof WeightsFileError, String(error));
    assert.equal(error.file, file);
    assert.ok(error.message.startsWith(file), error.message);
    return error;
  }
  assert.fail("expected a WeightsFileError");
}
