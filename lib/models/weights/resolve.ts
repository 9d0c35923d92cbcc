/**
 * The `--weights` / `CXR_WEIGHTS` choice turned into weights plus what every run records about
 * them: source, md5, a human label, and whether they are Keras' verified ImageNet weights
 * (anything else is labelled "not ImageNet" wherever its numbers are shown).
 */
import { basename } from "node:path";
import type { NetName, NetWeights } from "../spec.ts";
import type { WeightLayout } from "../layout.ts";
import { formulaWeights } from "./formula.ts";
import { readKerasH5 } from "./h5.ts";
import { kerasInitWeights } from "./init.ts";
import { ensureImagenetWeights, KERAS_IMAGENET } from "./imagenet.ts";
import type { DownloadOptions } from "./download.ts";
import { loadWeights } from "./io.ts";
import { fileMd5, weightsMd5 } from "./md5.ts";
import { isFile } from "../../util/fs.ts";
import { resolveUserPath } from "../../util/paths.ts";

export { weightsMd5 } from "./md5.ts";

/** "imagenet", "none", "formula", or a path to a Keras `.h5` (or a cxr `<path>.json`). */
export type WeightsChoice = "imagenet" | "none" | "formula" | string;

export interface ResolvedWeights {
  weights: NetWeights;
  /** The choice as given. */
  choice: string;
  source: "imagenet" | "none" | "formula" | "file";
  /** The file read, for "imagenet" and "file". */
  path?: string;
  /** md5 of the weights as float32 bytes in Keras order (`weightsMd5`). */
  md5: string;
  /** md5 of the file read, for "imagenet" and "file". */
  fileMd5?: string;
  /** e.g. "ImageNet (Keras)", "formula (not ImageNet)". */
  label: string;
  /** True only for Keras' ImageNet file with its published md5. */
  isImageNet: boolean;
}

export const WEIGHTS_LABELS = {
  imagenet: "ImageNet (Keras)",
  formula: "formula (not ImageNet)",
  none: "none: Keras initialisers (not ImageNet)",
} as const;

/** `CXR_WEIGHTS`, else "imagenet" (Keras' default). */
export function defaultWeightsChoice(): string {
  try {
    const value = Deno.env.get("CXR_WEIGHTS");
    if (value !== undefined && value.trim() !== "") return value.trim();
  } catch {
    // no --allow-env
  }
  return "imagenet";
}

export interface ResolveOptions {
  /** Download missing ImageNet weights (default true). */
  download?: boolean;
  /** Seed of the `none` initialisers (default 42). */
  seed?: number;
  fetchImpl?: DownloadOptions["fetchImpl"];
  progress?: boolean;
  /** Replace Keras' base URL (a mirror). */
  baseUrl?: string;
}

/** Resolves `choice` for `net` into weights of `layout` (see the module comment). */
export async function resolveWeights(
  net: NetName,
  choice: WeightsChoice,
  layout: WeightLayout,
  opts: ResolveOptions = {},
): Promise<ResolvedWeights> {
  const key = choice.trim();
  switch (key.toLowerCase()) {
    case "imagenet": {
      const path = await ensureImagenetWeights(net, opts);
      const md5 = await fileMd5(path);
      const expected = KERAS_IMAGENET[net].md5;
      if (md5 !== expected) {
        throw new Error(
          `${path}: md5 is ${md5}, Keras' ImageNet ${KERAS_IMAGENET[net].file} has ${expected}; ` +
            `the file is corrupt or a different file: delete it (it will be downloaded again) ` +
            `or pass it as --weights <path> to use it as an ordinary weights file`,
        );
      }
      const weights = await readKerasH5(path, layout);
      return {
        weights,
        choice,
        source: "imagenet",
        path,
        md5: weightsMd5(weights, layout),
        fileMd5: md5,
        label: WEIGHTS_LABELS.imagenet,
        isImageNet: true,
      };
    }
    case "none": {
      const weights = kerasInitWeights(layout, opts.seed ?? 42);
      return {
        weights,
        choice,
        source: "none",
        md5: weightsMd5(weights, layout),
        label: WEIGHTS_LABELS.none,
        isImageNet: false,
      };
    }
    case "formula": {
      const weights = formulaWeights(layout);
      return {
        weights,
        choice,
        source: "formula",
        md5: weightsMd5(weights, layout),
        label: WEIGHTS_LABELS.formula,
        isImageNet: false,
      };
    }
  }
  return await resolveFile(net, choice, key, layout);
}

async function resolveFile(
  net: NetName,
  choice: string,
  given: string,
  layout: WeightLayout,
): Promise<ResolvedWeights> {
  const path = resolveUserPath(given);
  let weights: NetWeights;
  let md5OfFile: string;
  if (path.endsWith(".json") && await isFile(path)) {
    // cxr's own save format: <base>.json + <base>.bin
    const base = path.slice(0, -".json".length);
    weights = await loadWeights(base);
    md5OfFile = await fileMd5(`${base}.bin`);
  } else if (await isFile(path)) {
    weights = await readKerasH5(path, layout);
    md5OfFile = await fileMd5(path);
  } else {
    throw new Error(
      `weights "${given}": no such file (${path}); choose imagenet, none, formula, ` +
        `or the path of a Keras .h5 weights file`,
    );
  }
  for (const entry of layout) {
    for (const w of entry.weights) {
      const tensor = weights.get(entry.layer)?.[w.kind];
      if (!tensor || tensor.shape.join() !== w.shape.join()) {
        throw new Error(
          `${path}: layer ${entry.layer} ${w.kind}: expected shape [${w.shape.join(", ")}], ` +
            (tensor ? `file has [${tensor.shape.join(", ")}]` : "missing in the file"),
        );
      }
    }
  }
  const isImageNet = md5OfFile === KERAS_IMAGENET[net].md5;
  return {
    weights,
    choice,
    source: "file",
    path,
    md5: weightsMd5(weights, layout),
    fileMd5: md5OfFile,
    label: `file ${basename(path)} (md5 ${md5OfFile.slice(0, 8)}…)` +
      (isImageNet ? `: ${WEIGHTS_LABELS.imagenet}` : " (not ImageNet)"),
    isImageNet,
  };
}
