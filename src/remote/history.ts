/**
 * The release history on the server (`.fleet/history.jsonl`, one JSON line per release): read, and appended to.
 */
import type { Tenant } from '../registry/model';
import { named, type Script, sh } from './shell';
import { enter, HISTORY_FILE } from './tenant-dir';

/** The last lines of the release history, for `fleet-deploy history`. */
export function readHistory(t: Tenant, lines: number): Script {
  return named(
    'readHistory',
    sh`${enter(t)} 2>/dev/null && { tail -n ${lines} ${HISTORY_FILE} 2>/dev/null || true; }`,
  );
}

/** Appends one entry to the history; `@@history-failed` when it could not (a full disk), the script goes on. */
export const appendHistory = (entry: string) =>
  sh`{ printf '%s\n' ${entry} >> ${HISTORY_FILE} || echo '@@history-failed'; }`;
