/** Specs, layouts, shapes, cuts and summaries of the three nets (no tfjs). */
import assert from "node:assert/strict";
import { loadKerasFeatures, loadKerasLayouts } from "./models_reference.ts";
import { getNetSpec, NET_INFO, NET_NAMES, parseNetName } from "../lib/models/registry.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { cutAt, inferShapes, subgraph } from "../lib/models/graph.ts";
import { withHead } from "../lib/models/head.ts";
import { summarize } from "../lib/models/summary.ts";
import { main as summaryMain } from "../lib/cli/models_summary.ts";
import { densenet121 } from "../lib/models/densenet121.ts";

const layouts = loadKerasLayouts();
const features = loadKerasFeatures();

Deno.test("weight layouts equal keras_layouts.json for all three nets", () => {
  for (const net of NET_NAMES) assert.deepEqual(weightLayout(getNetSpec(net)), layouts[net], net);
});

Deno.test("parameter totals and layer counts match Keras", () => {
  const expected = {
    vgg16: { total: 14_714_688, trainable: 14_714_688, layers: 19 },
    resnet50: { total: 23_587_712, trainable: 23_534_592, layers: 175 },
    densenet121: { total: 7_037_504, trainable: 6_953_856, layers: 427 },
  };
  for (const net of NET_NAMES) {
    const s = summarize(getNetSpec(net));
    assert.deepEqual(s.totalParams, expected[net].total, `${net} total`);
    assert.deepEqual(s.totalParams, features.nets[net].params, `${net} vs keras_features.json`);
    assert.deepEqual(s.trainableParams, expected[net].trainable, `${net} trainable`);
    assert.deepEqual(s.rows.length, expected[net].layers, `${net} layers`);
  }
  // include_top=True totals as Keras reports them.
  assert.deepEqual(summarize(getNetSpec("vgg16", { includeTop: true })).totalParams, 138_357_544);
  assert.deepEqual(summarize(getNetSpec("resnet50", { includeTop: true })).totalParams, 25_636_712);
  assert.deepEqual(
    summarize(getNetSpec("densenet121", { includeTop: true })).totalParams,
    8_062_504,
  );
});

Deno.test("output shapes match the reference layer shapes", () => {
  for (const net of NET_NAMES) {
    const shapes = inferShapes(getNetSpec(net));
    for (const [layer, stats] of Object.entries(features.nets[net].outputs.formula.layers)) {
      assert.deepEqual(shapes.get(layer), stats.shape.slice(1), `${net} ${layer}`);
    }
  }
  assert.deepEqual(inferShapes(getNetSpec("densenet121")).get("relu"), [7, 7, 1024]);
});

Deno.test("cutAt: Keras frontier at the default fine-tuning layers", () => {
  const dn = cutAt(getNetSpec("densenet121"), "conv5_block16_0_bn");
  assert.deepEqual(dn.frontier, ["conv5_block15_concat"]);
  assert.deepEqual(dn.tail.layers.map((l) => l.name), [
    "conv5_block15_concat",
    "conv5_block16_0_bn",
    "conv5_block16_0_relu",
    "conv5_block16_1_conv",
    "conv5_block16_1_bn",
    "conv5_block16_1_relu",
    "conv5_block16_2_conv",
    "conv5_block16_concat",
    "bn",
    "relu",
  ]);
  assert.deepEqual(dn.tail.layers[0], {
    kind: "InputLayer",
    name: "conv5_block15_concat",
    inputs: [],
    shape: [7, 7, 992],
  });
  assert.deepEqual(dn.frozen.outputs, ["conv5_block15_concat"]);
  assert.deepEqual(dn.frozen.layers.length, 427 - 9);

  const rn = cutAt(getNetSpec("resnet50"), "conv5_block3_1_conv");
  assert.deepEqual(rn.frontier, ["conv5_block2_out"]);
  assert.deepEqual(rn.tail.output, "conv5_block3_out");
  assert.deepEqual(rn.tail.layers.length, 1 + 10);

  // A cut inside a residual block: both the block input and the branch cross the frontier.
  const mid = cutAt(getNetSpec("resnet50"), "conv5_block3_2_conv");
  assert.deepEqual(mid.frontier, ["conv5_block2_out", "conv5_block3_1_relu"]);

  // Each frozen layer is in `frozen` exactly when it is needed for the frontier.
  for (const net of NET_NAMES) {
    const info = NET_INFO[net];
    const spec = withHead(getNetSpec(net));
    const cut = cutAt(spec, info.defaultUnfreezeFrom ?? "head_pool");
    const names = new Set([...cut.frozen.layers, ...cut.tail.layers].map((l) => l.name));
    assert.deepEqual(names.size, spec.layers.length, `${net}: frozen + tail cover the net`);
    assert.deepEqual(cut.tail.output, "head_dense");
  }
  assert.deepEqual(cutAt(withHead(getNetSpec("vgg16")), "head_pool").frontier, ["block5_pool"]);
  // Cuts inside the head give rank-1 inputs.
  const head = cutAt(withHead(getNetSpec("vgg16")), "head_dense");
  assert.deepEqual(
    head.tail.layers.map((
      l,
    ) => [l.name, l.kind === "InputLayer" ? [...l.shape] as (number | null)[] : null]),
    [
      ["head_dropout", [512]],
      ["head_dense", null],
    ],
  );
});

Deno.test("subgraph and cutAt give clear errors", () => {
  const spec = getNetSpec("resnet50");
  assert.throws(() => cutAt(spec, "nope"), /no layer named "nope"/);
  assert.throws(() => subgraph(spec, ["conv2_block1_out"], ["conv1_conv"]), /input_1/);
  assert.throws(() => parseNetName("vgg19"), /vgg16, resnet50, densenet121/);
  assert.deepEqual(parseNetName(" DenseNet121 "), "densenet121");
});

Deno.test("withHead appends head_pool, head_dropout and a sigmoid head_dense", () => {
  const spec = withHead(getNetSpec("densenet121"), { dropout: 0.3 });
  const tail = spec.layers.slice(-3);
  assert.deepEqual(tail.map((l) => [l.name, l.kind]), [
    ["head_pool", "GlobalAveragePooling2D"],
    ["head_dropout", "Dropout"],
    ["head_dense", "Dense"],
  ]);
  assert.deepEqual(tail[0].inputs, ["relu"]);
  assert.deepEqual(spec.output, "head_dense");
  assert.deepEqual(summarize(spec).totalParams, 7_037_504 + 1024 + 1);
  assert.throws(() => withHead(getNetSpec("vgg16"), { dropout: 1 }), /dropout/);
});

Deno.test("specs follow Keras: names, paddings, strides, epsilons", () => {
  const rn = getNetSpec("resnet50");
  const byName = new Map(rn.layers.map((l) => [l.name, l]));
  assert.deepEqual(byName.get("conv1_pad"), {
    kind: "ZeroPadding2D",
    name: "conv1_pad",
    inputs: ["input_1"],
    padding: [[3, 3], [3, 3]],
  });
  const c31 = byName.get("conv3_block1_1_conv")!;
  assert.ok(c31.kind === "Conv2D" && c31.strides[0] === 2 && c31.kernelSize[0] === 1);
  const bn = byName.get("conv4_block2_2_bn")!;
  assert.ok(bn.kind === "BatchNormalization" && bn.epsilon === 1.001e-5);
  const dn = densenet121({ inputShape: [96, 96, 3] });
  assert.deepEqual(inferShapes(dn).get("relu"), [3, 3, 1024]);
  const pool = dn.layers.find((l) => l.name === "pool3_pool")!;
  assert.ok(pool.kind === "AveragePooling2D" && pool.strides[0] === 2);
  const vgg = getNetSpec("vgg16");
  assert.deepEqual(vgg.layers.map((l) => l.name).slice(-2), ["block5_conv3", "block5_pool"]);
  assert.deepEqual(
    [getNetSpec("vgg16"), rn, dn].map((s) => s.preprocessing),
    ["caffe", "caffe", "torch"],
  );
});

Deno.test("models:summary CLI prints Keras totals and rejects bad flags", () => {
  const lines: string[] = [];
  const log = console.log;
  const err = console.error;
  console.log = (s: string) => lines.push(s);
  console.error = (s: string) => lines.push(s);
  try {
    assert.deepEqual(summaryMain(["--model", "DenseNet121", "--trainable-from", "default"]), 0);
    const text = lines.join("\n");
    assert.ok(text.includes("Total params: 7,037,504"), text.slice(-400));
    assert.ok(text.includes("Layers: 427"));
    assert.ok(
      /conv5_block16_0_bn \(BatchNormalization\)\s+\(None, 7, 7, 992\)\s+3,968\s+yes/.test(text),
    );
    assert.ok(/conv5_block15_concat \(Concatenate\)\s+\(None, 7, 7, 992\)\s+0\s+no/.test(text));
    lines.length = 0;
    assert.deepEqual(summaryMain(["--model", "vgg16", "--bogus"]), 2);
    assert.ok(lines.join("\n").includes("--bogus"));
    assert.deepEqual(summaryMain(["--model", "alexnet"]), 2);
    assert.deepEqual(summaryMain(["--model", "resnet50", "--trainable-from", "nope"]), 2);
    assert.ok(lines.join("\n").includes(`"nope"`));
  } finally {
    console.log = log;
    console.error = err;
  }
});
