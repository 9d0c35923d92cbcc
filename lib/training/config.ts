/**
 * One typed training configuration per run: what a user tunes (flags of `deno task train`),
 * with defaults mirroring the original project (VGG16 head only; ResNet50 and DenseNet121 head
 * then fine-tuning of the last block with a lower learning rate).
 */
import { createHash } from "node:crypto";
import { NET_INFO } from "../models/registry.ts";
import type { NetName } from "../models/spec.ts";
import { dataDir } from "../util/paths.ts";
import { DEFAULT_INTENSITY, type IntensityMode, parseIntensityMode } from "../data/intensity.ts";
import { augmentPolicy } from "../features/views.ts";

export type Profile = "quick" | "full";
export type ThresholdMethodName = "sens95" | "youden" | "0.5";

export interface PhaseConfig {
  epochs: number;
  optimizer: "adam";
  lr: number;
}

export interface Phase2Config {
  epochs: number;
  lr: number;
  /** First trainable layer (Keras order); the frozen part comes from the activation cache. */
  unfreezeFrom: string;
  /**
   * BatchNormalization in the unfrozen tail: "inference" keeps the moving statistics (Keras'
   * fine-tuning advice: training=False), "batch" normalises with batch statistics as
   * `model.fit` does for trainable BN layers.
   */
  bnMode: "inference" | "batch";
}

export interface TrainConfig {
  net: NetName;
  /** "imagenet" | "none" | "formula" | path to a Keras .h5 */
  weights: string;
  profile: Profile;
  protocol: "patient" | "seed";
  valFraction: number;
  seed: number;
  subset?: { train?: number; val?: number };
  batchSize: number;
  dropout: number;
  classWeight: "balanced" | "none";
  /**
   * Standardise the pooled features (mean/std of train, fixed, folded into head_dense at the
   * end) so the head trains well whatever the scale of the frozen features.
   */
  standardize: boolean;
  phase1: PhaseConfig;
  phase2: null | Phase2Config;
  earlyStopping: { monitor: "val_auc" | "val_loss"; patience: number; restoreBest: boolean };
  /** Intensity normalisation of every image, in training and wherever the model runs. */
  intensity: IntensityMode;
  /**
   * Augmented views per training image, computed once through the frozen base and cached;
   * each epoch draws one of view 0 (the image) .. K per image. 0: no augmentation.
   */
  augmentViews: number;
  /** Horizontal flips among the augmentations (off: chest anatomy is not symmetric). */
  augmentFlip: boolean;
  dataRoot: string;
  mlflow: boolean;
  thresholdMethod: ThresholdMethodName;
}

/** Everything optional, phases partially overridable. */
export type TrainConfigInput =
  & Partial<Omit<TrainConfig, "phase1" | "phase2" | "earlyStopping" | "net">>
  & {
    net: NetName;
    phase1?: Partial<PhaseConfig>;
    phase2?: Partial<Phase2Config> | null;
    earlyStopping?: Partial<TrainConfig["earlyStopping"]>;
  };

/** Per-profile defaults. quick: a notebook's training in a few minutes (features included). */
export const PROFILES: Record<
  Profile,
  {
    subset?: { train?: number; val?: number };
    phase1Epochs: number;
    phase2Epochs: number;
    patience: number;
    /** Augmented views per training image (lib/features/views.ts). */
    augmentViews: number;
  }
> = {
  quick: {
    subset: { train: 240, val: 96 },
    phase1Epochs: 12,
    phase2Epochs: 2,
    patience: 4,
    augmentViews: 0, // minutes matter more than robustness in a walkthrough
  },
  // One view per image: under the shift suite it was what kept a framing (zoom) change from
  // turning NORMAL images into pneumonia (README, "What each defence changed"); it costs one
  // more extraction of the training set per net.
  full: { phase1Epochs: 30, phase2Epochs: 2, patience: 5, augmentViews: 1 },
};

/** Learning rates: Adam 1e-3 for the head (standardised inputs), 1e-5 for fine-tuning. */
export const DEFAULT_LR = { phase1: 1e-3, phase2: 1e-5 } as const;

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) {
    throw new Error(`config: ${name} must be an integer >= 0, got ${v}`);
  }
  return v;
}

function positiveNumber(name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`config: ${name} must be > 0, got ${v}`);
  return v;
}

/** Fills every field from the profile and the net's defaults, and validates. */
export function resolveConfig(partial: TrainConfigInput, profile?: Profile): TrainConfig {
  const prof: Profile = profile ?? partial.profile ?? "quick";
  if (!(prof in PROFILES)) throw new Error(`config: unknown profile "${prof}" (quick | full)`);
  const p = PROFILES[prof];
  const net = partial.net;
  if (!(net in NET_INFO)) throw new Error(`config: unknown net "${net}"`);
  const defaultUnfreeze = NET_INFO[net].defaultUnfreezeFrom;
  let phase2: Phase2Config | null = null;
  if (partial.phase2 !== null) {
    const unfreezeFrom = partial.phase2?.unfreezeFrom ?? defaultUnfreeze;
    const epochs = partial.phase2?.epochs ?? (unfreezeFrom ? p.phase2Epochs : 0);
    if (unfreezeFrom && epochs > 0) {
      phase2 = {
        epochs: positiveInt("phase2.epochs", epochs),
        lr: positiveNumber("phase2.lr", partial.phase2?.lr ?? DEFAULT_LR.phase2),
        unfreezeFrom,
        bnMode: partial.phase2?.bnMode ?? "inference",
      };
      if (phase2.bnMode !== "inference" && phase2.bnMode !== "batch") {
        throw new Error(`config: phase2.bnMode must be inference | batch, got ${phase2.bnMode}`);
      }
    }
  }
  const subset = partial.subset ?? p.subset;
  const config: TrainConfig = {
    net,
    weights: partial.weights ?? "imagenet",
    profile: prof,
    protocol: partial.protocol ?? "patient",
    valFraction: partial.valFraction ?? 0.12,
    seed: positiveInt("seed", partial.seed ?? 42),
    ...(subset ? { subset: { ...subset } } : {}),
    batchSize: positiveInt("batchSize", partial.batchSize ?? 32),
    dropout: partial.dropout ?? 0.5,
    classWeight: partial.classWeight ?? "balanced",
    standardize: partial.standardize ?? true,
    phase1: {
      epochs: positiveInt("phase1.epochs", partial.phase1?.epochs ?? p.phase1Epochs),
      optimizer: "adam",
      lr: positiveNumber("phase1.lr", partial.phase1?.lr ?? DEFAULT_LR.phase1),
    },
    phase2,
    earlyStopping: {
      monitor: partial.earlyStopping?.monitor ?? "val_auc",
      patience: positiveInt(
        "earlyStopping.patience",
        partial.earlyStopping?.patience ?? p.patience,
      ),
      restoreBest: partial.earlyStopping?.restoreBest ?? true,
    },
    intensity: parseIntensityMode(partial.intensity ?? DEFAULT_INTENSITY, "config: intensity"),
    augmentViews: positiveInt("augmentViews", partial.augmentViews ?? p.augmentViews),
    augmentFlip: partial.augmentFlip ?? false,
    dataRoot: partial.dataRoot ?? dataDir(),
    mlflow: partial.mlflow ?? true,
    thresholdMethod: partial.thresholdMethod ?? "sens95",
  };
  if (config.batchSize < 1) throw new Error("config: batchSize must be >= 1");
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    throw new Error(`config: dropout must be in [0, 1), got ${config.dropout}`);
  }
  if (config.protocol !== "patient" && config.protocol !== "seed") {
    throw new Error(`config: protocol must be patient | seed, got ${config.protocol}`);
  }
  if (config.classWeight !== "balanced" && config.classWeight !== "none") {
    throw new Error(`config: classWeight must be balanced | none, got ${config.classWeight}`);
  }
  if (!["val_auc", "val_loss"].includes(config.earlyStopping.monitor)) {
    throw new Error(`config: earlyStopping.monitor must be val_auc | val_loss`);
  }
  return config;
}

/**
 * Fields that change the result (not where data lives or whether MLflow logs). Options at their
 * "off" value are left out, so runs made before they existed keep their ids.
 */
function resultFields(config: TrainConfig): unknown {
  const { dataRoot: _d, mlflow: _m, thresholdMethod: _t, ...rest } = config;
  const out: Partial<TrainConfig> = { ...rest };
  if (out.intensity === "off") delete out.intensity;
  if (out.augmentViews === 0) {
    delete out.augmentViews;
    delete out.augmentFlip;
    return out;
  }
  if (!out.augmentFlip) delete out.augmentFlip;
  return { ...out, augmentPolicy: augmentPolicy(config.augmentFlip) };
}

function weightsSlug(weights: string): string {
  if (["imagenet", "none", "formula"].includes(weights)) return weights;
  const base = weights.split(/[\\/]/).pop() ?? "file";
  return base.replace(/\.h5$/i, "").replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 40) || "file";
}

/** `${net}-${profile}-${weights}-${protocol}-${hash8}`: same config, same run directory. */
export function runIdFor(config: TrainConfig): string {
  const hash = createHash("sha256").update(JSON.stringify(resultFields(config))).digest("hex");
  return `${config.net}-${config.profile}-${weightsSlug(config.weights)}-${config.protocol}-${
    hash.slice(0, 8)
  }`;
}
