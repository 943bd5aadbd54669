/**
 * The strict shapes of every registry value that can reach a remote shell or a file name. Each pattern
 * carries words for the error message (what is valid) and an example, so a rejection can say how to fix it.
 * These are the single source: the zod schema, the JSON Schema and docs/registry.md all come from here.
 */
export interface Pattern {
  readonly re: RegExp;
  readonly valid: string;
  readonly example: string;
}

const label = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const pathSegment = '[A-Za-z0-9._-]+';
const repoComponent = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';

export const NAME: Pattern = {
  re: new RegExp(`^${label}$`),
  valid: 'lowercase letters, digits and inner hyphens, 1-63 characters',
  example: 'eu-central-1',
};

export const TENANT_ID: Pattern = {
  re: /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/,
  valid: 'lowercase letters, digits, inner "-" and "_", 1-63 characters',
  example: 'acme-corp',
};

/** One label of a DNS name: letters, digits and inner "-", at most 63 characters. */
const DNS_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';

export const HOST: Pattern = {
  // A DNS name, an IPv4 address or a bracket-less IPv6 address.
  re: new RegExp(`^(?:(?:${DNS_LABEL})(?:\\.${DNS_LABEL})*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$`),
  valid: 'a DNS name, an IPv4 address or an IPv6 address without brackets',
  example: 'eu-1.example.com',
};

export const USER: Pattern = {
  re: /^[a-z_][a-z0-9_-]{0,31}$/,
  valid:
    'a POSIX user name: lowercase letters, digits, "_" and "-", starting with a letter or "_", at most 32 characters',
  example: 'deploy',
};

export const KEY: Pattern = {
  re: /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/,
  valid: 'lowercase letters, digits and inner ".", "_", "-", 1-63 characters',
  example: 'tier',
};

export const LABEL_VALUE: Pattern = {
  re: /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/,
  valid: 'letters, digits and inner ".", "_", "-", 1-63 characters',
  example: 'enterprise',
};

/** A directory on the server: absolute, or relative to the SSH user's home. */
export const REMOTE_PATH: Pattern = {
  re: new RegExp(`^/?${pathSegment}(?:/${pathSegment})*/?$`),
  valid:
    'an absolute path or one relative to the SSH user\'s home, of letters, digits, ".", "_", "-" and ' +
    '"/" (no "~", spaces, ".." or shell characters)',
  example: '/srv/tenants/{tenant}',
};

/** Fields that may use {tenant}, {server}, {region} and {ring}; resolve.ts substitutes and checks again. */
export const PLACEHOLDERS = ['tenant', 'server', 'region', 'ring'] as const;

/** The same pattern, with {placeholder} allowed wherever a character class of the pattern is. */
export function templated(pattern: Pattern, chars: string, shape: string): Pattern {
  return { ...pattern, re: new RegExp(shape.replaceAll('C', `(?:[${chars}]|\\{[a-z]+\\})`)) };
}

export const REMOTE_PATH_TEMPLATE = templated(REMOTE_PATH, 'A-Za-z0-9._-', '^/?C+(?:/C+)*/?$');

export const RELATIVE_FILE: Pattern = {
  re: new RegExp(`^${pathSegment}(?:/${pathSegment})*$`),
  valid: 'a path relative to the tenant directory, of letters, digits, ".", "_", "-" and "/" (no "..")',
  example: 'docker-compose.yml',
};

export const COMPOSE_PROJECT: Pattern = {
  re: /^[a-z0-9][a-z0-9_-]{0,62}$/,
  valid: 'a Compose project name: lowercase letters, digits, "_" and "-", starting with a letter or digit',
  example: 'acme-corp',
};

export const COMPOSE_PROJECT_TEMPLATE = templated(COMPOSE_PROJECT, 'a-z0-9_-', '^C+$');

/** The `@id` of a Caddy config object (the tenant's reverse_proxy handler), reached at /id/ID on the admin API. */
export const CADDY_ID: Pattern = {
  re: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/,
  valid: 'letters, digits, ".", "_" and "-", starting with a letter or digit, at most 100 characters',
  example: 'fleet-acme',
};

export const CADDY_ID_TEMPLATE = templated(CADDY_ID, 'A-Za-z0-9_.-', '^C+$');

export const SERVICE: Pattern = {
  re: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
  valid: 'a Compose service name: letters, digits, ".", "_" and "-"',
  example: 'gateway',
};

export const ENV_VAR: Pattern = {
  re: /^[A-Za-z_][A-Za-z0-9_]{0,127}$/,
  valid: 'an environment variable name: letters, digits and "_", not starting with a digit',
  example: 'APP_IMAGE',
};

/** One label of a registry host name (any length, as Docker's reference grammar has it). */
const REGISTRY_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';

export const IMAGE_REPOSITORY: Pattern = {
  re: new RegExp(
    `^(?:${REGISTRY_LABEL}(?:\\.${REGISTRY_LABEL})*(?::[0-9]{1,5})?/)?${repoComponent}(?:/${repoComponent})*$`,
  ),
  valid: 'an image repository without tag or digest: [registry[:port]/]namespace/name, the path in lowercase',
  example: 'ghcr.io/acme/app',
};

export const IMAGE_TAG: Pattern = {
  re: /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/,
  valid:
    'an image tag: letters, digits, "_", "." and "-", at most 128 characters, not starting with "." or "-"',
  example: 'v1.4.2',
};

export const IMAGE_DIGEST: Pattern = {
  re: /^sha256:[a-f0-9]{64}$/,
  valid: 'an image digest: "sha256:" and 64 lowercase hex digits',
  example: 'sha256:0123…',
};

/**
 * A full image reference, repository:tag or repository@digest: what .env holds, history records and
 * pruning removes. Values read back from a server are checked against it before any use.
 */
export const IMAGE_REF =
  /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,254}(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[a-f0-9]{64})$/;

export const HTTP_PATH: Pattern = {
  re: /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/,
  valid: 'an HTTP path starting with "/"',
  example: '/health',
};

export const DURATION: Pattern = {
  re: /^[0-9]{1,7}(?:ms|s|m)$/,
  valid: 'a whole number with a unit: "ms", "s" or "m"',
  example: '30s',
};

const HOST_KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
];

export const HOST_KEY: Pattern = {
  re: new RegExp(`^(?:(?:${HOST_KEY_TYPES.join('|')}) [A-Za-z0-9+/]+={0,2}|SHA256:[A-Za-z0-9+/]{43})$`),
  valid:
    'the server\'s public host key as "TYPE BASE64" (a line of `ssh-keyscan`, without the host), or ' +
    'its fingerprint "SHA256:…" (from `ssh-keygen -lf`)',
  example: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA…',
};

export function matches(pattern: Pattern, value: string): boolean {
  return pattern.re.test(value);
}

/** `..` and `.` segments are never valid in a path that reaches the server. */
export function hasDotSegment(path: string): boolean {
  return path.split('/').some((s) => s === '..' || s === '.');
}

export function durationMs(text: string): number {
  const m = /^([0-9]+)(ms|s|m)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}
