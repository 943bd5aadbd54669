/**
 * Backups of a tenant, on its server: `.fleet/backups/ID.tar.gz` (gzip tar of .env, the compose files,
 * the configured paths and, when configured, a database dump taken through the tenant's containers)
 * beside `ID.tar.gz.sha256`. The ID is the UTC time it was taken, with an optional label
 * (`2024-05-01T12-00-00-000Z`, `…-pre-restore`), so names sort by age. The same `backup` builder serves
 * the deploy's pre-deploy step, `fleet-deploy backup` and the copy a restore keeps of what it replaces.
 */
import type { Backup, Tenant } from '../registry/model';
import { BACKUP_DIR, composeArgv, LOCK_DIR, STATE_DIR } from './commands';
import { envPrefix, named, Script, sh } from './shell';

/** A backup's ID: its time and an optional label. What `restore --backup` accepts. */
export const BACKUP_ID = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z(?:-[a-z]+)*$/;
/** The same, as an extended regular expression for grep on the server (archive names). */
const ARCHIVE_ERE = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{3}Z(-[a-z]+)*[.]tar[.]gz$';

/** Where a dump is staged in the tenant directory while it is archived (and its name in the archive). */
const DUMP_DIR = `${STATE_DIR}/dump`;

/** Exit codes of `restore`, each with its own message. */
export const RESTORE_EXIT = { noBackup: 40, badChecksum: 41, locked: 42, noDump: 43 } as const;

/** A tenant without a `backup` block is backed up by the command with these settings. */
export const DEFAULT_BACKUP: Backup = { paths: [], keepDays: 7 };

export function backupId(time: Date, label?: string): string {
  return `${time.toISOString().replace(/[:.]/g, '-')}${label ? `-${label}` : ''}`;
}

const archiveOf = (id: string) => `${BACKUP_DIR}/${id}.tar.gz`;
const settings = (t: Tenant) => t.backup ?? DEFAULT_BACKUP;

/**
 * The environment of the backup's own commands (`backup.command`, `backup.dump.command` and `.restore`):
 * the tenant's compose files and, when the registry sets it, its project — so that a plain
 * `docker compose exec -T db pg_dump …` run in the tenant directory reaches the same project as the
 * deploy's `compose -f … -p …` (without them Compose would take the project from the directory's name).
 * A command that passes its own `-f` or `-p` still wins.
 */
function composeEnv(t: Tenant): Script {
  return envPrefix({
    COMPOSE_FILE: t.compose.files.join(':'),
    ...(t.compose.project ? { COMPOSE_PROJECT_NAME: t.compose.project } : {}),
  });
}

/**
 * Takes one backup and applies the retention (not while restoring: it could remove the archive restored).
 * Run in the tenant directory. Prints `@@backup ID SIZE` and `@@removed NAME` for each archive the
 * retention removed. The archive is written under a temporary name and renamed once complete, so a failed
 * backup leaves no archive that looks whole. `withDump: false` leaves the database dump out.
 */
function takeBackup(t: Tenant, id: string, applyRetention = true, withDump = true): Script {
  const b = settings(t);
  const files = [...new Set(['.env', ...t.compose.files, ...b.paths])];
  const archive = archiveOf(id);
  const env = composeEnv(t);
  const pre = b.command ? sh`${env} sh -c ${b.command} && ` : sh``;
  const dumpFile = b.dump && withDump ? `${DUMP_DIR}/${b.dump.file}` : undefined;
  const dump =
    b.dump && dumpFile
      ? sh`rm -rf -- ${DUMP_DIR} && mkdir -p "$(dirname -- ${dumpFile})" && { ${env} sh -c ${b.dump.command} > ${dumpFile} || { rm -rf -- ${DUMP_DIR}; echo 'the dump command failed' >&2; exit 1; }; } && `
      : sh``;
  const archived = dumpFile ? [...files, dumpFile] : files;
  return sh`umask 077 && mkdir -p ${BACKUP_DIR} && ${pre}${dump}{ tar -czf ${`${archive}.part`} -- ${archived} || { rm -f -- ${`${archive}.part`}; ${dumpFile ? sh`rm -rf -- ${DUMP_DIR}; ` : sh``}exit 1; }; } && ${dumpFile ? sh`rm -rf -- ${DUMP_DIR} && ` : sh``}mv -f -- ${`${archive}.part`} ${archive} && (cd -- ${BACKUP_DIR} && sha256sum -- ${`${id}.tar.gz`} > ${`${id}.tar.gz.sha256`}) && echo "@@backup ${id} $(stat -c %s -- ${archive})"${applyRetention ? sh` && ${retention(b)}` : sh``}`;
}

/**
 * Removes the archives older than `keepDays` (by modification time, to the minute) and, with
 * `keepCount`, all but the newest N — only files named as this tool names them; each with its checksum.
 */
export function retention(b: Backup): Script {
  const byAge = sh`find . -maxdepth 1 -type f -name '*.tar.gz' -mmin +${b.keepDays * 1440} | sed 's|^[.]/||' | grep -E ${ARCHIVE_ERE}`;
  const byCount = b.keepCount
    ? sh`; ls -1 | grep -E ${ARCHIVE_ERE} | sort -r | tail -n +${b.keepCount + 1}`
    : sh``;
  return sh`(cd -- ${BACKUP_DIR} && { ${byAge}${byCount}; } | sort -u | while IFS= read -r f; do rm -f -- "$f" "$f.sha256" && echo "@@removed $f"; done)`;
}

/**
 * `fleet-deploy backup` and the deploy's pre-deploy backup step. `withDump: false` (the deploy, when none
 * of the tenant's containers runs: a first deploy, a stopped or paused tenant) archives the files without
 * the database dump, which could only fail: the dump runs through the containers.
 */
export function backup(t: Tenant, id: string, withDump = true): Script {
  return named(
    'backup',
    sh`cd -- ${t.path} && { touch -c -- ${LOCK_DIR} 2>/dev/null || :; } && ${takeBackup(t, id, true, withDump)}`,
  );
}

export interface BackupTaken {
  id: string;
  bytes: number;
  removed: string[];
}

export function parseBackupTaken(stdout: string): BackupTaken | undefined {
  let taken: BackupTaken | undefined;
  const removed: string[] = [];
  for (const line of stdout.split('\n')) {
    const b = /^@@backup (\S+) (\d+)$/.exec(line.trim());
    if (b && BACKUP_ID.test(b[1]!)) taken = { id: b[1]!, bytes: Number(b[2]), removed };
    const r = /^@@removed (\S+)\.tar\.gz$/.exec(line.trim());
    if (r && BACKUP_ID.test(r[1]!)) removed.push(r[1]!);
  }
  return taken;
}

/** Lists the tenant's archives: `NAME|BYTES|MTIME|SHA256` a line (the checksum empty when its file is missing). */
export function listBackups(t: Tenant): Script {
  return named(
    'listBackups',
    sh`cd -- ${t.path} && { cd -- ${BACKUP_DIR} 2>/dev/null || exit 0; } && for f in *.tar.gz; do [ -f "$f" ] || continue; printf '%s|%s|%s|%s\n' "$f" "$(stat -c %s -- "$f")" "$(stat -c %Y -- "$f")" "$(cut -c 1-64 -- "$f.sha256" 2>/dev/null)"; done`,
  );
}

export interface BackupEntry {
  id: string;
  bytes: number;
  time: string;
  sha256?: string;
}

/** The archives as listed, newest first; a line that is not one of this tool's archives is dropped. */
export function parseBackups(stdout: string): BackupEntry[] {
  const out: BackupEntry[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(.+)\.tar\.gz\|(\d+)\|(\d+)\|([a-f0-9]{64})?$/.exec(line.trim());
    if (!m || !BACKUP_ID.test(m[1]!)) continue;
    out.push({
      id: m[1]!,
      bytes: Number(m[2]),
      time: new Date(Number(m[3]) * 1000).toISOString(),
      ...(m[4] ? { sha256: m[4] } : {}),
    });
  }
  return out.sort((a, b) => (a.id < b.id ? 1 : -1));
}

export interface RestoreOptions {
  /** The ID of the copy of what the restore replaces (a backup labelled pre-restore). */
  keepAs: string;
  /** Also load the archive's database dump through the configured restore command. */
  database: boolean;
  /** Run `compose up -d` afterwards, so the restored .env and compose files take effect. */
  up: boolean;
  /** Written into the lock while the restore holds it. */
  owner: string;
}

/**
 * Restores archive `id`: under the deploy lock (a deploy or another restore in progress refuses it),
 * checks the archive's sha256, takes a backup of what it is about to replace (`keepAs`; with the database
 * dump only when the database is replaced too: a files-only restore must work while the stack is down,
 * e.g. after a broken .env stopped it), extracts the files over the tenant's, then optionally loads the
 * dump and brings the stack up.
 */
export function restore(t: Tenant, id: string, o: RestoreOptions): Script {
  if (!BACKUP_ID.test(id)) throw new Error(`not a backup ID: ${JSON.stringify(id)}`);
  const b = settings(t);
  const archive = archiveOf(id);
  const lock = sh`mkdir -p ${STATE_DIR} && { mkdir ${LOCK_DIR} 2>/dev/null || { echo 'a deploy or restore holds the lock' >&2; exit ${RESTORE_EXIT.locked}; }; } && trap 'rm -rf -- ${LOCK_DIR}' EXIT && printf '%s\n' ${o.owner} > ${`${LOCK_DIR}/owner`}`;
  const check = sh`{ test -f ${archive} || exit ${RESTORE_EXIT.noBackup}; } && { (cd -- ${BACKUP_DIR} && sha256sum -c --status -- ${`${id}.tar.gz.sha256`}) || exit ${RESTORE_EXIT.badChecksum}; }`;
  const files = sh`tar -xzf ${archive} --exclude=${DUMP_DIR} && echo '@@restored files'`;
  const dumpFile = b.dump ? `${DUMP_DIR}/${b.dump.file}` : '';
  const database =
    o.database && b.dump?.restore
      ? sh` && dump=$(mktemp) && { tar -xzOf ${archive} -- ${dumpFile} > "$dump" 2>/dev/null || { rm -f -- "$dump"; exit ${RESTORE_EXIT.noDump}; }; } && { ${composeEnv(t)} sh -c ${b.dump.restore} < "$dump"; rc=$?; rm -f -- "$dump"; [ $rc -eq 0 ]; } && echo '@@restored database'`
      : sh``;
  const up = o.up ? sh` && ${composeArgv(t)} up -d && echo '@@up'` : sh``;
  return named(
    'restore',
    sh`cd -- ${t.path} && ${lock} && ${check} && ${takeBackup(t, o.keepAs, false, o.database)} && ${files}${database}${up}`,
  );
}
