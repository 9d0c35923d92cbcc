/**
 * NetSpec + Keras-layout weights -> ONNX model bytes (opset 13), with no dependency beyond the
 * protobuf writer in proto.ts and the NetSpec reader (models/graph.ts, models/preprocess.ts).
 *
 * Keras works in NHWC; ONNX convolutions want NCHW. The graph therefore transposes each input
 * once to NCHW, runs every layer in NCHW, and transposes each spatial output back to NHWC, so
 * the model's interface is exactly Keras': input names = Keras InputLayer names (or "image"
 * when preprocessing is in the graph), output names = Keras layer names, batch dim dynamic.
 *
 * Each layer kind has one short emitter in `EMITTERS`; the table's type lists every kind, so a
 * new kind does not compile until it has an emitter.
 *
 * BatchNormalization directly after a linear Conv2D that nothing else reads is folded into the
 * conv's weights (float64 arithmetic, then float32); any other BN becomes an explicit
 * BatchNormalization node. `foldBatchNorm: false` keeps every BN explicit.
 */
import {
  assertNever,
  consumers,
  inferShapes,
  samePads,
  type Shape,
  subgraph,
} from "../models/graph.ts";
import { PREPROCESSING } from "../models/preprocess.ts";
import type {
  ActivationName,
  LayerKind,
  LayerOf,
  LayerSpec,
  NetSpec,
  NetWeights,
  Padding,
  PreprocessingMode,
  WeightKind,
  WeightTensor,
} from "../models/spec.ts";
import {
  DataType,
  encodeModel,
  floatTensor,
  int64Tensor,
  type NodeDef,
  type TensorValue,
  type ValueInfo,
} from "./proto.ts";

export const ONNX_OPSET = 13;

/** The graph input name when preprocessing is part of the graph. */
export const IMAGE_INPUT = "image";

export interface ExportOptions {
  /** Layers whose outputs become graph outputs (default `[spec.output]`). */
  outputs?: string[];
  /** Layers whose outputs are fed from outside (default: the InputLayers). */
  inputs?: string[];
  /** When set, the graph input "image" is raw RGB 0..255 NHWC and preprocessing is in-graph. */
  preprocessing?: PreprocessingMode | null;
  /** Fold BN into the preceding linear conv when possible (default true). */
  foldBatchNorm?: boolean;
  /** Extra key/value pairs stored in the model's metadata_props. */
  metadata?: Record<string, string>;
}

type Attributes = NodeDef["attributes"];

/** The ONNX graph under construction: nodes and initializers, in emission order. */
class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly inits: TensorValue[] = [];
  #counter = 0;

  /** Adds a node with one output and returns that output's name. */
  node(opType: string, inputs: string[], out: string, attributes?: Attributes): string {
    const name = `${opType}_${this.#counter++}`;
    this.nodes.push({ opType, inputs, outputs: [out], name, attributes });
    return out;
  }

  init(name: string, dims: number[], data: Float32Array): string {
    this.inits.push(floatTensor(name, dims, data));
    return name;
  }

  int64(name: string, dims: number[], values: number[]): string {
    this.inits.push(int64Tensor(name, dims, values));
    return name;
  }
}

/** What an emitter reads: the (sub)net, its shapes and weights, and the tensors emitted so far. */
interface EmitContext {
  g: GraphBuilder;
  weights: NetWeights;
  shapes: Map<string, Shape>;
  byName: Map<string, LayerSpec>;
  /** Keras layer -> name of the ONNX tensor holding its output (NCHW when spatial). */
  tensor: Map<string, string>;
  /** Convs whose BN follows them and emits them folded. */
  folded: Set<string>;
}

/** Emits one layer; returns its output tensor, or null when a later layer emits it (folding). */
type Emitter<K extends LayerKind> = (layer: LayerOf<K>, c: EmitContext) => string | null;

const input = (c: EmitContext, l: LayerSpec, i = 0) => c.tensor.get(l.inputs[i])!;

function weight(c: EmitContext, layer: string, kind: WeightKind, shape: number[]): WeightTensor {
  const w = c.weights.get(layer)?.[kind];
  if (!w) throw new Error(`exportOnnx: missing weight ${layer}/${kind}`);
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`exportOnnx: ${layer}/${kind} has shape [${w.shape}], expected [${shape}]`);
  }
  return w;
}

function activation(c: EmitContext, name: string, x: string, act: ActivationName): string {
  switch (act) {
    case "linear":
      return x;
    case "relu":
      return c.g.node("Relu", [x], `${name}#relu`);
    case "sigmoid":
      return c.g.node("Sigmoid", [x], `${name}#sigmoid`);
    case "softmax":
      return c.g.node("Softmax", [x], `${name}#softmax`, { axis: { i: 1 } });
    default:
      return assertNever(act, `activation of layer "${name}"`);
  }
}

/** ONNX pads for a conv/pool on `inputLayer`'s output (SAME_UPPER when its size is unknown). */
function padAttributes(
  c: EmitContext,
  kernel: [number, number],
  strides: [number, number],
  padding: Padding,
  inputLayer: string,
): Attributes {
  if (padding === "valid") return { pads: { ints: [0, 0, 0, 0] } };
  const [h, w] = c.shapes.get(inputLayer)!;
  if (h === null || w === null) return { auto_pad: { s: "SAME_UPPER" } };
  const [pt, pb] = samePads(h, kernel[0], strides[0]);
  const [pl, pr] = samePads(w, kernel[1], strides[1]);
  return { pads: { ints: [pt, pl, pb, pr] } };
}

/** Keras conv kernel [kh, kw, cin, cout] -> ONNX [cout, cin, kh, kw], optionally scaled per cout. */
function convKernel(k: WeightTensor, scale?: Float64Array): Float32Array {
  const [kh, kw, cin, cout] = k.shape;
  const out = new Float32Array(k.data.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        const src = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) {
          const v = k.data[src + o];
          out[((o * cin + i) * kh + y) * kw + x] = scale ? v * scale[o] : v;
        }
      }
    }
  }
  return out;
}

/** BN folded into a conv: y = conv(x) * scale + shift, per output channel. */
interface FoldedBatchNorm {
  scale: Float64Array;
  shift: Float64Array;
}

/** A Conv node (with BN folded in when `bn` is given), named after `outName`. */
function convNode(
  c: EmitContext,
  l: LayerOf<"Conv2D">,
  bn?: FoldedBatchNorm,
  outName = l.name,
): string {
  const cin = c.shapes.get(l.inputs[0])![2] as number;
  const [kh, kw] = l.kernelSize;
  const kernel = weight(c, l.name, "kernel", [kh, kw, cin, l.filters]);
  const bias = l.useBias ? weight(c, l.name, "bias", [l.filters]).data : undefined;
  const W = c.g.init(`${outName}#W`, [l.filters, cin, kh, kw], convKernel(kernel, bn?.scale));
  const ins = [input(c, l), W];
  if (bias || bn) {
    const b = new Float32Array(l.filters);
    for (let o = 0; o < l.filters; o++) {
      const raw = bias ? bias[o] : 0;
      b[o] = bn ? raw * bn.scale[o] + bn.shift[o] : raw;
    }
    ins.push(c.g.init(`${outName}#B`, [l.filters], b));
  }
  return c.g.node("Conv", ins, `${outName}#conv`, {
    kernel_shape: { ints: [kh, kw] },
    strides: { ints: l.strides },
    dilations: { ints: [1, 1] },
    group: { i: 1 },
    ...padAttributes(c, l.kernelSize, l.strides, l.padding, l.inputs[0]),
  });
}

const emitConv2D: Emitter<"Conv2D"> = (l, c) =>
  c.folded.has(l.name) ? null : activation(c, l.name, convNode(c, l), l.activation);

/** The BN's statistics (gamma/beta default to 1/0 when Keras stored none). */
function batchNormWeights(c: EmitContext, l: LayerOf<"BatchNormalization">, n: number) {
  const w = c.weights.get(l.name) ?? {};
  return {
    gamma: w.gamma ? weight(c, l.name, "gamma", [n]).data : new Float32Array(n).fill(1),
    beta: w.beta ? weight(c, l.name, "beta", [n]).data : new Float32Array(n),
    mean: weight(c, l.name, "moving_mean", [n]).data,
    variance: weight(c, l.name, "moving_variance", [n]).data,
  };
}

const emitBatchNorm: Emitter<"BatchNormalization"> = (l, c) => {
  const n = c.shapes.get(l.name)!.at(-1) as number;
  const { gamma, beta, mean, variance } = batchNormWeights(c, l, n);
  const src = c.byName.get(l.inputs[0]);
  if (src?.kind === "Conv2D" && c.folded.has(src.name)) {
    const scale = new Float64Array(n);
    const shift = new Float64Array(n);
    for (let o = 0; o < n; o++) {
      scale[o] = gamma[o] / Math.sqrt(variance[o] + l.epsilon);
      shift[o] = beta[o] - mean[o] * scale[o];
    }
    return convNode(c, src, { scale, shift }, l.name);
  }
  const p = `${l.name}#bn`;
  const stats = [["gamma", gamma], ["beta", beta], ["mean", mean], ["var", variance]] as const;
  const ins = stats.map(([k, v]) => c.g.init(`${p}/${k}`, [n], v));
  return c.g.node("BatchNormalization", [input(c, l), ...ins], p, { epsilon: { f: l.epsilon } });
};

const emitZeroPadding: Emitter<"ZeroPadding2D"> = (l, c) => {
  const [[top, bottom], [left, right]] = l.padding;
  const pads = c.g.int64(`${l.name}#pads`, [8], [0, 0, top, left, 0, 0, bottom, right]);
  return c.g.node("Pad", [input(c, l), pads], `${l.name}#pad`, { mode: { s: "constant" } });
};

const emitPooling: Emitter<"MaxPooling2D" | "AveragePooling2D"> = (l, c) => {
  const attrs = {
    kernel_shape: { ints: l.poolSize },
    strides: { ints: l.strides },
    ...padAttributes(c, l.poolSize, l.strides, l.padding, l.inputs[0]),
  };
  return l.kind === "MaxPooling2D"
    ? c.g.node("MaxPool", [input(c, l)], `${l.name}#maxpool`, attrs)
    : c.g.node("AveragePool", [input(c, l)], `${l.name}#avgpool`, {
      ...attrs,
      count_include_pad: { i: 0 },
    });
};

const emitGlobalPooling: Emitter<"GlobalAveragePooling2D" | "GlobalMaxPooling2D"> = (l, c) => {
  const op = l.kind === "GlobalAveragePooling2D" ? "GlobalAveragePool" : "GlobalMaxPool";
  const pooled = c.g.node(op, [input(c, l)], `${l.name}#pool4d`);
  return c.g.node("Flatten", [pooled], `${l.name}#flat`, { axis: { i: 1 } });
};

const emitFlatten: Emitter<"Flatten"> = (l, c) => {
  // Keras flattens NHWC order: go back to NHWC first.
  const nhwc = c.shapes.get(l.inputs[0])!.length === 3
    ? c.g.node("Transpose", [input(c, l)], `${l.name}#nhwc`, { perm: { ints: [0, 2, 3, 1] } })
    : input(c, l);
  return c.g.node("Flatten", [nhwc], `${l.name}#flat`, { axis: { i: 1 } });
};

const emitDense: Emitter<"Dense"> = (l, c) => {
  const inShape = c.shapes.get(l.inputs[0])!;
  if (inShape.length !== 1 || inShape[0] === null) {
    throw new Error(`exportOnnx: Dense "${l.name}" needs a flat input, got [${inShape}]`);
  }
  const k = weight(c, l.name, "kernel", [inShape[0], l.units]);
  const ins = [input(c, l), c.g.init(`${l.name}#kernel`, k.shape, k.data)];
  if (l.useBias) {
    const bias = weight(c, l.name, "bias", [l.units]).data;
    ins.push(c.g.init(`${l.name}#bias`, [l.units], bias));
  }
  return activation(c, l.name, c.g.node("Gemm", ins, `${l.name}#gemm`), l.activation);
};

/** One emitter per layer kind (the mapped type makes a missing kind a compile error). */
const EMITTERS: { [K in LayerKind]: Emitter<K> } = {
  InputLayer: (l) => {
    throw new Error(`exportOnnx: InputLayer "${l.name}" is a graph input, not a node`);
  },
  Conv2D: emitConv2D,
  BatchNormalization: emitBatchNorm,
  Activation: (l, c) => activation(c, l.name, input(c, l), l.activation),
  ZeroPadding2D: emitZeroPadding,
  MaxPooling2D: emitPooling,
  AveragePooling2D: emitPooling,
  Add: (l, c) => {
    const ins = l.inputs.map((n) => c.tensor.get(n)!);
    return c.g.node(ins.length === 2 ? "Add" : "Sum", ins, `${l.name}#add`);
  },
  Concatenate: (l, c) =>
    c.g.node("Concat", l.inputs.map((n) => c.tensor.get(n)!), `${l.name}#concat`, {
      axis: { i: 1 },
    }),
  GlobalAveragePooling2D: emitGlobalPooling,
  GlobalMaxPooling2D: emitGlobalPooling,
  Flatten: emitFlatten,
  Dropout: (l, c) => input(c, l), // inference: identity
  Dense: emitDense,
};

function emit(layer: LayerSpec, c: EmitContext): string | null {
  return (EMITTERS[layer.kind] as Emitter<LayerKind>)(layer, c);
}

/** Convs whose only reader is the BN after them: linear, and not a graph output. */
function foldableConvs(sub: NetSpec, outputs: Set<string>): Set<string> {
  const readers = consumers(sub);
  const byName = new Map(sub.layers.map((l) => [l.name, l]));
  const out = new Set<string>();
  for (const l of sub.layers) {
    if (l.kind !== "BatchNormalization") continue;
    const src = byName.get(l.inputs[0]);
    if (
      src?.kind === "Conv2D" && src.activation === "linear" && !outputs.has(src.name) &&
      readers.get(src.name)?.length === 1
    ) out.add(src.name);
  }
  return out;
}

/** In-graph keras preprocess_input on NHWC RGB 0..255; returns the preprocessed tensor name. */
function preprocess(g: GraphBuilder, x: string, mode: PreprocessingMode): string {
  const f32 = (v: readonly number[]) => Float32Array.from(v);
  switch (mode) {
    case "caffe": {
      // RGB -> BGR, then subtract the ImageNet BGR means (no scaling), as Keras does.
      const index = g.int64("pre#bgr_index", [3], [2, 1, 0]);
      const bgr = g.node("Gather", [x, index], "pre#bgr", { axis: { i: 3 } });
      const mean = g.init("pre#mean", [3], f32(PREPROCESSING.caffe.mean));
      return g.node("Sub", [bgr, mean], "pre#out");
    }
    case "torch": {
      const { mean, std } = PREPROCESSING.torch;
      const scaled = g.node("Div", [x, g.init("pre#255", [], f32([255]))], "pre#scaled");
      const centered = g.node("Sub", [scaled, g.init("pre#mean", [3], f32(mean))], "pre#centered");
      return g.node("Div", [centered, g.init("pre#std", [3], f32(std))], "pre#out");
    }
    default:
      return assertNever(mode, "preprocessing mode");
  }
}

/** ONNX dims of a Keras shape: a dynamic batch first, named dims where the size is unknown. */
function onnxDims(s: Shape): (number | string)[] {
  const names = (i: number) => (s.length === 3 ? ["height", "width", "channels"][i] : `d${i}`);
  return ["batch", ...s.map((d, i) => d ?? names(i))];
}

/** Graph inputs (NHWC, or "image" with preprocessing), each transposed to NCHW when spatial. */
function emitInputs(
  c: EmitContext,
  inputNames: string[],
  preprocessing: PreprocessingMode | null,
): ValueInfo[] {
  const graphInputs: ValueInfo[] = [];
  for (const name of inputNames) {
    const s = c.shapes.get(name)!;
    let x = name;
    if (preprocessing) {
      if (inputNames.length !== 1 || s.length !== 3 || s[2] !== 3) {
        throw new Error(
          `exportOnnx: in-graph preprocessing needs one RGB image input, got [${inputNames}]`,
        );
      }
      x = IMAGE_INPUT;
    }
    graphInputs.push({ name: x, elemType: DataType.FLOAT, dims: onnxDims(s) });
    if (preprocessing) x = preprocess(c.g, x, preprocessing);
    const perm = { perm: { ints: [0, 3, 1, 2] } };
    c.tensor.set(name, s.length === 3 ? c.g.node("Transpose", [x], `${name}#nchw`, perm) : x);
  }
  return graphInputs;
}

/** Graph outputs named after their Keras layers, back in NHWC when spatial. */
function emitOutputs(c: EmitContext, outputs: string[]): ValueInfo[] {
  return outputs.map((name) => {
    const s = c.shapes.get(name)!;
    const t = c.tensor.get(name)!;
    if (s.length === 3) c.g.node("Transpose", [t], name, { perm: { ints: [0, 2, 3, 1] } });
    else c.g.node("Identity", [t], name);
    return { name, elemType: DataType.FLOAT, dims: onnxDims(s) };
  });
}

/** Export `spec` (or the part between `inputs` and `outputs`) with `weights` to ONNX bytes. */
export function exportOnnx(
  spec: NetSpec,
  weights: NetWeights,
  opts: ExportOptions = {},
): Uint8Array {
  const outputs = opts.outputs ?? [spec.output];
  if (outputs.length === 0) throw new Error("exportOnnx: no outputs requested");
  const inputNames = opts.inputs ??
    spec.layers.filter((l) => l.kind === "InputLayer").map((l) => l.name);
  const preprocessing = opts.preprocessing ?? null;
  const sub = subgraph(spec, inputNames, outputs);
  const c: EmitContext = {
    g: new GraphBuilder(),
    weights,
    shapes: inferShapes(sub),
    byName: new Map(sub.layers.map((l) => [l.name, l])),
    tensor: new Map(),
    folded: opts.foldBatchNorm ?? true ? foldableConvs(sub, new Set(outputs)) : new Set(),
  };
  const graphInputs = emitInputs(c, inputNames, preprocessing);
  for (const l of sub.layers.slice(inputNames.length)) {
    const y = emit(l, c);
    if (y !== null) c.tensor.set(l.name, y);
  }
  const graphOutputs = emitOutputs(c, outputs);
  return encodeModel({
    graph: {
      name: spec.name,
      nodes: c.g.nodes,
      initializers: c.g.inits,
      inputs: graphInputs,
      outputs: graphOutputs,
    },
    opset: ONNX_OPSET,
    producerName: "cxr",
    metadata: {
      net: spec.name,
      outputs: outputs.join(","),
      inputs: inputNames.join(","),
      preprocessing: preprocessing ?? "none",
      layout: "NHWC",
      ...opts.metadata,
    },
  });
}
