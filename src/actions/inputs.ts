/**
 * Reads action inputs once into typed settings. `required: true` in action.yml is not enforced by the
 * runner, so every rule lives here, and every error names the input and its value.
 */
import { core } from './log';
import { duration, percent, wholeNumber } from '../values';

export function text(name: string, fallback: string): string {
  const v = core.getInput(name).trim();
  return v === '' ? fallback : v;
}

export function positiveInt(name: string, fallback: number, min = 1): number {
  return wholeNumber(core.getInput(name), `input "${name}"`, fallback, min);
}

export function durationInput(name: string, fallbackMs: number): number {
  return duration(core.getInput(name), `input "${name}"`, fallbackMs);
}

export function percentInput(name: string, fallback: number): number {
  return percent(core.getInput(name), `input "${name}"`, fallback);
}
