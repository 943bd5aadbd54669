/**
 * Reads action inputs once into typed settings. `required: true` in action.yml is not enforced by the
 * runner, so every rule lives here, and every error names the input and its value.
 */
import { core } from './log';
import { fromInputs } from '../settings';
import { percent, wholeNumber } from '../values';

/** The rollout settings' inputs (src/settings.ts), read the same way as the CLI's flags. */
export const actionInputs = fromInputs((name) => core.getInput(name));

export function text(name: string, fallback: string): string {
  const v = core.getInput(name).trim();
  return v === '' ? fallback : v;
}

export function positiveInt(name: string, fallback: number, min = 1): number {
  return wholeNumber(core.getInput(name), `input "${name}"`, fallback, min);
}

export function percentInput(name: string, fallback: number): number {
  return percent(core.getInput(name), `input "${name}"`, fallback);
}
