/**
 * What `--dry-run` shows of the files a release ships, offline: for each target the set of files it ships
 * (an ID over path, mode and sha256), and each distinct file listed once — so 10,000 targets sharing a
 * policy bundle list it once, not 10,000 times. Only paths, modes, sizes and hashes are shown: a
 * templated file's content (which may hold a secret variable's value) never is. What differs from the
 * files on each server is known only there: the deploy's `files` step says it.
 */
import { createHash } from 'node:crypto';
import type { FileRelease } from '../deploy/files';

/** The ID of a release's set of files: a sha256 over its sorted "sha256 mode path" lines (12 digits). */
export function filesId(release: FileRelease): string {
  const lines = release.entries.map((e) => `${e.sha256} ${e.mode.toString(8)} ${e.to}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 12);
}

export class FilesPreview {
  private readonly sets = new Map<string, string>();
  /** "path sha256" → the first target it was listed for. */
  private readonly listed = new Map<string, string>();

  /**
   * The dry run's lines for one target: its set of files (an ID), the files not listed before, and how
   * many were (with the target they were listed for): a file shared by the fleet is listed once.
   */
  lines(targetId: string, release: FileRelease | undefined): string[] {
    if (!release) return [];
    const id = filesId(release);
    const size = release.entries.reduce((n, e) => n + e.size, 0);
    const head = `[files] ${release.entries.length} files (${size} bytes), set ${id}`;
    const sameSet = this.sets.get(id);
    if (sameSet) return [`${head}: the same as ${sameSet}`];
    this.sets.set(id, targetId);
    const fresh = release.entries.filter((e) => !this.listed.has(`${e.to} ${e.sha256}`));
    const before = release.entries.length - fresh.length;
    const first = release.entries.find((e) => this.listed.has(`${e.to} ${e.sha256}`));
    for (const e of fresh) this.listed.set(`${e.to} ${e.sha256}`, targetId);
    return [
      `${head}; sent only where the server's differ (hashes first):`,
      ...fresh.map((e) => `[files]   ${e.to}  ${e.mode.toString(8)}  ${e.size} bytes  sha256:${e.sha256}`),
      ...(before
        ? [`[files]   ${before} more as listed for ${this.listed.get(`${first!.to} ${first!.sha256}`)}`]
        : []),
    ];
  }
}
