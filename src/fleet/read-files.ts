/**
 * `plan --diff` (issue 25): reads, read-only over one SSH connection per server, the files each target's
 * release would replace, and turns them into the grouped changes of src/files/changes.ts.
 */
import type { FileRelease } from '../deploy/files';
import {
  fileChanges,
  groupChanges,
  type ChangeGroup,
  type DiffSummary,
  type FileChange,
} from '../files/changes';
import type { Connector } from '../ports';
import type { Target } from '../registry/model';
import { parseShippedFiles, readShippedFiles } from '../remote/files-read';
import { describe } from '../deploy/shell';
import { eachServer } from './each-server';

export interface FileDiffSource {
  /** The targets in plan order; those without files are left out. */
  targets: readonly Target[];
  /** target id → the release's files, as src/files/local.ts read them */
  releases: ReadonlyMap<string, FileRelease>;
  /** values of secret variables: never shown */
  secrets: readonly string[];
  connector: Connector;
  concurrency: number;
}

/** Every target's file changes, grouped; targets whose files would not change, and those not read. */
export async function fleetFileChanges(
  o: FileDiffSource,
): Promise<{ groups: ChangeGroup[]; summary: DiffSummary }> {
  const targets = o.targets.filter((t) => o.releases.has(t.id));
  const results = await eachServer(
    targets,
    o.connector,
    async (t, transport) => {
      const release = o.releases.get(t.id)!;
      const r = await transport.exec(
        readShippedFiles(
          t.tenant,
          release.entries.map((e) => e.to),
        ),
        { timeoutMs: 60_000 },
      );
      if (r.code !== 0) throw new Error(`cannot read the files of ${t.tenant.path}: ${describe(r)}`);
      const names = { tenant: t.tenant.id, server: t.server.name };
      return fileChanges(t.tenant, release, parseShippedFiles(r.stdout), o.secrets, names);
    },
    { concurrency: o.concurrency, perServer: 4 },
  );
  const changes: Array<[string, FileChange[]]> = [];
  const summary: DiffSummary = { unchanged: [], unread: [] };
  for (const t of targets) {
    const r = results.get(t.id)!;
    if (!r.ok) summary.unread.push([t.id, r.error]);
    else if (r.value.length) changes.push([t.id, r.value]);
    else summary.unchanged.push(t.id);
  }
  return { groups: groupChanges(changes), summary };
}
