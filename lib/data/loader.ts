/**
 * Batched image loading: batch k+1 (up to `prefetch` batches ahead) decodes while the consumer
 * works on batch k. sharp decodes on libuv's thread pool, so the overlap is real even though
 * the consumer runs on the main thread. Unreadable images are skipped and listed per batch.
 */
import { Progress } from "../util/progress.ts";
import { decodeImage, type Interpolation } from "./images.ts";
import { type IntensityMode, normalizeIntensity } from "./intensity.ts";
import { applyShifts, type Shift } from "./shifts.ts";

/** An image to load; `shifts` (an augmented view, lib/features/views.ts) apply after decoding. */
export interface Loadable {
  path: string;
  shifts?: readonly Shift[];
}

export interface LoadOptions {
  batchSize: number;
  /** Output side in pixels (default 224). */
  size?: number;
  /** Batches decoded ahead of the one being consumed (default 1). */
  prefetch?: number;
  /** Images decoded at once inside a batch (default 4). */
  concurrency?: number;
  interpolation?: Interpolation;
  /** Intensity normalisation after decoding (lib/data/intensity.ts; default off). */
  intensity?: IntensityMode;
  /** A Progress to tick (one per image), false for none; default: a new "decode" bar. */
  progress?: Progress | false;
}

export interface Batch<T extends { path: string }> {
  /** The items that decoded, in input order (failed ones are left out). */
  items: T[];
  /** [items.length, size, size, 3] RGB 0..255. */
  data: Float32Array;
  /** sha256 of each item's file, aligned with `items`. */
  sha256: string[];
  failed: { item: T; error: string }[];
}

async function decodeBatch<T extends { path: string }>(
  chunk: T[],
  size: number,
  concurrency: number,
  opts: Pick<LoadOptions, "interpolation" | "intensity">,
): Promise<Batch<T>> {
  const results: ({ data: Float32Array; sha256: string } | { error: string })[] = new Array(
    chunk.length,
  );
  let next = 0;
  const worker = async () => {
    while (next < chunk.length) {
      const i = next++;
      try {
        const img = await decodeImage(chunk[i].path, size, { interpolation: opts.interpolation });
        // Augmentation first (it stands for another acquisition), then the run's normalisation.
        const shifts = (chunk[i] as Loadable).shifts;
        const pixels = shifts?.length ? await applyShifts(img.data, shifts) : img.data;
        const data = await normalizeIntensity(pixels, size, opts.intensity ?? "off");
        results[i] = { data, sha256: img.sha256 };
      } catch (e) {
        results[i] = { error: e instanceof Error ? e.message : String(e) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, chunk.length) }, worker));
  const per = size * size * 3;
  const okCount = results.filter((r) => "data" in r).length;
  const data = new Float32Array(okCount * per);
  const items: T[] = [];
  const sha256: string[] = [];
  const failed: { item: T; error: string }[] = [];
  results.forEach((r, i) => {
    if ("data" in r) {
      data.set(r.data, items.length * per);
      items.push(chunk[i]);
      sha256.push(r.sha256);
    } else {
      failed.push({ item: chunk[i], error: r.error });
    }
  });
  return { items, data, sha256, failed };
}

/** Yield decoded batches of `items` in order; decoding runs ahead of the consumer. */
export async function* loadBatches<T extends { path: string }>(
  items: readonly T[],
  opts: LoadOptions,
): AsyncGenerator<Batch<T>> {
  const { batchSize } = opts;
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new Error(`batchSize must be a whole number > 0, got ${batchSize}`);
  }
  const size = opts.size ?? 224;
  const prefetch = Math.max(0, opts.prefetch ?? 1);
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const progress = opts.progress === false
    ? null
    : (opts.progress ?? new Progress("decode", { total: items.length, unit: "img" }));

  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += batchSize) chunks.push(items.slice(i, i + batchSize));
  const pending: Promise<Batch<T>>[] = [];
  let started = 0;
  const start = () => {
    const p = decodeBatch(chunks[started++], size, concurrency, opts);
    p.catch(() => {}); // awaited below; avoids an unhandled rejection while queued
    pending.push(p);
  };
  let failedTotal = 0;
  try {
    while (pending.length > 0 || started < chunks.length) {
      if (pending.length === 0) start();
      const batch = await pending.shift()!;
      // Start the next decodes before handing this batch to the consumer.
      while (started < chunks.length && pending.length < prefetch) start();
      failedTotal += batch.failed.length;
      progress?.tick(batch.items.length + batch.failed.length, { failed: String(failedTotal) });
      yield batch;
    }
  } finally {
    // Consumer stopped early: let in-flight decodes finish quietly.
    for (const p of pending) p.catch(() => {});
  }
  progress?.done({ failed: String(failedTotal) });
}
