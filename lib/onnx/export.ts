/**
 * NetSpec + Keras-layout weights -> ONNX model bytes (opset 13), with no dependency beyond the
 * protobuf writer in proto.ts.
 *
 * Keras works in NHWC; ONNX convolutions want NCHW. The graph therefore transposes each input
 * once to NCHW, runs every layer in NCHW, and transposes each spatial output back to NHWC, so
 * the model's interface is exactly Keras': input names = Keras InputLayer names (or "image"
 * when preprocessing is in the graph), output names = Keras layer names, batch dim dynamic.
 *
 * BatchNormalization directly after a linear Conv2D that nothing else reads is folded into the
 * conv's weights (float64 arithmetic, then float32); any other BN becomes an explicit
 * BatchNormalization node. `foldBatchNorm: false` keeps every BN explicit.
 */
import type {
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

/** keras.applications preprocess_input constants (kept here so export has no model deps). */
const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];
const TORCH_MEAN = [0.485, 0.456, 0.406];
const TORCH_STD = [0.229, 0.224, 0.225];

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

type Shape = (number | null)[];

/** Keras output shapes (without batch) of every layer, NHWC for spatial tensors. */
export function layerShapes(spec: NetSpec): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  const get = (name: string, by: string): Shape => {
    const s = shapes.get(name);
    if (!s) throw new Error(`layer "${by}" reads "${name}", which is not defined before it`);
    return s;
  };
  const convOut = (n: number | null, k: number, s: number, p: Padding): number | null =>
    n === null ? null : p === "same" ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1;
  for (const l of spec.layers) {
    if (l.kind === "InputLayer") {
      shapes.set(l.name, [...l.shape]);
      continue;
    }
    const ins = l.inputs.map((i) => get(i, l.name));
    const x = ins[0];
    let out: Shape;
    switch (l.kind) {
      case "Conv2D":
        out = [
          convOut(x[0], l.kernelSize[0], l.strides[0], l.padding),
          convOut(x[1], l.kernelSize[1], l.strides[1], l.padding),
          l.filters,
        ];
        break;
      case "MaxPooling2D":
      case "AveragePooling2D":
        out = [
          convOut(x[0], l.poolSize[0], l.strides[0], l.padding),
          convOut(x[1], l.poolSize[1], l.strides[1], l.padding),
          x[2],
        ];
        break;
      case "ZeroPadding2D": {
        const [[t, b], [le, r]] = l.padding;
        out = [x[0] === null ? null : x[0] + t + b, x[1] === null ? null : x[1] + le + r, x[2]];
        break;
      }
      case "Concatenate": {
        const c = ins.reduce(
          (a, s) =>
            (a === null || s[s.length - 1] === null) ? null : a + (s[s.length - 1] as number),
          0 as number | null,
        );
        out = [...x.slice(0, -1), c];
        break;
      }
      case "GlobalAveragePooling2D":
      case "GlobalMaxPooling2D":
        out = [x[2]];
        break;
      case "Flatten":
        out = [
          x.some((d) => d === null) ? null : x.reduce((a, d) => (a as number) * (d as number), 1),
        ];
        break;
      case "Dense":
        out = [...x.slice(0, -1), l.units];
        break;
      default: // BatchNormalization, Activation, Add, Dropout keep the shape
        out = [...x];
    }
    shapes.set(l.name, out);
  }
  return shapes;
}

/** TF "same" padding for one spatial dim: [before, after], the extra pixel after. */
export function samePads(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** The layers needed to compute `outputs` from `inputs`, in spec order. */
function neededLayers(spec: NetSpec, inputs: Set<string>, outputs: string[]): LayerSpec[] {
  const byName = new Map(spec.layers.map((l) => [l.name, l]));
  const needed = new Set<string>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (needed.has(name)) continue;
    const layer = byName.get(name);
    if (!layer) throw new Error(`exportOnnx: no layer named "${name}" in ${spec.name}`);
    needed.add(name);
    if (inputs.has(name)) continue;
    if (layer.kind === "InputLayer") {
      throw new Error(
        `exportOnnx: output needs InputLayer "${name}", which is not among the inputs [${
          [...inputs].join(", ")
        }]`,
      );
    }
    stack.push(...layer.inputs);
  }
  return spec.layers.filter((l) => needed.has(l.name));
}

function weight(
  weights: NetWeights,
  layer: string,
  kind: WeightKind,
  shape: number[],
): WeightTensor {
  const w = weights.get(layer)?.[kind];
  if (!w) throw new Error(`exportOnnx: missing weight ${layer}/${kind}`);
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new Error(
      `exportOnnx: ${layer}/${kind} has shape [${w.shape}], expected [${shape}]`,
    );
  }
  return w;
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
  const inputs = new Set(inputNames);
  const shapes = layerShapes(spec);
  const layers = neededLayers(spec, inputs, outputs);
  const preprocessing = opts.preprocessing ?? null;
  const fold = opts.foldBatchNorm ?? true;
  const outputSet = new Set(outputs);

  const nodes: NodeDef[] = [];
  const inits: TensorValue[] = [];
  const graphInputs: ValueInfo[] = [];
  const graphOutputs: ValueInfo[] = [];
  /** Keras layer -> name of the ONNX tensor holding its output (NCHW when spatial). */
  const tensor = new Map<string, string>();
  const shapeOf = (name: string): Shape => shapes.get(name)!;
  const spatial = (name: string) => shapeOf(name).length === 3;
  const dims = (s: Shape): (number | string)[] => [
    "batch",
    ...s.map((d, i) => d ?? (s.length === 3 ? ["height", "width", "channels"][i] : `d${i}`)),
  ];
  const t = (name: string) => tensor.get(name)!;
  let counter = 0;
  const node = (
    opType: string,
    ins: string[],
    out: string,
    attributes?: NodeDef["attributes"],
  ): string => {
    nodes.push({ opType, inputs: ins, outputs: [out], name: `${opType}_${counter++}`, attributes });
    return out;
  };
  const init = (name: string, dimsOf: number[], data: Float32Array): string => {
    inits.push(floatTensor(name, dimsOf, data));
    return name;
  };

  // Which BNs fold into their conv: the conv is linear, feeds only this BN, and is not an output.
  const consumers = new Map<string, string[]>();
  for (const l of layers) {
    for (const i of l.inputs) consumers.set(i, [...(consumers.get(i) ?? []), l.name]);
  }
  const byName = new Map(layers.map((l) => [l.name, l]));
  const foldedConvs = new Set<string>();
  if (fold) {
    for (const l of layers) {
      if (l.kind !== "BatchNormalization" || inputs.has(l.name)) continue;
      const src = byName.get(l.inputs[0]);
      if (
        src?.kind === "Conv2D" && !inputs.has(src.name) && src.activation === "linear" &&
        !outputSet.has(src.name) && consumers.get(src.name)?.length === 1
      ) foldedConvs.add(src.name);
    }
  }

  // Graph inputs.
  for (const name of inputNames) {
    const s = shapeOf(name);
    if (!s) throw new Error(`exportOnnx: no layer named "${name}" in ${spec.name}`);
    let x: string;
    if (preprocessing) {
      if (inputNames.length !== 1 || s.length !== 3 || s[2] !== 3) {
        throw new Error(
          `exportOnnx: in-graph preprocessing needs one RGB image input, got [${inputNames}]`,
        );
      }
      graphInputs.push({ name: IMAGE_INPUT, elemType: DataType.FLOAT, dims: dims(s) });
      x = preprocess(IMAGE_INPUT, preprocessing, node, init, inits);
    } else {
      graphInputs.push({ name, elemType: DataType.FLOAT, dims: dims(s) });
      x = name;
    }
    tensor.set(
      name,
      s.length === 3 ? node("Transpose", [x], `${name}#nchw`, { perm: { ints: [0, 3, 1, 2] } }) : x,
    );
  }

  const activation = (name: string, x: string, act: string): string => {
    switch (act) {
      case "linear":
        return x;
      case "relu":
        return node("Relu", [x], `${name}#relu`);
      case "sigmoid":
        return node("Sigmoid", [x], `${name}#sigmoid`);
      case "softmax":
        return node("Softmax", [x], `${name}#softmax`, { axis: { i: 1 } });
      default:
        throw new Error(`exportOnnx: layer "${name}": unsupported activation "${act}"`);
    }
  };
  const poolPads = (
    k: [number, number],
    st: [number, number],
    padding: Padding,
    inputLayer: string,
  ): NodeDef["attributes"] => {
    if (padding === "valid") return { pads: { ints: [0, 0, 0, 0] } };
    const [h, w] = shapeOf(inputLayer);
    if (h === null || w === null) return { auto_pad: { s: "SAME_UPPER" } };
    const [pt, pb] = samePads(h, k[0], st[0]);
    const [pl, pr] = samePads(w, k[1], st[1]);
    return { pads: { ints: [pt, pl, pb, pr] } };
  };

  for (const l of layers) {
    if (inputs.has(l.name)) continue;
    const x = l.inputs.length > 0 ? t(l.inputs[0]) : "";
    let y: string;
    switch (l.kind) {
      case "InputLayer":
        throw new Error(`unreachable: InputLayer ${l.name}`);
      case "Conv2D": {
        if (foldedConvs.has(l.name)) continue; // emitted by the BN that follows
        y = conv(l, x, weights, undefined);
        y = activation(l.name, y, l.activation);
        break;
      }
      case "BatchNormalization": {
        const c = shapeOf(l.name)[shapeOf(l.name).length - 1] as number;
        const w = weights.get(l.name) ?? {};
        const ones = new Float32Array(c).fill(1);
        const zeros = new Float32Array(c);
        const gamma = w.gamma ? weight(weights, l.name, "gamma", [c]).data : ones;
        const beta = w.beta ? weight(weights, l.name, "beta", [c]).data : zeros;
        const mean = weight(weights, l.name, "moving_mean", [c]).data;
        const variance = weight(weights, l.name, "moving_variance", [c]).data;
        const src = byName.get(l.inputs[0]);
        if (src?.kind === "Conv2D" && foldedConvs.has(src.name)) {
          const scale = new Float64Array(c);
          const shift = new Float64Array(c);
          for (let o = 0; o < c; o++) {
            scale[o] = gamma[o] / Math.sqrt(variance[o] + l.epsilon);
            shift[o] = beta[o] - mean[o] * scale[o];
          }
          y = conv(src, t(src.inputs[0]), weights, { scale, shift }, l.name);
        } else {
          const p = `${l.name}#bn`;
          y = node(
            "BatchNormalization",
            [
              x,
              init(`${p}/gamma`, [c], gamma),
              init(`${p}/beta`, [c], beta),
              init(`${p}/mean`, [c], mean),
              init(`${p}/var`, [c], variance),
            ],
            p,
            { epsilon: { f: l.epsilon } },
          );
        }
        break;
      }
      case "Activation":
        y = activation(l.name, x, l.activation);
        break;
      case "ZeroPadding2D": {
        const [[top, bottom], [left, right]] = l.padding;
        inits.push(int64Tensor(`${l.name}#pads`, [8], [0, 0, top, left, 0, 0, bottom, right]));
        y = node("Pad", [x, `${l.name}#pads`], `${l.name}#pad`, { mode: { s: "constant" } });
        break;
      }
      case "MaxPooling2D":
      case "AveragePooling2D": {
        const attrs = {
          kernel_shape: { ints: l.poolSize },
          strides: { ints: l.strides },
          ...poolPads(l.poolSize, l.strides, l.padding, l.inputs[0]),
        };
        y = l.kind === "MaxPooling2D"
          ? node("MaxPool", [x], `${l.name}#maxpool`, attrs)
          : node("AveragePool", [x], `${l.name}#avgpool`, {
            ...attrs,
            count_include_pad: { i: 0 },
          });
        break;
      }
      case "Add": {
        const ins = l.inputs.map(t);
        y = node(ins.length === 2 ? "Add" : "Sum", ins, `${l.name}#add`);
        break;
      }
      case "Concatenate":
        y = node("Concat", l.inputs.map(t), `${l.name}#concat`, { axis: { i: 1 } });
        break;
      case "GlobalAveragePooling2D":
      case "GlobalMaxPooling2D": {
        const op = l.kind === "GlobalAveragePooling2D" ? "GlobalAveragePool" : "GlobalMaxPool";
        const pooled = node(op, [x], `${l.name}#pool4d`);
        y = node("Flatten", [pooled], `${l.name}#flat`, { axis: { i: 1 } });
        break;
      }
      case "Flatten": {
        // Keras flattens NHWC order: go back to NHWC first.
        const nhwc = spatial(l.inputs[0])
          ? node("Transpose", [x], `${l.name}#nhwc`, { perm: { ints: [0, 2, 3, 1] } })
          : x;
        y = node("Flatten", [nhwc], `${l.name}#flat`, { axis: { i: 1 } });
        break;
      }
      case "Dropout":
        y = x; // inference: identity
        break;
      case "Dense": {
        const inShape = shapeOf(l.inputs[0]);
        if (inShape.length !== 1 || inShape[0] === null) {
          throw new Error(`exportOnnx: Dense "${l.name}" needs a flat input, got [${inShape}]`);
        }
        const k = weight(weights, l.name, "kernel", [inShape[0], l.units]);
        const ins = [x, init(`${l.name}#kernel`, k.shape, k.data)];
        if (l.useBias) {
          ins.push(
            init(`${l.name}#bias`, [l.units], weight(weights, l.name, "bias", [l.units]).data),
          );
        }
        y = node("Gemm", ins, `${l.name}#gemm`);
        y = activation(l.name, y, l.activation);
        break;
      }
    }
    tensor.set(l.name, y);
  }

  for (const name of outputs) {
    const s = shapeOf(name);
    if (s.length === 3) {
      node("Transpose", [t(name)], name, { perm: { ints: [0, 2, 3, 1] } });
    } else {
      node("Identity", [t(name)], name);
    }
    graphOutputs.push({ name, elemType: DataType.FLOAT, dims: dims(s) });
  }

  return encodeModel({
    graph: {
      name: `${spec.name}`,
      nodes,
      initializers: inits,
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

  /** Conv node (with BN folded in when `bn` is given); returns its output tensor. */
  function conv(
    l: Extract<LayerSpec, { kind: "Conv2D" }>,
    x: string,
    w: NetWeights,
    bn: { scale: Float64Array; shift: Float64Array } | undefined,
    outName = l.name,
  ): string {
    const inShape = shapeOf(l.inputs[0]);
    const cin = inShape[2] as number;
    const [kh, kw] = l.kernelSize;
    const kernel = weight(w, l.name, "kernel", [kh, kw, cin, l.filters]);
    const bias = l.useBias ? weight(w, l.name, "bias", [l.filters]).data : undefined;
    const ins = [x, init(`${outName}#W`, [l.filters, cin, kh, kw], convKernel(kernel, bn?.scale))];
    if (bias || bn) {
      const b = new Float32Array(l.filters);
      for (let o = 0; o < l.filters; o++) {
        const raw = bias ? bias[o] : 0;
        b[o] = bn ? raw * bn.scale[o] + bn.shift[o] : raw;
      }
      ins.push(init(`${outName}#B`, [l.filters], b));
    }
    const attrs: NodeDef["attributes"] = {
      kernel_shape: { ints: [kh, kw] },
      strides: { ints: l.strides },
      dilations: { ints: [1, 1] },
      group: { i: 1 },
      ...poolPads(l.kernelSize, l.strides, l.padding, l.inputs[0]),
    };
    return node("Conv", ins, `${outName}#conv`, attrs);
  }
}

/** In-graph keras preprocess_input on NHWC RGB 0..255; returns the preprocessed tensor name. */
function preprocess(
  x: string,
  mode: PreprocessingMode,
  node: (op: string, ins: string[], out: string, a?: NodeDef["attributes"]) => string,
  init: (name: string, dims: number[], data: Float32Array) => string,
  inits: TensorValue[],
): string {
  if (mode === "caffe") {
    // RGB -> BGR, then subtract the ImageNet BGR means (no scaling), as Keras does.
    inits.push(int64Tensor("pre#bgr_index", [3], [2, 1, 0]));
    const bgr = node("Gather", [x, "pre#bgr_index"], "pre#bgr", { axis: { i: 3 } });
    return node("Sub", [bgr, init("pre#mean", [3], Float32Array.from(CAFFE_MEAN_BGR))], "pre#out");
  }
  const scaled = node("Div", [x, init("pre#255", [], Float32Array.of(255))], "pre#scaled");
  const centered = node(
    "Sub",
    [scaled, init("pre#mean", [3], Float32Array.from(TORCH_MEAN))],
    "pre#centered",
  );
  return node("Div", [centered, init("pre#std", [3], Float32Array.from(TORCH_STD))], "pre#out");
}
