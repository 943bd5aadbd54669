/**
 * The tenant's .env: the program that rewrites its image variables, and the switch that puts the new file
 * in place as a compare-and-swap against other writers.
 */
import type { Tenant } from '../registry/model';
import { ENV_VAR, IMAGE_REF } from '../registry/patterns';
import { SWITCH_FAILED } from './exit-codes';
import { inPrivateDir } from './private-dir';
import { type Script, sh } from './shell';

/** An extended regular expression for the lines of .env that set one of the tenant's image variables. */
export function imageLines(t: Tenant): string {
  return `^(export[[:space:]]+)?(${t.images.map((i) => i.variable).join('|')})=`;
}

/**
 * The program that rewrites .env: each `NAME=value` of $FLEET_SET replaces that variable's line (an
 * `export NAME=` line keeps its `export`) or is appended; every other line, comment and the order stay.
 * Values come through the environment (ENVIRON), never `awk -v`, which would interpret backslashes. A
 * file with CRLF line ends keeps them.
 */
export const ENV_PROGRAM = [
  // each NAME=value of $FLEET_SET into val[NAME]
  'BEGIN { n = split(ENVIRON["FLEET_SET"], a, "\\n"); ' +
    'for (i = 1; i <= n; i++) { eq = index(a[i], "="); val[substr(a[i], 1, eq - 1)] = substr(a[i], eq + 1) } }',
  // a line's CR kept aside; the first line's ending is the one appended lines get
  '{ cr = sub(/\\r$/, "") ? "\\r" : ""; if (NR == 1) eol = cr',
  // a line that sets one of them replaced, keeping its `export`
  '  for (k in val) if ($0 ~ ("^(export[ \\t]+)?" k "=")) ' +
    '{ print (($0 ~ /^export[ \\t]/) ? "export " : "") k "=" val[k] cr; seen[k] = 1; next }',
  // every other line as it was
  '  print $0 cr }',
  // the ones no line set, appended
  'END { for (k in val) if (!(k in seen)) print k "=" val[k] eol }',
].join('\n');

/**
 * The .env rewrite as a compare-and-swap against other writers, done in a private directory (see
 * private-dir.ts: nothing is opened, chmodded or chowned by a name anyone else could turn into a link).
 * The current file is hard-linked into it (`old`, refused unless a regular file: a link planted as .env
 * after the check is not read through) and its checksum and size taken in one read; the new file is
 * written from it and renamed over .env only if .env is still that file (`-ef`: not replaced by someone
 * else's rename). After the rename, a writer that had opened the old file may have appended to it: those
 * bytes are carried over to the new .env (through `cur`, the new file's second name in the private
 * directory, never through the name .env). If the old file was changed in any other way (its first `size`
 * bytes differ), it is put back and the switch tried again; five tries, then the switch refuses and says
 * why. What is left: an append whose writer opened .env before the rename and writes after the carry-over,
 * a window of microseconds that only a lock the other writer honours could close.
 */
export function swapEnv(spec: string): Script {
  const attempt = sh`${buildNew(spec)} || ${FAIL}; ${SWAP}; rm -f -- new old cur; [ -z "$swapped" ] || break`;
  return inPrivateDir('.', sh`swapped=; for try in 1 2 3 4 5; do ${attempt}; done; ${GAVE_UP}`);
}

/** Removes the work files and exits SWITCH_FAILED: nothing was changed. */
const FAIL = sh`{ rm -f -- new old cur; exit ${SWITCH_FAILED}; }`;
const PLANTED =
  '.env was replaced by a link or a special file while it was being switched: ' +
  'fleet-deploy does not read or write through links; nothing was changed';
/** `old`: a hard link to .env, refused unless a regular file (a link planted as .env is not read through). */
const LINK_OLD = sh`ln -P -- ../.env old && { [ -f old ] && [ ! -L old ] || { printf '%s\n' ${PLANTED} >&2; ${FAIL}; }; }`;
/** `$sum` (checksum and size) and `$size` of `old`, taken in one read. */
const MEASURE_OLD = sh`set -- $(cksum < old) && sum="$1 $2" && size=$2`;
/** `new` gets old's mode, and its owner where the user may give it. */
const COPY_MODE = sh`chmod "$(stat -c %a old)" new && { chown "$(stat -c %u:%g old)" new 2>/dev/null || :; }`;
/** `new`: `old` rewritten by ENV_PROGRAM, the values through the environment. */
const rewrite = (spec: string) => sh`FLEET_SET=${spec} awk ${ENV_PROGRAM} old > new`;
/** A fresh `old` (measured) and `new` (with old's mode); `cur`: new's second name, for the carry-over. */
const buildNew = (spec: string) =>
  sh`rm -f -- new old cur && ${LINK_OLD} && ${MEASURE_OLD} && ${rewrite(spec)} && ${COPY_MODE} && ln -- new cur`;
/** True while the first `$size` bytes of `old` are still the ones measured. */
const OLD_UNCHANGED = sh`[ "$(head -c "$size" old | cksum)" = "$sum" ]`;
/** Bytes appended to the old file after the rename, carried over to the new one; else the old file put back. */
const CARRY = sh`if ${OLD_UNCHANGED}; then tail -c +"$((size + 1))" old >> cur && swapped=yes; else mv -fT -- old ../.env; fi`;
/** `new` renamed over .env only while .env is still `old` (`-ef`: not replaced by someone else's rename). */
const SWAP = sh`if [ ../.env -ef old ]; then mv -fT -- new ../.env || ${FAIL}; ${CARRY}; fi`;
const CHANGING =
  '.env kept changing while it was being switched (another writer, five tries): nothing was changed';
/** Five tries without a clean swap: the switch refuses and says why. */
const GAVE_UP = sh`[ -n "$swapped" ] || { printf '%s\n' ${CHANGING} >&2; exit ${SWITCH_FAILED}; }`;

/**
 * Sets image variables in .env (each checked: a variable name and an image reference, else it throws
 * before any script exists) by swapEnv; a .env that is a symbolic link is refused, naming the tenant.
 */
export function switchEnv(t: Tenant, assignments: Readonly<Record<string, string>>): Script {
  for (const [k, v] of Object.entries(assignments))
    if (!ENV_VAR.re.test(k) || !IMAGE_REF.test(v))
      throw new Error(
        `refusing to write ${JSON.stringify(`${k}=${v}`)} into .env: not an image variable and reference`,
      );
  const spec = Object.entries(assignments)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  const link =
    `.env in ${t.path} is a symbolic link: fleet-deploy replaces .env atomically and does not write through links; ` +
    'make it a regular file';
  return sh`{ [ ! -L .env ] || { printf '%s\n' ${link} >&2; exit ${SWITCH_FAILED}; }; ${swapEnv(spec)}; }`;
}
