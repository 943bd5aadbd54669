/**
 * The tenant's .env: the program that rewrites its image variables, and the switch that puts the new file
 * in place as a compare-and-swap against other writers.
 */
import type { Tenant } from '../registry/model';
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
export const ENV_PROGRAM = `BEGIN { n = split(ENVIRON["FLEET_SET"], a, "\\n"); for (i = 1; i <= n; i++) { eq = index(a[i], "="); val[substr(a[i], 1, eq - 1)] = substr(a[i], eq + 1) } }
{ cr = sub(/\\r$/, "") ? "\\r" : ""; if (NR == 1) eol = cr
  for (k in val) if ($0 ~ ("^(export[ \\t]+)?" k "=")) { print (($0 ~ /^export[ \\t]/) ? "export " : "") k "=" val[k] cr; seen[k] = 1; next }
  print $0 cr }
END { for (k in val) if (!(k in seen)) print k "=" val[k] eol }`;

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
  const changing =
    '.env kept changing while it was being switched (another writer, five tries): nothing was changed';
  const link =
    '.env was replaced by a link or a special file while it was being switched: fleet-deploy does not read or write through links; nothing was changed';
  const fail = sh`{ rm -f -- new old cur; exit ${SWITCH_FAILED}; }`;
  const refuse = sh`{ printf '%s\n' ${link} >&2; ${fail}; }`;
  const build = sh`rm -f -- new old cur && ln -P -- ../.env old && { [ -f old ] && [ ! -L old ] || ${refuse}; } && set -- $(cksum < old) && sum="$1 $2" && size=$2 && FLEET_SET=${spec} awk ${ENV_PROGRAM} old > new && chmod "$(stat -c %a old)" new && { chown "$(stat -c %u:%g old)" new 2>/dev/null || :; } && ln -- new cur`;
  const carry = sh`if [ "$(head -c "$size" old | cksum)" = "$sum" ]; then tail -c +"$((size + 1))" old >> cur && swapped=yes; else mv -fT -- old ../.env; fi`;
  return inPrivateDir(
    '.',
    sh`swapped=; for try in 1 2 3 4 5; do ${build} || ${fail}; if [ ../.env -ef old ]; then mv -fT -- new ../.env || ${fail}; ${carry}; fi; rm -f -- new old cur; [ -z "$swapped" ] || break; done; [ -n "$swapped" ] || { printf '%s\n' ${changing} >&2; exit ${SWITCH_FAILED}; }`,
  );
}
