/**
 * Numbers, durations, percentages and switches given by a person — CLI flags and action inputs alike —
 * checked in one place, each error naming where the value came from (`--concurrency`, `input "lock-wait"`).
 * The `check…` functions take a text that was given; `wholeNumber`, `duration` and `percent` treat an
 * undefined or empty text as "not given" and yield the fallback.
 */
import { ConfigurationError } from './errors';
import { durationMs } from './registry/patterns';

/** Checks a text a person gave and turns it into a value, or throws a ConfigurationError naming `source`. */
export type Check<T> = (text: string, source: string) => T;

/** The trimmed text, or undefined when none (or only blanks) was given. */
export const given = (text: string | undefined) =>
  text === undefined || text.trim() === '' ? undefined : text.trim();

const orFallback = <T>(check: Check<T>, text: string | undefined, source: string, fallback: T): T => {
  const t = given(text);
  return t === undefined ? fallback : check(t, source);
};

const problem = (source: string, message: string, hint?: string) =>
  new ConfigurationError([{ path: [], source, message, ...(hint ? { hint } : {}) }]);

/** The number `text` writes, when it is a whole number of at least `min`. */
const asWholeNumber = (text: string, min: number) =>
  /^\d+$/.test(text) && Number(text) >= min ? Number(text) : undefined;

export function checkWholeNumber(text: string, source: string, min = 1): number {
  const n = asWholeNumber(text, min);
  if (n === undefined)
    throw problem(source, `${JSON.stringify(text)} is not a whole number of at least ${min}`);
  return n;
}

/** A count of waves: a whole number of at least 1, or `all` (Infinity). */
export function checkWaveCount(text: string, source: string): number {
  const n = text === 'all' ? Number.POSITIVE_INFINITY : asWholeNumber(text, 1);
  if (n === undefined)
    throw problem(
      source,
      `${JSON.stringify(text)} is not a number of waves`,
      'write a whole number of at least 1, or all',
    );
  return n;
}

/**
 * "90s", "10m", "2h", "500ms" → milliseconds, within `range` when given (written as durations too; a timer
 * cannot wait much longer than 24 days: Node fires a longer one at once).
 */
export function checkDuration(text: string, source: string, range?: { min: string; max: string }): number {
  const m = /^(\d{1,7})(ms|s|m|h)$/.exec(text);
  if (!m) throw problem(source, `${JSON.stringify(text)} is not a duration`, 'e.g. 90s, 10m or 2h');
  const ms = m[2] === 'h' ? Number(m[1]) * 3_600_000 : durationMs(text);
  if (range && (ms < checkDuration(range.min, 'min') || ms > checkDuration(range.max, 'max')))
    throw problem(source, `${JSON.stringify(text)} is not a duration from ${range.min} to ${range.max}`);
  return ms;
}

/** "5" or "5%" → 5, from 0 to 100. */
export function checkPercent(text: string, source: string): number {
  const n = Number(text.replace(/%$/, ''));
  if (!/^\d+(\.\d+)?%?$/.test(text) || n > 100)
    throw problem(source, `${JSON.stringify(text)} is not a percentage from 0 to 100`);
  return n;
}

/** "true" or "false", as YAML and GitHub's `getBooleanInput` spell them. */
export function checkBoolean(text: string, source: string): boolean {
  if (/^(true|True|TRUE)$/.test(text)) return true;
  if (/^(false|False|FALSE)$/.test(text)) return false;
  throw problem(source, `${JSON.stringify(text)} is neither true nor false`);
}

export function wholeNumber(text: string | undefined, source: string, fallback: number, min = 1): number {
  return orFallback((t, s) => checkWholeNumber(t, s, min), text, source, fallback);
}

export function duration(text: string | undefined, source: string, fallbackMs: number): number {
  return orFallback(checkDuration, text, source, fallbackMs);
}

export function percent(text: string | undefined, source: string, fallback: number): number {
  return orFallback(checkPercent, text, source, fallback);
}
