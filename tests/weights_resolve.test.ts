import assert from "node:assert/strict";
import { join } from "node:path";
import { referenceDir } from "../lib/util/paths.ts";
import type { WeightLayout } from "../lib/models/layout.ts";
import type { NetName } from "../lib/models/spec.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import {
  ensureImagenetWeights,
  ImagenetWeightsMissingError,
  KERAS_IMAGENET,
  locateImagenetWeights,
  weightsSearchDirs,
} from "../lib/models/weights/imagenet.ts";
import { kerasInitWeights } from "../lib/models/weights/init.ts";
import { loadWeights, saveWeights } from "../lib/models/weights/io.ts";
import { defaultWeightsChoice, resolveWeights, weightsMd5 } from "../lib/models/weights/resolve.ts";

const DENSENET_H5 = join(referenceDir(), "densenet121_formula_notop.h5");
const layouts: Record<NetName, WeightLayout> = JSON.parse(
  Deno.readTextFileSync(join(referenceDir(), "keras_layouts.json")),
);

const ENV_VARS = ["CXR_WEIGHTS_DIR", "KERAS_HOME", "HOME", "CXR_WEIGHTS"];

/** Runs `fn` in a temp dir with the given env vars (others of ENV_VARS unset), then restores. */
async function withEnv(
  vars: (dir: string) => Record<string, string>,
  fn: (dir: string) => Promise<void> | void,
) {
  const dir = await Deno.makeTempDir({ prefix: "cxr-resolve-" });
  const saved = Object.fromEntries(ENV_VARS.map((k) => [k, Deno.env.get(k)]));
  try {
    for (const k of ENV_VARS) Deno.env.delete(k);
    for (const [k, v] of Object.entries(vars(dir))) Deno.env.set(k, v);
    await fn(dir);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
    await Deno.remove(dir, { recursive: true });
  }
}

const offline: typeof fetch = () => Promise.reject(new TypeError("network unreachable"));

Deno.test("imagenet lookup order: CXR_WEIGHTS_DIR, $KERAS_HOME/models, ~/.keras/models", async () => {
  await withEnv((d) => ({
    CXR_WEIGHTS_DIR: join(d, "own"),
    KERAS_HOME: join(d, "keras"),
    HOME: join(d, "home"),
  }), async (d) => {
    const dirs = [join(d, "own"), join(d, "keras", "models"), join(d, "home", ".keras", "models")];
    assert.deepEqual(weightsSearchDirs(), dirs);
    const file = KERAS_IMAGENET.vgg16.file;
    assert.equal(locateImagenetWeights("vgg16"), null);
    for (const dir of [...dirs].reverse()) {
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeTextFile(join(dir, file), "x");
      assert.equal(locateImagenetWeights("vgg16"), join(dir, file));
    }
    assert.equal(locateImagenetWeights("resnet50"), null);
  });
  await withEnv((d) => ({ HOME: join(d, "home") }), (d) => {
    assert.deepEqual(weightsSearchDirs(), [join(d, "home", ".keras", "models")]);
  });
});

Deno.test("imagenet offline and missing: a clear error naming file, URL, md5 and folder", async () => {
  await withEnv((d) => ({ CXR_WEIGHTS_DIR: join(d, "w"), HOME: join(d, "home") }), async (d) => {
    const error = await ensureImagenetWeights("densenet121", {
      fetchImpl: offline,
      progress: false,
    }).then(() => null, (e) => e);
    assert.ok(error instanceof ImagenetWeightsMissingError, String(error));
    const { file, url, md5 } = KERAS_IMAGENET.densenet121;
    for (const part of [file, url, md5, join(d, "w"), "network unreachable", "formula"]) {
      assert.ok(error.message.includes(part), `missing "${part}" in: ${error.message}`);
    }
    // Nothing half-downloaded is left as the final file.
    assert.equal(locateImagenetWeights("densenet121"), null);

    const viaResolve = await resolveWeights("densenet121", "imagenet", layouts.densenet121, {
      download: false,
    }).then(() => null, (e) => e);
    assert.ok(viaResolve instanceof ImagenetWeightsMissingError);
    assert.match(viaResolve.message, /downloads disabled/);
  });
});

Deno.test("imagenet download goes to the first writable folder and is md5-checked", async () => {
  const bytes = await Deno.readFile(DENSENET_H5);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(bytes),
  );
  try {
    await withEnv((d) => ({
      CXR_WEIGHTS_DIR: join(d, "a-file", "sub"), // under a file: cannot be created
      KERAS_HOME: join(d, "keras"),
    }), async (d) => {
      await Deno.writeTextFile(join(d, "a-file"), "not a folder");
      const error = await ensureImagenetWeights("densenet121", {
        baseUrl: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/`,
        progress: false,
      }).then(() => null, (e) => e);
      // The formula file is served in place of Keras' file: its md5 must be refused.
      assert.ok(error instanceof ImagenetWeightsMissingError, String(error));
      assert.match(error.message, /md5 mismatch/);
      assert.ok(
        error.message.includes(join(d, "keras", "models", KERAS_IMAGENET.densenet121.file)),
      );
      assert.deepEqual([...Deno.readDirSync(join(d, "keras", "models"))], []);
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("resolveWeights: imagenet file with the wrong md5 is refused, not used", async () => {
  await withEnv((d) => ({ CXR_WEIGHTS_DIR: d }), async (d) => {
    await Deno.copyFile(DENSENET_H5, join(d, KERAS_IMAGENET.densenet121.file));
    const error = await resolveWeights("densenet121", "imagenet", layouts.densenet121)
      .then(() => null, (e) => e);
    assert.ok(error instanceof Error);
    assert.match(error.message, new RegExp(KERAS_IMAGENET.densenet121.md5));
    assert.match(error.message, /delete it/);
  });
});

Deno.test("resolveWeights: formula, none and a file path, with labels and md5", async () => {
  const layout = layouts.densenet121;
  const formula = await resolveWeights("densenet121", "formula", layout);
  assert.equal(formula.source, "formula");
  assert.equal(formula.label, "formula (not ImageNet)");
  assert.equal(formula.isImageNet, false);
  assert.equal(formula.md5, weightsMd5(formulaWeights(layout), layout));

  const file = await resolveWeights("densenet121", DENSENET_H5, layout);
  assert.equal(file.source, "file");
  assert.equal(file.path, DENSENET_H5);
  assert.equal(file.isImageNet, false);
  assert.match(
    file.label,
    /^file densenet121_formula_notop\.h5 \(md5 [0-9a-f]{8}…\) \(not ImageNet\)$/,
  );
  assert.equal(file.md5, formula.md5, "the h5 holds the formula weights");
  assert.match(file.fileMd5!, /^[0-9a-f]{32}$/);

  const none = await resolveWeights("densenet121", "none", layout, { seed: 1 });
  assert.equal(none.label, "none: Keras initialisers (not ImageNet)");
  assert.equal(none.isImageNet, false);
  assert.notEqual(none.md5, formula.md5);
  assert.equal((await resolveWeights("densenet121", "none", layout, { seed: 1 })).md5, none.md5);
  assert.notEqual((await resolveWeights("densenet121", "none", layout, { seed: 2 })).md5, none.md5);

  const missing = await resolveWeights("densenet121", "nope.h5", layout).then(() => null, (e) => e);
  assert.ok(missing instanceof Error);
  assert.match(missing.message, /weights "nope\.h5": no such file.*imagenet, none, formula/);
});

Deno.test("defaultWeightsChoice: CXR_WEIGHTS, else imagenet", async () => {
  await withEnv(() => ({}), () => {
    assert.equal(defaultWeightsChoice(), "imagenet");
    Deno.env.set("CXR_WEIGHTS", "formula");
    assert.equal(defaultWeightsChoice(), "formula");
  });
});

Deno.test("kerasInitWeights: glorot_uniform kernels, zero biases, BN 1/0/0/1, seeded", () => {
  const vgg = kerasInitWeights(layouts.vgg16, 7);
  const kernel = vgg.get("block1_conv1")!.kernel!;
  assert.deepEqual(kernel.shape, [3, 3, 3, 64]);
  const limit = Math.sqrt(6 / (3 * 3 * 3 + 3 * 3 * 64)); // fan_in 27, fan_out 576
  let max = 0;
  let sumSq = 0;
  for (const v of kernel.data) {
    max = Math.max(max, Math.abs(v));
    sumSq += v * v;
  }
  assert.ok(max <= limit && max > 0.95 * limit, `max ${max} limit ${limit}`);
  const std = Math.sqrt(sumSq / kernel.data.length);
  assert.ok(Math.abs(std - limit / Math.sqrt(3)) < 0.05 * limit, `std ${std}`);
  assert.ok(vgg.get("block1_conv1")!.bias!.data.every((v) => v === 0));
  assert.deepEqual(
    kerasInitWeights(layouts.vgg16, 7).get("block5_conv3")!.kernel!.data.slice(0, 5),
    vgg.get("block5_conv3")!.kernel!.data.slice(0, 5),
  );

  const resnet = kerasInitWeights(layouts.resnet50);
  const bn = resnet.get("conv1_bn")!;
  assert.ok(bn.gamma!.data.every((v) => v === 1) && bn.moving_variance!.data.every((v) => v === 1));
  assert.ok(bn.beta!.data.every((v) => v === 0) && bn.moving_mean!.data.every((v) => v === 0));
  assert.equal(resnet.size, layouts.resnet50.filter((e) => e.weights.length > 0).length);
});

Deno.test("saveWeights / loadWeights round trip and clear errors", async () => {
  const layout = layouts.vgg16.slice(0, 6);
  const weights = formulaWeights(layout);
  const dir = await Deno.makeTempDir({ prefix: "cxr-io-" });
  try {
    const path = join(dir, "trained");
    await saveWeights(path, weights);
    const back = await loadWeights(path);
    assert.equal(weightsMd5(back, layout), weightsMd5(weights, layout));
    assert.deepEqual(back.get("block2_conv1")!.kernel!.shape, [3, 3, 64, 128]);

    const fromResolve = await resolveWeights("vgg16", `${path}.json`, layout);
    assert.equal(fromResolve.md5, weightsMd5(weights, layout));

    const bin = await Deno.readFile(`${path}.bin`);
    await Deno.writeFile(`${path}.bin`, bin.subarray(0, bin.length - 8));
    await assert.rejects(
      () => loadWeights(path),
      /trained\.bin: .* bytes, manifest needs .*truncated/,
    );
    bin[100] ^= 0xff;
    await Deno.writeFile(`${path}.bin`, bin);
    await assert.rejects(() => loadWeights(path), /md5 .* differs/);
    await assert.rejects(() => loadWeights(join(dir, "absent")), /absent\.json: cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
