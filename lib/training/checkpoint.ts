/**
 * Checkpoints that let a killed run resume exactly: the model's weights (Keras layout, via
 * saveWeights) + a state file with the epoch, the phase, Adam's slots and step, the early
 * stopping state and the history. Shuffles and dropout masks are derived from (seed, phase,
 * epoch, batch), so the epoch number is the whole RNG state.
 */
import { Buffer } from "node:buffer";
import { tf } from "../tf/backend.ts";
import { loadWeights, saveWeights } from "../models/weights/io.ts";
import type { NetWeights } from "../models/spec.ts";
import {
  type Callback,
  CALLBACK_ORDER,
  type EarlyStopping,
  type EpochRecord,
  type Learner,
} from "./learner.ts";
import { checkpointFiles } from "../runs/mod.ts";
import { readJsonOrNull, writeJsonAtomic } from "../util/fs.ts";

export interface CheckpointState {
  format: "cxr-checkpoint/1";
  phase: 1 | 2;
  /** Global epoch of the last finished epoch. */
  epoch: number;
  phaseEpoch: number;
  /** Epoch-derived RNG: shuffles and masks use mixSeed(seed, phase, epoch, batch). */
  rng: { seed: number; scheme: "mix(seed,phase,epoch,batch)" };
  optimizer: {
    name: string;
    shape: number[];
    dtype: "float32" | "int32";
    data: string /* base64 of the typed array */;
  }[];
  earlyStopping: EarlyStopping["state"] | null;
  /** Whole history of the run so far (all phases). */
  history: EpochRecord[];
  stopped: boolean;
  savedAt: string;
}

/** Saves `<dir>/<name>.json/.bin` (weights) then `<dir>/<name>.state.json` (written last). */
export async function saveCheckpoint(
  dir: string,
  name: string,
  learner: Learner,
  extra: { earlyStopping: EarlyStopping | null; history: EpochRecord[] },
): Promise<void> {
  const files = checkpointFiles(dir, name);
  await Deno.mkdir(dir, { recursive: true });
  await saveWeights(files.weights, learner.model.getWeights());
  const named = await learner.optimizer.getWeights();
  const optimizer = named.map(({ name, tensor }) => {
    const data = tensor.dataSync() as Float32Array | Int32Array; // "iter" is int32
    return {
      name,
      shape: [...tensor.shape],
      dtype: tensor.dtype === "int32" ? "int32" as const : "float32" as const,
      data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64"),
    };
  });
  const state: CheckpointState = {
    format: "cxr-checkpoint/1",
    phase: learner.phase,
    epoch: learner.epoch,
    phaseEpoch: learner.phaseEpoch,
    rng: { seed: learner.seed, scheme: "mix(seed,phase,epoch,batch)" },
    optimizer,
    earlyStopping: extra.earlyStopping ? { ...extra.earlyStopping.state } : null,
    history: extra.history,
    stopped: learner.stopRequested,
    savedAt: new Date().toISOString(),
  };
  await writeJsonAtomic(files.state, state);
}

/** The state of checkpoint `name`, or null when absent (or unreadable: start over). */
export async function readCheckpointState(
  dir: string,
  name: string,
): Promise<CheckpointState | null> {
  const s = await readJsonOrNull<CheckpointState>(checkpointFiles(dir, name).state);
  return s?.format === "cxr-checkpoint/1" ? s : null;
}

/** Optimizer slots decoded from a state file; throws on a size that does not match. */
function optimizerSlots(state: CheckpointState) {
  return state.optimizer.map((o) => {
    // A copy: Buffer may hand back a pooled, unaligned view.
    const bytes = new Uint8Array(Buffer.from(o.data, "base64"));
    const n = o.shape.reduce((a, b) => a * b, 1);
    if (bytes.byteLength !== n * 4) {
      throw new Error(`optimizer slot ${o.name}: ${bytes.byteLength} bytes for shape [${o.shape}]`);
    }
    const data = o.dtype === "int32"
      ? new Int32Array(bytes.buffer, bytes.byteOffset, n)
      : new Float32Array(bytes.buffer, bytes.byteOffset, n);
    return { name: o.name, data, shape: o.shape, dtype: o.dtype };
  });
}

/**
 * Restores weights, optimizer, counters and early stopping from checkpoint `name`. Everything
 * is read and checked (md5 of the weights, the best weights early stopping would restore)
 * before the learner is touched, so a damaged checkpoint throws and leaves it as it was.
 */
export async function restoreCheckpoint(
  dir: string,
  name: string,
  learner: Learner,
  earlyStopping: EarlyStopping | null,
): Promise<CheckpointState> {
  const state = await readCheckpointState(dir, name);
  if (!state) throw new Error(`no checkpoint ${checkpointFiles(dir, name).state}`);
  const weights: NetWeights = await loadWeights(checkpointFiles(dir, name).weights);
  const slots = optimizerSlots(state);
  const best = earlyStopping?.restoreBest && state.earlyStopping?.bestEpoch
    ? await loadWeights(checkpointFiles(dir, "best").weights)
    : null;
  learner.model.setWeights(weights);
  if (slots.length > 0) {
    await learner.optimizer.setWeights(
      slots.map((o) => ({ name: o.name, tensor: tf.tensor(o.data, o.shape, o.dtype) })),
    );
  }
  learner.epoch = state.epoch;
  learner.phaseEpoch = state.phaseEpoch;
  learner.history = state.history.filter((r) => r.phase === learner.phase);
  if (earlyStopping && state.earlyStopping) {
    earlyStopping.state = { ...state.earlyStopping };
    earlyStopping.bestWeights = best;
  }
  return state;
}

/** Removes checkpoint `name` (weights and state), e.g. one found damaged. */
export async function discardCheckpoint(dir: string, name: string): Promise<void> {
  const files = checkpointFiles(dir, name);
  for (const f of [files.state, `${files.weights}.json`, `${files.weights}.bin`]) {
    await Deno.remove(f).catch(() => {});
  }
}

/** After every epoch: `last` (always) and `best` (when early stopping saw an improvement). */
export function checkpointCallback(
  dir: string,
  opts: { earlyStopping: EarlyStopping | null; previousHistory: () => EpochRecord[] },
): Callback {
  return {
    order: CALLBACK_ORDER.checkpoint,
    async onEpochEnd(l) {
      const history = [...opts.previousHistory(), ...l.history];
      if (opts.earlyStopping?.improved) {
        await Deno.mkdir(dir, { recursive: true });
        await saveWeights(checkpointFiles(dir, "best").weights, l.model.getWeights());
      }
      await saveCheckpoint(dir, "last", l, { earlyStopping: opts.earlyStopping, history });
    },
  };
}
