/** Minimal assertions for the data tests (jsr:@std/assert is unreachable here). */
export { AssertionError } from "node:assert";
import { deepStrictEqual, ok } from "node:assert";

export function assert(cond: unknown, message?: string): asserts cond {
  if (message === undefined) ok(cond);
  else ok(cond, message);
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (message === undefined) deepStrictEqual(actual, expected);
  else deepStrictEqual(actual, expected, message);
}

/** Await `fn`, expect it to throw an instance of `cls`; returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  cls: new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(
      `expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : e}`,
    );
  }
  throw new Error(`expected ${cls.name}, but nothing was thrown`);
}
