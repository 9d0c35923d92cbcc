/** keras.applications.<net>.preprocess_input, bit for bit (float32 arithmetic, NHWC). */
import type { PreprocessingMode } from "./spec.ts";

export const PREPROCESSING = {
  /** VGG16, ResNet50: RGB -> BGR, then subtract the ImageNet mean per BGR channel. */
  caffe: { mean: [103.939, 116.779, 123.68] as const },
  /** DenseNet121: scale to [0, 1], then normalise per RGB channel. */
  torch: { mean: [0.485, 0.456, 0.406] as const, std: [0.229, 0.224, 0.225] as const },
};

const f = Math.fround;

/** Keras 'caffe' mode: BGR order, mean-subtracted, no scaling. */
export function preprocessCaffe(rgb: Float32Array): Float32Array {
  checkPixels(rgb);
  const out = new Float32Array(rgb.length);
  const [mb, mg, mr] = PREPROCESSING.caffe.mean;
  for (let i = 0; i < rgb.length; i += 3) {
    out[i] = f(rgb[i + 2] - mb);
    out[i + 1] = f(rgb[i + 1] - mg);
    out[i + 2] = f(rgb[i] - mr);
  }
  return out;
}

/** Keras 'torch' mode: x / 255, minus mean, divided by std, per RGB channel. */
export function preprocessTorch(rgb: Float32Array): Float32Array {
  checkPixels(rgb);
  const out = new Float32Array(rgb.length);
  const { mean, std } = PREPROCESSING.torch;
  for (let i = 0; i < rgb.length; i++) {
    const c = i % 3;
    out[i] = f(f(f(rgb[i] / 255) - mean[c]) / std[c]);
  }
  return out;
}

/** Preprocesses NHWC RGB pixels (0..255) as `keras.applications` does for `mode`. */
export function preprocessInput(rgb: Float32Array, mode: PreprocessingMode): Float32Array {
  switch (mode) {
    case "caffe":
      return preprocessCaffe(rgb);
    case "torch":
      return preprocessTorch(rgb);
    default: {
      const unknown: never = mode; // a new mode fails to compile here
      throw new Error(`unknown preprocessing mode "${unknown}" (expected caffe or torch)`);
    }
  }
}

function checkPixels(rgb: Float32Array): void {
  if (rgb.length % 3 !== 0) {
    throw new Error(`preprocessInput: ${rgb.length} values is not a whole number of RGB pixels`);
  }
}
