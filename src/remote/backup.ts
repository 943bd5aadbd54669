/**
 * Backups of a tenant, on its server: `.fleet/backups/ID.tar.gz` (gzip tar of .env, the compose files,
 * the configured paths and, when configured, a database dump taken through the tenant's containers)
 * beside `ID.tar.gz.sha256`. The ID is the UTC time it was taken, with an optional label
 * (`2024-05-01T12-00-00-000Z`, `…-pre-restore`), so names sort by age. The same `backup` builder serves
 * the deploy's pre-deploy step, `fleet-deploy backup` and the copy a restore keeps of what it replaces.
 */
import type { Backup, Tenant } from '../registry/model';
import { composeArgv, composeDirectory, deriveProject, PROJECT_VAR } from './compose';
import { containersOf } from './containers';
import { inPrivateDir, tenantFromPrivate } from './private-dir';
import { envPrefix, named, Script, sh } from './shell';
import { BACKUP_DIR, enter, LOCK_DIR, STATE_DIR, touchLock } from './tenant-dir';

/** A backup's ID: its time and an optional label. What `restore --backup` accepts. */
export const BACKUP_ID = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z(?:-[a-z]+)*$/;
/** The same, as an extended regular expression for grep on the server (archive names). */
const ARCHIVE_ERE = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{3}Z(-[a-z]+)*[.]tar[.]gz$';

/** Where a dump is staged in the tenant directory while it is archived (and its name in the archive). */
const DUMP_DIR = `${STATE_DIR}/dump`;

/** Exit codes of `restore`, each with its own message. */
export const RESTORE_EXIT = {
  noBackup: 40,
  badChecksum: 41,
  locked: 42,
  noDump: 43,
  badArchive: 44,
  notSwapped: 45,
  notPutBack: 46,
  notStarted: 47,
} as const;

/** How long (seconds, one dump attempt a second) a restore waits for a database it started to take the dump. */
export const DUMP_WAIT_S = 30;

/** A sha256 as `backup` prints it and `restore --sha256` takes it. */
export const SHA256 = /^[a-f0-9]{64}$/;

/** A tenant without a `backup` block is backed up by the command with these settings. */
export const DEFAULT_BACKUP: Backup = { paths: [], keepDays: 7 };

export function backupId(time: Date, label?: string): string {
  return `${time.toISOString().replace(/[:.]/g, '-')}${label ? `-${label}` : ''}`;
}

const settings = (t: Tenant) => t.backup ?? DEFAULT_BACKUP;

/**
 * The environment of the backup's own commands (`backup.command`, `backup.dump.command` and `.restore`):
 * the tenant's compose files and, when the registry sets it, its project — so that a plain
 * `docker compose exec -T db pg_dump …` run in the tenant directory reaches the same project as the
 * deploy's `compose -f … -p …` (without them Compose would take the project from the directory's name).
 * When the first file sits in a subdirectory, Compose there would read that directory's `.env`, not the
 * tenant's that the deploy gives it (`tenantEnvFile`): the project is then the one derived on the server as
 * the deploy's Compose derives it. A command that passes its own `-f` or `-p` still wins.
 */
function composeEnv(t: Tenant): Script {
  const files = envPrefix({ COMPOSE_FILE: t.compose.files.join(':') });
  if (t.compose.project) return sh`${files} ${envPrefix({ COMPOSE_PROJECT_NAME: t.compose.project })}`;
  if (composeDirectory(t) === '.') return files;
  const derived = sh`"$({ ${deriveProject(t)}; } | sed -n 's/^@@project //p')"`;
  return sh`${files} COMPOSE_PROJECT_NAME=${derived}`;
}

/**
 * Takes one backup and applies the retention (not while restoring: it could remove the archive restored).
 * Run in the tenant directory. Prints `@@backup ID SIZE SHA256` and `@@removed NAME` for each archive the
 * retention removed. The dump and the archive are made in a private directory in BACKUP_DIR (see
 * private-dir.ts: no fixed name there can be turned into a link by anyone else), then renamed into place
 * once complete, so a failed backup leaves no archive that looks whole and nothing is written through a
 * link. `withDump: false` leaves the database dump out. `waitForDump`: the dump is tried up to `$dump_tries`
 * times a second apart (a restore that has just started the database, which takes a moment to accept
 * connections); the script sets that variable.
 */
function takeBackup(
  t: Tenant,
  id: string,
  applyRetention = true,
  withDump = true,
  waitForDump = false,
): Script {
  const b = settings(t);
  const files = [...new Set(['.env', ...t.compose.files, ...b.paths])];
  const env = composeEnv(t);
  const top = tenantFromPrivate(BACKUP_DIR);
  const pre = b.command ? sh`${env} sh -c ${b.command} && ` : sh``;
  // the dump is staged as DUMP_DIR/FILE inside the private directory: the same name in the archive
  const dumpFile = b.dump && withDump ? `${DUMP_DIR}/${b.dump.file}` : undefined;
  const failed = sh`{ echo 'the dump command failed' >&2; exit 1; }`;
  let dump = sh``;
  if (b.dump && dumpFile) {
    const once = sh`(cd -- ${top} && ${env} sh -c ${b.dump.command}) > ${dumpFile}`;
    const attempts = waitForDump
      ? sh`n=1 && until ${once}; do [ "$n" -lt "$dump_tries" ] || ${failed}; n=$((n + 1)) && sleep 1; done`
      : sh`{ ${once} || ${failed}; }`;
    dump = sh`mkdir -p "$(dirname -- ${dumpFile})" && ${attempts} && `;
  }
  const archive = sh`tar -czf part ${dumpFile ? sh`${dumpFile} ` : sh``}-C ${top} -- ${files}`;
  const name = `${id}.tar.gz`;
  // the checksum file written beside the archive; both renamed into place only once complete
  const sums = sh`sum=$(sha256sum < part | cut -c 1-64) && bytes=$(stat -c %s part) && printf '%s  %s\n' "$sum" ${name} > sum`;
  const place = sh`${sums} && mv -fT -- part ${`../${name}`} && mv -fT -- sum ${`../${name}.sha256`} && echo "@@backup ${id} $bytes $sum"`;
  const made = inPrivateDir(BACKUP_DIR, sh`${dump}${archive} && ${place}`);
  const retain = applyRetention ? sh` && ${retention(b)}` : sh``;
  return sh`umask 077 && mkdir -p ${BACKUP_DIR} && ${pre}${made}${retain}`;
}

/**
 * Removes the archives older than `keepDays` (by modification time, to the minute) and, with
 * `keepCount`, all but the newest N — only files named as this tool names them; each with its checksum.
 */
export function retention(b: Backup): Script {
  const olderThan = sh`-mmin +${b.keepDays * 1440}`;
  const byAge = sh`find . -maxdepth 1 -type f -name '*.tar.gz' ${olderThan} | sed 's|^[.]/||' | grep -E ${ARCHIVE_ERE}`;
  const byCount = b.keepCount
    ? sh`; ls -1 | grep -E ${ARCHIVE_ERE} | sort -r | tail -n +${b.keepCount + 1}`
    : sh``;
  const remove = sh`while IFS= read -r f; do rm -f -- "$f" "$f.sha256" && echo "@@removed $f"; done`;
  return sh`(cd -- ${BACKUP_DIR} && { ${byAge}${byCount}; } | sort -u | ${remove})`;
}

/**
 * `fleet-deploy backup` and the deploy's pre-deploy backup step. `withDump: false` (the deploy, when none
 * of the tenant's containers runs: a first deploy, a stopped or paused tenant) archives the files without
 * the database dump, which could only fail: the dump runs through the containers.
 */
export function backup(t: Tenant, id: string, withDump = true): Script {
  return named('backup', sh`${enter(t)} && ${touchLock} && ${takeBackup(t, id, true, withDump)}`);
}

export interface BackupTaken {
  id: string;
  bytes: number;
  /** The archive's sha256, as the server computed it when it made the archive: keep it off the server. */
  sha256?: string;
  removed: string[];
}

export function parseBackupTaken(stdout: string): BackupTaken | undefined {
  let taken: BackupTaken | undefined;
  const removed: string[] = [];
  for (const line of stdout.split('\n')) {
    const b = /^@@backup (\S+) (\d+)(?: ([a-f0-9]{64}))?$/.exec(line.trim());
    if (b && BACKUP_ID.test(b[1]!))
      taken = { id: b[1]!, bytes: Number(b[2]), ...(b[3] ? { sha256: b[3] } : {}), removed };
    const r = /^@@removed (\S+)\.tar\.gz$/.exec(line.trim());
    if (r && BACKUP_ID.test(r[1]!)) removed.push(r[1]!);
  }
  return taken;
}

/** Lists the tenant's archives: `NAME|BYTES|MTIME|SHA256` a line (the checksum empty when its file is missing). */
export function listBackups(t: Tenant): Script {
  const stats = sh`"$(stat -c %s -- "$f")" "$(stat -c %Y -- "$f")" "$(cut -c 1-64 -- "$f.sha256" 2>/dev/null)"`;
  const each = sh`for f in *.tar.gz; do [ -f "$f" ] || continue; printf '%s|%s|%s|%s\n' "$f" ${stats}; done`;
  return named('listBackups', sh`${enter(t)} && { cd -- ${BACKUP_DIR} 2>/dev/null || exit 0; } && ${each}`);
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
  /** The archive's sha256 as recorded off the server when it was made: checked instead of the server's. */
  sha256?: string;
}

/**
 * Restore's swap, in the private directory: puts each archived path extracted in `x` in place at
 * `top`/PATH, all or nothing. What is there is kept in `old` first: a hard link to it when a file or
 * link replaces a file or link (the rename over it is atomic), else (a directory on either side, or a
 * file that cannot be hard-linked) it is moved there. When any path cannot be put in place (a directory
 * where a file was, a mount point, a name changed meanwhile), every path already replaced is put back
 * as it was, and the restore stops with notSwapped, naming the path: nothing was changed.
 */
function swapIn(id: string, top: string, files: readonly string[], keepAs: string): Script {
  const exists = (p: string) => new Script(`{ [ -e ${p} ] || [ -L ${p} ]; }`);
  const isDir = (p: string) => new Script(`{ [ -d ${p} ] && [ ! -L ${p} ]; }`);
  const [x, t, o] = ['"x/$f"', '"$t"', 'old/"$f"'].map((p) => new Script(p)) as [Script, Script, Script];
  // what is there kept in `old`: hard-linked when it can be, else moved
  const cannotLink = sh`${isDir(x.text)} || ${isDir(t.text)} || ! ln -P -- ${t} ${o} 2>/dev/null`;
  const aside = sh`if ${exists(t.text)}; then if ${cannotLink}; then mv -T -- ${t} ${o} || break; fi; fi`;
  const dirs = sh`d=$(dirname -- "$f") && mkdir -p -- ${top}/"$d" old/"$d" || break`;
  const placeOne = sh`cur=$f; t=${top}/"$f"; ${dirs}; ${aside}; mv -fT -- ${x} ${t} || break; cur=; placed="$f $placed"`;
  const place = sh`for f in ${files}; do ${exists(x.text)} || continue; ${placeOne}; done`;
  // undone: the path that failed, then each one placed, put back as it was
  const current = sh`f=$cur; t=${top}/"$f"; if ! ${exists(t.text)} && ${exists(o.text)}; then mv -T -- ${o} ${t} || back=; fi`;
  const moveOut = sh`if ${isDir(t.text)} || ${isDir(o.text)} || ! ${exists(o.text)}; then mv -T -- ${t} ${x} || back=; fi`;
  const moveBack = sh`if ${exists(o.text)}; then mv -fT -- ${o} ${t} || back=; fi`;
  const putBack = sh`for f in $placed; do t=${top}/"$f"; ${moveOut}; ${moveBack}; done`;
  const { undone, stuck } = swapFailures(id, keepAs);
  const tell = sh`if [ -n "$back" ]; then printf '%s %s\n' ${undone} "$bad" >&2; else printf '%s %s\n' ${stuck} "$bad" >&2; fi`;
  const exit = sh`[ -n "$back" ] && exit ${RESTORE_EXIT.notSwapped}; exit ${RESTORE_EXIT.notPutBack}`;
  const undo = sh`back=yes; bad=$cur; ${current}; ${putBack}; ${tell}; ${exit}`;
  // one brace group: it follows `&&` in the restore, so nothing in it runs when a step before it failed
  return sh`{ ${linksOnTheWay(id, top, files)}; placed=; cur=; ${place}; if [ -n "$cur" ]; then ${undo}; fi; echo '@@restored files'; }`;
}

/** What a swap that failed says: all put back (`undone`), or not even that (`stuck`). */
function swapFailures(id: string, keepAs: string): { undone: string; stuck: string } {
  return {
    undone:
      `the restore of ${id} could not put a path in place (a directory where the archive has a file, a mount point, ` +
      'or a name changed meanwhile): what it had replaced was put back, nothing was changed:',
    stuck:
      `the restore of ${id} could not put a path in place, and putting back what it had replaced failed too: ` +
      `the files as they were before the restore are in backup ${keepAs}:`,
  };
}

/** A link (or a file) where a directory on the way to a path belongs: refused before anything is replaced. */
function linksOnTheWay(id: string, top: string, files: readonly string[]): Script {
  const onWay =
    `the restore of ${id} found a link or a file where a directory on the way to a path belongs ` +
    '(it does not write through links): nothing was changed:';
  const parent = new Script('[ "${q%/*}" != "$q" ]; do q=${q%/*}');
  const refuse = sh`printf '%s %s\n' ${onWay} "$f" >&2; exit ${RESTORE_EXIT.notSwapped}`;
  const check = sh`t=${top}/"$q"; if [ -L "$t" ] || { [ -e "$t" ] && [ ! -d "$t" ]; }; then ${refuse}; fi`;
  return sh`for f in ${files}; do q=$f; while ${parent}; ${check}; done; done`;
}

/**
 * Restores archive `id`: under the deploy lock (a deploy or another restore in progress refuses it), in a
 * private directory in STATE_DIR (private-dir.ts). The archive is copied there and checked against
 * `sha256` when given (the checksum kept off the server when the backup was made), else against the
 * `.sha256` beside it; then a backup of what the restore replaces is taken (`keepAs`; with the database
 * dump only when the database is replaced too: a files-only restore must work while the stack is down,
 * e.g. after a broken .env stopped it). The copy is extracted into a fresh directory: when tar fails (a
 * hostile or damaged member) or .env or a compose file is not a regular file, nothing was changed. Only
 * then is each archived path put in place, all or nothing (swapIn: when one cannot be, those already
 * replaced are put back). Then,
 * optionally, the dump is loaded and the stack brought up.
 *
 * A database restore needs the database running twice: for the pre-restore dump and to load the archived
 * one. When none of the project's containers runs, the stack is started first (`compose up -d`, as `--up`
 * would; prints `@@started`) and the dump retried for up to DUMP_WAIT_S seconds while the database comes
 * up. The dump command names its own service, so the whole stack is started, not a guessed one. When
 * `up -d` fails (e.g. the .env is what is broken), nothing is changed: RESTORE_EXIT.notStarted.
 */
export function restore(t: Tenant, id: string, o: RestoreOptions): Script {
  if (!BACKUP_ID.test(id)) throw new Error(`not a backup ID: ${JSON.stringify(id)}`);
  if (o.sha256 !== undefined && !SHA256.test(o.sha256))
    throw new Error(`not a sha256: ${JSON.stringify(o.sha256)}`);
  const b = settings(t);
  const top = tenantFromPrivate(STATE_DIR);
  const files = [...new Set(['.env', ...t.compose.files, ...b.paths])];
  const swap = swapIn(id, top, files, o.keepAs);
  const database =
    o.database && b.dump?.restore
      ? sh` && ${loadDump(t, `${DUMP_DIR}/${b.dump.file}`, b.dump.restore)}`
      : sh``;
  const keep = sh`(cd -- ${top} && ${takeBackup(t, o.keepAs, false, o.database, o.database)})`;
  const up = o.up ? sh` && ${composeArgv(t)} up -d && echo '@@up'` : sh``;
  const start = o.database && b.dump ? sh`${startDatabase(t)} && ` : sh``;
  // in order, in the private directory: copy and check, keep what is replaced, extract, swap, load
  const steps = sh`${fetchArchive(id, o.sha256)} && ${keep} && ${extractArchive(t, id)} && ${swap}${database}`;
  return named(
    'restore',
    sh`cd -- ${t.path} && ${restoreLock(o.owner)} && ${start}${inPrivateDir(STATE_DIR, steps)}${up}`,
  );
}

/** The deploy lock taken for the restore (held: RESTORE_EXIT.locked), removed when the script ends. */
function restoreLock(owner: string): Script {
  const held = sh`{ echo 'a deploy or restore holds the lock' >&2; exit ${RESTORE_EXIT.locked}; }`;
  const take = sh`mkdir -p ${STATE_DIR} && { mkdir ${LOCK_DIR} 2>/dev/null || ${held}; }`;
  return sh`${take} && trap 'rm -rf -- ${LOCK_DIR}' EXIT && printf '%s\n' ${owner} > ${`${LOCK_DIR}/owner`}`;
}

/**
 * The archive copied into the private directory as `a` and checked against `sha256` when given, else
 * against the `.sha256` beside it (RESTORE_EXIT.noBackup, .badChecksum).
 */
function fetchArchive(id: string, sha256: string | undefined): Script {
  const backups = `../${BACKUP_DIR.slice(STATE_DIR.length + 1)}`;
  // read from BACKUP_DIR itself (entered with cd -P and found to be a directory of this .fleet, not a link
  // to another tenant's) and never through a link there (dd iflag=nofollow): root reads any file
  const inBackups = (file: string, then: Script) =>
    sh`(cd -P -- ${backups} && [ "$(stat -c %d:%i ..)" = "$fleet" ] && [ -f ${file} ] && ${then})`;
  const read = (file: string) => sh`dd if=${file} iflag=nofollow status=none`;
  const archive = `${id}.tar.gz`;
  const want =
    sha256 ??
    sh`"$( ${inBackups(`${archive}.sha256`, read(`${archive}.sha256`))} 2>/dev/null | cut -c 1-64)"`;
  const copied = sh`{ ${inBackups(archive, read(archive))} > a || exit ${RESTORE_EXIT.noBackup}; }`;
  const matches = sh`[ -n "$want" ] && [ "$(sha256sum < a | cut -c 1-64)" = "$want" ]`;
  return sh`fleet=$(stat -c %d:%i ..) && ${copied} && want=${want} && { ${matches} || exit ${RESTORE_EXIT.badChecksum}; }`;
}

/**
 * The archive extracted into a fresh `x` (and `old` made for the swap): refused (RESTORE_EXIT.badArchive)
 * when tar fails, or .env or a compose file is not a regular file, or it holds a device or setuid file.
 */
function extractArchive(t: Tenant, id: string): Script {
  const regular = ['.env', ...t.compose.files];
  const bad =
    `the archive ${id} could not be extracted whole, or holds a link or special file where .env or a compose file belongs, ` +
    'or a device or setuid/setgid file: nothing was changed';
  // tar run by root makes the devices and keeps the owners and setuid/setgid bits an archive names: refused
  const special = sh`[ -z "$(find x \( -type b -o -type c -o \( ! -type d \( -perm -4000 -o -perm -2000 \) \) \) -print | head -n 1)" ]`;
  const whole = sh`mkdir x old && tar -xzf a -C x --exclude=${DUMP_DIR} && ${special} && [ -f x/.env ] && [ ! -L x/.env ]`;
  const regularOrAbsent = sh`{ [ ! -e "x/$f" ] && [ ! -L "x/$f" ]; } || { [ -f "x/$f" ] && [ ! -L "x/$f" ]; } || ok=`;
  const refuse = sh`{ printf '%s\n' ${bad} >&2; exit ${RESTORE_EXIT.badArchive}; }`;
  // braced whole: `keep && { … } || refuse` would report a failed pre-restore backup as a bad archive
  return sh`{ { ${whole} && ok=1 && for f in ${regular}; do ${regularOrAbsent}; done && [ -n "$ok" ]; } || ${refuse}; }`;
}

/** The archive's database dump loaded through the tenant's restore command (no dump in it: RESTORE_EXIT.noDump). */
function loadDump(t: Tenant, dumpFile: string, command: string): Script {
  const top = tenantFromPrivate(STATE_DIR);
  const dump = sh`{ tar -xzOf a -- ${dumpFile} > dump 2>/dev/null || exit ${RESTORE_EXIT.noDump}; }`;
  return sh`${dump} && (cd -- ${top} && ${composeEnv(t)} sh -c ${command}) < dump && echo '@@restored database'`;
}

/** Starts the tenant's stack when none of its containers runs (see `restore`); sets `dump_tries`. */
function startDatabase(t: Tenant): Script {
  const failed = 'the database is not running and compose up -d failed';
  const refused = sh`{ echo ${new Script(`'${failed}'`)} >&2; exit ${RESTORE_EXIT.notStarted}; }`;
  const up = sh`{ { ${composeArgv(t)} up -d >&2 || ${refused}; } && echo '@@started' && dump_tries=${DUMP_WAIT_S}; }`;
  const running = sh`[ -n "$(${containersOf(t, PROJECT_VAR)})" ]`;
  return sh`{ ${deriveProject(t)}; } >/dev/null && dump_tries=1 && { ${running} || ${up}; }`;
}
