/**
 * Files written on a server without following a link anyone else planted. A tenant directory (or its
 * `.fleet`) may be writable by someone other than the user the tool runs as — another member of its group,
 * or the deploy user when `setup-server` runs as root. Such a writer can replace any name in it with a
 * link between two of the tool's commands, so the tool never opens, chmods or chowns a file there by name.
 * It works in a directory of its own instead: `mktemp -d` makes one, mode 0700, inside the directory the
 * files go to; the script enters it (`cd -P`) and checks FROM INSIDE that it is the one it made — owned by
 * the running user, mode 0700, empty, and with the tenant directory where its parents should be. From then
 * on nobody else can add, remove or rename anything in it (no write permission), so the files it writes
 * there by fixed names are its own; each is finished (content, mode, owner) and then renamed into place
 * (`mv -T` to `../NAME`: rename(2) replaces a link there, it does not follow it; without `-T`, a link there
 * to a directory would make `mv` (and `ln`) put the file INTO that directory). What is left is only that a
 * writer of the tenant directory can replace a finished file afterwards, as it could replace any file there.
 */
import { Script, sh } from './shell';

/** A directory relative to the tenant directory, without `.`/`..` parts: how deep it is. */
function depthOf(dir: string): number {
  if (dir === '.') return 0;
  const parts = dir.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..'))
    throw new Error(`not a plain relative directory: ${JSON.stringify(dir)}`);
  return parts.length;
}

/** From inside the private directory, the path of the tenant directory (`..` once per level, plus one). */
export function tenantFromPrivate(dir: string): string {
  return '../'.repeat(depthOf(dir) + 1).replace(/\/$/, '');
}

/** Exit code of a script whose private directory was not what it made (a link or someone else's). */
export const PRIVATE_DIR_REFUSED = 31;

/**
 * Runs `body` in a subshell whose working directory is a fresh private directory made in `dir` (relative
 * to the current directory, which must be the tenant directory). In `body`, `..` is `dir` and
 * tenantFromPrivate(dir) the tenant directory. The private directory and whatever `body` left in it are
 * removed when the subshell ends (an EXIT trap, so `exit N` in `body` cleans up too); the subshell's exit
 * code is `body`'s, and the calling script stops with it when it is not 0.
 */
export function inPrivateDir(dir: string, body: Script): Script {
  const top = tenantFromPrivate(dir);
  const refused =
    `fleet-deploy: refusing to write in ${dir}: the private directory it made there was replaced ` +
    '(a link, or not its own): nothing was written';
  const made = sh`top=$(stat -c %d:%i .) && p=$(umask 077 && mktemp -d ${`${dir}/.fleet-tmp.XXXXXX`}) || exit 1`;
  // entered without following a link, and found to be the one made: ours, 0700, empty, in `dir`
  const ours = sh`[ "$(stat -c %u:%a .)" = "$(id -u):700" ] && [ -z "$(ls -A)" ] && [ "$(stat -c %d:%i ${top})" = "$top" ]`;
  const check = sh`cd -P -- "$p" 2>/dev/null && ${ours} || { printf '%s\n' ${refused} >&2; exit ${PRIVATE_DIR_REFUSED}; }`;
  const cleanup = `trap 'find . -mindepth 1 -delete 2>/dev/null; cd .. && rmdir -- "\${p##*/}" 2>/dev/null' EXIT`;
  return sh`{ ( ${made}; ${check}; ${new Script(cleanup)}; ${body} ) || exit $?; }`;
}
