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

export function positiveInt(name: string, fallback: number): number {
  const v = core.getInput(name).trim();
  if (v === '') return fallback;
  if (!/^\d+$/.test(v) || Number(v) < 1) {
    throw new ConfigurationError([
      {
        path: [],
        source: `input "${name}"`,
        message: `${JSON.stringify(v)} is not a whole number of at least 1`,
      },
    ]);
  }
  return Number(v);
}
