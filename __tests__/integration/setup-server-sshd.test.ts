/**
 * `fleet-deploy setup-server` over real sshd, logging in as root, provisioning a fresh user (removed
 * afterwards with userdel -r) and two tenants (an absolute path and one under the user's home): every
 * step changes the first time and nothing the second; the secrets made on the server are in the .env
 * (0600, the user's) and in no output or log.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  renameSync,
  symlinkSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli';
import { tempRoot } from '../helpers/sshd';
import { haveSshd, makeKeyPair, startOpenSsh, type OpenSsh } from '../../src/testing';

const asRoot = haveSshd && process.getuid?.() === 0;
const describeRoot = asRoot ? describe : describe.skip;

const COMPOSE = 'services:\n  app:\n    image: ${APP_IMAGE}\n    network_mode: host\n';
const TEMPLATE = [
  '# {tenant} on {server}',
  'GATEWAY_TOKEN={{secret:GATEWAY_TOKEN:48}}',
  'DB_PASSWORD={{secret:DB_PASSWORD:32}}',
  'SAME_TOKEN={{secret:GATEWAY_TOKEN:48}}',
  '',
].join('\n');

describeRoot('setup-server over sshd, as root', () => {
  const suffix = `${process.pid % 100000}`;
  const user = `fdsetup${suffix}`;
  const group = `fdengine${suffix}`;
  let root: string;
  let sshd: OpenSsh;
  let home: string;
  let args: string[];

  beforeAll(async () => {
    root = tempRoot('fd-setup-');
    chmodSync(root, 0o755); // the deploy user must reach the tenant directory made below it
    const admin = makeKeyPair(join(root, 'admin_ed25519'), 'admin');
    makeKeyPair(join(root, 'deploy_ed25519'), 'deploy@fleet');
    execFileSync('groupadd', [group]); // the engine's group, as installing the engine makes it
    sshd = await startOpenSsh({
      dir: join(root, 'sshd'),
      user: 'root',
      authorizedKey: admin.publicKey,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    const registry = {
      defaults: { tenant: { images: [{ variable: 'APP_IMAGE', repository: 'registry.test/acme/app' }] } },
      servers: [
        {
          name: 'fresh',
          host: '127.0.0.1',
          port: sshd.port,
          user,
          hostKey: sshd.hostKey,
          region: 'local',
          tenants: [
            { id: 'abs', path: join(root, 'srv', 'abs'), health: { port: 18001 } },
            { id: 'rel', path: 'apps/rel', health: { port: 18002 } },
          ],
        },
      ],
    };
    writeFileSync(join(root, 'registry.json'), JSON.stringify(registry));
    writeFileSync(join(root, 'compose.yml'), COMPOSE);
    writeFileSync(join(root, 'env.template'), TEMPLATE);
    args = [
      'setup-server',
      '-r',
      join(root, 'registry.json'),
      '--admin-key',
      admin.file,
      '--deploy-key-pub',
      join(root, 'deploy_ed25519.pub'),
      '--group',
      group,
      '--compose-source',
      join(root, 'compose.yml'),
      '--env-template',
      join(root, 'env.template'),
      '--systemd',
      '--systemd-dir',
      join(root, 'systemd'),
    ];
  }, 30_000);

  afterAll(() => {
    sshd?.stop();
    try {
      execFileSync('userdel', ['-r', user], { stdio: 'ignore' });
    } catch {
      // not made (the test failed before)
    }
    execFileSync('groupdel', [group], { stdio: 'ignore' });
    rmSync(root, { recursive: true, force: true });
  });

  test('first run makes everything, second run changes nothing; secrets never leave the server', async () => {
    const first = await cli(args);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    home = execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).split(':')[5]!;
    const rows = first.stdout.split('\n').filter((l) => /^(fresh|fresh\/\w+) /.test(l));
    expect(rows.map((l) => l.split(/\s+/).slice(0, 3).join(' '))).toEqual([
      'fresh user changed',
      'fresh password changed',
      'fresh group changed',
      'fresh key changed',
      'fresh/abs directory changed',
      'fresh/abs compose changed',
      'fresh/abs env changed',
      'fresh/abs systemd changed',
      'fresh/rel directory changed',
      'fresh/rel compose changed',
      'fresh/rel env changed',
      'fresh/rel systemd changed',
    ]);
    expect(first.stdout).toContain(`fresh: host key to pin (servers[].hostKey): ${sshd.hostKey}  (SHA256:`);
    expect(first.stdout).toContain('12 steps: 12 changed, 0 unchanged, 0 failed');

    // the user: no password, in the engine's group, the deploy key authorized
    expect(execFileSync('getent', ['shadow', user], { encoding: 'utf8' }).split(':')[1]).toBe('*');
    expect(execFileSync('id', ['-nG', user], { encoding: 'utf8' }).trim().split(' ')).toContain(group);
    expect(readFileSync(join(home, '.ssh/authorized_keys'), 'utf8')).toBe(
      readFileSync(join(root, 'deploy_ed25519.pub'), 'utf8'),
    );
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    const dirs = [join(root, 'srv', 'abs'), join(home, 'apps', 'rel')];
    const envs = dirs.map((d) => readFileSync(join(d, '.env'), 'utf8'));
    for (const [i, d] of dirs.entries()) {
      expect(statSync(d).uid).toBe(uid);
      expect(readFileSync(join(d, 'docker-compose.yml'), 'utf8')).toBe(COMPOSE);
      const env = statSync(join(d, '.env'));
      expect([env.uid, env.mode & 0o777]).toEqual([uid, 0o600]);
      expect(envs[i]).toMatch(
        new RegExp(
          `^# ${i ? 'rel' : 'abs'} on fresh\nGATEWAY_TOKEN=([A-Za-z0-9]{48})\nDB_PASSWORD=[A-Za-z0-9]{32}\nSAME_TOKEN=\\1\n$`,
        ),
      );
    }
    expect(envs[0]).not.toBe(envs[1]); // each tenant its own secrets
    const unit = readFileSync(join(root, 'systemd', 'fleet-abs.service'), 'utf8');
    expect(unit).toContain(`User=${user}\nWorkingDirectory=${dirs[0]}\n`);
    expect(unit).toContain('ExecStart=/usr/bin/env docker compose -f docker-compose.yml up -d');

    const second = await cli(args);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('12 steps, all unchanged: nothing to do');
    expect(second.stdout).not.toMatch(/ changed /);
    expect(second.stdout).toContain('kept: an existing .env is never overwritten');
    expect(dirs.map((d) => readFileSync(join(d, '.env'), 'utf8'))).toEqual(envs);

    // the secrets, read from disk, appear in no output and no server log
    const secrets = envs.flatMap((e) => [...e.matchAll(/=([A-Za-z0-9]{32,})$/gm)].map((m) => m[1]!));
    expect(secrets).toHaveLength(6);
    const seen = [first.stdout, first.stderr, second.stdout, second.stderr, readFileSync(sshd.log, 'utf8')];
    for (const s of secrets) for (const text of seen) expect(text).not.toContain(s);
  }, 60_000);

  test("root follows none of the deploy user's links: authorized_keys, the tenant directory, the compose file", async () => {
    // as the deploy user (after the first run): links to root's files where setup-server writes
    const asUser = (cmd: string) => execFileSync('runuser', ['-u', user, '--', 'sh', '-c', cmd]);
    const victim = join(root, 'victim');
    writeFileSync(victim, 'root only\n', { mode: 0o600 });
    mkdirSync(join(root, 'victimdir'), { mode: 0o755 });
    const absDir = join(root, 'srv', 'abs');
    asUser(`rm -f ~/.ssh/authorized_keys && ln -s ${victim} ~/.ssh/authorized_keys`);
    // (~/apps is the user's, as the first run leaves it: done here by root, the link given to the user)
    renameSync(join(home, 'apps', 'rel'), join(home, 'apps', 'rel.moved'));
    symlinkSync(join(root, 'victimdir'), join(home, 'apps', 'rel'));
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    lchownSync(join(home, 'apps', 'rel'), uid, uid);
    asUser(`ln -sfn ${victim} ${join(absDir, 'docker-compose.yml')}`);

    const r = await cli(args);
    const rows = r.stdout.split('\n').filter((l) => /^(fresh|fresh\/\w+) /.test(l));
    expect(rows.map((l) => l.split(/\s+/).slice(0, 3).join(' '))).toEqual([
      'fresh user unchanged',
      'fresh password unchanged',
      'fresh group unchanged',
      'fresh key failed',
      'fresh/abs directory unchanged',
      'fresh/abs compose changed',
      'fresh/abs env unchanged',
      'fresh/abs systemd unchanged',
      'fresh/rel directory failed',
    ]);
    expect(r.stdout).toMatch(/fresh\/rel +directory +failed .*apps\/rel is not owned by/);
    expect(r.code).toBe(1);
    // root's file and directory: as they were (content, owner, mode)
    const v = statSync(victim);
    expect([readFileSync(victim, 'utf8'), v.uid, v.mode & 0o777]).toEqual(['root only\n', 0, 0o600]);
    const d = statSync(join(root, 'victimdir'));
    expect([d.uid, d.mode & 0o777]).toEqual([0, 0o755]);
    // the compose file's link was replaced by the file, not written through
    expect(lstatSync(join(absDir, 'docker-compose.yml')).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(absDir, 'docker-compose.yml'), 'utf8')).toBe(COMPOSE);
    // back as the first run left it
    rmSync(join(home, 'apps', 'rel'));
    renameSync(join(home, 'apps', 'rel.moved'), join(home, 'apps', 'rel'));
    asUser('rm -f ~/.ssh/authorized_keys');
    rmSync(join(root, 'victimdir'), { recursive: true });
  }, 60_000);

  test('bad input is a configuration error naming the flag, before anything connects', async () => {
    const before = sshd.handshakes();
    writeFileSync(join(root, 'bad.template'), 'TOKEN={{secret:TOKEN:8}}\n');
    const bad = await cli([...args, '--env-template', join(root, 'bad.template')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      '--env-template: {{secret:TOKEN:8}}: the length must be a whole number from 16 to 4096',
    );
    const noKey = await cli(
      args.filter((a, i) => a !== '--deploy-key-pub' && args[i - 1] !== '--deploy-key-pub'),
    );
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('--deploy-key-pub: is required');
    expect(sshd.handshakes()).toBe(before);
  });
});
