/**
 * Restore's swap (src/remote/backup.ts swapIn), run by a real `sh` in a temp tenant directory: all or
 * nothing. A path whose kind changed since the backup (a directory where the archive has a file) is put
 * in place, not left half-done; when a path cannot be put in place at all, every path already replaced
 * (.env, a directory) is put back and the restore says so. The path that cannot be renamed (as a mount
 * point could not be) is made by an `mv` double on PATH that fails for that one path. Run as root (as CI
 * runs), an archive planted on the server with its .sha256 that holds a setuid root file or a device is
 * refused before anything changes: tar run by root would make them as the archive says.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  renameSync,
  symlinkSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRegistry, targetsOf, type Tenant } from '../src/registry';
import { backup, backupId, restore, RESTORE_EXIT } from '../src/remote/backup';
import type { Script } from '../src/remote/shell';
import { baseRegistry } from './helpers/registry';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

const ID = backupId(new Date('2030-01-01T00:00:00Z'));
const KEEP = backupId(new Date('2030-01-02T00:00:00Z'), 'pre-restore');

/** A tenant directory backed up with `data/` and `conf`, then changed: .env, data/a and conf. */
function backedUp(archivedEnv = 'APP_IMAGE=r/app:v1\n') {
  const root = mkdtempSync(join(tmpdir(), 'fd-restore-'));
  roots.push(root);
  const dir = join(root, 'tenant');
  mkdirSync(join(dir, 'data'), { recursive: true });
  mkdirSync(join(root, 'bin'));
  writeFileSync(join(dir, '.env'), archivedEnv, { mode: 0o600 });
  writeFileSync(join(dir, 'docker-compose.yml'), 'services: {}\n');
  writeFileSync(join(dir, 'data', 'a'), 'archived\n');
  writeFileSync(join(dir, 'conf'), 'archived conf\n');
  mkdirSync(join(dir, 'cfg'));
  writeFileSync(join(dir, 'cfg', 'app.yml'), 'archived app\n');
  const r = baseRegistry();
  Object.assign(r.servers[0].tenants[0], { path: dir, backup: { paths: ['data', 'conf', 'cfg/app.yml'] } });
  const t: Tenant = targetsOf(parseRegistry(JSON.stringify(r), 'r.json'))[0]!.tenant;
  const run = (script: Script, path = '/usr/bin:/bin') =>
    spawnSync('sh', ['-c', script.text], { cwd: dir, encoding: 'utf8', env: { PATH: path } });
  expect(run(backup(t, ID)).status).toBe(0);
  writeFileSync(join(dir, '.env'), 'APP_IMAGE=r/app:v2\n');
  writeFileSync(join(dir, 'data', 'a'), 'current\n');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return { root, dir, t, run, read };
}

const options = { database: false, keepAs: KEEP, up: false, owner: 'test' };

test('a directory where the archive has a file: it is put in place, and so is everything else', () => {
  const w = backedUp();
  rmSync(join(w.dir, 'conf'));
  mkdirSync(join(w.dir, 'conf'));
  writeFileSync(join(w.dir, 'conf', 'x'), 'current\n');
  const r = w.run(restore(w.t, ID, options));
  expect([r.status, r.stderr]).toEqual([0, '']);
  expect([w.read('.env'), w.read('data/a'), w.read('conf')]).toEqual([
    'APP_IMAGE=r/app:v1\n',
    'archived\n',
    'archived conf\n',
  ]);
  expect(readdirSync(join(w.dir, '.fleet')).filter((f) => f.startsWith('.fleet-tmp'))).toEqual([]);
});

test('a path that cannot be put in place: .env and the directory already replaced are put back', () => {
  const w = backedUp();
  // an `mv` double: renaming the extracted conf into place fails, as a mount point's rename would
  writeFileSync(
    join(w.root, 'bin', 'mv'),
    `#!/bin/sh\nfor a; do [ "$a" = x/conf ] && { echo "mv: cannot move 'x/conf': Device or resource busy" >&2; exit 1; }; done\nexec /bin/mv "$@"\n`,
    { mode: 0o755 },
  );
  const r = w.run(restore(w.t, ID, options), `${join(w.root, 'bin')}:/usr/bin:/bin`);
  expect(r.status).toBe(RESTORE_EXIT.notSwapped);
  expect(r.stderr).toContain(`the restore of ${ID} could not put a path in place`);
  expect(r.stderr).toContain('what it had replaced was put back, nothing was changed: conf');
  expect([w.read('.env'), w.read('data/a'), w.read('conf')]).toEqual([
    'APP_IMAGE=r/app:v2\n',
    'current\n',
    'archived conf\n',
  ]);
  expect(readdirSync(join(w.dir, '.fleet')).filter((f) => f.startsWith('.fleet-tmp'))).toEqual([]);
});

const asRootOnly = process.getuid?.() === 0 ? test : test.skip;

asRootOnly.each([
  ['a setuid root file', (p: string) => (copyFileSync('/bin/true', p), execFileSync('chmod', ['4755', p]))],
  ['a device', (p: string) => execFileSync('mknod', ['-m', '666', p, 'c', '1', '3'])],
])(
  'run as root, an archive planted with its .sha256 that holds %s is refused: nothing changes',
  (_, make) => {
    const w = backedUp();
    const staged = join(w.root, 'staged');
    mkdirSync(join(staged, 'data'), { recursive: true });
    writeFileSync(join(staged, '.env'), 'APP_IMAGE=r/app:evil\n');
    writeFileSync(join(staged, 'docker-compose.yml'), 'services: {}\n');
    make(join(staged, 'data', 'planted'));
    const archive = join(w.dir, '.fleet', 'backups', `${ID}.tar.gz`);
    execFileSync('tar', ['-czf', archive, '-C', staged, '.env', 'docker-compose.yml', 'data']);
    const sum = createHash('sha256').update(readFileSync(archive)).digest('hex');
    writeFileSync(`${archive}.sha256`, `${sum}  ${ID}.tar.gz\n`);
    const r = w.run(restore(w.t, ID, options));
    expect(r.status).toBe(RESTORE_EXIT.badArchive);
    expect(r.stderr).toContain('or a device or setuid/setgid file: nothing was changed');
    expect(existsSync(join(w.dir, 'data', 'planted'))).toBe(false);
    expect([w.read('.env'), w.read('data/a')]).toEqual(['APP_IMAGE=r/app:v2\n', 'current\n']);
  },
);

test.each([
  [
    'the archive and its .sha256 are links to',
    (w: { dir: string }, other: string) => {
      const [mine, theirs] = [join(w.dir, '.fleet', 'backups'), join(other, '.fleet', 'backups')];
      for (const f of [`${ID}.tar.gz`, `${ID}.tar.gz.sha256`]) {
        rmSync(join(mine, f));
        symlinkSync(join(theirs, f), join(mine, f));
      }
    },
  ],
  [
    '.fleet/backups is a link to',
    (w: { dir: string }, other: string) => {
      renameSync(join(w.dir, '.fleet', 'backups'), join(w.dir, '.fleet', 'mine'));
      symlinkSync(join(other, '.fleet', 'backups'), join(w.dir, '.fleet', 'backups'));
    },
  ],
])('%s another tenant’s: restore refuses, and reads nothing of it', (_, plant) => {
  const w = backedUp();
  const other = backedUp('OTHER_TENANT_SECRET=s3cret\n');
  plant(w, other.dir);
  const r = w.run(restore(w.t, ID, options));
  expect(r.status).toBe(RESTORE_EXIT.noBackup);
  expect(w.read('.env')).toBe('APP_IMAGE=r/app:v2\n');
});

test('a link where a directory on the way to a path belongs: refused before anything is replaced', () => {
  const w = backedUp();
  const outside = join(w.root, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'app.yml'), 'theirs\n');
  rmSync(join(w.dir, 'cfg'), { recursive: true });
  symlinkSync(outside, join(w.dir, 'cfg'));
  const r = w.run(restore(w.t, ID, options));
  expect(r.status).toBe(RESTORE_EXIT.notSwapped);
  expect(r.stderr).toContain('found a link or a file where a directory on the way to a path belongs');
  expect(r.stderr).toContain('nothing was changed: cfg/app.yml');
  expect(readdirSync(outside)).toEqual(['app.yml']);
  expect(readFileSync(join(outside, 'app.yml'), 'utf8')).toBe('theirs\n');
  expect([w.read('.env'), w.read('data/a')]).toEqual(['APP_IMAGE=r/app:v2\n', 'current\n']);
});
