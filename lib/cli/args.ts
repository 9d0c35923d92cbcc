/**
 * What every cxr CLI repeats: strict option parsing (unknown flag -> clear error + usage, exit
 * 2; `--help` -> usage, exit 0), number and choice flags. Each CLI keeps its own options, usage
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

/** What a number flag accepts; bounds are checked after parsing. */
export interface NumberRule {
  /** Whole numbers only. */
  integer?: boolean;
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Exclusive upper bound. */
  below?: number;
}

function describe(rule: NumberRule): string {
  const bounds = [
    rule.min !== undefined ? `>= ${rule.min}` : "",
    rule.above !== undefined ? `> ${rule.above}` : "",
    rule.below !== undefined ? `< ${rule.below}` : "",
  ].filter(Boolean);
  return [rule.integer ? "a whole number" : "a number", bounds.join(" and ")].join(" ").trim();
}

/**
 * `--name` as a number obeying `rule`; undefined when absent. The one number parser of every
 * CLI: a bad value throws an error naming the flag, the rule and the value given.
 */
export function numberFlag(
  name: string,
  value: string | undefined,
  rule: NumberRule = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = value.trim() === "" ? NaN : Number(value);
  const ok = Number.isFinite(n) && (!rule.integer || Number.isInteger(n)) &&
    (rule.min === undefined || n >= rule.min) && (rule.above === undefined || n > rule.above) &&
    (rule.below === undefined || n < rule.below);
  if (!ok) throw new Error(`--${name} must be ${describe(rule)}, got "${value}"`);
  return n;
}

/** `--name` as a whole number > 0, `fallback` when absent; throws an error naming the flag. */
export function positiveInt<F extends number | undefined>(
  name: string,
  value: string | undefined,
  fallback: F,
): number | F {
  return numberFlag(name, value, { integer: true, above: 0 }) ?? fallback;
}

/** `--name` as a whole number >= 0, `fallback` when absent; throws an error naming the flag. */
export function nonNegativeInt<F extends number | undefined>(
  name: string,
  value: string | undefined,
  fallback: F,
): number | F {
  return numberFlag(name, value, { integer: true, min: 0 }) ?? fallback;
}

/** `--name` as one of `allowed`; undefined when absent; throws an error naming the flag. */
export function choiceFlag<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new Error(`--${name}: expected one of ${allowed.join(" | ")}, got "${value}"`);
  }
  return value as T;
}
