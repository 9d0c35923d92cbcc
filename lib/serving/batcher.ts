/**
 * Groups concurrent predictions for one model into one ONNX Runtime call. ORT's `run` holds
 * the JS thread while it computes, so requests that arrive meanwhile are decoded only after it
 * ends; the batcher therefore waits a little (at most `windowMs` after the first item) for the
 * requests it was told are coming (`expect`: received, not yet decoded), and runs as soon as
 * `maxBatch` items wait or none is still expected. A lone request runs at once.
 *
 * One batcher per classifier, so a batch never mixes models. A batch that fails is retried
 * item by item, so only the item that fails gets the error. An item whose deadline passes
 * while it waits leaves the queue; one whose batch is already running is answered at once
 * (the run finishes for its batch-mates). At most `maxPending` items wait (503 beyond).
 */
import { IMAGE_SIZE } from "../inference/classifier.ts";
import type { Classifier, PredictResult } from "../inference/model.ts";
import { HttpError } from "./errors.ts";

export interface BatchOptions {
  /** Images per ORT call (1: no batching). */
  maxBatch: number;
  /** Longest wait of the first item for batch-mates, in ms. */
  windowMs: number;
  /** Items waiting (not yet in a running batch) before 503. */
  maxPending: number;
}

export const DEFAULT_BATCHING: BatchOptions = { maxBatch: 16, windowMs: 10, maxPending: 64 };

/** One image's share of a batch's outputs. */
export interface ItemResult {
  prob: number;
  gradcam?: { data: Float32Array; shape: number[] };
}

interface Pending {
  image: Float32Array;
  resolve: (r: ItemResult) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  /** When it was queued (performance.now()). */
  at: number;
}

const PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE * 3;

/** Item k of a batch result (its Grad-CAM activation as a batch of one). */
function itemOf(out: PredictResult, k: number): ItemResult {
  if (!out.gradcam) return { prob: out.prob[k] };
  const [n, ...rest] = out.gradcam.shape;
  const size = out.gradcam.data.length / n;
  return {
    prob: out.prob[k],
    gradcam: { data: out.gradcam.data.slice(k * size, (k + 1) * size), shape: [1, ...rest] },
  };
}

export class PredictBatcher {
  #queue: Pending[] = [];
  #expected = 0;
  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Batches run and items answered so far (what the bench reports). */
  batches = 0;
  items = 0;

  constructor(readonly classifier: Classifier, readonly opts: BatchOptions = DEFAULT_BATCHING) {
    if (opts.maxBatch < 1) throw new Error(`maxBatch must be >= 1, got ${opts.maxBatch}`);
  }

  /** Items waiting for a batch. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Announces a request that will call `predict` soon (received, being decoded); the returned
   * function withdraws it (call it once, whether or not `predict` was called).
   */
  expect(): () => void {
    this.#expected++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#expected--;
      this.#schedule();
    };
  }

  /** P(pneumonia) (and the Grad-CAM activation) of one [224,224,3] RGB image. */
  predict(image: Float32Array, signal?: AbortSignal): Promise<ItemResult> {
    if (image.length !== PER_IMAGE) {
      return Promise.reject(
        new Error(`predict: expected ${PER_IMAGE} floats, got ${image.length}`),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#queue.length >= this.opts.maxPending) {
      return Promise.reject(
        new HttpError(
          503,
          "busy",
          `server busy: ${this.#queue.length} images wait for model ${this.classifier.id}; retry later`,
          { "retry-after": "1" },
        ),
      );
    }
    return new Promise<ItemResult>((resolve, reject) => {
      const item: Pending = { image, resolve, reject, signal, at: performance.now() };
      this.#queue.push(item);
      // Past the deadline: leave the queue, or (already running) answer at once.
      signal?.addEventListener("abort", () => {
        const i = this.#queue.indexOf(item);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(signal.reason);
      }, { once: true });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#running || this.#queue.length === 0) return;
    const waited = performance.now() - this.#queue[0].at;
    if (
      this.#queue.length >= this.opts.maxBatch || this.#expected <= 0 ||
      waited >= this.opts.windowMs
    ) {
      this.#flush();
    } else {
      this.#timer ??= setTimeout(() => this.#flush(), this.opts.windowMs - waited);
    }
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.opts.maxBatch);
    this.#running = true;
    this.#run(batch).finally(() => {
      this.#running = false;
      this.#schedule();
    });
  }

  async #run(batch: Pending[]): Promise<void> {
    this.batches++;
    this.items += batch.length;
    try {
      const out = await this.classifier.predict(this.#stack(batch), batch.length);
      batch.forEach((p, k) => p.resolve(itemOf(out, k)));
    } catch (e) {
      if (batch.length === 1) return batch[0].reject(e);
      // One bad item must not fail its batch-mates: retry each alone.
      for (const p of batch) {
        if (p.signal?.aborted) continue; // already answered 504
        try {
          p.resolve(itemOf(await this.classifier.predict(p.image, 1), 0));
        } catch (err) {
          p.reject(err);
        }
      }
    }
  }

  #stack(batch: Pending[]): Float32Array {
    if (batch.length === 1) return batch[0].image;
    const data = new Float32Array(batch.length * PER_IMAGE);
    batch.forEach((p, k) => data.set(p.image, k * PER_IMAGE));
    return data;
  }
}

/** One batcher per classifier, made on first use (so a batch never mixes models). */
export class BatcherSet {
  #made = new Map<Classifier, PredictBatcher>();

  constructor(readonly opts: BatchOptions = DEFAULT_BATCHING) {}

  of(c: Classifier): PredictBatcher {
    let b = this.#made.get(c);
    if (!b) this.#made.set(c, b = new PredictBatcher(c, this.opts));
    return b;
  }

  /** What /readyz reports: the settings, ORT calls and images so far, images waiting now. */
  stats() {
    const all = [...this.#made.values()];
    const sum = (f: (b: PredictBatcher) => number) => all.reduce((n, b) => n + f(b), 0);
    return {
      maxBatch: this.opts.maxBatch,
      windowMs: this.opts.windowMs,
      batches: sum((b) => b.batches),
      images: sum((b) => b.items),
      pending: sum((b) => b.pending),
    };
  }
}
