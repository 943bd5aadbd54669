/**
 * What `fleet-deploy prune` may remove on one server: the images of this tool's older releases
 * (History.retention), never one that any tenant sharing the server keeps — its running release, the
 * one it replaced, or its last `keepReleases` — and only images of a tenant's own repositories, as the
 * registry names them (the history on the server may name any image). Pure.
 */
import type { Tenant } from '../registry/model';
import { History, parseHistory } from '../deploy/history';
import type { Release } from '../deploy/result';

export interface TenantImages {
  tenant: Tenant;
  /** image variable → reference in .env: the release that runs */
  env: Record<string, string>;
  history: readonly string[];
}

const release = (refs: Record<string, string>): Release => ({ refs, imageIds: [], digests: [] });
const same = (a: Record<string, string>, b: Record<string, string>) =>
  JSON.stringify(a) === JSON.stringify(b);

export function serverPrunable(tenants: readonly TenantImages[]): string[] {
  const kept = new Set<string>();
  const prunable = new Set<string>();
  for (const t of tenants) {
    const entries = parseHistory(t.history);
    // the release the running one replaced: the `from` of the newest deploy that brought it in
    const brought = [...entries]
      .reverse()
      .find((e) => e.outcome === 'deployed' && e.toRefs && same(e.toRefs, t.env));
    const r = new History(entries).retention(
      release(t.env),
      release(brought?.fromRefs ?? {}),
      t.tenant.keepReleases,
      t.tenant.images.map((i) => i.repository),
    );
    r.kept.forEach((ref) => kept.add(ref));
    r.prunable.forEach((ref) => prunable.add(ref));
  }
  return [...prunable].filter((ref) => !kept.has(ref)).sort();
}
