/**
 * Keras weight layout of a NetSpec: every layer in Keras order with the kinds and Keras shapes
 * of its weights (what `model.save_weights` writes and what `keras_layouts.json` lists).
 */
import type { LayerSpec, NetSpec, WeightKind } from "./spec.ts";
import { inferShapes } from "./graph.ts";

/** One entry per layer, in Keras order; weightless layers have `weights: []`. */
export type WeightLayout = { layer: string; weights: { kind: WeightKind; shape: number[] }[] }[];

function layerWeights(
  layer: LayerSpec,
  inputChannels: number,
): { kind: WeightKind; shape: number[] }[] {
  switch (layer.kind) {
    case "Conv2D": {
      const kernel = [...layer.kernelSize, inputChannels, layer.filters];
      return layer.useBias
        ? [{ kind: "kernel", shape: kernel }, { kind: "bias", shape: [layer.filters] }]
        : [{ kind: "kernel", shape: kernel }];
    }
    case "Dense": {
      const kernel = [inputChannels, layer.units];
      return layer.useBias
        ? [{ kind: "kernel", shape: kernel }, { kind: "bias", shape: [layer.units] }]
        : [{ kind: "kernel", shape: kernel }];
    }
    case "BatchNormalization":
      return (["gamma", "beta", "moving_mean", "moving_variance"] as const).map((kind) => ({
        kind,
        shape: [inputChannels],
      }));
    default:
      return [];
  }
}

/** Keras weight layout (layer order, kinds, shapes) of `spec`. */
export function weightLayout(spec: NetSpec): WeightLayout {
  const shapes = inferShapes(spec);
  return spec.layers.map((layer) => {
    let channels = 0;
    if (layer.inputs.length > 0) {
      const inShape = shapes.get(layer.inputs[0])!;
      channels = inShape[inShape.length - 1];
    }
    return { layer: layer.name, weights: layerWeights(layer, channels) };
  });
}

/** Number of weight values of one layout entry. */
export function layoutParams(entry: WeightLayout[number]): number {
  return entry.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
}
