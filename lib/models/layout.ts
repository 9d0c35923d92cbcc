/**
 * Keras weight layout of a NetSpec: every layer in Keras order with the kinds and Keras shapes
 * of its weights (what `model.save_weights` writes and what `keras_layouts.json` lists).
 */
import type { LayerSpec, NetSpec, WeightKind } from "./spec.ts";
import { assertNever, inferShapes } from "./graph.ts";

/** One entry per layer, in Keras order; weightless layers have `weights: []`. */
export type WeightLayout = { layer: string; weights: { kind: WeightKind; shape: number[] }[] }[];

const BN_KINDS: WeightKind[] = ["gamma", "beta", "moving_mean", "moving_variance"];

/** Keras weight kinds of a layer, in Keras' (and tfjs' `layer.weights`) order. */
export function weightKindsOf(layer: LayerSpec): WeightKind[] {
  switch (layer.kind) {
    case "Conv2D":
    case "Dense":
      return layer.useBias ? ["kernel", "bias"] : ["kernel"];
    case "BatchNormalization":
      return [...BN_KINDS];
    case "InputLayer":
    case "Activation":
    case "ZeroPadding2D":
    case "MaxPooling2D":
    case "AveragePooling2D":
    case "Add":
    case "Concatenate":
    case "GlobalAveragePooling2D":
    case "GlobalMaxPooling2D":
    case "Flatten":
    case "Dropout":
      return [];
    default:
      return assertNever(layer, "layer kind");
  }
}

/** Keras shape of one weight of `layer`, given its input's channel count. */
function weightShape(layer: LayerSpec, kind: WeightKind, channels: number): number[] {
  if (layer.kind === "Conv2D") {
    return kind === "kernel" ? [...layer.kernelSize, channels, layer.filters] : [layer.filters];
  }
  if (layer.kind === "Dense") return kind === "kernel" ? [channels, layer.units] : [layer.units];
  return [channels]; // BatchNormalization: one value per channel
}

/** Keras weight layout (layer order, kinds, shapes) of `spec`. */
export function weightLayout(spec: NetSpec): WeightLayout {
  const shapes = inferShapes(spec);
  return spec.layers.map((layer) => {
    const kinds = weightKindsOf(layer);
    if (kinds.length === 0) return { layer: layer.name, weights: [] };
    const channels = shapes.get(layer.inputs[0])!.at(-1);
    if (typeof channels !== "number") {
      throw new Error(`${spec.name}: layer "${layer.name}": its input's last dimension is unknown`);
    }
    const weights = kinds.map((kind) => ({ kind, shape: weightShape(layer, kind, channels) }));
    return { layer: layer.name, weights };
  });
}

/** Number of weight values of one layout entry. */
export function layoutParams(entry: WeightLayout[number]): number {
  return entry.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
}
