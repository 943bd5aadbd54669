/**
 * The logs of a tenant's containers through the engine (no Compose process): each container's last lines,
 * or those since a time, each line prefixed with its container's name; following them all at once with
 * `follow` (the command then runs until its channel closes).
 */
import type { Tenant } from '../registry/model';
import { deriveProject, engineOf, PROJECT_VAR } from './compose';
import { containersOf } from './containers';
import { named, Script, sh } from './shell';

export interface LogsOptions {
  tail: number;
  /** As the engine takes it: a duration (10m) or a time (2024-05-01T12:00:00). */
  since?: string;
  follow: boolean;
}

/**
 * The longest log line shown, in characters: a longer one is cut there, marked, and the rest of it dropped
 * as it arrives (cli/logs.ts), so the tool holds at most this much of a line, however long it is.
 */
export const LOG_LINE_LIMIT = 16 * 1024;

export const SINCE = /^(?:\d+[smhd]|\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?Z?)?)$/;

export function logs(t: Tenant, o: LogsOptions): Script {
  const engine = engineOf(t.compose.command);
  const flags = [
    '--tail',
    String(o.tail),
    ...(o.since ? ['--since', o.since] : []),
    ...(o.follow ? ['--follow'] : []),
  ];
  // a container's name from the server is only used when it is a plain name (it goes into sed's text)
  const plain = sh`case "$name" in '' | *[!A-Za-z0-9_.-]*) name=$id ;; esac`;
  const name = sh`name=$(${engine} inspect --format '{{.Name}}' "$id" 2>/dev/null); name=${new Script('${name#/}')}; ${plain}`;
  // each container's lines, prefixed with its name, all at once
  const each = sh`for id in $ids; do ${name}; ${engine} logs ${flags} "$id" 2>&1 | sed "s|^|$name |" & done; wait`;
  const ids = sh`{ ${deriveProject(t)}; } >/dev/null && ids=$(${containersOf(t, PROJECT_VAR, true)})`;
  return named('logs', sh`cd -- ${t.path} && ${ids} && ${each}`);
}
