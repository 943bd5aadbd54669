/**
 * Caddy through its admin API on the server's 127.0.0.1 (curl runs on the server): the tenant's
 * reverse_proxy handler carries an `@id`, and its `upstreams` are replaced with one PATCH, which Caddy
 * applies as one new config or not at all (requests in flight finish on the old one). Read back by GET.
 */
import type { Proxy } from '../registry/model';
import { named, sh } from '../remote/shell';
import { loopbackPort, type ProxyDriver, type Upstream } from './driver';

type Caddy = Extract<Proxy, { kind: 'caddy' }>;

export function caddy(p: Caddy): ProxyDriver {
  const url = `http://127.0.0.1:${p.adminPort}/id/${p.route}/upstreams`;
  const get = sh`curl -sS --fail-with-body --max-time 10 ${url}`;
  return {
    label: `caddy route ${p.route} (admin 127.0.0.1:${p.adminPort})`,
    read: () => named('proxyRead', get),
    switchTo: (port) => {
      const upstreams = JSON.stringify([{ dial: `127.0.0.1:${port}` }]);
      const patch = sh`curl -sS --fail-with-body --max-time 10 -X PATCH -H 'Content-Type: application/json'`;
      return named('proxySwitch', sh`${patch} --data-binary ${upstreams} ${url} >/dev/null && ${get}`);
    },
    parse: parseUpstreams,
  };
}

/** Caddy's `upstreams` array, which must hold exactly one loopback dial address. */
export function parseUpstreams(stdout: string): Upstream {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    return { error: `Caddy answered ${JSON.stringify(stdout.slice(0, 80))}, not JSON` };
  }
  if (!Array.isArray(value) || value.length !== 1)
    return { error: `the route has ${Array.isArray(value) ? value.length : 'no'} upstreams; expected one` };
  const dial = (value[0] as { dial?: unknown } | null)?.dial;
  const port = typeof dial === 'string' ? loopbackPort(dial) : undefined;
  return port ? { port } : { error: `the route's upstream ${JSON.stringify(dial)} is not 127.0.0.1:PORT` };
}
