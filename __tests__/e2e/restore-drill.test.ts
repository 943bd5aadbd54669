/**
 * The restore drill on the real engine with a real PostgreSQL: a tenant whose Compose stack is the app and
 * a PostgreSQL 15 server (an image built from Debian's binaries by postgres-image.sh, pulled from the
 * stack's registry) is deployed; rows are written; `fleet-deploy backup` dumps the database THROUGH the
 * container (`docker-compose exec -T db pg_dump`, backup.dump); the database and the .env are damaged;
 * `fleet-deploy restore --backup ID --database --up` brings them back. Compared: a pg_dump of the whole
 * database and an ordered query, before and after; the .env byte for byte; and the pre-restore copy holds
 * exactly the damaged state.
 *
 * The tenant's Compose project is set in the registry (`compose.project`), not derived from its directory:
 * the dump and restore commands must reach that project's `db` without repeating `-p` themselves.
 *
 * Needs root and /usr/sbin/sshd like the other e2e tests (skipped otherwise), and postgresql-15 installed
 * (.ci/setup.sh). Everything it starts is removed in afterAll (stack.down()).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cli } from '../helpers/cli';
import { deploy } from '../helpers/deploy';
import { freePort, handOver, TENANT_COMPOSE } from '../../src/testing';
import { parseRegistry } from '../../src/registry';
import { e2eSkipReason, run, stackUp, type Stack } from './stack';

if (e2eSkipReason) console.warn(e2eSkipReason);
const describeE2e = e2eSkipReason ? describe.skip : describe;

const PROJECT = 'drill-shop';
const SELECT = 'id=pg-1/shop';

/** What the app and the database hold at backup time. */
const SCHEMA_AND_ROWS = `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE);
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer int NOT NULL REFERENCES customers(id),
  total numeric(10, 2) NOT NULL,
  note text,
  placed timestamptz NOT NULL
);
INSERT INTO customers (name, email) VALUES
  ('Ada', 'ada@example.test'), ('Bob O''Brien', 'bob@example.test'), ('Zoë ✓', NULL);
INSERT INTO orders (customer, total, note, placed)
SELECT 1 + i % 3, i * 1.25, CASE WHEN i % 4 = 0 THEN NULL ELSE 'line one' || chr(10) || 'tab' || chr(9) || i END,
       timestamptz '2024-05-01 12:00:00+00' + i * interval '1 hour'
FROM generate_series(1, 200) AS i;
CREATE TABLE audit (at timestamptz NOT NULL, what text NOT NULL);
INSERT INTO audit VALUES ('2024-05-01 12:00:00+00', 'created'), ('2024-05-02 08:30:00+00', 'priced');
`;
/**
 * backup.dump as docs/lifecycle.md shows it. The restore drops and creates the database before loading the
 * dump: `pg_dump --clean` alone would leave the tables created since the backup in place. (Here the role
 * `postgres` is the superuser; with the official image POSTGRES_USER is, e.g. `-U app`.)
 */
const DUMP_COMMAND = 'docker-compose exec -T db pg_dump -U app app';
const RESTORE_COMMAND =
  "docker-compose exec -T db sh -c 'dropdb -U postgres --if-exists --force app && createdb -U postgres -O app app && psql -U app -d app -q -1 -v ON_ERROR_STOP=1'";
const ORDERED_QUERY =
  "SELECT o.id, c.name, coalesce(c.email, '-'), o.total, coalesce(o.note, '<null>'), o.placed FROM orders o JOIN customers c ON c.id = o.customer ORDER BY o.id";

describeE2e(
  'e2e restore drill: real Postgres in the tenant stack, backup → damage → restore → compare',
  () => {
    let stack: Stack;
    let pgImage: string;
    let dir: string;
    let appPort: number;
    let registryFile: string;
    let keyFile: string;
    let backupIdTaken: string;
    let deployBackupId: string;
    /** The ordered rows and the .env at backup time. */
    let rowsAtBackup: string;
    let envAtBackup: string;
    const at: Record<string, number> = {};
    const timings: string[] = [];
    const t0 = Date.now();

    const envText = () =>
      `# shop: written by the restore drill\nAPP_IMAGE=${stack.repo}:v1\nAPP_PORT=${appPort}\nPG_IMAGE=${pgImage}\nSHOP_SECRET=s3cr3t-at-backup-time\n`;
    const envNow = () => readFileSync(join(dir, '.env'), 'utf8');
    /** The CLI in-process, each run's wall time noted for the summary line. */
    const fleet = async (...args: string[]) => {
      const start = Date.now();
      const r = await cli([...args, '-r', registryFile, '--key', keyFile], {}, { USER: 'drill' });
      timings.push(`${args[0]} ${Date.now() - start} ms`);
      return r;
    };
    const backupsDir = () => join(dir, '.fleet', 'backups');
    /**
     * Runs a client program in the db container, as root straight through the engine's socket (not through
     * the tool; `docker exec`, not Compose: compose 1.29 costs a second of Python per call).
     */
    const inDb = (args: string[], input = '') => {
      const [db] = stack
        .docker([
          'ps',
          '-q',
          '--filter',
          `label=com.docker.compose.project=${PROJECT}`,
          '--filter',
          'label=com.docker.compose.service=db',
        ])
        .split('\n');
      if (!db) throw new Error(`no db container runs in project ${PROJECT}`);
      return execFileSync('docker', ['exec', '-i', db, ...args], {
        input,
        encoding: 'utf8',
        timeout: 30_000,
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: stack.root, DOCKER_HOST: stack.env.DOCKER_HOST },
      });
    };
    /** Waits (at most 30 s) until the server takes connections. */
    const dbReady = async () => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          inDb(['pg_isready', '-q', '-U', 'app']);
          return;
        } catch (e) {
          if (Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    };
    const sql = (statements: string) =>
      inDb(['psql', '-U', 'app', '-d', 'app', '-q', '-v', 'ON_ERROR_STOP=1'], statements);
    const query = (q: string) => inDb(['psql', '-U', 'app', '-d', 'app', '-At', '-F', '|', '-c', q]);
    /**
     * The whole database as pg_dump prints it (schema, data, sequence values; no timestamps), with the
     * registry's dump command's options: equal dumps, equal databases.
     */
    const dumpNow = () => comparable(inDb(['pg_dump', '-U', 'app', 'app']));
    /** pg_dump 15.14+ wraps its output in `\restrict KEY` / `\unrestrict KEY` with a random key (CVE-2025-8714). */
    const comparable = (dump: string) => dump.replace(/^\\(un)?restrict \S+$/gm, '\\$1restrict <key>');
    const members = (archive: string) =>
      execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    const archived = (archive: string, member: string) =>
      execFileSync('tar', ['-xzOf', archive, member], { encoding: 'utf8' });

    beforeAll(async () => {
      stack = await stackUp('fd-pg-', 200_000);
      at.stack = Date.now() - t0;
      const image = await run(
        'bash',
        [resolve('__tests__/e2e/postgres-image.sh'), stack.env.FLEET_E2E_STATE_DIR!],
        120_000,
      );
      if (image.code !== 0)
        throw new Error(`postgres-image.sh failed (exit ${image.code}):\n${image.stderr}`);
      pgImage = image.stdout.trim();
      at.image = Date.now() - t0;

      dir = join(stack.root, 'tenants', 'shop');
      mkdirSync(dir, { recursive: true });
      appPort = await freePort();
      writeFileSync(
        join(dir, 'docker-compose.yml'),
        TENANT_COMPOSE +
          [
            '  db:',
            '    image: ${PG_IMAGE}',
            '    network_mode: none # unix socket only: clients run in the container',
            '    environment:',
            '      POSTGRES_USER: app',
            '    volumes:',
            '      - pgdata:/var/lib/postgresql/data',
            'volumes:',
            '  pgdata: {}',
            '',
          ].join('\n'),
      );
      writeFileSync(join(dir, '.env'), envText());
      handOver(join(stack.root, 'tenants'));

      const raw = {
        servers: [
          {
            ...stack.server('pg-1'),
            tenants: [
              {
                id: 'shop',
                path: dir,
                compose: { command: 'docker-compose', project: 'drill-{tenant}' },
                images: [{ variable: 'APP_IMAGE', repository: stack.repo }],
                health: { port: appPort, interval: '300ms', timeout: '2s', deadline: '20s', successes: 1 },
                backup: {
                  keepDays: 7,
                  dump: {
                    command: DUMP_COMMAND,
                    restore: RESTORE_COMMAND,
                    file: 'app.sql',
                  },
                },
                minFreeDiskMb: 1,
              },
            ],
          },
        ],
      };
      registryFile = join(stack.root, 'registry.json');
      writeFileSync(registryFile, JSON.stringify(raw, null, 2));
      keyFile = join(stack.root, 'client-key');
      writeFileSync(keyFile, stack.key.privateKey, { mode: 0o600 });
    }, 330_000);

    afterAll(async () => {
      await stack?.down();
      console.info(
        `restore drill: stack up ${at.stack} ms, postgres image ${at.image} ms, drill done ${at.drill} ms (${timings.join(', ')}), total with teardown ${Date.now() - t0} ms`,
      );
    }, 120_000);

    test('deploy: the app and a real PostgreSQL come up; rows are written', async () => {
      const report = await deploy(
        parseRegistry(readFileSync(registryFile, 'utf8'), registryFile),
        stack.key,
        'v1',
      );
      expect(report.targets.map((r) => [r.tenant, r.outcome, r.error])).toEqual([
        ['shop', 'deployed', undefined],
      ]);
      expect(stack.running(PROJECT)).toHaveLength(2);
      // nothing ran before this first deploy, so its pre-deploy backup has the files and no dump (which
      // could only fail: the dump runs through the db container)
      const step = report.targets[0]!.steps.find((s) => s.step === 'backup')!;
      expect(step.detail).toMatch(
        /^backup \S+ \(sha256 [a-f0-9]{64}\) without the database dump \(no container was running\)$/,
      );
      deployBackupId = step.detail!.split(' ')[1]!;
      expect(members(join(backupsDir(), `${deployBackupId}.tar.gz`))).toEqual(['.env', 'docker-compose.yml']);
      await dbReady(); // initdb runs on the container's first start
      sql(SCHEMA_AND_ROWS);
      expect(query('SELECT count(*) FROM orders')).toBe('200\n');
    }, 90_000);

    test('backup → damage the database and the .env → restore --database --up → identical, the damage kept aside', async () => {
      const before = { dump: dumpNow(), rows: query(ORDERED_QUERY), env: envNow() };
      rowsAtBackup = before.rows;
      envAtBackup = before.env;
      expect(before.rows).toMatch(/^200\|Zoë ✓\|-\|250\.00\|<null>\|2024-05-09 20:00:00\+00$/m);
      expect(before.dump).toContain('COPY public.orders');

      const taken = await fleet('backup', '-s', SELECT, '--format', 'json');
      expect(taken.stderr).toBe('');
      expect(taken.code).toBe(0);
      backupIdTaken = JSON.parse(taken.stdout)['pg-1/shop'].id as string;
      const archive = join(backupsDir(), `${backupIdTaken}.tar.gz`);
      expect(members(archive)).toEqual(['.env', '.fleet/dump/app.sql', 'docker-compose.yml']);
      expect(comparable(archived(archive, '.fleet/dump/app.sql'))).toBe(before.dump);

      // the damage: rows gone and changed, a table dropped, one added; the .env rewritten
      sql(`
      DELETE FROM orders WHERE id % 2 = 0;
      UPDATE orders SET total = 0, note = 'tampered' WHERE id < 50;
      UPDATE customers SET email = 'evil@example.test' WHERE id = 1;
      INSERT INTO orders (customer, total, note, placed) VALUES (2, 9999, 'not in the backup', now());
      DROP TABLE audit;
      CREATE TABLE intruder (x int);
      ALTER TABLE customers ADD COLUMN extra text DEFAULT 'x';
    `);
      const damagedEnv = envNow().replace('s3cr3t-at-backup-time', 'leaked-and-rotated') + 'DEBUG=1\n';
      writeFileSync(join(dir, '.env'), damagedEnv);
      const damagedDump = dumpNow();
      expect(damagedDump).not.toBe(before.dump);
      expect(query(ORDERED_QUERY)).not.toBe(before.rows);

      const restored = await fleet('restore', '--backup', backupIdTaken, '--database', '--up', '-s', SELECT);
      expect(restored.stdout).toMatch(
        new RegExp(
          `^pg-1/shop: restored files and database from ${backupIdTaken}; what it replaced is kept as backup (\\S+-pre-restore)\\n$`,
        ),
      );
      expect(restored.code).toBe(0);
      const keptId = /kept as backup (\S+)$/m.exec(restored.stdout)![1]!;

      // the data is what it was at backup time: the same pg_dump, the same ordered rows
      expect(query(ORDERED_QUERY)).toBe(before.rows);
      expect(dumpNow()).toBe(before.dump);
      expect(query("SELECT count(*) FROM pg_tables WHERE tablename = 'intruder'")).toBe('0\n');
      // the .env is back, byte for byte; the stack runs (compose up -d) and no lock is left
      expect(envNow()).toBe(before.env);
      expect(stack.running(PROJECT)).toHaveLength(2);
      expect(
        (await fetch(`http://127.0.0.1:${appPort}/health`, { signal: AbortSignal.timeout(5000) })).status,
      ).toBe(200);
      expect(existsSync(join(dir, '.fleet', 'lock'))).toBe(false);
      expect(existsSync(join(dir, '.fleet', 'dump'))).toBe(false);

      // what the restore replaced is kept: a checksummed archive with the damaged .env and the damaged database
      const kept = join(backupsDir(), `${keptId}.tar.gz`);
      execFileSync('sha256sum', ['-c', '--status', `${keptId}.tar.gz.sha256`], { cwd: backupsDir() });
      expect(archived(kept, '.env')).toBe(damagedEnv);
      expect(comparable(archived(kept, '.fleet/dump/app.sql'))).toBe(damagedDump);
      const listed = await fleet('backups', '-s', SELECT, '--format', 'json');
      expect(listed.code).toBe(0);
      expect(
        (JSON.parse(listed.stdout)['pg-1/shop'] as Array<{ id: string }>).map((b) => b.id).sort(),
      ).toEqual([deployBackupId, backupIdTaken, keptId].sort());
      expect(readdirSync(backupsDir()).sort()).toEqual(
        [deployBackupId, backupIdTaken, keptId]
          .flatMap((id) => [`${id}.tar.gz`, `${id}.tar.gz.sha256`])
          .sort(),
      );
      at.drill = Date.now() - t0;
    }, 120_000);

    test("the next deploy's pre-deploy backup, with the db running, holds the dump through the container", async () => {
      const report = await deploy(
        parseRegistry(readFileSync(registryFile, 'utf8'), registryFile),
        stack.key,
        'v2',
      );
      const r = report.targets[0]!;
      expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
      const detail = r.steps.find((s) => s.step === 'backup')!.detail!;
      expect(detail).toMatch(/^backup \S+ \(sha256 [a-f0-9]{64}\)$/);
      const archive = join(backupsDir(), `${detail.split(' ')[1]}.tar.gz`);
      expect(members(archive)).toEqual(['.env', '.fleet/dump/app.sql', 'docker-compose.yml']);
      expect(comparable(archived(archive, '.fleet/dump/app.sql'))).toBe(dumpNow());
      expect(archived(archive, '.env')).toContain(`APP_IMAGE=${stack.repo}:v1\n`);
      expect(envNow()).toContain(`APP_IMAGE=${stack.repo}:v2\n`);
    }, 90_000);

    test('the stack is down (a broken .env): a files-only restore --up brings it back, the data untouched', async () => {
      stack.docker(['stop', '-t', '5', ...stack.running(PROJECT)]);
      expect(stack.running(PROJECT)).toEqual([]);
      const broken = envNow().replace(/^PG_IMAGE=.*\n/m, '');
      writeFileSync(join(dir, '.env'), broken);

      const restored = await fleet('restore', '--backup', backupIdTaken, '--up', '-s', SELECT);
      expect(restored.stdout).toMatch(
        new RegExp(
          `^pg-1/shop: restored files from ${backupIdTaken}; what it replaced is kept as backup \\S+-pre-restore\\n$`,
        ),
      );
      expect(restored.code).toBe(0);
      expect(envNow()).toBe(envAtBackup);
      expect(stack.running(PROJECT)).toHaveLength(2);
      await dbReady();
      expect(query(ORDERED_QUERY)).toBe(rowsAtBackup); // the volume's data, as the drill restored it
      expect(
        (await fetch(`http://127.0.0.1:${appPort}/health`, { signal: AbortSignal.timeout(5000) })).status,
      ).toBe(200);
      // the copy of what it replaced: the broken .env; no dump (the database was neither running nor replaced)
      const keptId = /kept as backup (\S+)$/m.exec(restored.stdout)![1]!;
      const kept = join(backupsDir(), `${keptId}.tar.gz`);
      expect(members(kept)).toEqual(['.env', 'docker-compose.yml']);
      expect(archived(kept, '.env')).toBe(broken);
      at.drill = Date.now() - t0;
    }, 90_000);

    test('the database is stopped: restore --database starts the stack first, waits for it, and restores', async () => {
      sql('DELETE FROM orders WHERE id > 100;');
      const damagedDump = dumpNow();
      stack.docker(['stop', '-t', '5', ...stack.running(PROJECT)]);
      expect(stack.running(PROJECT)).toEqual([]);

      const restored = await fleet('restore', '--backup', backupIdTaken, '--database', '-s', SELECT);
      expect(restored.stdout).toMatch(
        new RegExp(
          `^pg-1/shop: restored files and database from ${backupIdTaken}; what it replaced is kept as backup (\\S+-pre-restore); the stack was not running: started it first\\n$`,
        ),
      );
      expect(restored.code).toBe(0);
      expect(stack.running(PROJECT)).toHaveLength(2);
      expect(query(ORDERED_QUERY)).toBe(rowsAtBackup);
      // the pre-restore copy holds the database as it was when stopped: dumped once the stack was up
      const keptId = /kept as backup (\S+-pre-restore)/.exec(restored.stdout)![1]!;
      expect(comparable(archived(join(backupsDir(), `${keptId}.tar.gz`), '.fleet/dump/app.sql'))).toBe(
        damagedDump,
      );
      expect(existsSync(join(dir, '.fleet', 'lock'))).toBe(false);
      at.drill = Date.now() - t0;
    }, 90_000);
  },
);
