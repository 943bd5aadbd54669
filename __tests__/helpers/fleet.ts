import { parseRegistry, targetsOf, type Registry } from '../../src/registry';
import { syntheticRegistry } from '../../src/sandbox/synthetic';

/** A parsed synthetic registry with exactly `targets` targets (tenantsPerServer per server, the last server short). */
export function fleet(targets: number, tenantsPerServer = 8): Registry {
  const servers = Math.ceil(targets / tenantsPerServer);
  const file = syntheticRegistry({ servers, tenantsPerServer });
  const extra = servers * tenantsPerServer - targets;
  if (extra > 0) file.servers[servers - 1]!.tenants.splice(tenantsPerServer - extra, extra);
  const registry = parseRegistry(JSON.stringify(file), `fleet-${targets}.json`);
  if (targetsOf(registry).length !== targets) throw new Error('fleet size');
  return registry;
}
