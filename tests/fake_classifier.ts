/** A stand-in classifier for server tests: P(pneumonia) = mean brightness of the input. */
import type { Classifier } from "../lib/inference/classifier.ts";

export interface FakeOptions {
  id?: string;
  net?: Classifier["net"];
  untrained?: boolean;
  gradcamLayer?: string | null;
  threshold?: Partial<Classifier["threshold"]>;
  weights?: Partial<Classifier["weights"]>;
}

export function brightnessClassifier(o: FakeOptions = {}): Classifier {
  return {
    id: o.id ?? "m1",
    net: o.net ?? "densenet121",
    threshold: {
      method: "sens95",
      value: 0.5,
      val_sensitivity: 0.95,
      val_specificity: 0.7,
      ...o.threshold,
    },
    weights: {
      label: "formula (not ImageNet)",
      md5: "0123456789abcdef0123456789abcdef",
      isImageNet: false,
      ...o.weights,
    },
    gradcamLayer: o.gradcamLayer ?? null,
    runDir: null,
    meta: { untrained: o.untrained ?? false } as Classifier["meta"],
    predict(images: Float32Array, n: number) {
      // Per image, so a batch of n gets the n answers each image gets alone.
      const per = images.length / n;
      const prob = new Float32Array(n);
      for (let k = 0; k < n; k++) {
        let s = 0;
        for (let i = k * per; i < (k + 1) * per; i++) s += images[i];
        prob[k] = s / per / 255;
      }
      return Promise.resolve({ prob });
    },
    close: () => Promise.resolve(),
  };
}
