/** `fleet-deploy history`: the release history of the selected targets, read over SSH. */
import { parseHistory, type HistoryEntry } from '../deploy/history';
import { planDeployment } from '../plan/plan';
import { readHistory } from '../remote/commands';
import { table } from '../report/table';
import { SshConnector } from '../ssh/transport';
import { loadRegistry } from './args';
import { wholeNumber } from '../values';
import { sshSettings } from './deploy';
import type { CliIO } from './io';

type Values = Record<string, string | boolean | undefined>;

export const HISTORY_USAGE = `fleet-deploy history [--registry FILE] [--select EXPR] [--limit N] [--format table|json] [--json] [--key FILE] [--known-hosts FILE]

Reads each selected target's release history (.fleet/history.jsonl in its directory: time, actor, CI run,
outcome, from → to, digests), newest first, over one SSH connection per server.

Options:
  -r, --registry FILE   the server registry (default: $FLEET_REGISTRY or servers/production.json)
  -s, --select EXPR     which targets (default: every target)
  -n, --limit N         entries per target (default 10)
  -f, --format FORMAT   table (default) or json
      --json            the same as --format json
      --key FILE        SSH private key (default: $FLEET_SSH_KEY (the key or its path),
                        $FLEET_SSH_KEY_FILE, else the ssh-agent at $SSH_AUTH_SOCK)
      --known-hosts FILE  trusted host keys besides the registry's pins (default: $FLEET_KNOWN_HOSTS
                        text, else ~/.ssh/known_hosts when not in CI)
  -h, --help            show this help`;

export async function runHistory(values: Values, io: CliIO): Promise<number> {
  const registry = await loadRegistry(values, io);
  const limit = wholeNumber(values.limit as string | undefined, '--limit', 10);
  const format = values.json ? 'json' : ((values.format as string | undefined) ?? 'table');
  const plan = planDeployment(registry, { select: values.select as string | undefined });
  const connector = new SshConnector(await sshSettings(values, io, registry, plan));
  const targets = plan.plan.flatMap((w) => w.targets);
  const byServer = new Map<string, typeof targets>();
  for (const t of targets) byServer.set(t.server.name, [...(byServer.get(t.server.name) ?? []), t]);
  const results = new Map<string, HistoryEntry[] | string>();
  await Promise.all(
    [...byServer.values()].map(async (list) => {
      let transport;
      try {
        transport = await connector.connect(list[0]!.server);
        for (const t of list) {
          const r = await transport.exec(readHistory(t.tenant, limit), { timeoutMs: 30_000 });
          results.set(
            t.id,
            r.code === 0
              ? parseHistory(r.stdout.split('\n')).reverse()
              : `cannot read the history: exit code ${r.code}: ${r.stderr.trim()}`,
          );
        }
      } catch (e) {
        for (const t of list) results.set(t.id, (e as Error).message);
      } finally {
        await transport?.close();
      }
    }),
  );
  let failed = false;
  if (format === 'json') {
    io.stdout(
      `${JSON.stringify(Object.fromEntries(targets.map((t) => [t.id, results.get(t.id)])), null, 2)}\n`,
    );
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
