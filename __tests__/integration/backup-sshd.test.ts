/**
 * backup, backups and restore over real sshd: an archive with its checksum, the retention removing
 * exactly the expired archives, a damaged tenant restored to identical files and "database", a
 * corrupted archive refused. The database here is a test double (a file behind `cat`); the drill with a
 * real Postgres runs on the real engine (__tests__/e2e/restore-drill.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli';
import { haveSshd, handOver } from '../../src/testing';
import { startFleet, type TestFleet, type TestTenant } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;

const DAY_S = 86_400;

describeSshd('backup, backups, restore over sshd', () => {
  let fleet: TestFleet;
  let keyFile: string;
  const run = (...args: string[]) =>
    cli([...args, '-r', join(fleet.root, 'registry.json'), '--key', keyFile], {}, { USER: 'op' });
  const backupsDir = (t: TestTenant) => join(t.dir, '.fleet', 'backups');
  const archives = (t: TestTenant) =>
    existsSync(backupsDir(t))
      ? readdirSync(backupsDir(t))
          .filter((f) => f.endsWith('.tar.gz'))
          .sort()
      : [];
  /** An archive as an earlier backup left it, `ageDays` old by its modification time. */
  const oldArchive = (t: TestTenant, id: string, ageDays: number) => {
    mkdirSync(backupsDir(t), { recursive: true });
    const file = join(backupsDir(t), `${id}.tar.gz`);
    writeFileSync(file, 'old');
    writeFileSync(`${file}.sha256`, 'x');
    const when = Date.now() / 1000 - ageDays * DAY_S;
    utimesSync(file, when, when);
    handOver(t.dir);
  };

  beforeAll(async () => {
    fleet = await startFleet({
      servers: 1,
      tenantsPerServer: 2,
      startWith: 'v1',
      edit: (r) => {
        const [a, b] = r.servers[0].tenants;
        a.backup = {
          paths: ['config'],
          keepDays: 7,
          dump: { command: 'cat data/db.txt', restore: 'cat > data/db.txt', file: 'db.txt' },
        };
        b.backup = { keepDays: 30, keepCount: 3 };
      },
    });
    keyFile = join(fleet.root, 'key');
    writeFileSync(keyFile, fleet.key.privateKey, { mode: 0o600 });
    const a = fleet.tenants[0]!;
    mkdirSync(join(a.dir, 'config'));
    mkdirSync(join(a.dir, 'data'));
    writeFileSync(join(a.dir, 'config', 'app.toml'), 'answer = 42\n');
    writeFileSync(join(a.dir, 'data', 'db.txt'), 'row 1\nrow 2\n');
    handOver(fleet.root);
  }, 60_000);
  afterAll(async () => fleet?.stop());

  test('backup → damage → restore: files and database identical, what it replaced kept', async () => {
    const a = fleet.tenants[0]!;
    const before = {
      env: fleet.env(a),
      config: readFileSync(join(a.dir, 'config', 'app.toml'), 'utf8'),
      db: readFileSync(join(a.dir, 'data', 'db.txt'), 'utf8'),
    };
    const taken = await run('backup', '-s', `id=${a.server}/${a.id}`, '--format', 'json');
    expect(taken.stderr).toBe('');
    expect(taken.code).toBe(0);
    const id = JSON.parse(taken.stdout)[`${a.server}/${a.id}`].id as string;
    const archive = join(backupsDir(a), `${id}.tar.gz`);
    // a real gzip tar with the files and the dump, and a checksum sha256sum accepts
    const members = execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(members.sort()).toEqual(
      ['.env', '.fleet/dump/db.txt', 'config/', 'config/app.toml', 'docker-compose.yml'].sort(),
    );
    execFileSync('sha256sum', ['-c', '--status', `${id}.tar.gz.sha256`], { cwd: backupsDir(a) });
    expect(existsSync(join(a.dir, '.fleet', 'dump'))).toBe(false);

    const listed = await run('backups', '-s', `id=${a.server}/${a.id}`);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(id);

    writeFileSync(join(a.dir, '.env'), 'APP_IMAGE=broken\n');
    writeFileSync(join(a.dir, 'config', 'app.toml'), 'answer = 0\n');
    writeFileSync(join(a.dir, 'data', 'db.txt'), 'DROP TABLE\n');
    const restored = await run('restore', '--backup', id, '--database', '-s', `id=${a.server}/${a.id}`);
    expect(restored.stdout).toContain(`restored files and database from ${id}`);
    expect(restored.code).toBe(0);
    expect(fleet.env(a)).toBe(before.env);
    expect(readFileSync(join(a.dir, 'config', 'app.toml'), 'utf8')).toBe(before.config);
    expect(readFileSync(join(a.dir, 'data', 'db.txt'), 'utf8')).toBe(before.db);
    expect(existsSync(join(a.dir, '.fleet', 'lock'))).toBe(false);
    // the damaged state was kept: a pre-restore archive holding the broken .env
    const kept = archives(a).find((f) => f.includes('-pre-restore'))!;
    expect(kept).toBeDefined();
    const keptEnv = execFileSync('tar', ['-xzOf', join(backupsDir(a), kept), '.env'], { encoding: 'utf8' });
    expect(keptEnv).toBe('APP_IMAGE=broken\n');
  }, 60_000);

  test('a corrupted archive is refused and nothing changes', async () => {
    const a = fleet.tenants[0]!;
    const id = archives(a)[0]!.replace(/\.tar\.gz$/, '');
    const file = join(backupsDir(a), `${id}.tar.gz`);
    const good = readFileSync(file);
    writeFileSync(file, Buffer.concat([good, Buffer.from('x')]));
    writeFileSync(join(a.dir, '.env'), 'APP_IMAGE=changed\n');
    const r = await run('restore', '--backup', id, '-s', `id=${a.server}/${a.id}`);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('does not match its sha256 checksum');
    expect(fleet.env(a)).toBe('APP_IMAGE=changed\n');
    writeFileSync(file, good);
  }, 30_000);

  test('backup prints the sha256; restore --sha256 refuses an archive changed on the server with its .sha256', async () => {
    const a = fleet.tenants[0]!;
    const atBackup = fleet.env(a);
    const r = await run('backup', '-s', `id=${a.server}/${a.id}`, '--format', 'json');
    expect(r.code).toBe(0);
    const taken = JSON.parse(r.stdout)[`${a.server}/${a.id}`] as { id: string; sha256: string };
    const file = join(backupsDir(a), `${taken.id}.tar.gz`);
    expect(taken.sha256).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));
    // someone who controls the server replaces the archive and the checksum beside it
    const good = readFileSync(file);
    const forged = Buffer.concat([good, Buffer.from('x')]);
    writeFileSync(file, forged);
    writeFileSync(
      `${file}.sha256`,
      `${createHash('sha256').update(forged).digest('hex')}  ${taken.id}.tar.gz\n`,
    );
    writeFileSync(join(a.dir, '.env'), 'APP_IMAGE=other\n');
    const refused = await run(
      'restore',
      '--backup',
      taken.id,
      '--sha256',
      taken.sha256,
      '-s',
      `id=${a.server}/${a.id}`,
    );
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('does not match its sha256 checksum');
    expect(fleet.env(a)).toBe('APP_IMAGE=other\n');
    const bad = await run('restore', '--backup', taken.id, '--sha256', 'xyz', '-s', `id=${a.server}/${a.id}`);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining('--sha256: "xyz" is not a sha256')]);
    writeFileSync(file, good);
    writeFileSync(`${file}.sha256`, `${taken.sha256}  ${taken.id}.tar.gz\n`);
    const restored = await run(
      'restore',
      '--backup',
      taken.id,
      '--sha256',
      taken.sha256,
      '-s',
      `id=${a.server}/${a.id}`,
    );
    expect(restored.code).toBe(0);
    expect(fleet.env(a)).toBe(atBackup);
  }, 60_000);

  test('an archive tar cannot extract whole (a hostile member) changes nothing, .env included', async () => {
    const a = fleet.tenants[0]!;
    const work = join(fleet.root, 'hostile');
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, '.env'), 'APP_IMAGE=evil\n');
    writeFileSync(join(work, 'escape'), 'x\n');
    const id = '2030-01-01T00-00-00-000Z';
    const file = join(backupsDir(a), `${id}.tar.gz`);
    // .env first, then a member whose name climbs out: GNU tar extracts the first and fails on the second
    execFileSync('tar', [
      '-czPf',
      file,
      '-C',
      work,
      '.env',
      '--transform',
      's|^escape$|../escape|',
      'escape',
    ]);
    writeFileSync(
      `${file}.sha256`,
      `${createHash('sha256').update(readFileSync(file)).digest('hex')}  ${id}.tar.gz\n`,
    );
    handOver(backupsDir(a));
    const before = fleet.env(a);
    const r = await run('restore', '--backup', id, '-s', `id=${a.server}/${a.id}`);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('could not be extracted whole');
    expect(fleet.env(a)).toBe(before);
    expect(existsSync(join(a.dir, '..', 'escape'))).toBe(false);
    expect(readdirSync(join(a.dir, '.fleet')).filter((f) => f.startsWith('.fleet-tmp'))).toEqual([]);
    execFileSync('rm', ['-f', file, `${file}.sha256`]);
  }, 60_000);

  test('retention by days removes exactly the expired archives (and only files named as backups)', async () => {
    const a = fleet.tenants[0]!;
    const kept = archives(a);
    oldArchive(a, '2020-01-01T00-00-00-000Z', 10);
    oldArchive(a, '2020-01-02T00-00-00-000Z', 8);
    oldArchive(a, '2020-01-03T00-00-00-000Z', 6);
    writeFileSync(join(backupsDir(a), 'mine.tar.gz'), 'not ours');
    utimesSync(join(backupsDir(a), 'mine.tar.gz'), 1, 1);
    const r = await run('backup', '-s', `id=${a.server}/${a.id}`, '--format', 'json');
    expect(r.code).toBe(0);
    const taken = JSON.parse(r.stdout)[`${a.server}/${a.id}`];
    expect(taken.removed.sort()).toEqual(['2020-01-01T00-00-00-000Z', '2020-01-02T00-00-00-000Z']);
    expect(archives(a)).toEqual(
      [...kept, '2020-01-03T00-00-00-000Z.tar.gz', 'mine.tar.gz', `${taken.id}.tar.gz`].sort(),
    );
    expect(existsSync(join(backupsDir(a), '2020-01-01T00-00-00-000Z.tar.gz.sha256'))).toBe(false);
  }, 30_000);

  test('retention by count keeps the newest N', async () => {
    const b = fleet.tenants[1]!;
    for (const day of ['01', '02', '03', '04']) oldArchive(b, `2030-01-${day}T00-00-00-000Z`, 0);
    const r = await run('backup', '-s', `id=${b.server}/${b.id}`, '--format', 'json');
    expect(r.code).toBe(0);
    const taken = JSON.parse(r.stdout)[`${b.server}/${b.id}`];
    // names sort by time: the one just taken is older than the 2030 ones, so it goes too
    expect(taken.removed.sort()).toEqual([taken.id, '2030-01-01T00-00-00-000Z'].sort());
    expect(archives(b)).toEqual(
      ['2030-01-02', '2030-01-03', '2030-01-04'].map((d) => `${d}T00-00-00-000Z.tar.gz`),
    );
  }, 30_000);

  test('a bad --backup is a configuration error naming the flag', async () => {
    const r = await run('restore', '--backup', '../../etc/passwd');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--backup: "../../etc/passwd" is not a backup ID');
  });
});
