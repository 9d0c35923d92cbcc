/**
 * A tiny NetSpec that uses every layer kind and padding case the exporter handles (odd sizes
 * for asymmetric TF "same" padding, folded and explicit BN, concat, add, pooling, dense), for
 * fast tests of ONNX export, the feature cache and benchmarks of the machinery.
 * (ORT fuses a Pad into the following pool; the summed pads must stay below the kernel size.)
 */
import type { NetSpec } from "../models/spec.ts";

export function tinySpec(opts: { height?: number; width?: number } = {}): NetSpec {
  const h = opts.height ?? 17;
  const w = opts.width ?? 15;
  return {
    name: "resnet50", // a NetName is required; the layers are what matter
    preprocessing: "caffe",
    output: "probs",
    layers: [
      { kind: "InputLayer", name: "input_1", inputs: [], shape: [h, w, 3] },
      {
        kind: "Conv2D",
        name: "c1",
        inputs: ["input_1"],
        filters: 8,
        kernelSize: [3, 3],
        strides: [2, 2],
        padding: "same",
        useBias: true,
        activation: "linear",
      },
      {
        kind: "BatchNormalization",
        name: "bn1",
        inputs: ["c1"],
        epsilon: 1.001e-5,
        momentum: 0.99,
      },
      { kind: "Activation", name: "relu1", inputs: ["bn1"], activation: "relu" },
      { kind: "ZeroPadding2D", name: "zp", inputs: ["relu1"], padding: [[1, 0], [0, 1]] },
      {
        kind: "MaxPooling2D",
        name: "mp",
        inputs: ["zp"],
        poolSize: [3, 3],
        strides: [2, 2],
        padding: "same",
      },
      {
        kind: "Conv2D",
        name: "c2",
        inputs: ["mp"],
        filters: 8,
        kernelSize: [1, 1],
        strides: [1, 1],
        padding: "same",
        useBias: false,
        activation: "relu",
      },
      { kind: "BatchNormalization", name: "bn2", inputs: ["c2"], epsilon: 1e-3, momentum: 0.99 },
      { kind: "Add", name: "add", inputs: ["mp", "bn2"] },
      {
        kind: "Conv2D",
        name: "c3",
        inputs: ["add"],
        filters: 4,
        kernelSize: [3, 3],
        strides: [1, 1],
        padding: "same",
        useBias: false,
        activation: "linear",
      },
      { kind: "BatchNormalization", name: "bn3", inputs: ["c3"], epsilon: 1e-3, momentum: 0.99 },
      { kind: "Concatenate", name: "cat", inputs: ["add", "bn3", "c3"] },
      {
        kind: "AveragePooling2D",
        name: "ap",
        inputs: ["cat"],
        poolSize: [2, 2],
        strides: [2, 2],
        padding: "valid",
      },
      {
        kind: "AveragePooling2D",
        name: "ap_same",
        inputs: ["cat"],
        poolSize: [3, 3],
        strides: [2, 2],
        padding: "same",
      },
      { kind: "GlobalMaxPooling2D", name: "gmp", inputs: ["ap_same"] },
      { kind: "GlobalAveragePooling2D", name: "gap", inputs: ["ap"] },
      { kind: "Flatten", name: "flat", inputs: ["ap"] },
      {
        kind: "Dense",
        name: "fc",
        inputs: ["flat"],
        units: 5,
        activation: "relu",
        useBias: true,
      },
      { kind: "Concatenate", name: "feats", inputs: ["gap", "gmp", "fc"] },
      { kind: "Dropout", name: "drop", inputs: ["feats"], rate: 0.5 },
      {
        kind: "Dense",
        name: "probs",
        inputs: ["drop"],
        units: 3,
        activation: "softmax",
        useBias: true,
      },
      {
        kind: "Dense",
        name: "score",
        inputs: ["drop"],
        units: 1,
        activation: "sigmoid",
        useBias: false,
      },
    ],
  };
}
