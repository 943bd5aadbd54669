/**
 * Host-key trust, pure: the keys pinned in the registry, or the lines of a known_hosts text (plain or
 * hashed `|1|salt|hash` host names, `[host]:port` for other ports). A server is trusted only when the
 * key it offers matches one of these; no match, or nothing pinned at all, is a refusal.
 */
import { createHmac } from 'node:crypto';
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
