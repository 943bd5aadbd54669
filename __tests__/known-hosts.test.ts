/**
 * Host-key trust, pure: known_hosts lines (plain, patterned, hashed, @revoked) and the registry's pins, as
 * OpenSSH reads them; and the check before any connection that every server and jump host can be verified.
 * (The same rules over real sshd: __tests__/integration/transport-sshd.test.ts.)
 */
import { createHmac, randomBytes } from 'node:crypto';
import { ConfigurationError } from '../src/errors';
import { planDeployment } from '../src/plan/plan';
import { parseRegistry } from '../src/registry';
import { fingerprintOf } from '../src/registry/hostkey';
import { checkTrust, knownFingerprints, parseKnownHosts, verifyHostKey } from '../src/ssh/known-hosts';
import { ED25519 } from './helpers/keys';
import { baseRegistry } from './helpers/registry';

const blob = Buffer.from(ED25519.split(' ')[1]!, 'base64');
const FP = fingerprintOf(blob);
const other = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIFjU2sj7r9f4yPa0Wb9KzSz2Wc8pF5tX3bqv2mVq1t9D', 'base64');
const hashedName = (name: string) => {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
};

describe('known_hosts', () => {
  test('plain names, [host]:port, patterns with *, ? and ! (as OpenSSH matches them), hashed names', () => {
    const known = parseKnownHosts(
      [
        `# comment`,
        `web-1.example.com,10.0.0.1 ${ED25519}`,
        `[10.0.0.2]:2222 ${ED25519}`,
        `*.eu.example.com,!bad.eu.example.com ${ED25519}`,
        `db-?.example.com ${ED25519}`,
        `${hashedName('[10.0.0.9]:2200')} ${ED25519}`,
        `@cert-authority *.example.com ${ED25519}`, // not supported: trusts nothing
      ].join('\n'),
    );
    const trusted = (host: string, port = 22) => knownFingerprints(known, host, port).length > 0;
    expect(trusted('web-1.example.com')).toBe(true);
    expect(trusted('10.0.0.1')).toBe(true);
    expect(trusted('10.0.0.1', 2222)).toBe(false);
    expect(trusted('10.0.0.2', 2222)).toBe(true);
    expect(trusted('10.0.0.2')).toBe(false);
    expect(trusted('a.eu.example.com')).toBe(true);
    expect(trusted('A.EU.example.com')).toBe(true);
    expect(trusted('bad.eu.example.com')).toBe(false);
    expect(trusted('db-1.example.com')).toBe(true);
    expect(trusted('db-12.example.com')).toBe(false);
    expect(trusted('10.0.0.9', 2200)).toBe(true);
    expect(trusted('10.0.0.9')).toBe(false);
    expect(trusted('app.example.com')).toBe(false); // only a @cert-authority line names it
  });

  test('a @revoked key is refused even where pinned, naming the host and the fingerprint', () => {
    const known = parseKnownHosts(`@revoked * ${ED25519}\n10.0.0.1 ${ED25519}\n`);
    expect(knownFingerprints(known, '10.0.0.1', 22)).toEqual([]);
    const verdict = verifyHostKey('eu-1', '10.0.0.1', 22, blob, [{ fingerprint: FP }], known);
    expect(verdict).toEqual({
      ok: false,
      message: `host key verification failed for eu-1 (10.0.0.1:22): it offered ${FP}, a key marked @revoked in the known_hosts text, which is refused even where it is pinned. Give the server a new host key and pin that one`,
    });
    // revoked for the hosts it names only, as in OpenSSH
    const some = parseKnownHosts(`@revoked 10.0.0.7 ${ED25519}`);
    expect(verifyHostKey('eu-1', '10.0.0.1', 22, blob, [{ fingerprint: FP }], some).ok).toBe(true);
    // another key of the same host is still accepted
    const fp2 = fingerprintOf(other);
    expect(verifyHostKey('eu-1', '10.0.0.1', 22, other, [{ fingerprint: fp2 }], known)).toEqual({
      ok: true,
      fingerprint: fp2,
    });
  });
});

describe('checkTrust, before any connection', () => {
  const registryWith = (edit: (r: Record<string, any>) => void) => {
    const r = baseRegistry();
    edit(r);
    const registry = parseRegistry(JSON.stringify(r), 'reg.json');
    return { registry, plan: planDeployment(registry, {}) };
  };
  const problems = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      if (e instanceof ConfigurationError) return e.problems.map((p) => [p.path.join('.'), p.message]);
      throw e;
    }
    return [];
  };

  test('a jump host must be verifiable too: pinned, or in known_hosts', () => {
    const { registry, plan } = registryWith((r) => {
      r.servers[0].hostKey = ED25519;
      r.servers[0].jump = { host: 'bastion.example.com' };
    });
    expect(problems(() => checkTrust(registry, plan, ''))).toEqual([
      [
        'servers.0.jump.hostKey',
        'jump host bastion.example.com of server eu-1 (bastion.example.com:22) has no pinned host key and no known_hosts entry, so it cannot be verified',
      ],
    ]);
    expect(problems(() => checkTrust(registry, plan, `bastion.example.com ${ED25519}`))).toEqual([]);
  });

  test('a server pinned only to revoked keys cannot be verified', () => {
    const { registry, plan } = registryWith((r) => (r.servers[0].hostKey = ED25519));
    expect(problems(() => checkTrust(registry, plan, ''))).toEqual([]);
    expect(problems(() => checkTrust(registry, plan, `@revoked 10.0.0.1 ${ED25519}`))).toEqual([
      [
        'servers.0.hostKey',
        `server eu-1 (10.0.0.1:22) is pinned only to revoked keys (${FP} marked @revoked in the known_hosts text), so it cannot be verified`,
      ],
    ]);
  });
});
