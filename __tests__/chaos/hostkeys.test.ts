/**
 * Host keys over real sshd: a pinned key of the same or another type that differs, a key marked
 * @revoked, a hashed known_hosts entry for another key, a jump host with the wrong key, and no key at all
 * are each refused before logging in, the message naming the fingerprints; a right hashed entry is
 * trusted. There is no option that accepts an unknown key.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRegistry } from '../../src/registry';
import type { Server } from '../../src/registry/model';
import { Script } from '../../src/remote/shell';
import { SshConnector } from '../../src/ssh/transport';
import { handOver, haveSshd } from '../../src/testing';
import { makeClientKey, startSshd, tempRoot, type ClientKey, type TestSshd } from '../helpers/sshd';
import { scenario } from './lib/record';

const describeSshd = haveSshd ? describe : describe.skip;

describeSshd('host keys', () => {
  let root: string;
  let key: ClientKey;
  let sshd: TestSshd;
  let jump: TestSshd;
  beforeAll(async () => {
    root = tempRoot('fd-chaos-keys-');
    key = makeClientKey(root);
    sshd = await startSshd('target', root, key);
    jump = await startSshd('jump', root, key);
    handOver(root);
  }, 30_000);
  afterAll(async () => {
    await sshd?.stop();
    await jump?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const serverOf = (extra: Record<string, unknown>): Server =>
    parseRegistry(
      JSON.stringify({
        servers: [
          {
            name: 'target',
            host: '127.0.0.1',
            port: sshd.port,
            user: sshd.user,
            region: 'local',
            tenants: [],
            ...extra,
          },
        ],
      }),
      'keys.json',
    ).servers[0]!;
  const fingerprintOf = (publicKey: string) =>
    execFileSync('ssh-keygen', ['-lf', '-'], { input: publicKey, encoding: 'utf8' }).split(' ')[1]!;
  const otherKey = (type: string) => {
    const file = join(root, `other_${type}`);
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file]);
    return readFileSync(`${file}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
  };
  const hashed = (line: string) => {
    const file = join(root, `kh_${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, `${line}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    return readFileSync(file, 'utf8');
  };
  const connect = (server: Server, knownHosts = '') =>
    new SshConnector({ privateKey: key.privateKey, knownHosts, connectAttempts: 1 }).connect(server);

  scenario(
    'host keys',
    'mismatch, another key type, @revoked, hashed, jump host, unknown',
    'each refused before login, naming the offered and the expected fingerprints; no path accepts an unknown key',
    async () => {
      const offered = fingerprintOf(sshd.hostKey);
      const logins = sshd.handshakes() + jump.handshakes();
      const ed = otherKey('ed25519');
      const ecdsa = otherKey('ecdsa');
      const name = `[127.0.0.1]:${sshd.port}`;
      const refusals: Array<[string, Promise<unknown>, string[]]> = [
        ['pinned another ed25519 key', connect(serverOf({ hostKey: ed })), [fingerprintOf(ed), offered]],
        ['pinned an ecdsa key', connect(serverOf({ hostKey: ecdsa })), [fingerprintOf(ecdsa), offered]],
        [
          '@revoked',
          connect(serverOf({ hostKey: sshd.hostKey }), `@revoked * ${sshd.hostKey}\n`),
          [offered, '@revoked'],
        ],
        [
          'hashed entry of another key',
          connect(serverOf({}), hashed(`${name} ${ed}`)),
          [fingerprintOf(ed), offered],
        ],
        [
          'jump host with the wrong key',
          connect(
            serverOf({
              hostKey: sshd.hostKey,
              jump: { host: '127.0.0.1', port: jump.port, user: jump.user, hostKey: ed },
            }),
          ),
          ['via jump', fingerprintOf(ed), fingerprintOf(jump.hostKey)],
        ],
        ['no key known', connect(serverOf({})), [offered, 'no host key is pinned']],
      ];
      for (const [what, attempt, names] of refusals) {
        const error = await attempt.then(
          () => new Error(`${what}: accepted`),
          (e: Error) => e,
        );
        expect([what, error.message]).toEqual([
          what,
          expect.stringContaining('host key verification failed'),
        ]);
        for (const n of names) expect([what, error.message]).toEqual([what, expect.stringContaining(n)]);
      }
      expect(sshd.handshakes() + jump.handshakes()).toBe(logins); // no login happened
      const t = await connect(serverOf({}), hashed(`${name} ${sshd.hostKey}`));
      try {
        expect((await t.exec(new Script('echo in'), { timeoutMs: 10_000 })).stdout).toBe('in\n');
      } finally {
        await t.close();
      }
      return {
        measured: `${refusals.length} refused with both fingerprints, 0 logins; the right hashed entry trusted`,
        cases: refusals.length + 1,
      };
    },
  );
});
