/**
 * The remote side of files shipped with a release (issue 25). Each file is kept on the server by its
 * sha256 in `.fleet/files/` (written only from a private directory there, inPrivateDir), so a release
 * whose files did not change sends their hashes only, and the files a release replaced stay there as its
 * rollback point. `.fleet/files/current` lists what the last release installed ("SHA256 MODE PATH").
 *
 * - `probeFiles`: what the server has — the stored hashes asked about, the installed files (hash and
 *   mode) and any link on the way to one; no write.
 * - `stageFiles`: stores what the server lacks (stdin: one base64 line per file), keeps the installed
 *   files about to be replaced, checks every hash and that the compose files parse; no tenant file changes.
 * - `installFiles`: in the switch, puts each file in place from the store (its hash checked again) by
 *   rename from a private directory in its own directory, removes the ones that go, and records the list.
 *   The rollback is the same script with the previous list.
 */
import type { Tenant } from '../registry/model';
import { RELATIVE_FILE, hasDotSegment } from '../registry/patterns';
import { composeArgv, composeDirectory, engineOf, tenantEnvFile } from './compose';
import { containersOf } from './containers';
import { FILES_NOTE } from './lock';
import { enter, LOCK_DIR, STATE_DIR, touchLock } from './tenant-dir';
import { inPrivateDir, tenantFromPrivate } from './private-dir';
import { named, Script, sh } from './shell';

/** Where the files of releases are kept by hash, and the list of the installed ones. */
export const FILES_DIR = `${STATE_DIR}/files`;
export const FILES_LIST = `${FILES_DIR}/current`;
/** The exit code of a files script that found something wrong (a link, a hash, a compose file). */
export const FILES_REFUSED = 32;

/** One file of a release: where it goes in the tenant directory, its sha256, its mode, its size. */
export interface ShippedEntry {
  to: string;
  sha256: string;
  mode: number;
  size: number;
}

/** A path's state on the server: a file (hash, mode), nothing, or a link (refused). */
export type Installed = { sha256: string; mode: number } | 'absent' | 'link';

export interface Probed {
  /** The hashes asked about that the server keeps. */
  have: Set<string>;
  /** Each path asked about (and each in the installed list) → its state. */
  installed: Map<string, Installed>;
  /** The installed list, as the last release wrote it (checked lines only). */
  list: Array<{ sha256: string; mode: number; to: string }>;
  /** Directories on the way to a shipped file that are links. */
  links: string[];
}

const SHA = /^[a-f0-9]{64}$/;
const isPath = (p: string) => RELATIVE_FILE.re.test(p) && !hasDotSegment(p);
const hashOf = (f: string) => `$(sha256sum < ${f} | cut -c1-64)`;
/** The test that file `f` (shell text) has the sha256 `sha`: a checked hash (quoted), or shell text ("$s"). */
const sameHash = (f: string, sha: string) =>
  SHA.test(sha) ? sh`[ "${new Script(hashOf(f))}" = ${sha} ]` : new Script(`[ "${hashOf(f)}" = ${sha} ]`);

/** The parents of a relative path, shortest first ("a/b/c" → "a", "a/b"). */
function parentsOf(path: string): string[] {
  const parts = path.split('/').slice(0, -1);
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

function checkPaths(paths: readonly string[]): void {
  for (const p of paths) if (!isPath(p)) throw new Error(`not a plain relative path: ${JSON.stringify(p)}`);
}

/** What the server has of a release: stored hashes, installed files and links on their way. */
export function probeFiles(t: Tenant, wanted: readonly string[], paths: readonly string[]): Script {
  checkPaths(paths);
  for (const s of wanted) if (!SHA.test(s)) throw new Error(`not a sha256: ${s}`);
  const dirs = [...new Set(paths.flatMap(parentsOf))];
  const have = wanted.length
    ? sh`for s in ${wanted}; do [ -f ${FILES_DIR}/"$s" ] && [ ! -L ${FILES_DIR}/"$s" ] && echo "@@have $s"; done;`
    : sh``;
  const links = dirs.length ? sh`for d in ${dirs}; do [ ! -L "$d" ] || echo "@@link $d"; done;` : sh``;
  const list = sh`{ [ ! -f ${FILES_LIST} ] || [ -L ${FILES_LIST} ] || head -c 1048576 ${FILES_LIST} | sed 's/^/@@listed /'; };`;
  // every path of the release and of the installed list, once; none that leaves the tenant directory
  const names = sh`{ printf '%s\n' ${[...paths, '']}; [ -L ${FILES_LIST} ] || awk '{print $3}' ${FILES_LIST} 2>/dev/null; }`;
  const inside = sh`[ -n "$f" ] || continue; case "$f" in /*|..|../*|*/..|*/../*) continue;; esac`;
  const each = sh`${names} | sort -u | while IFS= read -r f; do ${inside}; ${fileState('@@')}; done`;
  return named('probeFiles', sh`${enter(t)} && ${touchLock} && { ${have} ${links} ${list} ${each}; }`);
}

/** What is at path "$f" now: `PREFIX`link, `PREFIX`installed (its sha256 and mode) or `PREFIX`absent. */
function fileState(prefix: string): Script {
  const installed = sh`echo "${new Script(prefix)}installed ${new Script(hashOf('"$f"'))} $(stat -c %a -- "$f") $f"`;
  const link = new Script(`echo "${prefix}link $f"`);
  const absent = new Script(`echo "${prefix}absent $f"`);
  return sh`if [ -L "$f" ]; then ${link}; elif [ -f "$f" ]; then ${installed}; else ${absent}; fi`;
}

/** The services whose containers `installFiles` removed (the compose files no longer have them). */
export const parseOrphans = (stdout: string): string[] => [
  ...new Set(
    stdout
      .split('\n')
      .filter((l) => l.startsWith('@@orphan '))
      .map((l) => l.slice(9))
      .filter((s) => /^[A-Za-z0-9._-]{1,128}$/.test(s)),
  ),
];

/**
 * For `status` (inside its inspection, in the tenant directory): the files the last release installed
 * (`.fleet/files/current`) and what is there now, each a line of the `@@files` section; writes nothing.
 */
export function inspectFiles(): Script {
  const listed = sh`head -c 1048576 ${FILES_LIST} | sed 's/^/listed /'`;
  const inside = sh`case "$f" in ''|/*|..|../*|*/..|*/../*) continue;; esac`;
  const each = sh`awk '{print $3}' ${FILES_LIST} | while IFS= read -r f; do ${inside}; ${fileState('')}; done`;
  return sh`echo '@@files'; if [ -f ${FILES_LIST} ] && [ ! -L ${FILES_LIST} ]; then ${listed}; ${each}; fi`;
}

/** What drifted in the lines of `inspectFiles`: a file the last release installed, changed or gone since. */
export function fileDrift(lines: readonly string[]): string[] {
  return driftOf(parseProbe(lines.map((l) => `@@${l}`).join('\n')));
}

/** What drifted in a probe: each file of the installed list changed, gone or a link since it was installed. */
export function driftOf(probed: Probed): string[] {
  const drift: string[] = [];
  for (const l of probed.list) {
    const now = probed.installed.get(l.to);
    if (now === undefined) continue;
    if (now === 'absent') drift.push(`${l.to} was removed on the server since the last release`);
    else if (now === 'link')
      drift.push(`${l.to} was replaced by a link on the server since the last release`);
    else if (now.sha256 !== l.sha256)
      drift.push(
        `${l.to} was edited on the server since the last release (sha256 ${now.sha256.slice(0, 12)}, released ${l.sha256.slice(0, 12)})`,
      );
    else if (now.mode !== l.mode)
      drift.push(
        `${l.to} has mode ${now.mode.toString(8)} on the server, the last release set ${l.mode.toString(8)}`,
      );
  }
  return drift;
}

export function parseProbe(stdout: string): Probed {
  const out: Probed = { have: new Set(), installed: new Map(), list: [], links: [] };
  for (const line of stdout.split('\n')) {
    const [tag, ...rest] = line.split(' ');
    if (tag === '@@have' && SHA.test(rest[0] ?? '')) out.have.add(rest[0]!);
    else if (tag === '@@link' && isPath(rest.join(' '))) out.links.push(rest.join(' '));
    else if (tag === '@@absent' && isPath(rest.join(' '))) out.installed.set(rest.join(' '), 'absent');
    else if (tag === '@@installed' || tag === '@@listed') {
      const [sha256, mode, ...p] = rest;
      const to = p.join(' ');
      if (!SHA.test(sha256 ?? '') || !/^[0-7]{3,4}$/.test(mode ?? '') || !isPath(to)) continue;
      const entry = { sha256: sha256!, mode: parseInt(mode!, 8) };
      if (tag === '@@listed') out.list.push({ ...entry, to });
      else out.installed.set(to, entry);
    }
  }
  for (const l of out.links) if (!out.installed.has(l)) out.installed.set(l, 'link');
  return out;
}

/** A file the server has installed that the stage keeps in the store first (the rollback point). */
export interface Kept {
  to: string;
  sha256: string;
}

/**
 * Stores the `send` hashes (stdin: one base64 line each, in that order) and the `keep` files, then checks
 * every hash of `all` in the store and that `compose` (the compose files, each a stored hash or a
 * path in the tenant directory) parses. Changes no file of the tenant's.
 */
export function stageFiles(
  t: Tenant,
  o: { send: readonly string[]; keep: readonly Kept[]; all: readonly string[]; compose?: readonly string[] },
): Script {
  for (const s of [...o.send, ...o.all, ...o.keep.map((k) => k.sha256)])
    if (!SHA.test(s)) throw new Error(`not a sha256: ${s}`);
  checkPaths(o.keep.map((k) => k.to));
  const top = tenantFromPrivate(FILES_DIR);
  const fail = (why: string) => sh`{ printf '%s\n' ${why} >&2; exit ${FILES_REFUSED}; }`;
  const steps: Script[] = [];
  if (o.send.length) steps.push(sh`split -l 1 -d -a 6 - part.`);
  o.send.forEach((s, i) => {
    const part = `part.${String(i).padStart(6, '0')}`;
    const refused = fail(`a file sent for ${t.path} arrived with another sha256 than ${s}`);
    steps.push(sh`base64 -d ${part} > o && ${sameHash('o', s)} && mv -fT -- o ${`../${s}`} || ${refused}`);
  });
  for (const k of o.keep) {
    const stored = `../${k.sha256}`;
    const copy = sh`cat -- ${`${top}/${k.to}`} > o && ${sameHash('o', k.sha256)} && mv -fT -- o ${stored}`;
    const changed = fail(`${k.to} in ${t.path} changed on the server during the deploy: nothing was changed`);
    steps.push(sh`{ [ -f ${stored} ] || { ${copy}; }; } || ${changed}`);
  }
  const body = steps.length ? sh`${steps.reduce((a, b) => sh`${a} && ${b}`)}` : sh`:`;
  const stored = new Script(`${FILES_DIR}/"$s"`);
  const bad = fail(`a stored file of ${t.path} does not match its sha256: nothing was changed`);
  const verify = o.all.length
    ? sh`for s in ${[...o.all]}; do [ -f ${stored} ] && [ ! -L ${stored} ] && ${sameHash(stored.text, '"$s"')} || ${bad}; done`
    : sh`:`;
  const store = sh`mkdir -p -- ${FILES_DIR} && ${inPrivateDir(FILES_DIR, body)}`;
  return named(
    'stageFiles',
    sh`${enter(t)} && ${touchLock} && ${store} && ${verify}${composeCheck(t, o.compose)}`,
  );
}

/**
 * `compose config` on the staged compose files, from the tenant directory; nothing when none ships. The
 * project directory is where the first file will be, not where it is staged, so that its relative paths
 * (`env_file:`, `extends`, bind mounts) resolve as they will for `up`; and `.env` is the tenant's, as
 * `composeArgv` gives it.
 */
function composeCheck(t: Tenant, files: readonly string[] | undefined): Script {
  if (!files?.length) return sh``;
  const argv = [
    ...t.compose.command.split(' '),
    '--project-directory',
    composeDirectory(t),
    ...tenantEnvFile(t),
  ];
  const f = files.flatMap((x) => ['-f', SHA.test(x) ? `${FILES_DIR}/${x}` : x]);
  const project = t.compose.project ? ['-p', t.compose.project] : [];
  const why =
    `the compose files shipped to ${t.path} do not parse (${t.compose.command} config failed): ` +
    'nothing was changed';
  const refused = sh`{ printf '%s\n' ${why} >&2; exit ${FILES_REFUSED}; }`;
  return sh` && { ${argv} ${f} ${project} config >/dev/null || ${refused}; }`;
}

/**
 * Removes the containers of `project` whose service the compose files (as installed now) no longer have:
 * what `up -d --remove-orphans` would remove, for a release whose compose files dropped a service.
 */
function removeOrphans(t: Tenant, project: string): Script {
  const engine = engineOf(t.compose.command);
  const label = '{{index .Config.Labels "com.docker.compose.service"}}';
  const services = sh`svcs=" $(${composeArgv(t)} config --services | tr '\n' ' ') "`;
  const removeUnlisted = sh`case "$svcs" in *" $s "*) ;; *) ${engine} rm -f "$id" >/dev/null && echo "@@orphan $s";; esac`;
  const each = sh`s=$(${engine} inspect --format ${label} "$id") || continue; ${removeUnlisted}`;
  return sh`{ ${services} && for id in $(${containersOf(t, project, true)}); do ${each}; done; }`;
}

/**
 * Removes the stored files (named by their sha256) that are not in `keep`, from inside a private
 * directory of the store (so `..` is the store itself, never a link's target); prints `@@pruned N`.
 */
function pruneStore(keep: readonly string[]): Script {
  for (const s of keep) if (!SHA.test(s)) throw new Error(`not a sha256: ${s}`);
  const remove = sh`[ "$s" = current ] || { [ -f "../$s" ] && rm -f -- "../$s" && n=$((n + 1)); }`;
  const each = sh`s=$(basename -- "$f"); case "$keep" in *" $s "*) ;; *) ${remove};; esac`;
  const body = sh`n=0; keep=${` ${keep.join(' ')} `}; for f in ../*; do ${each}; done; echo "@@pruned $n"`;
  return inPrivateDir(FILES_DIR, body);
}

/** Makes `dir` one level at a time, refusing a level that is a link (no directory made through one). */
function makeDirs(t: Tenant, dir: string): Script {
  const levels = [...parentsOf(dir), dir];
  const why =
    `refusing to ship files into ${t.path}: a directory on the way to ${dir} is a symbolic link: ` +
    'nothing was written through it';
  const refused = sh`{ printf '%s\n' ${why} >&2; exit ${FILES_REFUSED}; }`;
  return sh`for d in ${levels}; do [ ! -L "$d" ] || ${refused}; [ -d "$d" ] || mkdir -m 755 -- "$d" || exit 1; done`;
}

/**
 * Puts `entries` in place from the store (each hash checked again), removes the `remove` paths, and
 * writes the installed list (`list`: its lines; none removes it). Each file is finished in a private
 * directory made in its own directory and renamed into place. With a `note` (the switch's, one line of
 * JSON), it is written first to FILES_NOTE (when the lock is there), from a private directory of the
 * lock, so a deploy cut off after this is mended with its previous files too (`@@oldfiles`).
 */
export function installFiles(
  t: Tenant,
  o: {
    entries: readonly ShippedEntry[];
    remove: readonly string[];
    list?: string;
    orphans?: string;
    /** Prune the store: every stored file whose hash is not one of these goes. */
    keep?: readonly string[];
    note?: string;
  },
): Script {
  checkPaths([...o.entries.map((e) => e.to), ...o.remove]);
  const byDir = new Map<string, Array<{ name: string; put?: ShippedEntry }>>();
  const add = (to: string, put?: ShippedEntry) => {
    const i = to.lastIndexOf('/');
    const dir = i < 0 ? '.' : to.slice(0, i);
    byDir.set(dir, [...(byDir.get(dir) ?? []), { name: to.slice(i + 1), ...(put ? { put } : {}) }]);
  };
  for (const e of o.entries) add(e.to, e);
  for (const r of o.remove) add(r);
  const parts: Script[] = [];
  for (const [dir, files] of byDir) {
    const store = `${tenantFromPrivate(dir)}/${FILES_DIR}`;
    const each = files.map(({ name, put }) =>
      put
        ? sh`cp -- ${`${store}/${put.sha256}`} f && ${sameHash('f', put.sha256)} && ${modeAndPlace(put.mode, name)}`
        : sh`rm -f -- ${`../${name}`}`,
    );
    const body = each.reduce((a, b) => sh`${a} && ${b}`);
    parts.push(dir === '.' ? inPrivateDir('.', body) : sh`${makeDirs(t, dir)} && ${inPrivateDir(dir, body)}`);
  }
  const list =
    o.list === undefined
      ? sh`rm -f -- ${FILES_LIST}`
      : inPrivateDir(FILES_DIR, sh`printf '%s' ${o.list} > l && mv -fT -- l ../current`);
  const orphans = o.orphans ? sh` && ${removeOrphans(t, o.orphans)}` : sh``;
  const prune = o.keep ? sh` && ${pruneStore(o.keep)}` : sh``;
  const note = o.note === undefined ? sh`:` : noteFiles(o.note);
  const put = parts.reduce((a, b) => sh`${a} && ${b}`, sh`:`);
  return named(
    'installFiles',
    sh`${enter(t)} && ${touchLock} && ${note} && ${put} && ${list}${prune}${orphans}`,
  );
}

/** File `f` of a private directory given `mode` and renamed to `name` in the directory above. */
const modeAndPlace = (mode: number, name: string) =>
  sh`chmod ${mode.toString(8)} f && mv -fT -- f ${`../${name}`}`;

/** Writes `note` (one line) to FILES_NOTE: finished in a private directory of the lock, renamed into place. */
function noteFiles(note: string): Script {
  if (/[\n\r]/.test(note)) throw new Error('a files note is one line');
  const name = `../${FILES_NOTE.slice(LOCK_DIR.length + 1)}`;
  // no lock (a script run on its own, outside a deploy): nobody to mend a cut-off switch, nothing noted
  const write = inPrivateDir(LOCK_DIR, sh`printf '%s\n' ${note} > n && mv -fT -- n ${name}`);
  return sh`{ [ ! -d ${LOCK_DIR} ] || ${write}; }`;
}
