/**
 * Files written through a private directory (src/remote/private-dir.ts), run by a real `sh` in a temp
 * tenant directory: the directory is checked from inside, so one swapped for a link between `mktemp -d`
 * and `cd` is refused before anything is written; fixed names that older versions wrote through
 * (`.fleet/slots/active.tmp`, `ID.tar.gz.part`), planted as links, are never written through. Where the
 * race must be won every time, a `mktemp` double on PATH makes the swap right after it made the
 * directory (named so; the real race, with a real inotify watcher, is __tests__/chaos/links.test.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRegistry, targetsOf, type Tenant } from '../src/registry';
import { backup, backupId, parseBackupTaken } from '../src/remote/backup';
import { recordLive, startSlot } from '../src/remote/blue-green';
import { inPrivateDir, PRIVATE_DIR_REFUSED } from '../src/remote/private-dir';
import { update } from '../src/remote/update';
import { setupTenant } from '../src/remote/setup';
import { sh, type Script } from '../src/remote/shell';
import { baseRegistry } from './helpers/registry';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function workdir() {
  const root = mkdtempSync(join(tmpdir(), 'fd-private-'));
  roots.push(root);
  const dir = join(root, 'tenant');
  const outside = join(root, 'outside');
  mkdirSync(join(dir, '.fleet', 'slots'), { recursive: true });
  mkdirSync(outside);
  mkdirSync(join(root, 'bin'));
  writeFileSync(join(dir, '.env'), 'APP_IMAGE=r/app:v1\nTOKEN=secret\n', { mode: 0o600 });
  writeFileSync(join(dir, 'docker-compose.yml'), 'services: {}\n');
  const run = (script: Script, path = '/usr/bin:/bin') =>
    spawnSync('sh', ['-c', script.text], { cwd: dir, encoding: 'utf8', env: { PATH: path } });
  return { root, dir, outside, run };
}

function tenant(path: string): Tenant {
  const r = baseRegistry();
  Object.assign(r.servers[0].tenants[0], { path });
  return targetsOf(parseRegistry(JSON.stringify(r), 'r.json'))[0]!.tenant;
}

/** A `mktemp` double: makes the directory with the real mktemp, then swaps it for a link to $1. */
function swappingMktemp(root: string, target: string): string {
  const bin = join(root, 'swap-bin');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'mktemp'),
    `#!/bin/sh\np=$(/usr/bin/mktemp "$@") || exit 1\nmv "$p" "$p.moved" && ln -s '${target}' "$p"\nprintf '%s\\n' "$p"\n`,
    { mode: 0o755 },
  );
  return `${bin}:/usr/bin:/bin`;
}

test('the body runs inside; its exit code is the script’s; the private directory is gone afterwards', () => {
  const w = workdir();
  const ok = w.run(inPrivateDir('.', sh`printf 'x\n' > new && mv -f -- new ../made`));
  expect([ok.status, ok.stderr]).toEqual([0, '']);
  expect(readFileSync(join(w.dir, 'made'), 'utf8')).toBe('x\n');
  const failed = w.run(sh`${inPrivateDir('.fleet/slots', sh`touch a b && exit 7`)}; echo not-reached`);
  expect([failed.status, failed.stdout]).toEqual([7, '']);
  expect(readdirSync(w.dir).filter((f) => f.startsWith('.fleet-tmp')).length).toBe(0);
  expect(readdirSync(join(w.dir, '.fleet', 'slots'))).toEqual([]);
});

test.each([
  ['a directory outside the tenant', (w: ReturnType<typeof workdir>) => w.outside],
  ['another directory inside it', (w: ReturnType<typeof workdir>) => join(w.dir, '.fleet')],
])('a private directory swapped for a link to %s is refused before anything is written', (_, to) => {
  const w = workdir();
  const r = w.run(
    inPrivateDir('.', sh`printf 'TOKEN=secret\n' > new && mv -f -- new ../written`),
    swappingMktemp(w.root, to(w)),
  );
  expect(r.status).toBe(PRIVATE_DIR_REFUSED);
  expect(r.stderr).toContain('refusing to write in .: the private directory it made there was replaced');
  expect(readdirSync(w.outside)).toEqual([]);
  expect(existsSync(join(w.dir, 'written'))).toBe(false);
  expect(existsSync(join(w.dir, '.fleet', 'new'))).toBe(false);
});

test('blue-green: planted active.tmp and active links are never written through', () => {
  const w = workdir();
  const victim = join(w.outside, 'victim');
  writeFileSync(victim, 'theirs\n');
  symlinkSync(victim, join(w.dir, '.fleet', 'slots', 'active.tmp'));
  symlinkSync(victim, join(w.dir, '.fleet', 'slots', 'active'));
  const r = w.run(recordLive(tenant(w.dir), 'green', { APP_IMAGE: 'r/app:v2' }));
  expect([r.status, r.stderr]).toEqual([0, '']);
  expect(readFileSync(victim, 'utf8')).toBe('theirs\n');
  expect(lstatSync(join(w.dir, '.fleet', 'slots', 'active')).isSymbolicLink()).toBe(false);
  expect(readFileSync(join(w.dir, '.fleet', 'slots', 'active'), 'utf8')).toBe('green\n');
  expect(readFileSync(join(w.dir, '.env'), 'utf8')).toBe('APP_IMAGE=r/app:v2\nTOKEN=secret\n');
  expect(lstatSync(join(w.dir, '.env')).mode & 0o777).toBe(0o600);
});

test('backup: a planted .part link is never written through; the sha256 printed is the archive’s', () => {
  const w = workdir();
  const id = backupId(new Date('2030-01-01T00:00:00Z'));
  const victim = join(w.outside, 'victim');
  writeFileSync(victim, 'theirs\n');
  mkdirSync(join(w.dir, '.fleet', 'backups'));
  symlinkSync(victim, join(w.dir, '.fleet', 'backups', `${id}.tar.gz.part`));
  symlinkSync(victim, join(w.dir, '.fleet', 'backups', `${id}.tar.gz.sha256`));
  const r = w.run(backup(tenant(w.dir), id));
  expect([r.status, r.stderr]).toEqual([0, '']);
  expect(readFileSync(victim, 'utf8')).toBe('theirs\n');
  const archive = join(w.dir, '.fleet', 'backups', `${id}.tar.gz`);
  const sum = createHash('sha256').update(readFileSync(archive)).digest('hex');
  expect(parseBackupTaken(r.stdout)?.sha256).toBe(sum);
  expect(readFileSync(`${archive}.sha256`, 'utf8')).toBe(`${sum}  ${id}.tar.gz\n`);
  expect(lstatSync(archive).mode & 0o777).toBe(0o600);
  expect(execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).trim().split('\n').sort()).toEqual([
    '.env',
    'docker-compose.yml',
  ]);
});

test('the .env switch: a temporary name swapped for a link right after it was made leaks nothing', () => {
  const w = workdir();
  writeFileSync(join(w.root, 'bin', 'docker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 }); // a compose double
  const loot = join(w.outside, 'loot');
  const path = swappingMktemp(w.root, loot).replace('/usr/bin', `${join(w.root, 'bin')}:/usr/bin`);
  const r = w.run(update(tenant(w.dir), { APP_IMAGE: 'r/app:v2' }), path);
  expect(r.status).toBe(PRIVATE_DIR_REFUSED);
  expect(readdirSync(w.outside)).toEqual([]);
  expect(readFileSync(join(w.dir, '.env'), 'utf8')).toBe('APP_IMAGE=r/app:v1\nTOKEN=secret\n');
  expect(lstatSync(join(w.dir, '.env')).isFile()).toBe(true);
});

/**
 * A destination name planted as a link to a DIRECTORY: `mv new ../NAME` (and `ln new ../NAME`) would move
 * (link) the file INTO that directory and leave the link; `mv -T` replaces the link itself.
 */
describe('a destination planted as a link to a directory is replaced, never written into', () => {
  test('blue-green: the slot file, the slot env file (a copy of .env) and active', () => {
    const w = workdir();
    writeFileSync(join(w.root, 'bin', 'docker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 }); // a compose double
    symlinkSync(w.outside, join(w.dir, '.fleet', 'slots', 'active'));
    symlinkSync(w.outside, join(w.dir, '.fleet', 'slots', 'green.env'));
    const path = `${join(w.root, 'bin')}:/usr/bin:/bin`;
    const t = tenant(w.dir);
    const started = w.run(
      startSlot(t, 'green', 'p-green', { APP_IMAGE: 'r/app:v2' }, { variable: 'PORT', value: 8081 }),
      path,
    );
    expect([started.status, started.stderr]).toEqual([0, '']);
    const live = w.run(recordLive(t, 'green', { APP_IMAGE: 'r/app:v2' }), path);
    expect([live.status, live.stderr]).toEqual([0, '']);
    expect(readdirSync(w.outside)).toEqual([]);
    expect(readFileSync(join(w.dir, '.fleet', 'slots', 'active'), 'utf8')).toBe('green\n');
    const env = join(w.dir, '.fleet', 'slots', 'green.env');
    expect(lstatSync(env).isFile()).toBe(true);
    expect(readFileSync(env, 'utf8')).toBe('APP_IMAGE=r/app:v2\nTOKEN=secret\nPORT=8081\n');
  });

  test('backup: the archive and its .sha256', () => {
    const w = workdir();
    const id = backupId(new Date('2030-01-01T00:00:00Z'));
    mkdirSync(join(w.dir, '.fleet', 'backups'));
    symlinkSync(w.outside, join(w.dir, '.fleet', 'backups', `${id}.tar.gz`));
    symlinkSync(w.outside, join(w.dir, '.fleet', 'backups', `${id}.tar.gz.sha256`));
    const r = w.run(backup(tenant(w.dir), id));
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(readdirSync(w.outside)).toEqual([]);
    expect(lstatSync(join(w.dir, '.fleet', 'backups', `${id}.tar.gz`)).isFile()).toBe(true);
    expect(lstatSync(join(w.dir, '.fleet', 'backups', `${id}.tar.gz.sha256`)).isFile()).toBe(true);
  });

  test('the .env switch: .env swapped for such a link right before the rename (an mv double plants it)', () => {
    const w = workdir();
    writeFileSync(join(w.root, 'bin', 'docker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 }); // a compose double
    const done = join(w.root, 'planted');
    // an `mv` double: the first time it is asked to rename onto ../.env, it first swaps .env for the link
    writeFileSync(
      join(w.root, 'bin', 'mv'),
      `#!/bin/sh\nfor last; do :; done\nif [ "$last" = ../.env ] && [ ! -e '${done}' ]; then : > '${done}'; rm -f ../.env && ln -s '${w.outside}' ../.env; fi\nexec /bin/mv "$@"\n`,
      { mode: 0o755 },
    );
    const r = w.run(update(tenant(w.dir), { APP_IMAGE: 'r/app:v2' }), `${join(w.root, 'bin')}:/usr/bin:/bin`);
    expect(existsSync(done)).toBe(true);
    expect(readdirSync(w.outside)).toEqual([]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(lstatSync(join(w.dir, '.env')).isFile()).toBe(true);
    expect(readFileSync(join(w.dir, '.env'), 'utf8')).toBe('APP_IMAGE=r/app:v2\nTOKEN=secret\n');
  });

  test('setup-server (as root, for the deploy user root here): the compose file', () => {
    const w = workdir();
    const compose = join(w.dir, 'docker-compose.yml');
    rmSync(compose);
    symlinkSync(w.outside, compose);
    const script = setupTenant({ user: 'root', tenant: tenant(w.dir), compose: 'services: {}\n' });
    const r = spawnSync('sh', ['-c', script.text], {
      cwd: w.dir,
      encoding: 'utf8',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    expect(r.stdout).toContain('@@step compose changed');
    expect(readdirSync(w.outside)).toEqual([]);
    expect(lstatSync(compose).isFile()).toBe(true);
    expect(readFileSync(compose, 'utf8')).toBe('services: {}\n');
  });
});
