/** `fleet-deploy backup`, `backups` and `restore`: the tenants' archives on their servers (src/remote/backup.ts). */
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { eachServer, type Settled } from '../fleet/each-server';
import { describe } from '../deploy/shell';
import { ConfigurationError } from '../errors';
import type { Target } from '../registry/model';
import {
  backup,
  backupId,
  BACKUP_ID,
  listBackups,
  parseBackups,
  parseBackupTaken,
  restore,
  RESTORE_EXIT,
  SHA256,
  type BackupEntry,
} from '../remote/backup';
import { plural, table } from '../report/table';
import { jsonText } from '../report/sanitize';
import type { CliIO } from './io';
import { flagOptions, REMOTE_FLAGS } from '../settings';
import { openRemote, remoteFlags, remoteHelp, type Values } from './remote';

const TIMEOUT_MS = 30 * 60_000; // a database dump can take a while

const RESTORE_FLAGS = ['backup', 'sha256', 'database', 'up'] as const;

export const BACKUP_USAGE = `fleet-deploy backup [--select EXPR] [--format table|json] [options]

Takes a backup of each selected tenant on its server: .env, the compose files, the tenant's backup.paths
and, with backup.dump, the output of its dump command (e.g. pg_dump through the container), into
.fleet/backups/ID.tar.gz with ID.tar.gz.sha256 beside it. Then applies the retention (backup.keepDays,
backup.keepCount) and says which archives it removed. The deploy's pre-deploy backup is the same.
Prints each archive's sha256: keep it off the server (the JSON output, the job's artifacts) and give it to
restore --sha256, so a restore can tell an archive someone changed on the server.

Options:
${remoteHelp(['format'])}`;

export const BACKUPS_USAGE = `fleet-deploy backups [--select EXPR] [--format table|json] [options]

Lists each selected tenant's backups, newest first: ID, time, size and sha256.

Options:
${remoteHelp(['format'])}`;

export const RESTORE_USAGE = `fleet-deploy restore --backup ID [--sha256 HEX] --select EXPR [--database] [--up] [options]

Restores a backup of each selected tenant (usually one: --select id=SERVER/TENANT): under the deploy lock,
checks the archive's sha256 (against --sha256 when given, else the .sha256 file beside it on the server),
keeps a copy of what it replaces (a backup labelled pre-restore), extracts the archive into a fresh
directory and only when that worked puts the archived files in place of the tenant's (a damaged or hostile
archive changes nothing), and with --database loads the archived dump through backup.dump.restore. With
--up, runs compose up -d afterwards so the restored files take effect.

Options:
${remoteHelp(RESTORE_FLAGS)}`;

export const BACKUP_OPTIONS = flagOptions(['format', ...REMOTE_FLAGS]);
export const RESTORE_OPTIONS = flagOptions([...RESTORE_FLAGS, ...REMOTE_FLAGS]);

type Results<T> = Map<string, Settled<T>>;

function json<T>(targets: readonly Target[], results: Results<T>): string {
  const out = Object.fromEntries(
    targets.map((t) => {
      const r = results.get(t.id)!;
      return [t.id, r.ok ? r.value : { error: r.error }];
    }),
  );
  return `${jsonText(out, 2)}\n`;
}

const failed = (results: Results<unknown>) => ([...results.values()].some((r) => !r.ok) ? 1 : 0);
const size = (bytes: number) =>
  bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;

export async function runBackup(values: Values, io: CliIO): Promise<number> {
  const { targets, connector, concurrency } = await openRemote(remoteFlags(values), io);
  const id = backupId(new Date());
  const results = await eachServer(
    targets,
    connector,
    async (t, transport) => {
      const r = await transport.exec(backup(t.tenant, id), { timeoutMs: TIMEOUT_MS });
      const taken = r.code === 0 ? parseBackupTaken(r.stdout) : undefined;
      if (!taken) throw new Error(`backup failed: ${describe(r)}`);
      return taken;
    },
    { concurrency },
  );
  if (values.format === 'json') io.stdout(json(targets, results));
  else {
    const rows = targets.map((t) => {
      const r = results.get(t.id)!;
      if (!r.ok) return [t.id, 'failed', '', '', r.error];
      const removed = r.value.removed.length ? `removed ${r.value.removed.join(', ')}` : '';
      return [t.id, r.value.id, size(r.value.bytes), r.value.sha256 ?? '', removed];
    });
    io.stdout(`${table(['TARGET', 'BACKUP', 'SIZE', 'SHA256', 'RETENTION'], rows)}\n`);
  }
  return failed(results);
}

export async function runBackups(values: Values, io: CliIO): Promise<number> {
  const { targets, connector, concurrency } = await openRemote(remoteFlags(values), io);
  const results = await eachServer(
    targets,
    connector,
    async (t, transport) => {
      const r = await transport.exec(listBackups(t.tenant), { timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`cannot list the backups: ${describe(r)}`);
      return parseBackups(r.stdout);
    },
    { concurrency },
  );
  if (values.format === 'json') io.stdout(json(targets, results));
  else {
    const rows: string[][] = [];
    for (const t of targets) {
      const r = results.get(t.id)!;
      if (!r.ok) rows.push([t.id, 'error', '', '', r.error]);
      else if (!r.value.length) rows.push([t.id, '(no backups)', '', '', '']);
      else for (const b of r.value) rows.push(backupRow(t.id, b));
    }
    io.stdout(`${table(['TARGET', 'BACKUP', 'TIME', 'SIZE', 'SHA256'], rows)}\n`);
  }
  return failed(results);
}

function backupRow(id: string, b: BackupEntry): string[] {
  return [id, b.id, b.time, size(b.bytes), b.sha256 ? b.sha256.slice(0, 16) : 'MISSING'];
}

const RESTORE_FAILURES: Record<number, string> = {
  [RESTORE_EXIT.noBackup]: 'no such backup on this target (see fleet-deploy backups)',
  [RESTORE_EXIT.badChecksum]: 'the archive does not match its sha256 checksum: not restored',
  [RESTORE_EXIT.locked]: 'a deploy or another restore holds the lock: not restored',
  [RESTORE_EXIT.noDump]: 'the backup holds no database dump',
  [RESTORE_EXIT.badArchive]:
    'the archive could not be extracted whole, or holds a link or special file where .env or a ' +
    'compose file belongs, or a device or setuid/setgid file: nothing was changed',
  [RESTORE_EXIT.notSwapped]:
    'a path in the archive could not be put in place (a mount point, or a link where a directory on ' +
    'its way belongs): what the restore had replaced was put back, nothing was changed',
  [RESTORE_EXIT.notPutBack]:
    'a path in the archive could not be put in place, and putting back what the restore had replaced ' +
    'failed too: restore the backup it took first',
  [RESTORE_EXIT.notStarted]:
    'the database is not running and compose up -d failed to start the stack: nothing was changed; ' +
    'start it (or restore the files first, without --database, then the database)',
};

function sha256Flag(values: Values): string | undefined {
  const v = values.sha256 as string | undefined;
  if (v === undefined || SHA256.test(v)) return v;
  throw new ConfigurationError([
    {
      path: [],
      source: '--sha256',
      message: `${JSON.stringify(v)} is not a sha256`,
      hint: 'the 64 lowercase hexadecimal digits fleet-deploy backup printed for this archive',
    },
  ]);
}

function backupFlag(values: Values): string {
  const id = values.backup as string | undefined;
  if (id && BACKUP_ID.test(id)) return id;
  throw new ConfigurationError([
    {
      path: [],
      source: '--backup',
      message: id ? `${JSON.stringify(id)} is not a backup ID` : 'which backup? --backup is required',
      hint: 'an ID as fleet-deploy backups lists it, e.g. 2024-05-01T12-00-00-000Z',
    },
  ]);
}

export async function runRestore(values: Values, io: CliIO): Promise<number> {
  const id = backupFlag(values);
  const sha256 = sha256Flag(values);
  const { targets, connector, concurrency } = await openRemote(remoteFlags(values), io);
  const database = Boolean(values.database);
  for (const t of targets)
    if (database && !t.tenant.backup?.dump?.restore)
      throw new ConfigurationError([
        {
          path: [...t.tenant.at, 'backup', 'dump', 'restore'],
          source: '--database',
          message: `${t.id} has no backup.dump.restore command to load a dump with`,
          hint: 'set backup.dump.restore in the registry, or restore without --database',
        },
      ]);
  const keepAs = backupId(new Date(), 'pre-restore');
  const owner = JSON.stringify({
    token: randomBytes(12).toString('hex'),
    run: `restore ${id}`,
    actor: io.env.USER ?? userInfo().username,
    since: new Date().toISOString(),
  });
  const results = await eachServer(
    targets,
    connector,
    async (t, transport) => {
      const script = restore(t.tenant, id, {
        keepAs,
        database,
        up: Boolean(values.up),
        owner,
        ...(sha256 ? { sha256 } : {}),
      });
      const r = await transport.exec(script, { timeoutMs: TIMEOUT_MS });
      if (r.code !== 0) throw new Error(RESTORE_FAILURES[r.code ?? -1] ?? `restore failed: ${describe(r)}`);
      const what = r.stdout.includes('@@restored database') ? 'files and database' : 'files';
      return { what, started: /^@@started$/m.test(r.stdout) };
    },
    { concurrency },
  );
  const startedNote = '; the stack was not running: started it first';
  for (const t of targets) {
    const r = results.get(t.id)!;
    io.stdout(
      r.ok
        ? `${t.id}: restored ${r.value.what} from ${id}; what it replaced is kept as backup ${keepAs}` +
            `${r.value.started ? startedNote : ''}\n`
        : `${t.id}: ${r.error}\n`,
    );
  }
  io.stderr(
    `${plural(targets.length, 'target')}, ${[...results.values()].filter((r) => !r.ok).length} failed\n`,
  );
  return failed(results);
}
