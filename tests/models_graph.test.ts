/** Specs, layouts, shapes, cuts and summaries of the three nets (no tfjs). */
import { assert, assertEquals, assertThrows } from "./assert.ts";
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
  for (const net of NET_NAMES) assertEquals(weightLayout(getNetSpec(net)), layouts[net], net);
});

Deno.test("parameter totals and layer counts match Keras", () => {
  const expected = {
    vgg16: { total: 14_714_688, trainable: 14_714_688, layers: 19 },
    resnet50: { total: 23_587_712, trainable: 23_534_592, layers: 175 },
    densenet121: { total: 7_037_504, trainable: 6_953_856, layers: 427 },
  };
  for (const net of NET_NAMES) {
    const s = summarize(getNetSpec(net));
    assertEquals(s.totalParams, expected[net].total, `${net} total`);
    assertEquals(s.totalParams, features.nets[net].params, `${net} vs keras_features.json`);
    assertEquals(s.trainableParams, expected[net].trainable, `${net} trainable`);
    assertEquals(s.rows.length, expected[net].layers, `${net} layers`);
  }
  // include_top=True totals as Keras reports them.
  assertEquals(summarize(getNetSpec("vgg16", { includeTop: true })).totalParams, 138_357_544);
  assertEquals(summarize(getNetSpec("resnet50", { includeTop: true })).totalParams, 25_636_712);
  assertEquals(summarize(getNetSpec("densenet121", { includeTop: true })).totalParams, 8_062_504);
});

Deno.test("output shapes match the reference layer shapes", () => {
  for (const net of NET_NAMES) {
    const shapes = inferShapes(getNetSpec(net));
    for (const [layer, stats] of Object.entries(features.nets[net].outputs.formula.layers)) {
      assertEquals(shapes.get(layer), stats.shape.slice(1), `${net} ${layer}`);
    }
  }
  assertEquals(inferShapes(getNetSpec("densenet121")).get("relu"), [7, 7, 1024]);
});

Deno.test("cutAt: Keras frontier at the default fine-tuning layers", () => {
  const dn = cutAt(getNetSpec("densenet121"), "conv5_block16_0_bn");
  assertEquals(dn.frontier, ["conv5_block15_concat"]);
  assertEquals(dn.tail.layers.map((l) => l.name), [
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
  assertEquals(dn.tail.layers[0], {
    kind: "InputLayer",
    name: "conv5_block15_concat",
    inputs: [],
    shape: [7, 7, 992],
  });
  assertEquals(dn.frozen.outputs, ["conv5_block15_concat"]);
  assertEquals(dn.frozen.layers.length, 427 - 9);

  const rn = cutAt(getNetSpec("resnet50"), "conv5_block3_1_conv");
  assertEquals(rn.frontier, ["conv5_block2_out"]);
  assertEquals(rn.tail.output, "conv5_block3_out");
  assertEquals(rn.tail.layers.length, 1 + 10);

  // A cut inside a residual block: both the block input and the branch cross the frontier.
  const mid = cutAt(getNetSpec("resnet50"), "conv5_block3_2_conv");
  assertEquals(mid.frontier, ["conv5_block2_out", "conv5_block3_1_relu"]);

  // Each frozen layer is in `frozen` exactly when it is needed for the frontier.
  for (const net of NET_NAMES) {
    const info = NET_INFO[net];
    const spec = withHead(getNetSpec(net));
    const cut = cutAt(spec, info.defaultUnfreezeFrom ?? "head_pool");
    const names = new Set([...cut.frozen.layers, ...cut.tail.layers].map((l) => l.name));
    assertEquals(names.size, spec.layers.length, `${net}: frozen + tail cover the net`);
    assertEquals(cut.tail.output, "head_dense");
  }
  assertEquals(cutAt(withHead(getNetSpec("vgg16")), "head_pool").frontier, ["block5_pool"]);
  // Cuts inside the head give rank-1 inputs.
  const head = cutAt(withHead(getNetSpec("vgg16")), "head_dense");
  assertEquals(
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
  assertThrows(() => cutAt(spec, "nope"), `no layer named "nope"`);
  assertThrows(() => subgraph(spec, ["conv2_block1_out"], ["conv1_conv"]), "input_1");
  assertThrows(() => parseNetName("vgg19"), "vgg16, resnet50, densenet121");
  assertEquals(parseNetName(" DenseNet121 "), "densenet121");
});

Deno.test("withHead appends head_pool, head_dropout and a sigmoid head_dense", () => {
  const spec = withHead(getNetSpec("densenet121"), { dropout: 0.3 });
  const tail = spec.layers.slice(-3);
  assertEquals(tail.map((l) => [l.name, l.kind]), [
    ["head_pool", "GlobalAveragePooling2D"],
    ["head_dropout", "Dropout"],
    ["head_dense", "Dense"],
  ]);
  assertEquals(tail[0].inputs, ["relu"]);
  assertEquals(spec.output, "head_dense");
  assertEquals(summarize(spec).totalParams, 7_037_504 + 1024 + 1);
  assertThrows(() => withHead(getNetSpec("vgg16"), { dropout: 1 }), "dropout");
});

Deno.test("specs follow Keras: names, paddings, strides, epsilons", () => {
  const rn = getNetSpec("resnet50");
  const byName = new Map(rn.layers.map((l) => [l.name, l]));
  assertEquals(byName.get("conv1_pad"), {
    kind: "ZeroPadding2D",
    name: "conv1_pad",
    inputs: ["input_1"],
    padding: [[3, 3], [3, 3]],
  });
  const c31 = byName.get("conv3_block1_1_conv")!;
  assert(c31.kind === "Conv2D" && c31.strides[0] === 2 && c31.kernelSize[0] === 1);
  const bn = byName.get("conv4_block2_2_bn")!;
  assert(bn.kind === "BatchNormalization" && bn.epsilon === 1.001e-5);
  const dn = densenet121({ inputShape: [96, 96, 3] });
  assertEquals(inferShapes(dn).get("relu"), [3, 3, 1024]);
  const pool = dn.layers.find((l) => l.name === "pool3_pool")!;
  assert(pool.kind === "AveragePooling2D" && pool.strides[0] === 2);
  const vgg = getNetSpec("vgg16");
  assertEquals(vgg.layers.map((l) => l.name).slice(-2), ["block5_conv3", "block5_pool"]);
  assertEquals(
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
    assertEquals(summaryMain(["--model", "DenseNet121", "--trainable-from", "default"]), 0);
    const text = lines.join("\n");
    assert(text.includes("Total params: 7,037,504"), text.slice(-400));
    assert(text.includes("Layers: 427"));
    assert(
      /conv5_block16_0_bn \(BatchNormalization\)\s+\(None, 7, 7, 992\)\s+3,968\s+yes/.test(text),
    );
    assert(/conv5_block15_concat \(Concatenate\)\s+\(None, 7, 7, 992\)\s+0\s+no/.test(text));
    lines.length = 0;
    assertEquals(summaryMain(["--model", "vgg16", "--bogus"]), 2);
    assert(lines.join("\n").includes("--bogus"));
    assertEquals(summaryMain(["--model", "alexnet"]), 2);
    assertEquals(summaryMain(["--model", "resnet50", "--trainable-from", "nope"]), 2);
    assert(lines.join("\n").includes(`"nope"`));
  } finally {
    console.log = log;
    console.error = err;
  }
});
