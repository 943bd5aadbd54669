/**
 * Files shipped with a release (issue 25) over a real OpenSSH server, as the deploy user, with the real
 * docker-compose 1.29 checking the staged compose files (`config` needs no engine): a first release
 * stages and installs its files; the same files again send hashes only; a release that changes one file
 * sends that one, and its restore puts back the previous files byte for byte; a compose file that does
 * not parse and a planted link are refused before any tenant file changes. The whole deploy with health
 * gates on the real engine is __tests__/e2e/release-files.test.ts.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { TargetFiles } from '../../src/deploy/files';
import { historyLine } from '../../src/deploy/history';
import { targetStatus } from '../../src/fleet/status';
import { strategyFor } from '../../src/deploy/strategies';
import { defaultStepLimits } from '../../src/settings';
import { inspectTenant, parseInspection } from '../../src/remote/status';
import { systemClock, type Transport } from '../../src/ports';
import type { Release } from '../../src/deploy/result';
import { TargetShell } from '../../src/deploy/shell';
import { shipFiles } from '../../src/files/local';
import { parseRegistry, targetsOf, type Target } from '../../src/registry';
import { SshConnector } from '../../src/ssh/transport';
import { handOver, haveSshd } from '../../src/testing';
import { makeClientKey, startSshd, tempRoot, type ClientKey, type TestSshd } from '../helpers/sshd';

const describeSshd = haveSshd && process.getuid?.() === 0 ? describe : describe.skip;

const COMPOSE_V1 = 'services:\n  app:\n    image: ${APP_IMAGE}\n    network_mode: host\n';
const COMPOSE_V2 = `${COMPOSE_V1}  worker:\n    image: \${APP_IMAGE}\n    network_mode: host\n    command: ["sleep", "3600"]\n`;
const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

describeSshd('release files over real sshd', () => {
  let root: string;
  let repo: string;
  let dir: string;
  let outside: string;
  let key: ClientKey;
  let sshd: TestSshd;
  let target: Target;
  let transport: Transport;
  /** What went to the server: script text and stdin, in bytes. */
  const sent = { script: 0, stdin: 0, scripts: [] as string[] };

  beforeAll(async () => {
    root = tempRoot('fd-relfiles-');
    chmodSync(root, 0o711);
    key = makeClientKey(join(root, 'client'));
    sshd = await startSshd('relfiles', root, key, { PATH: '/usr/bin:/bin' });
    handOver(sshd.dir);
    repo = join(root, 'repo');
    mkdirSync(join(repo, 'deploy'), { recursive: true });
    mkdirSync(join(repo, 'policy'));
    writeFileSync(join(repo, 'deploy', 'docker-compose.yml'), COMPOSE_V1);
    writeFileSync(join(repo, 'policy', 'base.rego'), 'package base\n');
    dir = join(root, 'tenant');
    outside = join(root, 'outside');
    mkdirSync(dir);
    mkdirSync(outside);
    // what setup-server --compose-source left: the first compose file, and the tenant's .env
    writeFileSync(join(dir, 'docker-compose.yml'), 'services:\n  app:\n    image: ${APP_IMAGE}\n');
    writeFileSync(join(dir, '.env'), 'APP_IMAGE=registry.test/acme/app:v1\n');
    handOver(dir);
    handOver(outside);
    const registry = parseRegistry(
      JSON.stringify({
        servers: [
          {
            name: 'rf-1',
            host: '127.0.0.1',
            port: sshd.port,
            user: sshd.user,
            hostKey: sshd.hostKey,
            region: 'local',
            tenants: [
              {
                id: 'acme',
                path: dir,
                compose: { command: 'docker-compose', project: 'rf-acme' },
                images: [{ variable: 'APP_IMAGE', repository: 'registry.test/acme/app' }],
                health: { port: 1 },
                files: {
                  ship: [
                    { from: 'deploy/docker-compose.yml', to: 'docker-compose.yml' },
                    { from: 'policy/', to: 'config/policy/' },
                  ],
                },
              },
            ],
          },
        ],
      }),
      'reg.json',
    );
    target = targetsOf(registry)[0]!;
    const real = await new SshConnector({ privateKey: key.privateKey }).connect(target.server);
    transport = new Proxy(real, {
      get: (t, p) =>
        p === 'exec'
          ? (script: { text: string }, o: { stdin?: string }) => {
              sent.script += Buffer.byteLength(script.text);
              sent.stdin += Buffer.byteLength(o?.stdin ?? '');
              sent.scripts.push(script.text);
              return t.exec(script as never, o as never);
            }
          : (t as any)[p],
    });
  }, 60_000);

  afterAll(async () => {
    await transport?.close?.();
    await sshd?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const files = () => {
    const shell = new TargetShell({ transport: async () => transport }, 20_000, systemClock);
    const release = shipFiles([target], { root: repo, env: {} }).releases.get(target.id)!;
    return { release, files: new TargetFiles(target.tenant, release, shell, 20_000) };
  };
  const releases = (): [Release, Release] => [
    { refs: {}, imageIds: [], digests: [] },
    { refs: {}, imageIds: [], digests: [] },
  ];
  const read = (p: string) => readFileSync(join(dir, p), 'utf8');
  const reset = () => Object.assign(sent, { script: 0, stdin: 0, scripts: [] });

  test('first release: staged without changing a tenant file (not parsed: the policy is not in place yet), then installed; the replaced file kept', async () => {
    const { files: f } = files();
    const [current, next] = releases();
    const before = read('docker-compose.yml');
    expect(await f.check(current, next)).toMatch(/^2 of 2 files change, 2 sent \(\d+ bytes\), staged$/);
    expect(read('docker-compose.yml')).toBe(before);
    expect(existsSync(join(dir, 'config'))).toBe(false);
    expect(next.files).toEqual({
      'docker-compose.yml': sha(COMPOSE_V1),
      'config/policy/base.rego': sha('package base\n'),
    });
    expect(current.files).toEqual({ 'docker-compose.yml': sha(before) });
    // the file it replaces is kept in the store: the rollback point
    expect(readFileSync(join(dir, '.fleet', 'files', sha(before)), 'utf8')).toBe(before);
    expect(await f.install()).toBe('2 files in place');
    expect(read('docker-compose.yml')).toBe(COMPOSE_V1);
    expect(read('config/policy/base.rego')).toBe('package base\n');
    expect(statSync(join(dir, 'config/policy/base.rego')).mode & 0o777).toBe(0o644);
    expect(read('.fleet/files/current')).toBe(
      `${sha(COMPOSE_V1)} 644 docker-compose.yml\n${sha('package base\n')} 644 config/policy/base.rego\n`,
    );
    expect(readdirSync(dir).filter((n) => n.startsWith('.fleet-tmp'))).toEqual([]);
  });

  test('the same files again: unchanged, hashes only sent (no file content, no stdin, nothing staged)', async () => {
    reset();
    const { files: f } = files();
    const [current, next] = releases();
    expect(await f.check(current, next)).toBe('2 files unchanged (hashes only sent)');
    expect(f.changed).toBe(false);
    expect(sent.stdin).toBe(0);
    expect(sent.scripts).toHaveLength(1);
    expect(sent.scripts[0]).toContain(sha(COMPOSE_V1));
    expect(sent.scripts[0]).not.toContain('worker');
    console.log(`release files unchanged: ${sent.script} bytes sent for 2 files (one probe)`);
  });

  test('a release adding a service: only its compose file sent; the restore puts the previous files back byte for byte', async () => {
    writeFileSync(join(repo, 'deploy', 'docker-compose.yml'), COMPOSE_V2);
    rmSync(join(repo, 'policy', 'base.rego'));
    writeFileSync(join(repo, 'policy', 'new.rego'), 'package new\n');
    const { files: f } = files();
    const [current, next] = releases();
    reset();
    expect(await f.check(current, next)).toMatch(/^3 of 3 files change, 2 sent \(\d+ bytes\), staged$/);
    // the store keeps this release's files and those it replaces (and the releases kept): the first
    // compose file (setup-server's), kept by the first release, is pruned
    const storeBefore = readdirSync(join(dir, '.fleet', 'files')).filter((n) => n !== 'current');
    expect(await f.install(undefined, [])).toBe(
      '2 files in place, 1 removed, 1 stored files of older releases pruned',
    );
    const store = readdirSync(join(dir, '.fleet', 'files')).filter((n) => n !== 'current');
    expect(storeBefore.filter((n) => !store.includes(n))).toHaveLength(1);
    expect(store.sort()).toEqual(
      [sha(COMPOSE_V1), sha(COMPOSE_V2), sha('package base\n'), sha('package new\n')].sort(),
    );
    expect(read('docker-compose.yml')).toBe(COMPOSE_V2);
    expect(existsSync(join(dir, 'config/policy/base.rego'))).toBe(false);
    expect(read('config/policy/new.rego')).toBe('package new\n');
    await f.restore();
    expect(readFileSync(join(dir, 'docker-compose.yml'))).toEqual(Buffer.from(COMPOSE_V1));
    expect(readFileSync(join(dir, 'config/policy/base.rego'))).toEqual(Buffer.from('package base\n'));
    expect(existsSync(join(dir, 'config/policy/new.rego'))).toBe(false);
    expect(read('.fleet/files/current')).toBe(
      `${sha(COMPOSE_V1)} 644 docker-compose.yml\n${sha('package base\n')} 644 config/policy/base.rego\n`,
    );
  });

  test('status: a file edited on the server since the last release shows as drift; none before the edit', async () => {
    writeFileSync(
      join(dir, '.fleet', 'history.jsonl'),
      `${historyLine({
        time: new Date(0),
        actor: 'jest',
        run: 'r',
        target: target.id,
        outcome: 'deployed',
        previous: { refs: {}, imageIds: [], digests: [] },
        next: { refs: { APP_IMAGE: 'registry.test/acme/app:v1' }, version: 'v1', imageIds: [], digests: [] },
        rollback: false,
      })}\n`,
    );
    handOver(join(dir, '.fleet'));
    const drift = async () => {
      const r = await transport.exec(inspectTenant(target.tenant, strategyFor(target).inspect()), {
        timeoutMs: 20_000,
      });
      expect(r.code).toBe(0);
      return targetStatus(target, 1, parseInspection(r.stdout), strategyFor(target), defaultStepLimits())
        .drift;
    };
    expect(await drift()).toEqual([]);
    const released = readFileSync(join(dir, 'config/policy/base.rego'));
    writeFileSync(join(dir, 'config/policy/base.rego'), 'package base # edited by hand\n');
    try {
      expect(await drift()).toEqual([
        `config/policy/base.rego was edited on the server since the last release (sha256 ${sha('package base # edited by hand\n').slice(0, 12)}, released ${sha(released).slice(0, 12)})`,
      ]);
      // the next deploy's files step says so too (and would replace it)
      const [current, next] = releases();
      expect(await files().files.check(current, next)).toContain(
        '; drift replaced: config/policy/base.rego was edited on the server since the last release',
      );
    } finally {
      writeFileSync(join(dir, 'config/policy/base.rego'), released);
    }
  });

  describe('a compose file shipped into a subdirectory (deploy/compose.yml, naming env_file app.env beside it)', () => {
    let sub: string;
    beforeAll(() => {
      sub = join(root, 'sub-tenant');
      mkdirSync(sub);
      writeFileSync(join(sub, '.env'), 'APP_IMAGE=registry.test/acme/app:v1\n');
      handOver(sub);
      writeFileSync(
        join(repo, 'sub-compose.yml'),
        'services:\n  app:\n    image: ${APP_IMAGE}\n    env_file: app.env\n    network_mode: host\n',
      );
      writeFileSync(join(repo, 'sub-app.env'), 'GREETING=hello\n');
    });
    /** The tenant `sub`, shipping the compose file and, with `envToo`, app.env beside it. */
    const subFiles = (command: string, envToo: boolean) => {
      const ship = [
        { from: 'sub-compose.yml', to: 'deploy/compose.yml' },
        ...(envToo ? [{ from: 'sub-app.env', to: 'deploy/app.env' }] : []),
      ];
      const tenant = {
        id: 'sub',
        path: sub,
        compose: { command, project: 'rf-sub', file: 'deploy/compose.yml' },
        images: [{ variable: 'APP_IMAGE', repository: 'registry.test/acme/app' }],
        health: { port: 1 },
        files: { ship },
      };
      const server = { name: 'rf-1', host: '127.0.0.1', port: sshd.port, user: sshd.user };
      const raw = { servers: [{ ...server, hostKey: sshd.hostKey, region: 'local', tenants: [tenant] }] };
      const t = targetsOf(parseRegistry(JSON.stringify(raw), 'reg.json'))[0]!;
      const shell = new TargetShell({ transport: async () => transport }, 20_000, systemClock);
      const release = shipFiles([t], { root: repo, env: {} }).releases.get(t.id)!;
      return new TargetFiles(t.tenant, release, shell, 20_000);
    };
    const untouched = () => {
      expect(existsSync(join(sub, 'deploy', 'compose.yml'))).toBe(false);
      expect(readFileSync(join(sub, '.env'), 'utf8')).toBe('APP_IMAGE=registry.test/acme/app:v1\n');
    };

    test('shipped with its env_file for the first time: staged, not parsed yet (app.env is not in place before install)', async () => {
      const [current, next] = releases();
      expect(await subFiles('docker-compose', true).check(current, next)).toMatch(
        /^2 of 2 files change, 2 sent \(\d+ bytes\), staged$/,
      );
      expect(sent.scripts.at(-1)).not.toContain(' config');
      untouched();
    });

    test("alone, its env_file already there: parsed from its own directory, with the tenant's .env", async () => {
      mkdirSync(join(sub, 'deploy'));
      writeFileSync(join(sub, 'deploy', 'app.env'), 'GREETING=hello\n');
      handOver(join(sub, 'deploy'));
      const [current, next] = releases();
      expect(await subFiles('docker-compose', false).check(current, next)).toMatch(/staged and checked$/);
      expect(sent.scripts.at(-1)).toContain(
        'docker-compose --project-directory deploy --env-file .env -f .fleet/files/',
      );
      untouched();
    });

    test('podman-compose (no --project-directory): staged, and parsed in place by the switch', async () => {
      const [current, next] = releases();
      expect(await subFiles('podman-compose', false).check(current, next)).toMatch(/, staged$/);
      expect(sent.scripts.at(-1)).not.toContain('project-directory');
      untouched();
    });
  });

  test('a compose file that does not parse: refused at staging, before any tenant file changed; with a file the server lacks, left to the switch', async () => {
    writeFileSync(join(repo, 'deploy', 'docker-compose.yml'), 'services:\n  app:\n    image: [unclosed\n');
    // the policy as the server has it (the last release was restored to v1's): only the compose file changes
    rmSync(join(repo, 'policy', 'new.rego'));
    writeFileSync(join(repo, 'policy', 'base.rego'), 'package base\n');
    const [current, next] = releases();
    await expect(files().files.check(current, next)).rejects.toThrow(
      `the compose files shipped to ${dir} do not parse (docker-compose config failed): nothing was changed`,
    );
    expect(read('docker-compose.yml')).toBe(COMPOSE_V1);
    // a policy file the server does not have yet: the compose file could name it, so staging does not
    // parse it from the tree as it is now (the switch's compose check does, after install)
    writeFileSync(join(repo, 'policy', 'new.rego'), 'package new\n');
    expect(await files().files.check(...releases())).toMatch(/, staged$/);
    expect(read('docker-compose.yml')).toBe(COMPOSE_V1);
    rmSync(join(repo, 'policy', 'base.rego'));
    writeFileSync(join(repo, 'deploy', 'docker-compose.yml'), COMPOSE_V2);
  });

  test('a link planted in the tenant directory on the way to a shipped file: refused, nothing written through it', async () => {
    renameSync(join(dir, 'config'), join(root, 'config.moved'));
    symlinkSync(outside, join(dir, 'config'));
    try {
      const { files: f } = files();
      const [current, next] = releases();
      await expect(f.check(current, next)).rejects.toThrow(
        `refusing to ship files into ${dir}: config is a symbolic link (a release writes no file through a link)`,
      );
      expect(readdirSync(outside)).toEqual([]);
      expect(lstatSync(join(dir, 'config')).isSymbolicLink()).toBe(true);
      // the install alone (no probe first) is refused by its private directory's check too
      await expect(f.install()).rejects.toThrow(
        'a directory on the way to config/policy is a symbolic link: nothing was written through it',
      );
      expect(readdirSync(outside)).toEqual([]);
    } finally {
      rmSync(join(dir, 'config'));
      renameSync(join(root, 'config.moved'), join(dir, 'config'));
    }
  });
});
