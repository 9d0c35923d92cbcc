/**
 * Bounds the work in flight: at most `maxActive` jobs (decode + predictions) run at once, at most
 * `maxQueue` wait; beyond that callers are refused at once (the server answers 503) instead of
 * piling up. A job past its deadline is answered 504 at once, but keeps its slot until its work
 * really stops: the slot count is what bounds memory, so it never runs ahead of the work.
 */
import { HttpError } from "./errors.ts";

interface Waiter {
  grant: () => void;
  signal: AbortSignal;
}

export class ConcurrencyLimiter {
  #active = 0;
  #waiting: Waiter[] = [];

  constructor(readonly maxActive: number, readonly maxQueue: number) {
    if (maxActive < 1) throw new Error(`maxActive must be >= 1, got ${maxActive}`);
  }

  /** Jobs holding a slot, timed-out ones still finishing included. */
  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  /** True when a new job would be refused (every slot busy and the queue full). */
  get saturated(): boolean {
    return this.#active >= this.maxActive && this.#waiting.length >= this.maxQueue;
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

  /**
   * Runs `fn` when a slot is free; throws HttpError 503 when the queue is full, and 504 when
   * the deadline passes first (queue wait included). The deadline is `timeoutMs` from now, or a
   * request's own `deadlineSignal` when its work spans several steps. `fn` gets a signal that
   * aborts at the deadline so it can stop between steps; its slot is freed only when it returns.
   */
  async run<T>(
    fn: (signal: AbortSignal) => Promise<T>,
    deadline: number | AbortSignal = Infinity,
  ): Promise<T> {
    const d = typeof deadline === "number"
      ? deadlineSignal(deadline)
      : { signal: deadline, clear() {} };
    try {
      await this.#acquire(d.signal);
      const work = fn(d.signal).finally(() => this.#release());
      work.catch(() => {}); // answered by the race below, even when the deadline wins
      return await Promise.race([work, aborted(d.signal)]);
    } finally {
      d.clear();
    }
  }

  #acquire(signal: AbortSignal): Promise<void> {
    // An abort listener never fires for a signal already aborted: refuse now, take nothing.
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.maxActive) {
      this.#active++;
      return Promise.resolve();
    }
    if (this.#waiting.length >= this.maxQueue) return Promise.reject(this.busyError());
    return new Promise<void>((grant, reject) => {
      const waiter = { grant, signal };
      this.#waiting.push(waiter);
      signal.addEventListener("abort", () => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) {
          this.#waiting.splice(i, 1);
          reject(signal.reason);
        }
      }, { once: true });
    });
  }

  #release(): void {
    // Hand the slot straight to the next waiter so #active stays exact.
    const next = this.#waiting.shift();
    if (next) next.grant();
    else this.#active--;
  }
}

/** A signal that aborts with a 504 HttpError `timeoutMs` from now (never when infinite). */
export function deadlineSignal(
  timeoutMs: number,
  client?: AbortSignal,
): { signal: AbortSignal; clear(): void } {
  const ctl = new AbortController();
  const timer = Number.isFinite(timeoutMs)
    ? setTimeout(
      () => ctl.abort(new HttpError(504, "timeout", `request took longer than ${timeoutMs} ms`)),
      timeoutMs,
    )
    : undefined;
  // A client that hung up: its queue place and the rest of its work go to others (nginx's 499;
  // nobody reads the answer).
  const hungUp = () =>
    ctl.abort(new HttpError(499, "client_closed", "the client closed the connection"));
  if (client?.aborted) hungUp();
  else client?.addEventListener("abort", hungUp, { once: true });
  return {
    signal: ctl.signal,
    clear: () => {
      clearTimeout(timer);
      client?.removeEventListener("abort", hungUp);
    },
  };
}

/** Rejects with the signal's reason when it aborts; never settles otherwise. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/**
 * Bounds the upload bytes held in memory by all requests together, counting bytes as they
 * arrive (not as declared): a fast sender of big bodies is refused once the budget is spent,
 * while slow senders, which hold little, never lock others out.
 */
export class BodyBudget {
  #used = 0;
  #open = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes held by uploads being received or waiting for their answer. */
  get used(): number {
    return this.#used;
  }

  /** Requests holding upload bytes. */
  get holders(): number {
    return this.#open;
  }

  /** A per-request account: `add` throws 503 past the budget; `release` returns it all. */
  open(): { add(n: number): void; release(): void } {
    let mine = 0;
    let released = false;
    this.#open++;
    return {
      add: (n) => {
        if (this.#used + n > this.maxBytes) {
          throw new HttpError(
            503,
            "busy",
            `server busy: uploads in progress hold ${this.#used} bytes of ${this.maxBytes}; retry later`,
            { "retry-after": "1" },
          );
        }
        this.#used += n;
        mine += n;
      },
      release: () => {
        if (released) return;
        released = true;
        this.#used -= mine;
        this.#open--;
      },
    };
  }
}
