/**
 * The concurrency limiter alone: the queue bound (503), the deadline (504) and, what let server
 * memory run away before, that a timed-out job keeps its slot until its work really stops.
 */
import assert from "node:assert/strict";
import { HttpError } from "../lib/serving/errors.ts";
import { ConcurrencyLimiter } from "../lib/serving/limiter.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const status = (p: Promise<unknown>) =>
  p.then(() => 200, (e) => (e instanceof HttpError ? e.status : -1));

Deno.test("limiter: a timed-out job keeps its slot until its work stops", async () => {
  const limiter = new ConcurrencyLimiter(1, 1);
  let release!: () => void;
  const work = new Promise<void>((r) => (release = r));
  let sawAbort = false;
  const first = status(limiter.run(async (signal) => {
    await work;
    sawAbort = signal.aborted;
  }, 30));
  assert.equal(await first, 504);
  // Answered 504, but the work still runs: the slot is still taken.
  assert.equal(limiter.active, 1);
  const queued = status(limiter.run(() => Promise.resolve(), 1000));
  assert.equal(limiter.queued, 1);
  assert.equal(await status(limiter.run(() => Promise.resolve())), 503, "queue full -> 503");
  release();
  assert.equal(await queued, 200);
  assert.equal(sawAbort, true, "the work was told its deadline passed");
  assert.equal(limiter.active, 0);
  assert.equal(limiter.queued, 0);
});

Deno.test("limiter: a job timing out in the queue leaves it and never runs", async () => {
  const limiter = new ConcurrencyLimiter(1, 4);
  let release!: () => void;
  const busy = limiter.run(() => new Promise<void>((r) => (release = r)));
  let ran = false;
  const waiting = status(limiter.run(() => {
    ran = true;
    return Promise.resolve();
  }, 20));
  assert.equal(await waiting, 504);
  assert.equal(limiter.queued, 0);
  release();
  await busy;
  await sleep(5);
  assert.equal(ran, false);
  assert.equal(limiter.active, 0);
});

Deno.test("limiter: a deadline already passed is answered 504 at once, even with no slot free", async () => {
  const limiter = new ConcurrencyLimiter(1, 4);
  let release!: () => void;
  const busy = limiter.run(() => new Promise<void>((r) => (release = r)));
  const ctl = new AbortController();
  ctl.abort(new HttpError(504, "timeout", "past the deadline"));
  let ran = false;
  const late = status(limiter.run(() => {
    ran = true;
    return Promise.resolve();
  }, ctl.signal));
  const first = await Promise.race([late, sleep(200).then(() => "still waiting")]);
  assert.equal(first, 504, "not left waiting in the queue for a slot");
  assert.equal(limiter.queued, 0);
  release();
  await busy;
  await sleep(5);
  assert.equal(ran, false);
  assert.equal(limiter.active, 0);
});
