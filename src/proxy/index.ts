/**
 * The reverse proxy in front of a blue-green tenant's two slots, as remote scripts (pure: builders and
 * parsers only). Each driver reads where the proxy sends the tenant now, and switches it to another
 * port on the server's 127.0.0.1 atomically, printing what the proxy holds afterwards so the switch is
 * verified by reading it back. A proxy that is down or refuses the change makes its script fail.
 */
import type { Proxy, Tenant } from '../registry/model';
import type { Script } from '../remote/shell';
import { caddy } from './caddy';
import { commandProxy } from './command';
import { flagFileProxy } from './flag-file';
import { nginx } from './nginx';

export type Upstream = { port: number } | { error: string };

export interface ProxyDriver {
  /** The proxy in a few words, for messages: `caddy route fleet-acme (admin 127.0.0.1:2019)`. */
  readonly label: string;
  /** Prints where the proxy sends the tenant now; fails when the proxy is down. */
  read(): Script;
  /** Points the tenant at 127.0.0.1:port, then prints what the proxy holds (as `read` does). */
  switchTo(port: number): Script;
  /** The upstream port in what `read` or `switchTo` printed (from the server: checked), or why there is none. */
  parse(stdout: string): Upstream;
}

export function proxyDriver(tenant: Tenant, proxy: Proxy): ProxyDriver {
  switch (proxy.kind) {
    case 'flag-file':
      if (tenant.strategy.kind !== 'blue-green')
        throw new Error(`${tenant.id}: a flag-file proxy fronts blue-green slots`);
      return flagFileProxy(tenant, tenant.strategy);
    case 'caddy':
      return caddy(proxy);
    case 'nginx':
      return nginx(proxy);
    case 'command':
      return commandProxy(tenant, proxy);
  }
}

/** A port number as the proxy printed it, checked: `127.0.0.1:PORT`, `localhost:PORT` or `PORT`. */
export function loopbackPort(text: string): number | undefined {
  const m = /^(?:(?:127\.0\.0\.1|localhost):)?([0-9]{1,5})$/.exec(text.trim());
  const port = m ? Number(m[1]) : NaN;
  return port >= 1 && port <= 65535 ? port : undefined;
}
