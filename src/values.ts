/**
 * Numbers, durations and percentages given by a person — CLI flags and action inputs alike — checked
 * in one place, each error naming where the value came from (`--concurrency`, `input "lock-wait"`).
 * An undefined or empty text means "not given" and yields the fallback.
 */
import { ConfigurationError } from './errors';
import { durationMs } from './registry/patterns';

const given = (text: string | undefined) =>
  text === undefined || text.trim() === '' ? undefined : text.trim();

export function wholeNumber(text: string | undefined, source: string, fallback: number, min = 1): number {
  const t = given(text);
  if (t === undefined) return fallback;
  if (!/^\d+$/.test(t) || Number(t) < min) {
    throw new ConfigurationError([
      { path: [], source, message: `${JSON.stringify(t)} is not a whole number of at least ${min}` },
    ]);
  }
  return Number(t);
}

/** "90s", "10m", "2h", "500ms" → milliseconds. */
export function duration(text: string | undefined, source: string, fallbackMs: number): number {
  const t = given(text);
  if (t === undefined) return fallbackMs;
  const m = /^(\d{1,7})(ms|s|m|h)$/.exec(t);
  if (!m)
    throw new ConfigurationError([
      { path: [], source, message: `${JSON.stringify(t)} is not a duration`, hint: 'e.g. 90s, 10m or 2h' },
    ]);
  return m[2] === 'h' ? Number(m[1]) * 3_600_000 : durationMs(t);
}

/** "5" or "5%" → 5, from 0 to 100. */
export function percent(text: string | undefined, source: string, fallback: number): number {
  const t = given(text);
  if (t === undefined) return fallback;
  const n = Number(t.replace(/%$/, ''));
  if (!Number.isFinite(n) || n < 0 || n > 100) {
    throw new ConfigurationError([
      { path: [], source, message: `${JSON.stringify(t)} is not a percentage from 0 to 100` },
    ]);
  }
  return n;
}
