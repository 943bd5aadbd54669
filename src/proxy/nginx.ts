/**
 * nginx: the tenant's `upstream { include FILE; }` holds one `server 127.0.0.1:PORT;` line in FILE. The
 * switch writes a new FILE beside the old and renames it over (atomic), checks the configuration, and
 * reloads (old workers finish their requests); when the check or the reload fails, the old FILE is put
 * back and the script fails, so the proxy keeps sending the tenant where it did.
 */
import type { Proxy } from '../registry/model';
import { named, Script, sh, type Value } from '../remote/shell';
import { loopbackPort, type ProxyDriver } from './driver';

type Nginx = Extract<Proxy, { kind: 'nginx' }>;

export function nginx(p: Nginx): ProxyDriver {
  const read = sh`cat -- ${p.upstreamFile}`;
  return {
    label: `nginx upstream ${p.upstreamFile}`,
    read: () => named('proxyRead', read),
    switchTo: (port) => {
      const write = (content: Value) =>
        sh`{ tmp="$(mktemp "$f.fleet-XXXXXX")" && printf '%s\n' ${content} > "$tmp" && chmod 644 "$tmp" && mv -f -- "$tmp" "$f"; }`;
      const restore = write(new Script('"$old"')); // the old file's text, expanded by the shell
      const written = write(`server 127.0.0.1:${port};`);
      const replace = sh`f=${p.upstreamFile}; old="$(cat -- "$f")" || exit 3; ${written} || { rm -f -- "$tmp"; exit 3; }`;
      // The check or the reload failed: the old upstream file goes back, and the switch fails.
      const unless = (command: string, what: string) =>
        sh`if ! sh -c ${command}; then echo ${`${what}: the upstream file was put back`} >&2; ${restore}; exit 3; fi`;
      const check = unless(p.check, 'nginx refused the configuration');
      const reload = unless(p.reload, 'nginx did not reload (is it running?)');
      return named('proxySwitch', sh`${replace}; ${check}; ${reload}; ${read}`);
    },
    parse: parseServerLine,
  };
}

/** The upstream file's one `server 127.0.0.1:PORT;` line. */
export function parseServerLine(stdout: string) {
  const lines = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const m = lines.length === 1 ? /^server\s+(\S+?)\s*(?:\s[^;]*)?;$/.exec(lines[0]!) : null;
  const port = m ? loopbackPort(m[1]!) : undefined;
  return port
    ? { port }
    : {
        error: `the upstream file holds ${JSON.stringify(stdout.trim().slice(0, 80))}, not one "server 127.0.0.1:PORT;" line`,
      };
}
