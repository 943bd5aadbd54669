import { createHash } from 'node:crypto';

/**
 * Host keys as pinned in the registry: either a public key line ("ssh-ed25519 AAAA…") or an OpenSSH SHA256
 * fingerprint ("SHA256:…"). Both reduce to the fingerprint, which is what SSH clients compare and what an
 * error message shows.
 */
export interface PinnedHostKey {
  /** The public key's type, when a whole key was pinned. */
  type?: string;
  /** OpenSSH fingerprint: "SHA256:" + unpadded base64 of the SHA-256 of the key blob. */
  fingerprint: string;
}

/** The fingerprint OpenSSH prints for a raw key blob (ssh-keygen -lf). */
export function fingerprintOf(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Parses a pinned key. Returns an error sentence when a "TYPE BASE64" key does not decode to a key blob of
 * that type (a truncated or mis-pasted key), so it fails at validation, not at connect time.
 */
export function parseHostKey(text: string): PinnedHostKey | string {
  if (text.startsWith('SHA256:')) return { fingerprint: text };
  const [type, b64] = text.split(' ');
  if (!type || !b64) return 'is not "TYPE BASE64" nor "SHA256:…"';
  const blob = Buffer.from(b64, 'base64');
  if (blob.length < 4) return `does not decode to a ${type} key`;
  const len = blob.readUInt32BE(0);
  const embedded = blob.subarray(4, 4 + len).toString('latin1');
  if (embedded !== type) {
    return (
      `declares type ${type} but its base64 holds ` +
      `${embedded ? `a "${embedded.slice(0, 30)}" key` : 'no key'}; paste the whole line of ` +
      `\`ssh-keyscan HOST\` without the host name`
    );
  }
  return { type, fingerprint: fingerprintOf(blob) };
}
