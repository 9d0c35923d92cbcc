/** Assertions for the tests (node:assert underneath; JSR's @std/assert is unreachable here). */
import nodeAssert from "node:assert/strict";

export { AssertionError } from "node:assert";

export function assert(cond: unknown, message?: string): asserts cond {
  if (message === undefined) nodeAssert.ok(cond);
  else nodeAssert.ok(cond, message);
}

/** Deep, strict equality (typed arrays compare by type and elements). */
export function assertEquals<T>(actual: unknown, expected: T, message?: string): void {
  if (message === undefined) nodeAssert.deepStrictEqual(actual, expected);
  else nodeAssert.deepStrictEqual(actual, expected, message);
}

/** |actual - expected| <= tolerance (default 1e-7). */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-7,
  message?: string,
): void {
  if (Math.abs(actual - expected) <= tolerance) return;
  throw new nodeAssert.AssertionError({
    message: message ?? `expected ${actual} to be within ${tolerance} of ${expected}`,
    actual,
    expected,
  });
}

export function assertStringIncludes(actual: string, expected: string): void {
  if (!actual.includes(expected)) {
    throw new Error(`expected to find ${JSON.stringify(expected)} in:\n${actual}`);
  }
}

export function assertMatch(actual: string, re: RegExp): void {
  if (!re.test(actual)) throw new Error(`expected ${JSON.stringify(actual)} to match ${re}`);
}

type ErrorClass<E extends Error> = new (...args: never[]) => E;

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Awaits `fn`, expecting it to reject with an instance of `type`; returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  type: ErrorClass<E>,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof type) return e;
    throw new Error(`expected ${type.name}, got ${describe(e)}`);
  }
  throw new Error(`expected ${type.name}, but it resolved`);
}

/**
 * Calls `fn`, expecting it to throw: an instance of `expected` when it is a class, an error whose
 * message includes `expected` when it is a string. Returns the error.
 */
export function assertThrows(fn: () => unknown, expected?: string | ErrorClass<Error>): Error {
  try {
    fn();
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    if (typeof expected === "string" && !error.message.includes(expected)) {
      throw new Error(`error "${error.message}" does not mention "${expected}"`);
    }
    if (typeof expected === "function" && !(e instanceof expected)) {
      throw new Error(`expected ${expected.name}, got ${describe(e)}`);
    }
    return error;
  }
  throw new Error(
    typeof expected === "string"
      ? `expected an error mentioning "${expected}"`
      : `expected ${expected?.name ?? "an error"}, but nothing was thrown`,
  );
}
