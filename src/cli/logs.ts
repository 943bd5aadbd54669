/**
 * `fleet-deploy logs`: the selected tenants' container logs, each line prefixed by its target; with -f,
 * following every tenant at once — one connection per server, one exec channel per tenant on it.
 */
import { sanitizeLine } from '../report/sanitize';
import { eachServer } from '../fleet/each-server';
import { describe } from '../deploy/shell';
import { ConfigurationError } from '../errors';
import { LOG_LINE_LIMIT, logs, SINCE } from '../remote/logs';
import type { CliIO } from './io';
import { flagOptions, fromFlags, REMOTE_FLAGS, setting } from '../settings';
import { openRemote, remoteFlags, remoteHelp, type Values } from './remote';

const LOGS_FLAGS = ['tail', 'since', 'follow'] as const;

export const LOGS_USAGE = `fleet-deploy logs [--select EXPR] [--tail N] [--since TIME] [-f] [options]

Prints the logs of the selected tenants' containers, each line as "TARGET CONTAINER line". With -f it
keeps following all of them at once (Ctrl-C stops) over one SSH connection per server. A line longer
than ${LOG_LINE_LIMIT} characters is cut there and marked "[fleet-deploy: line cut at … characters]".

Options:
${remoteHelp(LOGS_FLAGS)}`;

export const LOGS_OPTIONS = flagOptions([...LOGS_FLAGS, ...REMOTE_FLAGS]);

function sinceFlag(values: Values): string | undefined {
  const since = values.since as string | undefined;
  if (since === undefined || SINCE.test(since)) return since;
  throw new ConfigurationError([
    {
      path: [],
      source: '--since',
      message: `${JSON.stringify(since)} is not a time`,
      hint: 'use a duration such as 10m, 2h or 1d, or a date such as 2024-05-01T12:00:00Z',
    },
  ]);
}

/**
 * Writes whole lines only, each prefixed by its target and cleaned of terminal escapes, whatever the
 * chunks' boundaries. A line longer than `limit` characters is cut there, marked, and the rest of it
 * dropped as it arrives: what is held is at most `limit` characters, however long the line.
 */
export function lineWriter(prefix: string, write: (text: string) => void, limit = LOG_LINE_LIMIT) {
  let rest = '';
  let dropping = false; // this line was cut: drop what comes until its end
  const line = (text: string, cut: boolean) =>
    `${prefix} ${sanitizeLine(text)}${cut ? ` [fleet-deploy: line cut at ${limit} characters]` : ''}\n`;
  return {
    chunk(chunk: string) {
      const text = chunk.replaceAll('\r\n', '\n');
      let out = '';
      for (let i = 0; i < text.length;) {
        const nl = text.indexOf('\n', i);
        const end = nl < 0 ? text.length : nl;
        if (!dropping) {
          rest += text.slice(i, Math.min(end, i + limit + 1 - rest.length));
          if (rest.length > limit) [out, rest, dropping] = [out + line(rest.slice(0, limit), true), '', true];
        }
        if (nl < 0) break;
        if (!dropping) out += line(rest, false);
        [rest, dropping, i] = ['', false, nl + 1];
      }
      if (out) write(out);
    },
    end() {
      if (rest) write(line(rest, false));
    },
  };
}

export async function runLogs(values: Values, io: CliIO): Promise<number> {
  const options = {
    tail: setting(fromFlags(values), 'tail')!,
    since: sinceFlag(values),
    follow: setting(fromFlags(values), 'follow') ?? false,
  };
  const { targets, connector, concurrency } = await openRemote(remoteFlags(values), io);
  const results = await eachServer(
    targets,
    connector,
    async (t, transport) => {
      const out = lineWriter(t.id, io.stdout);
      const r = await transport.exec(logs(t.tenant, options), {
        timeoutMs: options.follow ? 2 ** 31 - 1 : 120_000,
        onOutput: (text) => out.chunk(text),
        // following: a terminal, so the remote `logs -f` is hung up when the channel closes
        pty: options.follow,
        ...(io.signal ? { signal: io.signal } : {}),
      });
      out.end();
      if (r.code !== 0 && !io.signal?.aborted) throw new Error(describe(r));
    },
    { concurrency, perServer: options.follow ? 10 : 4 },
  );
  let failed = 0;
  for (const [id, r] of results)
    if (!r.ok) {
      failed++;
      io.stderr(`${id}: cannot read the logs: ${sanitizeLine(r.error)}\n`);
    }
  return failed ? 1 : 0;
}
