/**
 * Host-key trust, pure: the keys pinned in the registry, or the lines of a known_hosts text (host
 * patterns with "*", "?" and "!", hashed `|1|salt|hash` names, `[host]:port` for other ports). A server
 * is trusted only when the key it offers matches one of these; no match, or nothing pinned at all, is a
 * refusal. As in OpenSSH, a key on a `@revoked` line for the host is refused even where it is pinned.
 */
import { createHmac } from 'node:crypto';
import { ConfigurationError, type Problem } from '../errors';
import type { Plan } from '../plan/plan';
import type { Registry } from '../registry/model';
import type { PinnedHostKey } from '../registry/hostkey';
import { fingerprintOf } from '../registry/hostkey';
import { wildcardMatch } from '../wildcard';

export interface KnownHostEntry {
  /** Host patterns of a plain entry (empty for a hashed one). */
  hosts: string[];
  /** For hashed entries: salt and hash, base64. */
  hashed?: { salt: Buffer; hash: string };
  /** A `@revoked` line: this key is never accepted for these hosts. */
  revoked: boolean;
  type: string;
  fingerprint: string;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    const marker = parts[0]?.startsWith('@') ? parts.shift() : undefined;
    // @cert-authority (host certificates) is not supported: such a line trusts nothing here
    if (marker !== undefined && marker !== '@revoked') continue;
    const [hosts, type, b64] = parts;
    if (!hosts || !type || !b64) continue;
    const blob = Buffer.from(b64, 'base64');
    const entry: KnownHostEntry = {
      hosts: [],
      revoked: marker === '@revoked',
      type,
      fingerprint: fingerprintOf(blob),
    };
    const hashed = /^\|1\|([^|]+)\|([^|]+)$/.exec(hosts);
    if (hashed) entry.hashed = { salt: Buffer.from(hashed[1]!, 'base64'), hash: hashed[2]! };
    else entry.hosts = hosts.split(',');
    out.push(entry);
  }
  return out;
}

/** The name known_hosts files use for a host: `host`, or `[host]:port` for another port than 22. */
function hostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's rule for a pattern list: some pattern matches and no negated ("!") one does. */
function patternsMatch(patterns: readonly string[], name: string): boolean {
  let hit = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    if (!wildcardMatch((negated ? pattern.slice(1) : pattern).toLowerCase(), name.toLowerCase())) continue;
    if (negated) return false;
    hit = true;
  }
  return hit;
}

function entriesFor(entries: readonly KnownHostEntry[], host: string, port: number): KnownHostEntry[] {
  const name = hostName(host, port);
  return entries.filter((e) =>
    e.hashed
      ? createHmac('sha1', e.hashed.salt).update(name).digest('base64') === e.hashed.hash
      : patternsMatch(e.hosts, name),
  );
}

/** The fingerprints the known_hosts text revokes for host:port. */
export function revokedFingerprints(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): string[] {
  return entriesFor(entries, host, port)
    .filter((e) => e.revoked)
    .map((e) => e.fingerprint);
}

/** The fingerprints the known_hosts text trusts for host:port: listed, and not revoked for it. */
export function knownFingerprints(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const revoked = revokedFingerprints(entries, host, port);
  return entriesFor(entries, host, port)
    .filter((e) => !e.revoked && !revoked.includes(e.fingerprint))
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
  if (revokedFingerprints(knownHosts, host, port).includes(fingerprint)) {
    return {
      ok: false,
      message:
        `host key verification failed for ${label} (${host}:${port}): it offered ${fingerprint}, a key ` +
        `marked @revoked in the known_hosts text, which is refused even where it is pinned. Give the ` +
        `server a new host key and pin that one`,
    };
  }
  const expected = [...pinned.map((k) => k.fingerprint), ...knownFingerprints(knownHosts, host, port)];
  if (expected.includes(fingerprint)) return { ok: true, fingerprint };
  if (expected.length === 0) {
    return {
      ok: false,
      message:
        `host key verification failed for ${label} (${host}:${port}): no host key is pinned for it and ` +
        `the known_hosts text has no entry; it offered ${fingerprint}. Pin it in the registry ` +
        `("hostKey") after checking it out of band (ssh-keyscan -p ${port} ${host} | ssh-keygen -lf -)`,
    };
  }
  return {
    ok: false,
    message:
      `host key verification failed for ${label} (${host}:${port}): expected ${expected.join(' or ')}, ` +
      `but the server offered ${fingerprint}. If the key was rotated, pin the new one in the registry; ` +
      `otherwise this may be a man-in-the-middle`,
  };
}

/** What stops a host from being verified, before connecting: no usable key, or only revoked ones. */
function trustProblem(
  what: string,
  host: string,
  port: number,
  pinned: readonly PinnedHostKey[],
  known: readonly KnownHostEntry[],
  /** The command that pins this host's key after showing it (a server of the registry). */
  pin?: string,
): Pick<Problem, 'message' | 'hint'> | undefined {
  const revoked = revokedFingerprints(known, host, port);
  const pins = pinned.map((k) => k.fingerprint);
  const usable = [...pins.filter((k) => !revoked.includes(k)), ...knownFingerprints(known, host, port)];
  if (usable.length > 0) return undefined;
  const revokedPins = pins.filter((k) => revoked.includes(k));
  const scan = `ssh-keyscan -p ${port} ${host}`;
  if (revokedPins.length > 0)
    return {
      message:
        `${what} (${host}:${port}) is pinned only to revoked keys (${revokedPins.join(', ')} marked ` +
        `@revoked in the known_hosts text), so it cannot be verified`,
      hint: `give it a new host key and pin that one; get it with: ${scan}`,
    };
  return {
    message: `${what} (${host}:${port}) has no pinned host key and no known_hosts entry, so it cannot be verified`,
    hint: pin
      ? `pin its key: ${pin} (shows its fingerprint to compare first), or pass a known_hosts text`
      : `pin its key in the registry ("hostKey"), or pass a known_hosts text; get it with: ${scan}`,
  };
}

/**
 * Before any server is touched: every server of the plan, and every jump host it is reached through, must
 * have a pinned key or a known_hosts entry that is not revoked, since an unknown key is never trusted.
 * Names every host that has none, with the fix.
 */
export function checkTrust(
  registry: Registry,
  plan: Plan,
  knownHostsText: string,
  /** How to run `pin-host-key` for a server, as the person started the tool (the CLI's hint). */
  pinCommand?: (server: string) => string,
): void {
  const known = parseKnownHosts(knownHostsText);
  const servers = new Map(plan.plan.flatMap((w) => w.targets).map((t) => [t.server.name, t.server]));
  const problems: Problem[] = [];
  const jumps = new Set<string>();
  for (const s of servers.values()) {
    const own = trustProblem(`server ${s.name}`, s.host, s.port, s.hostKeys, known, pinCommand?.(s.name));
    if (own) problems.push({ path: [...s.at, 'hostKey'], source: registry.source, ...own });
    const j = s.jump;
    if (!j || jumps.has(`${j.host}:${j.port}`)) continue;
    jumps.add(`${j.host}:${j.port}`);
    const jump = trustProblem(`jump host ${j.host} of server ${s.name}`, j.host, j.port, j.hostKeys, known);
    if (jump) problems.push({ path: [...s.at, 'jump', 'hostKey'], source: registry.source, ...jump });
  }
  if (problems.length) throw new ConfigurationError(problems);
}
