/**
 * The loop every read-and-maintain command shares (history, status, logs, backup, restore, prune,
 * setup-server): group the targets by server, open ONE connection per server (at most `concurrency`
 * servers at once), run the work of each of its targets over that connection, close it in `finally`.
 * Each target fails alone; a server that cannot be reached fails its targets with the connect error.
 */
import type { Server, Target } from '../registry/model';
import type { Connector, Transport } from '../ports';

/**
 * How one target's work ended: its value, or the error's message. (Not a deploy's `Outcome`
 * (deploy/result.ts), which says what a deploy did to a target.)
 */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: string };

export interface EachServerOptions {
  /** Servers worked on at once (the CLI's --concurrency, the settings table's default when not given). */
  concurrency: number;
  /**
   * Targets of one server worked on at once over its connection, one exec channel each (default 1,
   * sequential). `logs -f` follows every tenant at once; sshd's MaxSessions (10 by default) bounds it.
   */
  perServer?: number;
  /** The server as connected to, when it differs from the registry's (setup-server logs in as an admin). */
  as?: (server: Server) => Server;
}

/** The targets grouped by server, in the order they were given. */
export function byServer(targets: readonly Target[]): Target[][] {
  const groups = new Map<string, Target[]>();
  for (const t of targets) groups.set(t.server.name, [...(groups.get(t.server.name) ?? []), t]);
  return [...groups.values()];
}

/** Runs `items` through `work`, at most `limit` at once. */
export async function bounded<I>(items: readonly I[], limit: number, work: (item: I) => Promise<void>) {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(lanes);
}

/** How each target's work ended, keyed by target id (every target of `targets` has one). */
export async function eachServer<T>(
  targets: readonly Target[],
  connector: Connector,
  work: (target: Target, transport: Transport) => Promise<T>,
  options: EachServerOptions,
): Promise<Map<string, Settled<T>>> {
  const results = new Map<string, Settled<T>>();
  await bounded(byServer(targets), options.concurrency, async (list) => {
    const server = list[0]!.server;
    let transport: Transport | undefined;
    try {
      transport = await connector.connect(options.as ? options.as(server) : server);
    } catch (e) {
      for (const t of list) results.set(t.id, { ok: false, error: (e as Error).message });
      return;
    }
    try {
      await bounded(list, options.perServer ?? 1, async (t) => {
        try {
          results.set(t.id, { ok: true, value: await work(t, transport!) });
        } catch (e) {
          results.set(t.id, { ok: false, error: (e as Error).message });
        }
      });
    } finally {
      await transport.close();
    }
  });
  return results;
}
