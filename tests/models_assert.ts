/** Minimal assertions (JSR's @std/assert is unreachable here). */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(msg ?? `expected ${e}, got ${a}`);
}

export function assertThrows(fn: () => unknown, includes: string): void {
  try {
    fn();
  } catch (e) {
    const m = (e as Error).message;
    if (!m.includes(includes)) throw new Error(`error "${m}" does not mention "${includes}"`);
    return;
  }
  throw new Error(`expected an error mentioning "${includes}"`);
}
