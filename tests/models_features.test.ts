/**
 * The tfjs models with formula weights compute what Keras computes: pooled features and the
 * listed intermediate layers against ../shared/reference/keras_features.json.
 */
import assert from "node:assert/strict";
import { initBackend, tf } from "../lib/tf/backend.ts";
import { getNetSpec } from "../lib/models/registry.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { readKerasH5 } from "../lib/models/weights/h5.ts";
import { referenceDir } from "../lib/util/paths.ts";
import { join } from "node:path";
import { preprocessInput } from "../lib/models/preprocess.ts";
import { buildTfModel } from "../lib/models/tfjs.ts";
import type { NetName, NetWeights } from "../lib/models/spec.ts";
import {
  globalAverage,
  layerStatsError,
  loadKerasFeatures,
  loadReferenceInputs,
  maxRelError,
} from "./models_reference.ts";

const MUST = 1e-4;
const ref = loadKerasFeatures();

async function checkAgainstKeras(
  net: NetName,
  inputNames: string[],
  loadWeights?: () => Promise<NetWeights>,
): Promise<void> {
  const backend = await initBackend();
  const netRef = ref.nets[net];
  const spec = getNetSpec(net);
  assert.deepEqual(spec.preprocessing, netRef.preprocessing);
  const layerNames = Object.keys(netRef.outputs[inputNames[0]].layers);
  const outputs = [...layerNames.filter((l) => l !== spec.output), spec.output];
  const t0 = performance.now();
  const weights = loadWeights ? await loadWeights() : formulaWeights(weightLayout(spec));
  const model = buildTfModel({ ...spec, outputs }, weights);
  const rgb = await loadReferenceInputs(ref, inputNames);
  const x = tf.tensor4d(preprocessInput(rgb, spec.preprocessing), [inputNames.length, 224, 224, 3]);
  const t1 = performance.now();
  const ys = model.predict(x) as tf.Tensor[];
  const values = await Promise.all(ys.map((y) => y.data() as Promise<Float32Array>));
  const t2 = performance.now();
  const shapes = ys.map((y) => y.shape as number[]);
  tf.dispose([x, ...ys]);
  model.dispose();

  const lines: string[] = [];
  let worstPooled = 0;
  let worstLayer = 0;
  for (const [b, name] of inputNames.entries()) {
    const outRef = netRef.outputs[name];
    const last = shapes[outputs.length - 1];
    const pooled = globalAverage(values[outputs.length - 1], b, last[1] * last[2], last[3]);
    const pooledErr = maxRelError(pooled, outRef.pooled);
    worstPooled = Math.max(worstPooled, pooledErr);
    for (const [i, layer] of outputs.entries()) {
      const err = layerStatsError(values[i], shapes[i], b, outRef.layers[layer]);
      worstLayer = Math.max(worstLayer, err);
      assert.ok(err <= MUST, `${net} ${name} ${layer}: stats rel error ${err.toExponential(2)}`);
    }
    lines.push(`${name} pooled ${pooledErr.toExponential(2)}`);
    assert.ok(
      pooledErr <= MUST,
      `${net} ${name}: pooled max rel error ${pooledErr.toExponential(2)}`,
    );
  }
  console.log(
    `${net} (${backend.name}): ${lines.join(", ")}; layers (${outputs.length}) worst ${
      worstLayer.toExponential(2)
    }` +
      ` [build ${((t1 - t0) / 1000).toFixed(1)} s, predict ${inputNames.length} img` +
      ` ${((t2 - t1) / 1000).toFixed(1)} s]`,
  );
  assert.ok(worstPooled <= MUST);
}

Deno.test("densenet121 with formula weights from the reference .h5 matches Keras", async () => {
  const h5 = join(referenceDir(), "densenet121_formula_notop.h5");
  const layout = weightLayout(getNetSpec("densenet121"));
  await checkAgainstKeras(
    "densenet121",
    ["formula", "xray_normal", "xray_pneumonia"],
    () => readKerasH5(h5, layout),
  );
});

Deno.test("resnet50 with formula weights matches Keras on 3 inputs", async () => {
  await checkAgainstKeras("resnet50", ["formula", "xray_normal", "xray_pneumonia"]);
});

Deno.test("vgg16 with formula weights matches Keras on 3 inputs", async () => {
  await checkAgainstKeras("vgg16", ["formula", "xray_normal", "xray_pneumonia"]);
});
