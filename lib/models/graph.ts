/**
 * Graph operations on NetSpecs: output shapes, sub-networks between named layers, and the
 * frozen/trainable split Keras makes when layers from one name on are unfrozen.
 */
import type { InputSpec, LayerSpec, NetSpec, Padding } from "./spec.ts";

/** A NetSpec with several outputs (e.g. the frontier of a cut); `output` is `outputs[0]`. */
export type MultiOutputSpec = NetSpec & { outputs: string[] };

/** A layer's output shape without the batch dimension, NHWC when spatial; null = unknown size. */
export type Shape = (number | null)[];

/** Compile-time exhaustiveness: a layer kind (or mode) no `switch` handles fails to type-check. */
export function assertNever(x: never, what = "value"): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(x)}`);
}

/** Output size of a conv/pool along one dim, TensorFlow's rule for "same" and "valid". */
export function convOut(size: number | null, kernel: number, stride: number, padding: Padding) {
  if (size === null) return null;
  return padding === "same" ? Math.ceil(size / stride) : Math.floor((size - kernel) / stride) + 1;
}

/** TF "same" padding for one spatial dim: [before, after], the extra pixel after. */
export function samePads(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

const plus = (a: number | null, b: number | null) => (a === null || b === null ? null : a + b);
const times = (a: number | null, b: number | null) => (a === null || b === null ? null : a * b);

function layerShape(layer: LayerSpec, ins: Shape[]): Shape {
  const x = ins[0];
  switch (layer.kind) {
    case "InputLayer":
      return [...layer.shape];
    case "Conv2D":
      return [
        convOut(x[0], layer.kernelSize[0], layer.strides[0], layer.padding),
        convOut(x[1], layer.kernelSize[1], layer.strides[1], layer.padding),
        layer.filters,
      ];
    case "MaxPooling2D":
    case "AveragePooling2D":
      return [
        convOut(x[0], layer.poolSize[0], layer.strides[0], layer.padding),
        convOut(x[1], layer.poolSize[1], layer.strides[1], layer.padding),
        x[2],
      ];
    case "ZeroPadding2D": {
      const [[t, b], [l, r]] = layer.padding;
      return [plus(x[0], t + b), plus(x[1], l + r), x[2]];
    }
    case "Add":
      for (const s of ins) {
        if (s.join() !== x.join()) {
          throw new Error(
            `Add "${layer.name}": input shapes differ (${ins.map((s) => s.join("x"))})`,
          );
        }
      }
      return [...x];
    case "Concatenate":
      return [...x.slice(0, -1), ins.map((s) => s[s.length - 1]).reduce<number | null>(plus, 0)];
    case "GlobalAveragePooling2D":
    case "GlobalMaxPooling2D":
      return [x[x.length - 1]];
    case "Flatten":
      return [x.reduce(times, 1)];
    case "Dense":
      return [...x.slice(0, -1), layer.units];
    case "BatchNormalization":
    case "Activation":
    case "Dropout":
      return [...x];
    default:
      return assertNever(layer, "layer kind");
  }
}

/** Output shape of every layer, without the batch dimension (e.g. [7, 7, 512]). */
export function inferShapes(spec: NetSpec): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  for (const layer of spec.layers) {
    const ins = layer.inputs.map((i) => {
      const s = shapes.get(i);
      if (!s) {
        throw new Error(`${spec.name}: layer "${layer.name}" uses "${i}" before it is defined`);
      }
      return s;
    });
    shapes.set(layer.name, layerShape(layer, ins));
  }
  return shapes;
}

/** The shape as plain numbers; throws naming `what` when a size is unknown. */
export function knownShape(shape: Shape, what: string): number[] {
  if (shape.some((d) => d === null)) throw new Error(`${what} has unknown size [${shape}]`);
  return shape as number[];
}

/** Layer by name (clear error naming the net and the layer when missing). */
export function getLayer(spec: NetSpec, name: string): LayerSpec {
  const layer = spec.layers.find((l) => l.name === name);
  if (!layer) throw new Error(`${spec.name}: no layer named "${name}"`);
  return layer;
}

/** Names of the layers that consume each layer's output. */
export function consumers(spec: NetSpec): Map<string, string[]> {
  const out = new Map<string, string[]>(spec.layers.map((l) => [l.name, []]));
  for (const l of spec.layers) for (const i of l.inputs) out.get(i)!.push(l.name);
  return out;
}

/** Names of the spec's outputs (`outputs` when present, else `[output]`). */
export function outputsOf(spec: NetSpec & { outputs?: string[] }): string[] {
  return spec.outputs && spec.outputs.length > 0 ? spec.outputs : [spec.output];
}

/**
 * The layers needed to compute `outputs` from `inputs`. Each input becomes an InputLayer with
 * the same name and that layer's output shape; the inputs come first (in the order given), the
 * rest keep Keras order.
 */
export function subgraph(spec: NetSpec, inputs: string[], outputs: string[]): MultiOutputSpec {
  if (outputs.length === 0) throw new Error(`${spec.name}: subgraph needs at least one output`);
  const shapes = inferShapes(spec);
  const byName = new Map(spec.layers.map((l) => [l.name, l]));
  for (const n of [...inputs, ...outputs]) getLayer(spec, n);
  const inputSet = new Set(inputs);
  const needed = new Set<string>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (needed.has(name)) continue;
    needed.add(name);
    if (inputSet.has(name)) continue;
    const layer = byName.get(name)!;
    if (layer.kind === "InputLayer") {
      throw new Error(
        `${spec.name}: outputs [${outputs.join(", ")}] depend on input "${name}", ` +
          `which is not among the subgraph inputs [${inputs.join(", ")}]`,
      );
    }
    stack.push(...layer.inputs);
  }
  const inputLayers: InputSpec[] = inputs.map((name) => ({
    kind: "InputLayer",
    name,
    inputs: [],
    shape: [...shapes.get(name)!],
  }));
  const rest = spec.layers.filter((l) => needed.has(l.name) && !inputSet.has(l.name));
  return {
    name: spec.name,
    preprocessing: spec.preprocessing,
    layers: [...inputLayers, ...rest],
    output: outputs[0],
    outputs: [...outputs],
  };
}

/**
 * Splits `spec` the way Keras does when layers from `firstTrainable` on (inclusive, Keras order)
 * are trainable and the earlier ones frozen. `frontier` = frozen layers consumed by trainable
 * ones, in Keras order; `frozen` computes them from the net's inputs and `tail` computes the
 * net's output(s) from them.
 */
export function cutAt(
  spec: NetSpec & { outputs?: string[] },
  firstTrainable: string,
): { frozen: MultiOutputSpec; tail: MultiOutputSpec; frontier: string[] } {
  const index = spec.layers.findIndex((l) => l.name === firstTrainable);
  if (index < 0) {
    throw new Error(`${spec.name}: no layer named "${firstTrainable}" to unfreeze from`);
  }
  if (spec.layers[index].kind === "InputLayer") {
    throw new Error(`${spec.name}: cannot cut at input layer "${firstTrainable}"`);
  }
  const frozenNames = new Set(spec.layers.slice(0, index).map((l) => l.name));
  const frontierSet = new Set<string>();
  for (const l of spec.layers.slice(index)) {
    for (const i of l.inputs) if (frozenNames.has(i)) frontierSet.add(i);
  }
  const outputs = outputsOf(spec);
  for (const o of outputs) {
    if (frozenNames.has(o)) {
      throw new Error(`${spec.name}: output "${o}" comes before "${firstTrainable}"`);
    }
  }
  const frontier = spec.layers.filter((l) => frontierSet.has(l.name)).map((l) => l.name);
  const inputs = spec.layers.filter((l) => l.kind === "InputLayer").map((l) => l.name);
  return {
    frozen: subgraph(spec, inputs, frontier),
    tail: subgraph(spec, frontier, outputs),
    frontier,
  };
}

/** Names of the layers Keras trains when unfreezing from `firstTrainable` (null: all). */
export function trainableLayers(spec: NetSpec, firstTrainable: string | null): Set<string> {
  if (firstTrainable === null) return new Set(spec.layers.map((l) => l.name));
  const index = spec.layers.findIndex((l) => l.name === firstTrainable);
  if (index < 0) throw new Error(`${spec.name}: no layer named "${firstTrainable}"`);
  return new Set(spec.layers.slice(index).map((l) => l.name));
}
