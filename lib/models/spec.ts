/**
 * The architecture description language shared by every part of cxr.
 *
 * One `NetSpec` per network (see vgg16.ts, resnet50.ts, densenet121.ts) lists Keras layers in
 * Keras' order, with Keras' names and Keras semantics (NHWC, "same"/"valid" padding as in
 * TensorFlow, BN over the last axis). The same spec builds the tfjs-layers model, names the
 * weights to load from a Keras `.h5`, and is exported to ONNX: there is no second copy of any
 * architecture.
 */

/** Keras padding modes, with TensorFlow's "same" (extra padding goes bottom/right). */
export type Padding = "valid" | "same";

/** Activations the three nets and their heads use. */
export type ActivationName = "linear" | "relu" | "sigmoid" | "softmax";

/** How `keras.applications.<net>.preprocess_input` scales pixels. */
export type PreprocessingMode = "caffe" | "torch";

interface LayerBase {
  /** Keras layer name, e.g. `block1_conv1`, `conv2_block1_1_conv`, `conv1/conv`. */
  name: string;
  /** Names of the layers whose outputs feed this one (Keras' inbound nodes). */
  inputs: string[];
}

export interface InputSpec {
  kind: "InputLayer";
  name: string;
  inputs: [];
  /** [height, width, channels], or [features] for a cut inside the head; null = any size. */
  shape: (number | null)[];
}

export interface Conv2DSpec extends LayerBase {
  kind: "Conv2D";
  filters: number;
  kernelSize: [number, number];
  strides: [number, number];
  padding: Padding;
  useBias: boolean;
  activation: ActivationName;
}

export interface BatchNormalizationSpec extends LayerBase {
  kind: "BatchNormalization";
  epsilon: number;
  momentum: number;
}

export interface ActivationSpec extends LayerBase {
  kind: "Activation";
  activation: ActivationName;
}

export interface ZeroPadding2DSpec extends LayerBase {
  kind: "ZeroPadding2D";
  /** [[top, bottom], [left, right]] */
  padding: [[number, number], [number, number]];
}

export interface Pooling2DSpec extends LayerBase {
  kind: "MaxPooling2D" | "AveragePooling2D";
  poolSize: [number, number];
  strides: [number, number];
  padding: Padding;
}

export interface MergeSpec extends LayerBase {
  kind: "Add" | "Concatenate";
}

export interface GlobalPooling2DSpec extends LayerBase {
  kind: "GlobalAveragePooling2D" | "GlobalMaxPooling2D";
}

export interface FlattenSpec extends LayerBase {
  kind: "Flatten";
}

export interface DropoutSpec extends LayerBase {
  kind: "Dropout";
  rate: number;
}

export interface DenseSpec extends LayerBase {
  kind: "Dense";
  units: number;
  activation: ActivationName;
  useBias: boolean;
}

export type LayerSpec =
  | InputSpec
  | Conv2DSpec
  | BatchNormalizationSpec
  | ActivationSpec
  | ZeroPadding2DSpec
  | Pooling2DSpec
  | MergeSpec
  | GlobalPooling2DSpec
  | FlattenSpec
  | DropoutSpec
  | DenseSpec;

/** Every layer kind a NetSpec may use; `switch`es and emitter tables over it are exhaustive. */
export type LayerKind = LayerSpec["kind"];

/** The spec type of a layer kind, e.g. `LayerOf<"MaxPooling2D">` is Pooling2DSpec. */
export type LayerOf<K extends LayerKind> = LayerSpec extends infer L
  ? L extends { kind: infer LK } ? K extends LK ? L : never : never
  : never;

export type NetName = "vgg16" | "resnet50" | "densenet121";

/** A whole network (or a classifier: base + head) as Keras would build it. */
export interface NetSpec {
  /** e.g. "vgg16"; a classifier keeps its base's name. */
  name: NetName;
  preprocessing: PreprocessingMode;
  /** Layers in Keras' order (topologically sorted); the first is the InputLayer. */
  layers: LayerSpec[];
  /** Name of the layer whose output is the model's output. */
  output: string;
}

/** Keras weight kinds, in the order Keras stores them per layer. */
export type WeightKind =
  | "kernel"
  | "bias"
  | "gamma"
  | "beta"
  | "moving_mean"
  | "moving_variance";

/** One weight array in Keras layout (conv kernel [kh, kw, cin, cout], dense [in, out]). */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

/** Weights of a net: layer name -> kind -> tensor. Weightless layers are absent. */
export type NetWeights = Map<string, Partial<Record<WeightKind, WeightTensor>>>;
