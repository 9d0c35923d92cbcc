/** Per-epoch metrics computed in the training loop (evaluation proper lives in lib/evaluation). */
import { rocAuc as evaluationRocAuc } from "../evaluation/metrics.ts";
import { mulberry32, shuffled } from "../util/random.ts";

export { mulberry32 };

/** ROC-AUC (Mann-Whitney, ties counted half; NaN with one class), as lib/evaluation computes it. */
export function rocAuc(labels: ArrayLike<number>, probs: ArrayLike<number>): number {
  return evaluationRocAuc(Array.from(labels), Array.from(probs));
}

/** Mean binary cross-entropy (probabilities clipped like Keras, eps 1e-7). */
export function binaryCrossEntropy(labels: ArrayLike<number>, probs: ArrayLike<number>): number {
  const eps = 1e-7;
  let s = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(1 - eps, Math.max(eps, probs[i]));
    s -= labels[i] === 1 ? Math.log(p) : Math.log(1 - p);
  }
  return labels.length > 0 ? s / labels.length : NaN;
}

/** Fraction of predictions on the right side of 0.5. */
export function accuracy(labels: ArrayLike<number>, probs: ArrayLike<number>): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) if ((probs[i] >= 0.5 ? 1 : 0) === labels[i]) ok++;
  return labels.length > 0 ? ok / labels.length : NaN;
}

/** Keras' class_weight="balanced": n / (2 * n_class), as [weight of 0, weight of 1]. */
export function balancedClassWeights(labels: ArrayLike<number>): [number, number] {
  let pos = 0;
  for (let i = 0; i < labels.length; i++) pos += labels[i] === 1 ? 1 : 0;
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return [1, 1];
  return [labels.length / (2 * neg), labels.length / (2 * pos)];
}

/** A seed derived from several integers (run seed, phase, epoch, batch). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h ^= p >>> 0;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= h >>> 13;
  }
  return h >>> 0;
}

/** Fisher-Yates permutation of 0..n-1 from `seed` (replays exactly on resume). */
export function permutation(n: number, seed: number): number[] {
  return shuffled(Array.from({ length: n }, (_, i) => i), mulberry32(seed));
}

/** Whether `value` of `monitor` beats `best` (EarlyStopping's rule: strictly, finite only). */
export function improves(
  monitor: "val_auc" | "val_loss",
  value: number,
  best: number | null,
): boolean {
  if (!Number.isFinite(value)) return false;
  if (best === null) return true;
  return monitor === "val_auc" ? value > best : value < best;
}

/**
 * Per phase, the epoch early stopping keeps when it restores the best weights: the first epoch
 * whose `monitor` no later epoch of the phase improved on. Empty without `restoreBest`.
 */
export function restoredEpochs(
  history: { epoch: number; phase: number; val_auc: number; val_loss: number }[],
  earlyStopping: { monitor: "val_auc" | "val_loss"; restoreBest: boolean },
): { phase: number; epoch: number; value: number }[] {
  if (!earlyStopping.restoreBest) return [];
  const best = new Map<number, { phase: number; epoch: number; value: number }>();
  for (const r of history) {
    const value = r[earlyStopping.monitor];
    if (improves(earlyStopping.monitor, value, best.get(r.phase)?.value ?? null)) {
      best.set(r.phase, { phase: r.phase, epoch: r.epoch, value });
    }
  }
  return [...best.values()].sort((a, b) => a.epoch - b.epoch);
}
