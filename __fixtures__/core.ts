/** A typed double of @actions/core for action unit tests (the runner-level tests run the real bundle). */
import { jest } from '@jest/globals';
import type * as core from '@actions/core';

export const inputs: Record<string, string> = {};
export const outputs: Record<string, string> = {};

export const getInput = jest.fn<typeof core.getInput>((name) => inputs[name] ?? '');
export const setOutput = jest.fn<typeof core.setOutput>((name, value) => {
  outputs[name] = String(value);
});
export const setFailed = jest.fn<typeof core.setFailed>();
export const error = jest.fn<typeof core.error>();
export const warning = jest.fn<typeof core.warning>();
export const info = jest.fn<typeof core.info>();
export const debug = jest.fn<typeof core.debug>();
export const setSecret = jest.fn<typeof core.setSecret>();

export function reset(values: Record<string, string> = {}): void {
  for (const k of Object.keys(inputs)) delete inputs[k];
  for (const k of Object.keys(outputs)) delete outputs[k];
  Object.assign(inputs, values);
  for (const fn of [getInput, setOutput, setFailed, error, warning, info, debug, setSecret]) fn.mockClear();
}
