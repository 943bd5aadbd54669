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
      return named(
        'proxySwitch',
        sh`f=${p.upstreamFile}; old="$(cat -- "$f")" || exit 3; ${write(`server 127.0.0.1:${port};`)} || { rm -f -- "$tmp"; exit 3; }; if ! sh -c ${p.check}; then echo 'nginx refused the configuration: the upstream file was put back' >&2; ${restore}; exit 3; fi; if ! sh -c ${p.reload}; then echo 'nginx did not reload (is it running?): the upstream file was put back' >&2; ${restore}; exit 3; fi; ${read}`,
      );
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
