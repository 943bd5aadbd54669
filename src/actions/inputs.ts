/**
 * Reads action inputs once into typed settings. `required: true` in action.yml is not enforced by the
 * runner, so every rule lives here, and every error names the input and its value.
 */
import * as core from '@actions/core';
import { ConfigurationError } from '../errors';

export function text(name: string, fallback: string): string {
  const v = core.getInput(name).trim();
  return v === '' ? fallback : v;
}

export function positiveInt(name: string, fallback: number, min = 1): number {
  const v = core.getInput(name).trim();
  if (v === '') return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min) {
    throw new ConfigurationError([
      {
        path: [],
        source: `input "${name}"`,
        message: `${JSON.stringify(v)} is not a whole number of at least ${min}`,
      },
    ]);
  }
  return Number(v);
}

export function durationInput(name: string, fallbackMs: number): number {
  const v = core.getInput(name).trim();
  if (v === '') return fallbackMs;
  const m = /^(\d+)(ms|s|m|h)$/.exec(v);
  if (!m)
    throw new ConfigurationError([
      {
        path: [],
        source: `input "${name}"`,
        message: `${JSON.stringify(v)} is not a duration`,
        hint: 'e.g. 90s, 10m or 2h',
      },
    ]);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

export function percentInput(name: string, fallback: number): number {
  const v = core.getInput(name).trim().replace(/%$/, '');
  if (v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 100) {
    throw new ConfigurationError([
      {
        path: [],
        source: `input "${name}"`,
        message: `${JSON.stringify(v)} is not a percentage from 0 to 100`,
      },
    ]);
  }
  return n;
}
