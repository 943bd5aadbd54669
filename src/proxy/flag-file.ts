/**
 * A proxy that picks the live slot per request by which flag file exists in the tenant directory,
 * `.fleet/slots/live-blue` or `.fleet/slots/live-green` (Caddy: a `file` matcher per slot; nginx:
 * `if (-f …)`), and the tenant's in-place port when neither does. The switch renames one flag into the
 * other (atomic: at every instant exactly one exists), so the proxy's configuration never changes and
 * it never reloads: no kept-alive connection is closed and no listening socket is replaced.
 */
import type { BlueGreen, SlotName, Tenant } from '../registry/model';
import { SLOTS_DIR } from '../remote/blue-green';
import { inPrivateDir } from '../remote/private-dir';
import { named, sh } from '../remote/shell';
import { loopbackPort, type ProxyDriver } from './driver';

export const flagFile = (slot: SlotName) => `${SLOTS_DIR}/live-${slot}`;

export function flagFileProxy(t: Tenant, bg: BlueGreen): ProxyDriver {
  const [blue, green] = [flagFile('blue'), flagFile('green')];
  const ports = { blue: bg.slots.blue.port, green: bg.slots.green.port };
  const inPlace = sh`sed -n ${`s/^${bg.portVariable}=//p`} .env 2>/dev/null | tail -n 1`;
  // Neither flag: the in-place stack's port (.env), or slot blue's when the tenant never had one.
  const neither = sh`p="$(${inPlace})"; if [ -n "$p" ]; then echo "$p"; else echo ${ports.blue}; fi`;
  const read = sh`if [ -e ${blue} ]; then echo ${ports.blue}; elif [ -e ${green} ]; then echo ${ports.green}; else ${neither}; fi`;
  // Renamed, or made in a private directory and renamed into place (`-T`: never into a directory a
  // planted link names, never written through a name someone else could have made a link).
  const raise = (slot: SlotName, other: SlotName) => {
    const [to, from] = [`../live-${slot}`, `../live-${other}`];
    return inPrivateDir(
      SLOTS_DIR,
      sh`mv -fT -- ${from} ${to} 2>/dev/null || [ -e ${to} ] || { : > flag && mv -fT -- flag ${to}; }`,
    );
  };
  return {
    label: `the flag file ${SLOTS_DIR}/live-SLOT`,
    read: () => named('proxyRead', read),
    switchTo: (port) => {
      const flip =
        port === ports.blue
          ? raise('blue', 'green')
          : port === ports.green
            ? raise('green', 'blue')
            : sh`rm -f -- ${blue} ${green}`; // back to the in-place stack
      return named('proxySwitch', sh`mkdir -p ${SLOTS_DIR} && ${flip} && { ${read}; }`);
    },
    parse: (stdout) => {
      const port = loopbackPort(stdout.trim().split('\n').at(-1) ?? '');
      return port
        ? { port }
        : {
            error: `no flag file is set and .env's ${bg.portVariable} is ${JSON.stringify(stdout.trim().slice(0, 40))}, not a port`,
          };
    },
  };
}
