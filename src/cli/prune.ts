/**
 * `fleet-deploy prune`: the deploy's image retention as a command. Per server, over its one connection:
 * read every selected tenant's running release and history, then remove the images of older releases
 * that no tenant sharing the server keeps (src/fleet/prune.ts). `--dry-run` lists them and their size.
 */
import { byServer, eachServer } from '../fleet/each-server';
import { serverPrunable } from '../fleet/prune';
import { describe } from '../deploy/shell';
import type { Target } from '../registry/model';
import type { Script } from '../remote/shell';
import { inspectTenant, parseInspection, removeImages } from '../remote/status';
import { strategyFor } from '../deploy/strategies';
import { plural, table } from '../report/table';
import type { CliIO } from './io';
import { flagOptions, REMOTE_FLAGS } from '../settings';
import { openRemote, remoteFlags, remoteHelp, type Values } from './remote';

export const PRUNE_USAGE = `fleet-deploy prune [--select EXPR] [--dry-run] [options]

Removes the images of releases older than each tenant's last keepReleases, as a deploy does after it
succeeds — never the image a tenant runs, the release before it, nor one any other tenant of the same
server keeps. Only images this tool deployed (from the histories) are considered. Select whole servers:
tenants of a server left out of the selection are not read, so prune skips servers selected only in part.

Options:
${remoteHelp(['pruneDryRun'])}`;

export const PRUNE_OPTIONS = flagOptions(['pruneDryRun', ...REMOTE_FLAGS]);

interface Pruned {
  image: string;
  bytes: number;
  removed: boolean;
}

async function pruneServer(list: readonly Target[], exec: (s: Script) => Promise<string>, dryRun: boolean) {
  const tenants = [];
  for (const t of list) {
    const i = parseInspection(await exec(inspectTenant(t.tenant, strategyFor(t).inspect(), 200)));
    tenants.push({ tenant: t.tenant, env: i.env, history: i.history });
  }
  const refs = serverPrunable(tenants);
  if (!refs.length) return [];
  const out = await exec(removeImages(list[0]!.tenant, refs, dryRun));
  const images = new Map<string, Pruned>();
  for (const line of out.split('\n')) {
    const m = /^@@(image|removed|kept) (\S+)(?: (\d+))?$/.exec(line.trim());
    if (!m || !refs.includes(m[2]!)) continue;
    if (m[1] === 'image') images.set(m[2]!, { image: m[2]!, bytes: Number(m[3] ?? 0), removed: false });
    else if (m[1] === 'removed' && images.has(m[2]!)) images.get(m[2]!)!.removed = true;
  }
  return [...images.values()];
}

export async function runPrune(values: Values, io: CliIO): Promise<number> {
  const { registry, targets, connector, concurrency } = await openRemote(remoteFlags(values), io);
  const dryRun = Boolean(values['dry-run']);
  const whole = byServer(targets).filter((list) => {
    const all = registry.servers.find((s) => s.name === list[0]!.server.name)!.tenants.length;
    if (list.length === all) return true;
    io.stderr(`${list[0]!.server.name}: skipped, only ${list.length} of its ${all} tenants are selected\n`);
    return false;
  });
  const results = await eachServer(
    whole.map((list) => list[0]!),
    connector,
    (first, transport) =>
      pruneServer(
        whole.find((l) => l[0] === first)!,
        async (script) => {
          const r = await transport.exec(script, { timeoutMs: 300_000 });
          if (r.code !== 0) throw new Error(describe(r));
          return r.stdout;
        },
        dryRun,
      ),
    { concurrency },
  );
  const rows: string[][] = [];
  let freed = 0;
  let failed = 0;
  for (const [id, r] of results) {
    const server = id.split('/')[0]!;
    if (!r.ok) {
      failed++;
      rows.push([server, '', '', `failed: ${r.error}`]);
      continue;
    }
    for (const p of r.value) {
      if (dryRun || p.removed) freed += p.bytes;
      const what = dryRun ? 'would remove' : p.removed ? 'removed' : 'kept (a container uses it)';
      rows.push([server, p.image, `${(p.bytes / (1 << 20)).toFixed(1)} MiB`, what]);
    }
    if (!r.value.length) rows.push([server, '(nothing to prune)', '', '']);
  }
  io.stdout(`${table(['SERVER', 'IMAGE', 'SIZE', dryRun ? 'DRY RUN' : 'RESULT'], rows)}\n`);
  io.stdout(
    `${dryRun ? 'Would free' : 'Freed'} ${(freed / (1 << 20)).toFixed(1)} MiB on ${plural(results.size, 'server')}\n`,
  );
  return failed ? 1 : 0;
}
