/**
 * Registries of any size for tests, benchmarks and the sandbox: `servers` servers spread over regions,
 * `tenantsPerServer` tenants each, rings assigned like a real fleet (about 2% sandbox, 8% canary, the rest
 * general). Deterministic: the same arguments give the same file.
 */
import type { RegistryFile } from '../registry/schema';

export interface SyntheticOptions {
  servers: number;
  tenantsPerServer: number;
  regions?: readonly string[];
  /** Host and first SSH port, for sandbox fleets on one machine; by default hosts are distinct names. */
  host?: string;
  firstPort?: number;
  firstHealthPort?: number;
}

export function syntheticRegistry(o: SyntheticOptions): RegistryFile {
  const regions = o.regions ?? ['eu', 'us', 'ap'];
  const width = String(o.servers).length;
  let n = 0;
  return {
    version: 1,
    defaults: {
      tenant: {
        path: '/srv/tenants/{tenant}',
        compose: { project: '{tenant}' },
        images: [{ variable: 'APP_IMAGE', repository: 'registry.example.com/acme/app' }],
        health: { path: '/health', json: { version: '{version}' } },
      },
    },
    servers: Array.from({ length: o.servers }, (_, s) => {
      const region = regions[s % regions.length]!;
      const name = `${region}-${String(s + 1).padStart(width, '0')}`;
      return {
        name,
        host: o.host ?? `${name}.fleet.example.com`,
        ...(o.firstPort ? { port: o.firstPort + s } : {}),
        region,
        tenants: Array.from({ length: o.tenantsPerServer }, (_, t) => {
          const i = n++;
          const ring = i % 50 === 0 ? 'sandbox' : i % 50 < 5 ? 'canary' : 'general';
          return {
            id: `t${String(i).padStart(5, '0')}`,
            ring,
            health: { port: (o.firstHealthPort ?? 18000) + t },
            labels: { tier: i % 3 === 0 ? 'enterprise' : 'standard' },
          };
        }),
      };
    }),
  };
}
