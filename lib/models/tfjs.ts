/**
 * Builds a tfjs-layers functional model from a NetSpec (same layer names, NHWC, TensorFlow
 * "same" padding) and moves weights between Keras layout (NetWeights) and tfjs layers.
 */
import { tf } from "../tf/backend.ts";
import { assertNever, inferShapes, outputsOf, trainableLayers } from "./graph.ts";
import { weightKindsOf } from "./layout.ts";
import type { LayerSpec, NetSpec, NetWeights, WeightKind, WeightTensor } from "./spec.ts";
import { fnv1a32 } from "./weights/formula.ts";

type SymbolicTensor = ReturnType<typeof tf.input>;

export interface BuildOptions {
  /** false: every layer frozen (BN then always runs in inference mode). Default true. */
  trainable?: boolean;
  /** Layers before this one (Keras order) are frozen; overrides `trainable` for the rest. */
  trainableFrom?: string | null;
  /** Seed of Keras' default initialisers for weights not given (deterministic per layer). */
  seed?: number;
}

function kernelInit(seed: number | undefined, name: string) {
  return seed === undefined
    ? "glorotUniform"
    : tf.initializers.glorotUniform({ seed: (seed + fnv1a32(name)) >>> 0 });
}

function makeLayer(spec: LayerSpec, seed: number | undefined) {
  const name = spec.name;
  switch (spec.kind) {
    case "Conv2D":
      return tf.layers.conv2d({
        name,
        filters: spec.filters,
        kernelSize: spec.kernelSize,
        strides: spec.strides,
        padding: spec.padding,
        useBias: spec.useBias,
        activation: spec.activation,
        kernelInitializer: kernelInit(seed, name),
      });
    case "BatchNormalization":
      return tf.layers.batchNormalization({
        name,
        axis: -1,
        epsilon: spec.epsilon,
        momentum: spec.momentum,
      });
    case "Activation":
      return tf.layers.activation({ name, activation: spec.activation });
    case "ZeroPadding2D":
      return tf.layers.zeroPadding2d({ name, padding: spec.padding });
    case "MaxPooling2D":
      return tf.layers.maxPooling2d({
        name,
        poolSize: spec.poolSize,
        strides: spec.strides,
        padding: spec.padding,
      });
    case "AveragePooling2D":
      return tf.layers.averagePooling2d({
        name,
        poolSize: spec.poolSize,
        strides: spec.strides,
        padding: spec.padding,
      });
    case "Add":
      return tf.layers.add({ name });
    case "Concatenate":
      return tf.layers.concatenate({ name, axis: -1 });
    case "GlobalAveragePooling2D":
      return tf.layers.globalAveragePooling2d({ name });
    case "GlobalMaxPooling2D":
      return tf.layers.globalMaxPooling2d({ name });
    case "Flatten":
      return tf.layers.flatten({ name });
    case "Dropout":
      return tf.layers.dropout({ name, rate: spec.rate, seed });
    case "Dense":
      return tf.layers.dense({
        name,
        units: spec.units,
        activation: spec.activation,
        useBias: spec.useBias,
        kernelInitializer: kernelInit(seed, name),
      });
    case "InputLayer":
      throw new Error(`input layer "${name}" is built with tf.input`);
    default:
      return assertNever(spec, "layer kind");
  }
}

/**
 * The tfjs-layers model of `spec`: one input per InputLayer (NHWC, in spec order), outputs
 * `spec.outputs` (or `spec.output`). No preprocessing inside. Layers missing from `weights`
 * keep Keras' default initialisers.
 */
export function buildTfModel(
  spec: NetSpec & { outputs?: string[] },
  weights?: NetWeights,
  opts: BuildOptions = {},
): tf.LayersModel {
  const shapes = inferShapes(spec);
  const tensors = new Map<string, SymbolicTensor>();
  const inputs: SymbolicTensor[] = [];
  const trainable = opts.trainableFrom != null
    ? trainableLayers(spec, opts.trainableFrom)
    : new Set(opts.trainable === false ? [] : spec.layers.map((l) => l.name));
  const built: { spec: LayerSpec; layer: tf.layers.Layer }[] = [];
  for (const ls of spec.layers) {
    if (ls.kind === "InputLayer") {
      const shape = shapes.get(ls.name)!;
      const t = tf.input({ shape, name: ls.name });
      inputs.push(t);
      tensors.set(ls.name, t);
      continue;
    }
    const layer = makeLayer(ls, opts.seed);
    const ins = ls.inputs.map((i) => tensors.get(i)!);
    const out = layer.apply(ins.length === 1 ? ins[0] : ins) as SymbolicTensor;
    tensors.set(ls.name, out);
    built.push({ spec: ls, layer });
  }
  const outputs = outputsOf(spec).map((o) => {
    const t = tensors.get(o);
    if (!t) throw new Error(`${spec.name}: output "${o}" is not a layer of the spec`);
    return t;
  });
  const model = tf.model({ inputs, outputs, name: spec.name });
  try {
    for (const { spec: ls, layer } of built) {
      const w = weights?.get(ls.name);
      if (w) setLayerWeights(layer, ls, w);
      layer.trainable = trainable.has(ls.name);
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** Sets one layer's weights from Keras layout, checking kinds and shapes. */
export function setLayerWeights(
  layer: tf.layers.Layer,
  spec: LayerSpec,
  weights: Partial<Record<WeightKind, WeightTensor>>,
): void {
  const kinds = weightKindsOf(spec);
  const expected = layer.weights.map((v) => v.shape);
  const values = kinds.map((kind, i) => {
    const w = weights[kind];
    if (!w) throw new Error(`layer "${spec.name}": missing weight "${kind}"`);
    const shape = expected[i];
    if (w.shape.join() !== shape.join()) {
      throw new Error(
        `layer "${spec.name}": weight "${kind}" has shape [${w.shape}], expected [${shape}]`,
      );
    }
    return tf.tensor(w.data, w.shape, "float32");
  });
  layer.setWeights(values);
  tf.dispose(values);
}

/** Keras weight kinds of a tfjs layer, from its class. */
function tfLayerKinds(layer: tf.layers.Layer): WeightKind[] {
  const cls = layer.getClassName();
  const n = layer.weights.length;
  if (cls === "BatchNormalization") return ["gamma", "beta", "moving_mean", "moving_variance"];
  if (cls === "Conv2D" || cls === "Dense") return n === 2 ? ["kernel", "bias"] : ["kernel"];
  if (n > 0) throw new Error(`readTfWeights: unsupported layer class ${cls} ("${layer.name}")`);
  return [];
}

/** Keras-layout weights of every layer of `model` that has weights. */
export function readTfWeights(model: tf.LayersModel): NetWeights {
  const out: NetWeights = new Map();
  for (const layer of model.layers) {
    const kinds = tfLayerKinds(layer);
    if (kinds.length === 0) continue;
    const entry: Partial<Record<WeightKind, WeightTensor>> = {};
    for (const v of layer.weights) {
      const t = v.read();
      entry[kindOfVar(v.originalName)] = {
        shape: [...t.shape],
        data: new Float32Array(t.dataSync()),
      };
    }
    const missing = kinds.filter((k) => !entry[k]);
    if (missing.length > 0) {
      throw new Error(`readTfWeights: layer "${layer.name}" lacks weights ${missing.join(", ")}`);
    }
    out.set(layer.name, entry);
  }
  return out;
}

function kindOfVar(name: string): WeightKind {
  const last = name.split("/").pop()!.replace(/_\d+$/, "");
  const map: Record<string, WeightKind> = {
    kernel: "kernel",
    bias: "bias",
    gamma: "gamma",
    beta: "beta",
    moving_mean: "moving_mean",
    moving_variance: "moving_variance",
  };
  const kind = map[last];
  if (!kind) throw new Error(`readTfWeights: cannot tell the kind of weight "${name}"`);
  return kind;
}
