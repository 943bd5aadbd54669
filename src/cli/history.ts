/** `fleet-deploy history`: the release history of the selected targets, read over SSH. */
import { parseHistory, type HistoryEntry } from '../deploy/history';
import { readHistory } from '../remote/history';
import { table } from '../report/table';
import { jsonText } from '../report/sanitize';
import { eachServer } from '../fleet/each-server';
import { describe } from '../deploy/shell';
import { openRemote, remoteFlags, remoteHelp, type Values } from './remote';
import type { CliIO } from './io';
import { FORMAT_FLAGS, outputFormat } from './args';
import { flagOptions, fromFlags, REMOTE_FLAGS, setting } from '../settings';

const HISTORY_FLAGS = ['limit', ...FORMAT_FLAGS] as const;
export const HISTORY_OPTIONS = flagOptions([...HISTORY_FLAGS, ...REMOTE_FLAGS]);

const HISTORY_LINE =
  'fleet-deploy history [--registry FILE] [--select EXPR] [--limit N] [--format table|json] ' +
  '[--json] [--concurrency N] [--key FILE] [--known-hosts FILE]';

export const HISTORY_USAGE = `${HISTORY_LINE}

Reads each selected target's release history (.fleet/history.jsonl in its directory: time, actor, CI run,
outcome, from → to, digests), newest first, over one SSH connection per server.

Options:
${remoteHelp(HISTORY_FLAGS)}`;

export async function runHistory(values: Values, io: CliIO): Promise<number> {
  const limit = setting(fromFlags(values), 'limit')!;
  const format = outputFormat(values, ['table', 'json']);
  const { targets, connector, concurrency } = await openRemote(remoteFlags(values), io);
  const outcomes = await eachServer(
    targets,
    connector,
    async (t, transport) => {
      const r = await transport.exec(readHistory(t.tenant, limit), { timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`cannot read the history: ${describe(r)}`);
      return parseHistory(r.stdout.split('\n')).reverse();
    },
    { concurrency },
  );
  const results = new Map<string, HistoryEntry[] | string>(
    [...outcomes].map(([id, o]) => [id, o.ok ? o.value : o.error]),
  );
  let failed = false;
  if (format === 'json') {
    io.stdout(`${jsonText(Object.fromEntries(targets.map((t) => [t.id, results.get(t.id)])), 2)}\n`);
    failed = [...results.values()].some((v) => typeof v === 'string');
  } else {
    const rows: string[][] = [];
    for (const t of targets) {
      const r = results.get(t.id)!;
      if (typeof r === 'string') {
        failed = true;
        rows.push([t.id, '', '', 'error', '', r]);
      } else if (r.length === 0) rows.push([t.id, '', '', '(no history)', '', '']);
      else
        for (const e of r)
          rows.push([
            t.id,
            e.time ?? '',
            e.actor ?? '',
            `${e.outcome ?? ''}${e.rollback ? ' (rollback)' : ''}`,
            `${e.from ?? '—'} → ${e.to ?? ''}`,
            e.error ?? '',
          ]);
    }
    io.stdout(`${table(['TARGET', 'TIME', 'ACTOR', 'OUTCOME', 'FROM → TO', 'ERROR'], rows)}\n`);
  }
  return failed ? 1 : 0;
}
