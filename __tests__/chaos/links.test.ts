/**
 * Planted links, over real sshd: the tenant directory (and its .fleet) is writable by another user
 * (`nobody` here, the attacker), who runs a real inotify watcher (inotifywait from inotify-tools) that
 * races the tool: every name the tool's scripts create there — a temporary file, a private directory —
 * is replaced within milliseconds by a link to the attacker's own directory, and the fixed names older
 * versions wrote through (`.fleet/slots/active.tmp`, `.fleet/backups/ID.tar.gz.part`) are planted as links
 * before every run, and the names the tool renames into place (`active`, `green.env`, `ID.tar.gz` and its
 * `.sha256`) as links to a directory of the attacker's (before `mv -T`: 5, 5 and 11 of 50 runs leaked). The deploy user then runs the scripts that write files (the .env switch of a deploy,
 * the blue-green slot file, live marker and .env, a backup), 50 times each. A leak is any byte of a
 * tool-written file — the .env's secret, an archive, a slot name — reaching the attacker's directory, or a
 * planted link's target changed. 0 leaks of 200 runs; a run the tool refuses (the private directory it
 * made was swapped) counts as safe: nothing was written.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseRegistry, targetsOf, type Tenant } from '../../src/registry';
import * as B from '../../src/remote/blue-green';
import { backup, backupId } from '../../src/remote/backup';
import * as R from '../../src/remote/update';
import { setupServer, setupTenant } from '../../src/remote/setup';
import { sh, type Script } from '../../src/remote/shell';
import { SshConnector } from '../../src/ssh/transport';
import { haveSshd, handOver, makeKeyPair, startOpenSsh, type OpenSsh } from '../../src/testing';
import type { Transport } from '../../src/ports';
import { makeClientKey, startSshd, tempRoot, type ClientKey, type TestSshd } from '../helpers/sshd';
import { scenario } from './lib/record';

const RUNS = 50;
const SECRET = 'TOKEN=planted-link-secret-4f1c9a';
const haveInotify = spawnSync('sh', ['-c', 'command -v inotifywait']).status === 0;
const asRoot = process.getuid?.() === 0;
const describeLinks = haveSshd && haveInotify && asRoot ? describe : describe.skip;

/**
 * The attacker's watcher, run as `nobody`: each new name in the watched directories that the tool
 * could write through is moved away and replaced by a link into $LOOT (a mktemp'd file: removed and
 * linked; a private directory: renamed and linked).
 */
const WATCHER = `inotifywait -m -e create,moved_to --format '%w%f' "$T" "$T/.fleet" "$T/.fleet/slots" "$T/.fleet/backups" |
while IFS= read -r p; do
  n=\${p##*/}
  case $n in
    *.gone|*.old) ;;
    .env.fleet-*|*.fleet-XXXXXX|*.fleet-??????) rm -f "$p" 2>/dev/null && ln -s "$LOOT/$n" "$p" ;;
    .fleet-tmp.*) mv "$p" "$p.gone" 2>/dev/null && ln -s "$LOOT" "$p" ;;
  esac
done`;

describeLinks('planted links, raced by a real inotify watcher', () => {
  let root: string;
  let key: ClientKey;
  let sshd: TestSshd;
  let transport: Transport;
  let watcher: ChildProcess;
  let dir: string;
  let loot: string;
  let lootDir: string;
  let t: Tenant;

  beforeAll(async () => {
    root = tempRoot('fd-chaos-links-');
    key = makeClientKey(root);
    const bin = join(root, 'bin');
    mkdirSync(bin);
    // a compose double: the scripts' compose calls do nothing (the files they write are the subject)
    writeFileSync(join(bin, 'docker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    sshd = await startSshd('links', root, key, { PATH: `${bin}:/usr/bin:/bin` });
    dir = join(root, 'tenant');
    loot = join(root, 'loot');
    mkdirSync(join(dir, '.fleet', 'slots'), { recursive: true });
    mkdirSync(join(dir, '.fleet', 'backups'), { recursive: true });
    mkdirSync(loot);
    lootDir = join(loot, 'dir');
    mkdirSync(lootDir);
    writeFileSync(join(dir, '.env'), `APP_IMAGE=registry.test/acme/app:v1\n${SECRET}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'docker-compose.yml'), 'services: {}\n');
    handOver(dir);
    // the tenant directory and .fleet are writable by others: the attacker is one of them
    for (const d of [dir, join(dir, '.fleet'), join(dir, '.fleet', 'slots'), join(dir, '.fleet', 'backups')])
      chmodSync(d, 0o777);
    spawnSync('chown', ['nobody', loot, lootDir]);
    chmodSync(loot, 0o777);
    chmodSync(lootDir, 0o777);
    chmodSync(root, 0o755);
    const registry = {
      servers: [
        {
          name: 'links',
          host: '127.0.0.1',
          port: sshd.port,
          user: sshd.user,
          hostKey: sshd.hostKey,
          region: 'local',
          tenants: [
            {
              id: 'acme',
              path: dir,
              health: { port: 18999 },
              images: [{ variable: 'APP_IMAGE', repository: 'registry.test/acme/app' }],
            },
          ],
        },
      ],
    };
    const target = targetsOf(parseRegistry(JSON.stringify(registry), 'links.json'))[0]!;
    t = target.tenant;
    transport = await new SshConnector({ privateKey: key.privateKey }).connect(target.server);
    watcher = spawn('runuser', ['-u', 'nobody', '--', 'sh', '-c', WATCHER], {
      env: { ...process.env, T: dir, LOOT: loot },
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      watcher.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('Watches established')) resolve();
      });
      watcher.on('exit', () => reject(new Error(`the watcher stopped: ${err}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (watcher?.pid) process.kill(-watcher.pid, 'SIGTERM');
    await transport?.close();
    await sshd?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /**
   * Plants the fixed names older versions wrote through, each a link to a file of the attacker's, and the
   * names the tool renames into place (the live marker, the slot env file, the archive and its .sha256),
   * each a link to a directory of the attacker's: `mv` without -T would put the file INTO it.
   */
  function plantFixed(id: string): void {
    for (const name of ['.fleet/slots/active.tmp', `.fleet/backups/${id}.tar.gz.part`]) {
      rmSync(join(dir, name), { force: true });
      symlinkSync(join(loot, name.replaceAll('/', '_')), join(dir, name));
    }
    const into = ['.fleet/slots/active', '.fleet/slots/green.env', `.fleet/backups/${id}.tar.gz`];
    for (const name of [...into, `.fleet/backups/${id}.tar.gz.sha256`]) {
      rmSync(join(dir, name), { force: true });
      symlinkSync(lootDir, join(dir, name));
    }
  }

  /** What reached the attacker: any file in the loot directory with content, or anything in lootDir. */
  function leaked(): string[] {
    const files = readdirSync(loot).filter((f) => f !== 'dir' && statSync(join(loot, f)).size > 0);
    const moved = readdirSync(lootDir);
    for (const f of moved) rmSync(join(lootDir, f), { recursive: true, force: true });
    return [...files, ...moved.map((f) => `dir/${f}`)];
  }

  /** The tenant's .env: still its own regular file with its secret (else put back, and counted). */
  function envIntact(): boolean {
    const file = join(dir, '.env');
    const ok = existsSync(file) && lstatSync(file).isFile() && readFileSync(file, 'utf8').includes(SECRET);
    if (!ok) {
      rmSync(file, { force: true });
      writeFileSync(file, `APP_IMAGE=registry.test/acme/app:v1\n${SECRET}\n`, { mode: 0o600 });
      handOver(file);
    }
    return ok;
  }

  async function race(script: (i: number) => Script) {
    let leaks = 0;
    let refused = 0;
    let failed = 0;
    for (let i = 0; i < RUNS; i++) {
      plantFixed(backupId(new Date(Date.UTC(2030, 0, 1, 0, 0, i))));
      const r = await transport.exec(script(i), { timeoutMs: 30_000 });
      const found = leaked();
      for (const f of found) rmSync(join(loot, f), { force: true });
      const intact = envIntact();
      if (found.length || !intact) leaks++;
      else if (r.code !== 0 && /refusing to write|was replaced by a link/.test(r.stderr)) refused++;
      else if (r.code !== 0) failed++;
    }
    return { leaks, refused, failed };
  }

  const ref = (i: number) => `registry.test/acme/app:v${i + 2}`;
  const cases: Array<[string, (i: number) => Script]> = [
    ['the .env switch of a deploy', (i) => R.update(t, { APP_IMAGE: ref(i) })],
    [
      'a blue-green slot file',
      (i) =>
        B.startSlot(t, 'green', 'acme-green', { APP_IMAGE: ref(i) }, { variable: 'APP_PORT', value: 18100 }),
    ],
    [
      'the blue-green live marker and .env',
      (i) => B.recordLive(t, i % 2 ? 'blue' : 'green', { APP_IMAGE: ref(i) }),
    ],
    ['a backup archive', (i) => backup(t, backupId(new Date(Date.UTC(2030, 0, 1, 0, 0, i))))],
  ];

  for (const [name, script] of cases)
    scenario(
      'planted links',
      `${name}: a writer of the tenant directory races it with links (inotify), ${RUNS} runs`,
      'nothing the tool writes reaches a link planted by another user: 0 leaks',
      async () => {
        const { leaks, refused, failed } = await race(script);
        expect({ leaks, failed }).toEqual({ leaks: 0, failed: 0 });
        return {
          measured: `0 of ${RUNS} runs leaked`,
          cases: RUNS,
          detail: `${refused} refused (the private directory was swapped), ${RUNS - refused} wrote safely`,
        };
      },
      180_000,
    );
});

/**
 * `setup-server` runs as root; the attacker is the deploy user itself, with its own real inotify watcher on
 * its ~/.ssh and its tenant directory: every name created there becomes a link to a root-owned file (a
 * private directory: renamed, and a link to a root-owned directory put in its place), and before every
 * run ~/.ssh/authorized_keys is planted as a link to that file (the reproduction of the issue). Each run
 * has something to write: the key, a new compose file, a new .env. A leak is the root-owned file or
 * directory changed in content, owner or mode.
 */
describeLinks('setup-server as root, raced by the deploy user', () => {
  const user = `fdlinks${process.pid % 100000}`;
  const group = `fdlinksg${process.pid % 100000}`;
  let root: string;
  let sshd: OpenSsh;
  let transport: Transport;
  let watcher: ChildProcess;
  let home: string;
  let dir: string;
  let victim: string;
  let victimDir: string;
  let t: Tenant;
  let publicKey: string;

  beforeAll(async () => {
    root = tempRoot('fd-chaos-setup-');
    chmodSync(root, 0o755);
    const admin = makeKeyPair(join(root, 'admin_ed25519'), 'admin');
    publicKey = makeKeyPair(join(root, 'deploy_ed25519'), 'deploy').publicKey.trim();
    spawnSync('groupadd', [group]);
    spawnSync('useradd', ['-m', '-s', '/bin/bash', user]);
    home = spawnSync('getent', ['passwd', user], { encoding: 'utf8' }).stdout.split(':')[5]!;
    sshd = await startOpenSsh({
      dir: join(root, 'sshd'),
      user: 'root',
      authorizedKey: admin.publicKey,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    victim = join(root, 'victim');
    victimDir = join(root, 'victim-dir');
    writeFileSync(victim, 'root only\n', { mode: 0o600 });
    mkdirSync(victimDir, { mode: 0o755 });
    dir = join(home, 'apps', 'acme');
    const registry = {
      servers: [
        {
          name: 'setup',
          host: '127.0.0.1',
          port: sshd.port,
          user: 'root',
          hostKey: sshd.hostKey,
          region: 'local',
          tenants: [
            {
              id: 'acme',
              path: 'apps/acme',
              health: { port: 18998 },
              images: [{ variable: 'APP_IMAGE', repository: 'registry.test/acme/app' }],
            },
          ],
        },
      ],
    };
    const target = targetsOf(parseRegistry(JSON.stringify(registry), 'setup.json'))[0]!;
    t = target.tenant;
    transport = await new SshConnector({ privateKey: admin.privateKey }).connect(target.server);
    // the first run makes the user's places; the race is on the runs after it
    const first = await transport.exec(setupTenant({ user, tenant: t, compose: 'services: {}\n' }), {
      timeoutMs: 30_000,
    });
    expect(first.stdout).toContain('@@step env changed');
    spawnSync('runuser', ['-u', user, '--', 'mkdir', '-p', join(home, '.ssh')]);
    const swap = `inotifywait -m -e create,moved_to --format '%w%f' "$H/.ssh" "$D" |
while IFS= read -r p; do
  case \${p##*/} in
    *.gone) ;;
    .fleet-tmp.*) mv "$p" "$p.gone" 2>/dev/null && ln -s "$VD" "$p" ;;
    *) [ -L "$p" ] || { rm -f "$p" 2>/dev/null && ln -s "$V" "$p"; } ;;
  esac
done`;
    watcher = spawn('runuser', ['-u', user, '--', 'sh', '-c', swap], {
      env: { ...process.env, H: home, D: dir, V: victim, VD: victimDir },
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      watcher.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('Watches established')) resolve();
      });
      watcher.on('exit', () => reject(new Error(`the watcher stopped: ${err}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (watcher?.pid) process.kill(-watcher.pid, 'SIGTERM');
    await transport?.close();
    sshd?.stop();
    spawnSync('userdel', ['-r', user], { stdio: 'ignore' });
    spawnSync('groupdel', [group], { stdio: 'ignore' });
    rmSync(root, { recursive: true, force: true });
  });

  const intact = () => {
    const v = statSync(victim);
    const d = statSync(victimDir);
    return (
      readFileSync(victim, 'utf8') === 'root only\n' &&
      v.uid === 0 &&
      (v.mode & 0o777) === 0o600 &&
      d.uid === 0 &&
      (d.mode & 0o777) === 0o755 &&
      readdirSync(victimDir).length === 0
    );
  };

  scenario(
    'planted links',
    `setup-server as root: the deploy user races it with links (inotify) in its home and tenant directory, ${RUNS} runs`,
    "root never writes, chowns or chmods through the deploy user's links: 0 leaks",
    async () => {
      let leaks = 0;
      for (let i = 0; i < RUNS; i++) {
        // something to write each run: the key (authorized_keys planted as a link), the compose file, .env
        rmSync(join(home, '.ssh', 'authorized_keys'), { force: true });
        symlinkSync(victim, join(home, '.ssh', 'authorized_keys'));
        rmSync(join(dir, '.env'), { force: true });
        const script = sh`${setupServer({ user, group, publicKey })}
${setupTenant({ user, tenant: t, compose: `services: {} # ${i}\n` })}`;
        await transport.exec(script, { timeoutMs: 30_000 });
        if (!intact()) {
          leaks++;
          writeFileSync(victim, 'root only\n', { mode: 0o600 });
          spawnSync('chown', ['root:root', victim, victimDir]);
          chmodSync(victim, 0o600);
          chmodSync(victimDir, 0o755);
          for (const f of readdirSync(victimDir))
            rmSync(join(victimDir, f), { recursive: true, force: true });
        }
      }
      expect(leaks).toBe(0);
      return { measured: `0 of ${RUNS} runs leaked`, cases: RUNS };
    },
    180_000,
  );
});
