/** Per-epoch metrics computed in the training loop (evaluation proper lives in lib/evaluation). */

/** ROC-AUC by the rank-sum (Mann-Whitney) formula, ties counted half; NaN with one class. */
export function rocAuc(labels: ArrayLike<number>, probs: ArrayLike<number>): number {
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[a] - probs[b]);
  let pos = 0;
  let rankSum = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && probs[order[j + 1]] === probs[order[i]]) j++;
    const rank = (i + j + 2) / 2; // 1-based average rank of the tie group
    for (let k = i; k <= j; k++) {
      if (labels[order[k]] === 1) {
        pos++;
        rankSum += rank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
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

/** Deterministic PRNG (mulberry32) so shuffles and dropout masks replay exactly on resume. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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

/** Fisher-Yates permutation of 0..n-1 from `seed`. */
export function permutation(n: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
