/**
 * Host-key trust, pure: the keys pinned in the registry, or the lines of a known_hosts text (plain or
 * hashed `|1|salt|hash` host names, `[host]:port` for other ports). A server is trusted only when the
 * key it offers matches one of these; no match, or nothing pinned at all, is a refusal.
 */
import { createHmac } from 'node:crypto';
import { ConfigurationError } from '../errors';
import type { Plan } from '../plan/plan';
import type { Registry } from '../registry/model';
import type { PinnedHostKey } from '../registry/hostkey';
import { fingerprintOf } from '../registry/hostkey';

export interface KnownHostEntry {
  hosts: string[];
  /** For hashed entries: salt and hash, base64. */
  hashed?: { salt: Buffer; hash: string };
  type: string;
  fingerprint: string;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    if (parts[0]?.startsWith('@')) continue; // @cert-authority / @revoked: not supported, never trusted
    const [hosts, type, b64] = parts;
    if (!hosts || !type || !b64) continue;
    const blob = Buffer.from(b64, 'base64');
    const entry: KnownHostEntry = { hosts: [], type, fingerprint: fingerprintOf(blob) };
    const hashed = /^\|1\|([^|]+)\|([^|]+)$/.exec(hosts);
    if (hashed) entry.hashed = { salt: Buffer.from(hashed[1]!, 'base64'), hash: hashed[2]! };
    else entry.hosts = hosts.split(',');
    out.push(entry);
  }
  return out;
}

function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function knownFingerprints(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const name = hostPattern(host, port);
  return entries
    .filter((e) =>
      e.hashed
        ? createHmac('sha1', e.hashed.salt).update(name).digest('base64') === e.hashed.hash
        : e.hosts.includes(name),
    )
    .map((e) => e.fingerprint);
}

export type HostKeyVerdict = { ok: true; fingerprint: string } | { ok: false; message: string };

/** Decides whether `offered` (the raw key blob the server sent) is trusted for host:port. */
export function verifyHostKey(
  label: string,
  host: string,
  port: number,
  offered: Buffer,
  pinned: readonly PinnedHostKey[],
  knownHosts: readonly KnownHostEntry[],
): HostKeyVerdict {
  const fingerprint = fingerprintOf(offered);
  const expected = [...pinned.map((k) => k.fingerprint), ...knownFingerprints(knownHosts, host, port)];
  if (expected.includes(fingerprint)) return { ok: true, fingerprint };
  if (expected.length === 0) {
    return {
      ok: false,
      message: `host key verification failed for ${label} (${host}:${port}): no host key is pinned for it and the known_hosts text has no entry; it offered ${fingerprint}. Pin it in the registry ("hostKey") after checking it out of band (ssh-keyscan -p ${port} ${host} | ssh-keygen -lf -)`,
    };
  }
  return {
    ok: false,
    message: `host key verification failed for ${label} (${host}:${port}): expected ${expected.join(' or ')}, but the server offered ${fingerprint}. If the key was rotated, pin the new one in the registry; otherwise this may be a man-in-the-middle`,
  };
}

/**
 * Before any server is touched: every server of the plan must have a pinned key or a known_hosts entry,
 * since an unknown key is never trusted. Names every server that has neither, with the fix.
 */
export function checkTrust(registry: Registry, plan: Plan, knownHostsText: string): void {
  const known = parseKnownHosts(knownHostsText);
  const servers = new Map(plan.plan.flatMap((w) => w.targets).map((t) => [t.server.name, t.server]));
  const untrusted = [...servers.values()].filter(
    (s) => s.hostKeys.length === 0 && knownFingerprints(known, s.host, s.port).length === 0,
  );
  if (untrusted.length === 0) return;
  throw new ConfigurationError(
    untrusted.map((s) => ({
      path: [...s.at, 'hostKey'],
      source: registry.source,
      message: `server ${s.name} (${s.host}:${s.port}) has no pinned host key and no known_hosts entry, so it cannot be verified`,
      hint: `pin its key in the registry ("hostKey"), or pass a known_hosts text; get it with: ssh-keyscan -p ${s.port} ${s.host}`,
    })),
  );
}
