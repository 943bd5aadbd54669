/**
 * The reverse proxy in front of a blue-green tenant's two slots, as remote scripts (pure: builders and
 * parsers only). Each driver reads where the proxy sends the tenant now, and switches it to another
 * port on the server's 127.0.0.1 atomically, printing what the proxy holds afterwards so the switch is
 * verified by reading it back. A proxy that is down or refuses the change makes its script fail.
 */
import type { Proxy, Tenant } from '../registry/model';
import { caddy } from './caddy';
import { commandProxy } from './command';
import { flagFileProxy } from './flag-file';
import type { ProxyDriver } from './driver';
import { nginx } from './nginx';

export type { ProxyDriver } from './driver';

export function proxyDriver(tenant: Tenant, proxy: Proxy): ProxyDriver {
  switch (proxy.kind) {
    case 'flag-file':
      return flagFileProxy(tenant, tenant.blueGreen!);
    case 'caddy':
      return caddy(proxy);
    case 'nginx':
      return nginx(proxy);
    case 'command':
      return commandProxy(tenant, proxy);
  }
}
