/**
 * Image decoding in a Web Worker. onnxruntime-node's `run` holds the main JS thread for the
 * whole inference, so decoding on the main thread (whose every step needs that thread) would
 * only advance between batches; in a worker it proceeds while ORT computes. The worker runs
 * lib/data/loader.ts and hands over batches only when the consumer grants credit, so at most
 * `ahead` decoded batches wait in memory.
 */
import type { Batch } from "../data/loader.ts";
import type { IntensityMode } from "../data/intensity.ts";
import type { Shift } from "../data/shifts.ts";

interface Job {
  kind: "job";
  paths: string[];
  batchSize: number;
  size: number;
  intensity: IntensityMode;
  /** Per path, the augmentation of its view (null: the image itself). */
  shifts: (readonly Shift[] | null)[];
}
interface Credit {
  kind: "credit";
}
interface BatchMessage {
  kind: "batch";
  indices: number[];
  data: Float32Array;
  sha256: string[];
  failed: { index: number; error: string }[];
}
interface DoneMessage {
  kind: "done";
  error?: string;
}

/** Batches of `items` decoded in a worker (same shape as loadBatches' batches). */
export async function* loadBatchesInWorker<
  T extends { path: string; shifts?: readonly Shift[] },
>(
  items: readonly T[],
  opts: { batchSize: number; size?: number; ahead?: number; intensity?: IntensityMode },
): AsyncGenerator<Batch<T>> {
  const worker = new Worker(new URL("./decode_worker.ts", import.meta.url).href, {
    type: "module",
  });
  const queue: (BatchMessage | DoneMessage)[] = [];
  let wake: (() => void) | null = null;
  worker.onmessage = (e: MessageEvent<BatchMessage | DoneMessage>) => {
    queue.push(e.data);
    wake?.();
  };
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    queue.push({ kind: "done", error: `decode worker failed: ${e.message}` });
    wake?.();
  };
  try {
    const job: Job = {
      kind: "job",
      paths: items.map((i) => i.path),
      shifts: items.map((i) => i.shifts ?? null),
      batchSize: opts.batchSize,
      size: opts.size ?? 224,
      intensity: opts.intensity ?? "off",
    };
    worker.postMessage(job);
    for (let i = 0; i < (opts.ahead ?? 2); i++) worker.postMessage({ kind: "credit" } as Credit);
    while (true) {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      wake = null;
      const msg = queue.shift()!;
      if (msg.kind === "done") {
        if (msg.error) throw new Error(msg.error);
        return;
      }
      worker.postMessage({ kind: "credit" } as Credit);
      yield {
        items: msg.indices.map((i) => items[i]),
        data: msg.data,
        sha256: msg.sha256,
        failed: msg.failed.map((f) => ({ item: items[f.index], error: f.error })),
      };
    }
  } finally {
    worker.terminate();
  }
}

// Worker side: runs when this module is loaded as a worker.
// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;
if (typeof self_.WorkerGlobalScope !== "undefined" && self_ instanceof self_.WorkerGlobalScope) {
  let credits = 0;
  let granted: (() => void) | null = null;
  self_.onmessage = async (e: MessageEvent<Job | Credit>) => {
    if (e.data.kind === "credit") {
      credits++;
      granted?.();
      return;
    }
    const job = e.data;
    try {
      const { loadBatches } = await import("../data/loader.ts");
      const indexed = job.paths.map((path, index) => ({
        path,
        index,
        ...(job.shifts[index] ? { shifts: job.shifts[index]! } : {}),
      }));
      for await (
        const b of loadBatches(indexed, {
          batchSize: job.batchSize,
          size: job.size,
          intensity: job.intensity,
          prefetch: 1,
          progress: false,
        })
      ) {
        while (credits === 0) await new Promise<void>((r) => (granted = r));
        granted = null;
        credits--;
        const msg: BatchMessage = {
          kind: "batch",
          indices: b.items.map((i) => i.index),
          data: b.data,
          sha256: b.sha256,
          failed: b.failed.map((f) => ({ index: f.item.index, error: f.error })),
        };
        self_.postMessage(msg, [b.data.buffer]);
      }
      self_.postMessage({ kind: "done" } as DoneMessage);
    } catch (err) {
      self_.postMessage({ kind: "done", error: (err as Error).message } as DoneMessage);
    }
  };
}
