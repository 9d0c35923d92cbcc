/**
 * Bounds the work in flight: at most `maxActive` predictions run at once, at most `maxQueue`
 * wait; beyond that callers are refused at once (the server answers 503) instead of piling up.
 */
import { HttpError } from "./errors.ts";

export class ConcurrencyLimiter {
  #active = 0;
  #waiting: (() => void)[] = [];

  constructor(readonly maxActive: number, readonly maxQueue: number) {
    if (maxActive < 1) throw new Error(`maxActive must be >= 1, got ${maxActive}`);
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  /** The 503 answered when saturated. */
  busyError(): HttpError {
    return new HttpError(
      503,
      "busy",
      `server busy: ${this.#active} requests running and ${this.#waiting.length} queued; retry later`,
      { "retry-after": "1" },
    );
  }

  /** Runs `fn` when a slot is free; throws HttpError 503 when the queue is full. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.maxActive) {
      if (this.#waiting.length >= this.maxQueue) throw this.busyError();
      await new Promise<void>((ok) => this.#waiting.push(ok));
    } else {
      this.#active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      // Hand the slot straight to the next waiter so #active stays exact.
      if (next) next();
      else this.#active--;
    }
  }
}
