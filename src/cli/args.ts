/** The registry a command reads: --registry, else $FLEET_REGISTRY, else servers/production.json. */
import { parseRegistry, type Registry } from '../registry';
import { readUserFile, type CliIO } from './io';

export const DEFAULT_REGISTRY = 'servers/production.json';

export async function loadRegistry(values: Record<string, unknown>, io: CliIO): Promise<Registry> {
  const flag = values.registry as string | undefined;
  const path = flag ?? io.env.FLEET_REGISTRY ?? DEFAULT_REGISTRY;
  // Name where the path came from: a person who passed no --registry is not told "--registry".
  const source = flag
    ? '--registry'
    : io.env.FLEET_REGISTRY
      ? '$FLEET_REGISTRY'
      : `the default registry (pass --registry FILE, or set $FLEET_REGISTRY, or create one with: ${io.self ?? 'fleet-deploy'} init)`;
  return parseRegistry(await readUserFile(io, path, source), path);
}
