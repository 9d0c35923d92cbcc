/**
 * Augmentation that still pays for the frozen-layer cache: K augmented views of each training
 * image are drawn once from the seed (lib/data/shifts.ts transforms), pushed through the frozen
 * base once and cached like any image, each entry keyed by the image bytes, the seed, the view
 * number and the drawn transform parameters. Each epoch then draws, per image, one of view 0
 * (the image itself) .. K from (seed, epoch, image): a pure function, so a resumed run replays
 * the same views. Validation and test are never augmented.
 */
import { AUGMENT_RANGES, type AugmentStep, drawAugmentation, type Shift } from "../data/shifts.ts";
import { mulberry32 } from "../util/random.ts";
import { sha256Text } from "./cache.ts";

/**
 * Transforms suited to chest radiographs, each applied with probability `p`: a crop/zoom of
 * 1-1.5x (0.44-1.0 of the area), rotation within ±10°, translation up to 5%, brightness, contrast
 * and gamma jitter, mild blur, noise and JPEG re-compression (other ranges: shifts.ts
 * AUGMENT_RANGES). Horizontal flips only when asked: the heart is on the left.
 *
 * The zoom is wide on purpose: with the mild 0.85-1.0 of the area, a 1.35x framing change still
 * made every model call nearly every NORMAL image pneumonia (README, "What each defence
 * changed"). This range covers the shift suite's zoom severities 1-2, so those rows no longer
 * measure an unseen shift; severity 3 (1.6x) is outside it.
 */
export const AUGMENT_POLICY: readonly AugmentStep[] = [
  { kind: "zoom", p: 0.7, range: [1, 1.5] },
  { kind: "rotation", p: 0.5 },
  { kind: "translate", p: 0.3 },
  { kind: "brightness", p: 0.5 },
  { kind: "contrast", p: 0.5 },
  { kind: "gamma", p: 0.5 },
  { kind: "blur", p: 0.2 },
  { kind: "noise", p: 0.2 },
  { kind: "jpeg", p: 0.3 },
];
const FLIP: AugmentStep = { kind: "hflip", p: 0.5 };

export interface AugmentConfig {
  seed: number;
  augmentViews: number;
  augmentFlip: boolean;
}

/** A training item's augmented view: the transforms its decoded pixels go through. */
export type ViewItem<T> = T & { origin: T; view: number; seed: number; shifts: Shift[] };

/** A 32-bit seed from any parts (sha256: no correlation between neighbouring parts). */
function seedOf(...parts: (string | number)[]): number {
  return parseInt(sha256Text(parts.join("\u0000")).slice(0, 8), 16);
}

/**
 * The policy a run draws its views from, every range spelled out: what config.json records and
 * the run id hashes, so a run made under another policy never resumes into this one.
 */
export function augmentPolicy(flip: boolean): AugmentStep[] {
  return (flip ? [...AUGMENT_POLICY, FLIP] : AUGMENT_POLICY).map((step) => ({
    ...step,
    p: step.p ?? 1,
    range: step.range ?? AUGMENT_RANGES[step.kind],
  }));
}

/** The transforms of view `view` (1..K) of the image at `rel`: a function of the seed only. */
export function drawView(rel: string, view: number, config: AugmentConfig): Shift[] {
  const policy = augmentPolicy(config.augmentFlip);
  return drawAugmentation(policy, mulberry32(seedOf("view", config.seed, rel, view)));
}

/** The K views of every training item (none when K = 0). */
export function viewItems<T extends { rel: string }>(
  train: readonly T[],
  config: AugmentConfig,
): ViewItem<T>[] {
  const out: ViewItem<T>[] = [];
  for (const item of train) {
    for (let view = 1; view <= config.augmentViews; view++) {
      const shifts = drawView(item.rel, view, config);
      out.push({ ...item, origin: item, view, seed: config.seed, shifts });
    }
  }
  return out;
}

/**
 * Cache entry key of an item: the image's sha256 for the image itself, else a hash of the image
 * sha256, the seed, the view number and the transform parameters.
 */
export function entryKey(
  fileSha: string,
  item: { view?: number; seed?: number; shifts?: readonly Shift[] },
): string {
  if (!item.shifts || item.view === undefined) return fileSha;
  return sha256Text(JSON.stringify([fileSha, item.seed ?? 0, item.view, item.shifts]));
}

/**
 * Rows (indices into the extracted FeatureSet) per training image: [the image, its views...].
 * `items` are the FeatureSet's items; `train` the rows of the original training images.
 */
export function viewRows<T>(items: readonly (T | ViewItem<T>)[], train: number[]): number[][] {
  const views = new Map<T, number[]>();
  items.forEach((it, j) => {
    const origin = (it as ViewItem<T>).origin;
    if (origin !== undefined) {
      const list = views.get(origin) ?? [];
      list.push(j);
      views.set(origin, list);
    }
  });
  return train.map((i) => [i, ...(views.get(items[i] as T) ?? [])]);
}

/** The row item `i` reads in `epoch`: one of its views, drawn from (seed, epoch, i). */
export function pickView(rows: number[][], i: number, epoch: number, seed: number): number {
  const r = rows[i];
  if (r.length === 1) return r[0];
  return r[Math.floor(mulberry32(seedOf("pick", seed, epoch, i))() * r.length)];
}
