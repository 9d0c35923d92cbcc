/**
 * What every cxr CLI repeats: strict option parsing (unknown flag -> clear error + usage, exit
 * 2; `--help` -> usage, exit 0) and whole-number flags. Each CLI keeps its own options, usage
 * text and message prefix.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** Where a CLI writes (tests pass their own to capture it). */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

export const consoleIo: CliIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** The parsed values for `options`, typed as node:util parseArgs types them. */
export type CliValues<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>
>["values"];

export interface CliUsage {
  /** Printed after a usage error and for `--help`. */
  usage: string;
  /** Starts every error line, e.g. "data:summary" or "error". */
  prefix: string;
  /** Default: the console. */
  io?: CliIo;
}

/** Print `<prefix>: <message>` and the usage on err; returns the usage exit code 2. */
export function usageError(cli: CliUsage, message: string): 2 {
  (cli.io ?? consoleIo).err(`${cli.prefix}: ${message}\n${cli.usage}`);
  return 2;
}

/**
 * Strict parse of `args` (no positionals). Returns the values, or the exit code to return at
 * once: 2 after a usage error, 0 after printing the usage for `--help`.
 */
export function parseCli<O extends ParseArgsOptionsConfig>(
  args: string[],
  options: O,
  cli: CliUsage,
): CliValues<O> | number {
  let values: CliValues<O>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (e) {
    return usageError(cli, e instanceof Error ? e.message : String(e));
  }
  if ((values as Record<string, unknown>).help) {
    (cli.io ?? consoleIo).out(cli.usage);
    return 0;
  }
  return values;
}

function wholeNumber<F extends number | undefined>(
  name: string,
  value: string | undefined,
  fallback: F,
  min: 0 | 1,
): number | F {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} must be a whole number ${min ? "> 0" : ">= 0"}, got "${value}"`);
  }
  return n;
}

/** `--name` as a whole number > 0, `fallback` when absent; throws an error naming the flag. */
export function positiveInt<F extends number | undefined>(
  name: string,
  value: string | undefined,
  fallback: F,
): number | F {
  return wholeNumber(name, value, fallback, 1);
}

/** `--name` as a whole number >= 0, `fallback` when absent; throws an error naming the flag. */
export function nonNegativeInt<F extends number | undefined>(
  name: string,
  value: string | undefined,
  fallback: F,
): number | F {
  return wholeNumber(name, value, fallback, 0);
}
