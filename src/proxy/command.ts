/** Any other proxy, by the user's commands: `switch` points the tenant at $FLEET_UPSTREAM, `current` prints the port. */
import type { Proxy, Tenant } from '../registry/model';
import { envPrefix, named, sh } from '../remote/shell';
import { loopbackPort, type ProxyDriver } from './driver';

type Command = Extract<Proxy, { kind: 'command' }>;

export function commandProxy(t: Tenant, p: Command): ProxyDriver {
  const current = sh`sh -c ${p.current}`;
  return {
    label: 'the proxy command',
    read: () => named('proxyRead', current),
    switchTo: (port) => {
      const env = envPrefix({
        FLEET_UPSTREAM_PORT: String(port),
        FLEET_UPSTREAM: `127.0.0.1:${port}`,
        FLEET_TARGET: t.id,
      });
      return named('proxySwitch', sh`${env} sh -c ${p.switch} >&2 && ${current}`);
    },
    parse: (stdout) => {
      const port = loopbackPort(stdout.trim().split('\n').at(-1) ?? '');
      return port
        ? { port }
        : { error: `the current command printed ${JSON.stringify(stdout.trim().slice(0, 80))}, not a port` };
    },
  };
}
