/** The three ImageNet bases cxr offers, by name. */
import { densenet121 } from "./densenet121.ts";
import { resnet50 } from "./resnet50.ts";
import type { NetName, NetSpec } from "./spec.ts";
import { vgg16 } from "./vgg16.ts";

export const NET_NAMES: NetName[] = ["vgg16", "resnet50", "densenet121"];

export interface NetInfo {
  displayName: "VGG16" | "ResNet50" | "DenseNet121";
  /** Last convolutional activation, where Grad-CAM looks. */
  gradcamLayer: string;
  /** First layer trained in phase 2 (fine-tuning); null: the original project kept it frozen. */
  defaultUnfreezeFrom: string | null;
}

export const NET_INFO: Record<NetName, NetInfo> = {
  vgg16: { displayName: "VGG16", gradcamLayer: "block5_conv3", defaultUnfreezeFrom: null },
  resnet50: {
    displayName: "ResNet50",
    gradcamLayer: "conv5_block3_out",
    // The last bottleneck's final 1x1 conv, its BN and the residual add: from conv5_block3_1_conv
    // (the whole bottleneck) an epoch costs ~6x more on a 2-core CPU (~1.3 GFLOP/img/step).
    defaultUnfreezeFrom: "conv5_block3_3_conv",
  },
  densenet121: {
    displayName: "DenseNet121",
    gradcamLayer: "relu",
    defaultUnfreezeFrom: "conv5_block16_0_bn",
  },
};

/** "VGG16" etc. for a net name in any case, the name itself when unknown, "model" when absent. */
export function displayName(net: string | null | undefined): string {
  if (!net) return "model";
  const key = net.toLowerCase();
  if (key in NET_INFO) return NET_INFO[key as NetName].displayName;
  return OTHER_DISPLAY_NAMES[key] ?? net;
}

/** Models that are not one net (lib/ensemble/: an ensemble of runs). */
const OTHER_DISPLAY_NAMES: Record<string, string> = { ensemble: "Ensemble" };

const BUILDERS: Record<NetName, (opts?: { includeTop?: boolean }) => NetSpec> = {
  vgg16,
  resnet50,
  densenet121,
};

/** The notop base (include_top=False, 224x224x3 input) of `name`. */
export function getNetSpec(name: NetName, opts: { includeTop?: boolean } = {}): NetSpec {
  const build = BUILDERS[name];
  if (!build) throw new Error(`unknown net "${name}" (expected one of ${NET_NAMES.join(", ")})`);
  return build(opts);
}

/** Case-insensitive net name ("VGG16", "resnet50", "DenseNet121"). */
export function parseNetName(s: string): NetName {
  const name = s.trim().toLowerCase();
  if ((NET_NAMES as string[]).includes(name)) return name as NetName;
  throw new Error(`unknown net "${s}": expected one of ${NET_NAMES.join(", ")}`);
}
