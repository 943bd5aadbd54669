/** The registry a command reads: --registry, else $FLEET_REGISTRY, else servers/production.json. */
import { parseRegistry, type Registry } from '../registry';
import { readUserFile, type CliIO } from './io';

export const DEFAULT_REGISTRY = 'servers/production.json';

export async function loadRegistry(values: Record<string, unknown>, io: CliIO): Promise<Registry> {
  const path = (values.registry as string | undefined) ?? io.env.FLEET_REGISTRY ?? DEFAULT_REGISTRY;
  return parseRegistry(await readUserFile(io, path, '--registry'), path);
}
