/**
 * A small Keras-functional-style builder for NetSpecs: each call appends one layer (in Keras
 * order) and returns its name, so the net files read like keras.applications/*.py.
 */
import type {
  ActivationName,
  LayerSpec,
  NetName,
  NetSpec,
  Padding,
  PreprocessingMode,
} from "./spec.ts";

type Pair = [number, number];

function pair(v: number | Pair): Pair {
  return typeof v === "number" ? [v, v] : v;
}

/** Keras' BatchNormalization momentum default (only used when training). */
export const KERAS_BN_MOMENTUM = 0.99;

export class NetBuilder {
  readonly layers: LayerSpec[] = [];
  readonly #names = new Set<string>();

  /** Appends `layer`; layer names must be unique and inputs must already exist. */
  add(layer: LayerSpec): string {
    if (this.#names.has(layer.name)) throw new Error(`duplicate layer name "${layer.name}"`);
    for (const i of layer.inputs) {
      if (!this.#names.has(i)) throw new Error(`layer "${layer.name}": unknown input "${i}"`);
    }
    this.#names.add(layer.name);
    this.layers.push(layer);
    return layer.name;
  }

  input(name: string, shape: [number | null, number | null, number]): string {
    return this.add({ kind: "InputLayer", name, inputs: [], shape });
  }

  conv2d(
    x: string,
    name: string,
    filters: number,
    kernelSize: number | Pair,
    opts: {
      strides?: number | Pair;
      padding?: Padding;
      useBias?: boolean;
      activation?: ActivationName;
    } = {},
  ): string {
    return this.add({
      kind: "Conv2D",
      name,
      inputs: [x],
      filters,
      kernelSize: pair(kernelSize),
      strides: pair(opts.strides ?? 1),
      padding: opts.padding ?? "valid",
      useBias: opts.useBias ?? true,
      activation: opts.activation ?? "linear",
    });
  }

  batchNorm(x: string, name: string, epsilon = 1e-3): string {
    return this.add({
      kind: "BatchNormalization",
      name,
      inputs: [x],
      epsilon,
      momentum: KERAS_BN_MOMENTUM,
    });
  }

  activation(x: string, name: string, activation: ActivationName): string {
    return this.add({ kind: "Activation", name, inputs: [x], activation });
  }

  /** Keras ZeroPadding2D(padding=p): p symmetric on both spatial axes. */
  zeroPadding(x: string, name: string, p: number): string {
    return this.add({ kind: "ZeroPadding2D", name, inputs: [x], padding: [[p, p], [p, p]] });
  }

  maxPool(x: string, name: string, poolSize: number, strides: number, padding: Padding = "valid") {
    return this.add({
      kind: "MaxPooling2D",
      name,
      inputs: [x],
      poolSize: pair(poolSize),
      strides: pair(strides),
      padding,
    });
  }

  avgPool(x: string, name: string, poolSize: number, strides: number, padding: Padding = "valid") {
    return this.add({
      kind: "AveragePooling2D",
      name,
      inputs: [x],
      poolSize: pair(poolSize),
      strides: pair(strides),
      padding,
    });
  }

  addLayer(xs: string[], name: string): string {
    return this.add({ kind: "Add", name, inputs: xs });
  }

  concatenate(xs: string[], name: string): string {
    return this.add({ kind: "Concatenate", name, inputs: xs });
  }

  globalAvgPool(x: string, name: string): string {
    return this.add({ kind: "GlobalAveragePooling2D", name, inputs: [x] });
  }

  globalMaxPool(x: string, name: string): string {
    return this.add({ kind: "GlobalMaxPooling2D", name, inputs: [x] });
  }

  flatten(x: string, name: string): string {
    return this.add({ kind: "Flatten", name, inputs: [x] });
  }

  dropout(x: string, name: string, rate: number): string {
    return this.add({ kind: "Dropout", name, inputs: [x], rate });
  }

  dense(x: string, name: string, units: number, activation: ActivationName = "linear"): string {
    return this.add({ kind: "Dense", name, inputs: [x], units, activation, useBias: true });
  }

  build(name: NetName, preprocessing: PreprocessingMode, output: string): NetSpec {
    if (!this.#names.has(output)) throw new Error(`output "${output}" is not a layer`);
    return { name, preprocessing, layers: [...this.layers], output };
  }
}
