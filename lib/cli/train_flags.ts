/** Flags shared by `deno task train` and `deno task train-all` -> a partial TrainConfig. */
import type { TrainConfigInput } from "../training/config.ts";
import { choiceFlag, numberFlag } from "./args.ts";

export const COMMON_OPTIONS = {
  profile: { type: "string" },
  weights: { type: "string" },
  epochs: { type: "string" },
  "phase2-epochs": { type: "string" },
  lr: { type: "string" },
  "phase2-lr": { type: "string" },
  "unfreeze-from": { type: "string" },
  "bn-mode": { type: "string" },
  "batch-size": { type: "string" },
  dropout: { type: "string" },
  "class-weight": { type: "string" },
  patience: { type: "string" },
  monitor: { type: "string" },
  seed: { type: "string" },
  protocol: { type: "string" },
  subset: { type: "string" },
  data: { type: "string" },
  threshold: { type: "string" },
  backend: { type: "string" },
  intensity: { type: "string" },
  "augment-views": { type: "string" },
  "augment-flip": { type: "boolean" },
  "no-standardize": { type: "boolean" },
  "no-mlflow": { type: "boolean" },
  force: { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const COMMON_USAGE =
  `  --profile full|quick        full: all of train (default); quick: small subset, few epochs
  --weights imagenet|none|formula|PATH.h5   base weights (default CXR_WEIGHTS or imagenet)
  --epochs N                  phase-1 epochs (head on the frozen base)
  --phase2-epochs N           phase-2 epochs (fine-tuning; 0 = no phase 2)
  --lr X / --phase2-lr X      Adam learning rates (default 1e-3 / 1e-5)
  --unfreeze-from LAYER       first trainable layer of phase 2 (Keras name)
  --bn-mode inference|batch   BatchNorm of the unfrozen tail (default inference)
  --batch-size N              (default 32)
  --dropout X                 head dropout (default 0.5)
  --class-weight balanced|none   (default balanced: the 3:1 imbalance)
  --patience N / --monitor val_auc|val_loss   early stopping (restores the best epoch)
  --seed N                    (default 42)
  --protocol patient|seed     patient: patient-disjoint val carved from train, test = official
                              test (default); seed: the original swap (val = official test,
                              test = the official val folder)
  --subset N                  at most N train images (val: N*0.4), stratified
  --data DIR                  dataset root (default CXR_DATA or data/chest_xray)
  --threshold sens95|youden|0.5  operating threshold chosen on validation
  --backend auto|wasm|cpu|tensorflow
  --intensity off|equalize|clahe   intensity normalisation, in training and wherever the
                              model runs (default equalize)
  --augment-views K           K augmented views per training image through the frozen base,
                              cached; each epoch draws one of the image and its K views
                              (default 1 in the full profile, 0 in quick; 0: none)
  --augment-flip              allow horizontal flips among the augmentations (default off)
  --no-standardize            no feature standardisation in the head
  --no-mlflow                 no tracking
  --force                     retrain a finished run`;

/** Parsed flag values -> config fields (net excluded). */
export function configFromFlags(
  v: Record<string, string | boolean | undefined>,
): Omit<TrainConfigInput, "net"> {
  const s = (k: string) => v[k] as string | undefined;
  const out: Omit<TrainConfigInput, "net"> = {};
  const profile = choiceFlag("profile", s("profile"), ["quick", "full"]);
  if (profile) out.profile = profile;
  if (s("weights")) out.weights = s("weights");
  const epochs = numberFlag("epochs", s("epochs"));
  const lr = numberFlag("lr", s("lr"));
  if (epochs !== undefined || lr !== undefined) {
    out.phase1 = {
      ...(epochs !== undefined ? { epochs } : {}),
      ...(lr !== undefined ? { lr } : {}),
    };
  }
  const p2e = numberFlag("phase2-epochs", s("phase2-epochs"));
  const p2lr = numberFlag("phase2-lr", s("phase2-lr"));
  const bnMode = choiceFlag("bn-mode", s("bn-mode"), ["inference", "batch"]);
  if (p2e !== undefined || p2lr !== undefined || s("unfreeze-from") || bnMode) {
    out.phase2 = {
      ...(p2e !== undefined ? { epochs: p2e } : {}),
      ...(p2lr !== undefined ? { lr: p2lr } : {}),
      ...(s("unfreeze-from") ? { unfreezeFrom: s("unfreeze-from") } : {}),
      ...(bnMode ? { bnMode } : {}),
    };
  }
  const bs = numberFlag("batch-size", s("batch-size"));
  if (bs !== undefined) out.batchSize = bs;
  const dropout = numberFlag("dropout", s("dropout"));
  if (dropout !== undefined) out.dropout = dropout;
  const cw = choiceFlag("class-weight", s("class-weight"), ["balanced", "none"]);
  if (cw) out.classWeight = cw;
  const patience = numberFlag("patience", s("patience"));
  const monitor = choiceFlag("monitor", s("monitor"), ["val_auc", "val_loss"]);
  if (patience !== undefined || monitor) {
    out.earlyStopping = {
      ...(patience !== undefined ? { patience } : {}),
      ...(monitor ? { monitor } : {}),
    };
  }
  const seed = numberFlag("seed", s("seed"));
  if (seed !== undefined) out.seed = seed;
  const protocol = choiceFlag("protocol", s("protocol"), ["patient", "seed"]);
  if (protocol) out.protocol = protocol;
  const subset = numberFlag("subset", s("subset"));
  if (subset !== undefined) {
    out.subset = { train: subset, val: Math.max(20, Math.round(subset * 0.4)) };
  }
  if (s("data")) out.dataRoot = s("data");
  const th = choiceFlag("threshold", s("threshold"), ["sens95", "youden", "0.5"]);
  if (th) out.thresholdMethod = th;
  const intensity = choiceFlag("intensity", s("intensity"), ["off", "equalize", "clahe"]);
  if (intensity) out.intensity = intensity;
  const views = numberFlag("augment-views", s("augment-views"), { integer: true, min: 0 });
  if (views !== undefined) out.augmentViews = views;
  if (v["augment-flip"]) out.augmentFlip = true;
  if (v["no-standardize"]) out.standardize = false;
  if (v["no-mlflow"]) out.mlflow = false;
  return out;
}
