/**
 * What an explanation method gives the server: the contract between `serving/` (which calls it)
 * and `explain/gradcam.ts` (which implements it), kept on the lower floor so neither imports the
 * other.
 */
import type { Classifier } from "../inference/classifier.ts";

export interface Explanation {
  overlayPng: Uint8Array;
  /** The coloured heatmap alone (RGBA, alpha = evidence), for pages that overlay it themselves. */
  heatmapPng?: Uint8Array;
  /** Heatmap size before upsampling (the Grad-CAM layer's spatial size). */
  h: number;
  w: number;
  layer: string;
  /** The class whose evidence the heatmap shows. */
  target: "NORMAL" | "PNEUMONIA";
}

/** Grad-CAM (or a fake in tests): image [224,224,3] RGB 0..255, plus what predict already computed. */
export type Explainer = (
  classifier: Classifier,
  image: Float32Array,
  ctx: { prob: number; activation?: { data: Float32Array; shape: number[] } },
) => Promise<Explanation>;
