/** Flag values shared by the commands, each checked with an error that names the flag. */
import { ConfigurationError } from '../errors';
import { parseRegistry, type Registry } from '../registry';
import { DURATION, durationMs } from '../registry/patterns';
import { readUserFile, type CliIO } from './io';

export const DEFAULT_REGISTRY = 'servers/production.json';

export function wholeNumber(text: string | undefined, flag: string, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text.trim()) || Number(text) < min) {
    throw new ConfigurationError([
      { path: [], source: flag, message: `${JSON.stringify(text)} is not a whole number of at least ${min}` },
    ]);
  }
  return Number(text);
}

export async function loadRegistry(values: Record<string, unknown>, io: CliIO): Promise<Registry> {
  const path = (values.registry as string | undefined) ?? io.env.FLEET_REGISTRY ?? DEFAULT_REGISTRY;
  return parseRegistry(await readUserFile(io, path, '--registry'), path);
}

export function duration(text: string | undefined, flag: string, fallbackMs: number): number {
  if (text === undefined) return fallbackMs;
  if (!DURATION.re.test(text.trim()) && !/^\d+h$/.test(text.trim())) {
    throw new ConfigurationError([
      {
        path: [],
        source: flag,
        message: `${JSON.stringify(text)} is not a duration`,
        hint: 'e.g. 90s, 10m or 2h',
      },
    ]);
  }
  const t = text.trim();
  return t.endsWith('h') ? Number(t.slice(0, -1)) * 3_600_000 : durationMs(t);
}

export function percent(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text.trim().replace(/%$/, ''));
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) {
    throw new ConfigurationError([
      { path: [], source: flag, message: `${JSON.stringify(text)} is not a percentage from 0 to 100` },
    ]);
  }
  return n;
}
