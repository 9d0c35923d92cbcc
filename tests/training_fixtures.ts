/**
 * The smallest real training the tests run: DenseNet121 with formula weights on 40 training
 * images of ../shared (CXR_SHARED), a few head epochs then fine-tuning of the last layer.
 */
import { join } from "node:path";
import { resolveConfig, type TrainConfig, type TrainConfigInput } from "../lib/training/config.ts";
import { sharedDir } from "../lib/util/paths.ts";

export const TRAIN_DATA = join(sharedDir(), "data", "chest_xray");

export const hasTrainData = (() => {
  try {
    return Deno.statSync(join(TRAIN_DATA, "train")).isDirectory;
  } catch {
    return false;
  }
})();

/** `phase1`/`phase2` epochs and anything else of TrainConfigInput may be changed. */
export function tinyTrainConfig(
  epochs: { phase1: number; phase2: number },
  extra: Partial<TrainConfigInput> = {},
): TrainConfig {
  return resolveConfig({
    net: "densenet121",
    weights: "formula",
    profile: "quick",
    subset: { train: 40, val: 20 },
    dataRoot: TRAIN_DATA,
    batchSize: 16,
    phase1: { epochs: epochs.phase1 },
    phase2: { epochs: epochs.phase2 },
    earlyStopping: { patience: 0 },
    ...extra,
  } as TrainConfigInput);
}
