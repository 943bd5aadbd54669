/** The registry a command reads: --registry, else $FLEET_REGISTRY, else servers/production.json. */
import { ConfigurationError } from '../errors';
import { parseRegistry, type Registry } from '../registry';
import { DEFAULT_REGISTRY } from '../settings';
import { readUserFile, type CliIO } from './io';

/** The CLI's exit codes: `drift` is status --fail-on-drift's, when a target drifted. */
export const EXIT = { ok: 0, failure: 1, configuration: 2, drift: 3 } as const;

/** `--format FORMAT` and `--json` (rows of the settings table): every command that prints data. */
export const FORMAT_FLAGS = ['format', 'jsonFormat'] as const;

/** The format asked for: --json, else --format (checked against `formats`), else the first of `formats`. */
export function outputFormat<F extends string>(values: Record<string, unknown>, formats: readonly F[]): F {
  if (values.json) return 'json' as F;
  const format = (values.format as string | undefined) ?? formats[0]!;
  if (!formats.includes(format as F))
    throw new ConfigurationError([
      {
        path: [],
        source: '--format',
        message: `${JSON.stringify(format)} is not a format`,
        hint: `use ${formats.slice(0, -1).join(', ')} or ${formats.at(-1)}, or --json`,
      },
    ]);
  return format as F;
}

/** The registry's path: --registry, else $FLEET_REGISTRY when set and not empty, else the default. */
export function registryPath(values: { readonly registry?: unknown }, io: CliIO): string {
  return (values.registry as string | undefined) ?? (io.env.FLEET_REGISTRY || DEFAULT_REGISTRY);
}

export async function loadRegistry(values: { readonly registry?: unknown }, io: CliIO): Promise<Registry> {
  const flag = values.registry as string | undefined;
  const path = registryPath(values, io);
  // Name where the path came from: a person who passed no --registry is not told "--registry".
  const source = flag
    ? '--registry'
    : io.env.FLEET_REGISTRY
      ? '$FLEET_REGISTRY'
      : `the default registry (pass --registry FILE, or set $FLEET_REGISTRY, or create one with: ${io.self ?? 'fleet-deploy'} init)`;
  return parseRegistry(await readUserFile(io, path, source), path);
}
