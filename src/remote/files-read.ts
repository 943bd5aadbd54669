/**
 * For `plan --diff` (issue 25): the files a release would replace, read from the tenant's directory —
 * each path the release ships and each the last release installed (`.fleet/files/current`) — so the diff
 * shows what would change on the server. Read-only: no lock touched, nothing written. Everything the
 * server sends back is untrusted: paths are checked, sizes capped, content is decoded as data only.
 */
import type { Tenant } from '../registry/model';
import { hasDotSegment, RELATIVE_FILE } from '../registry/patterns';
import { FILES_LIST } from './files';
import { named, type Script, sh } from './shell';
import { enter } from './tenant-dir';

/** A file larger than this is not sent back: its diff says only that it differs. */
export const READ_CAP = 256 * 1024;
/** Files past this many bytes in all are not sent back either (a list the server could have grown). */
export const TOTAL_CAP = 4 * 1024 * 1024;

/** A path's content on the server: its text (as bytes), too big to read, absent, or a link. */
export type ServerFile =
  { kind: 'file'; bytes: Uint8Array } | { kind: 'big'; size: number } | { kind: 'absent' } | { kind: 'link' };

const isPath = (p: string) => RELATIVE_FILE.re.test(p) && !hasDotSegment(p);

/** The script: per path `@@file PATH SIZE` and its base64 on the next line, or `@@big`, `@@absent`, `@@link`. */
export function readShippedFiles(t: Tenant, paths: readonly string[]): Script {
  for (const p of paths) if (!isPath(p)) throw new Error(`not a plain relative path: ${JSON.stringify(p)}`);
  const content = sh`echo "@@file $f $n"; head -c ${READ_CAP} < "$f" | base64 -w0; echo`;
  const tooBig = sh`[ "$n" -gt ${READ_CAP} ] || [ $((total + n)) -gt ${TOTAL_CAP} ]`;
  const read = sh`if ${tooBig}; then echo "@@big $f $n"; else total=$((total + n)); ${content}; fi`;
  const size = sh`n=$(stat -c %s -- "$f")`;
  const each = sh`if [ -L "$f" ]; then echo "@@link $f"; elif [ -f "$f" ]; then ${size} && ${read}; else echo "@@absent $f"; fi`;
  const listed = sh`{ [ ! -f ${FILES_LIST} ] || [ -L ${FILES_LIST} ] || head -c 1048576 ${FILES_LIST} | awk '{print $3}'; }`;
  const skip = sh`case "$f" in ''|/*|..|../*|*/..|*/../*) continue;; esac;`;
  const loop = sh`{ total=0; while IFS= read -r f; do ${skip} ${each}; done; }`;
  return named(
    'readShippedFiles',
    sh`${enter(t)} && { printf '%s\n' ${[...paths, '']}; ${listed}; } | sort -u | ${loop}`,
  );
}

/** The lines of `readShippedFiles`: path → what is there (only checked paths, sizes and base64 kept). */
export function parseShippedFiles(stdout: string): Map<string, ServerFile> {
  const out = new Map<string, ServerFile>();
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^@@(file|big|absent|link) (\S+)(?: (\d+))?$/.exec(lines[i]!);
    if (!m || !isPath(m[2]!)) continue;
    const [, kind, path] = m;
    if (kind === 'file') {
      const data = lines[++i] ?? '';
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length > ((READ_CAP + 2) / 3) * 4 + 4) continue;
      out.set(path!, { kind: 'file', bytes: Buffer.from(data, 'base64') });
    } else if (kind === 'big') out.set(path!, { kind: 'big', size: Number(m[3] ?? 0) });
    else out.set(path!, { kind: kind as 'absent' | 'link' });
  }
  return out;
}
