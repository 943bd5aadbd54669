/**
 * What `--dry-run` shows of the files a release ships, offline: for each target the set of files it ships
 * (an ID over path, mode and sha256), and each distinct set listed once — so 10,000 targets sharing one
 * compose file and policy print one list, not 10,000. Only paths, modes, sizes and hashes are shown: a
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
  private readonly shown = new Map<string, string>();

  /** The dry run's lines for one target: the set's ID, and the set itself the first time it appears. */
  lines(targetId: string, release: FileRelease | undefined): string[] {
    if (!release) return [];
    const id = filesId(release);
    const first = this.shown.get(id);
    const size = release.entries.reduce((n, e) => n + e.size, 0);
    const head = `[files] ${release.entries.length} files (${size} bytes), set ${id}`;
    if (first) return [`${head}: the same as ${first}`];
    this.shown.set(id, targetId);
    return [
      `${head}; sent only where the server's differ (hashes first):`,
      ...release.entries.map(
        (e) => `[files]   ${e.to}  ${e.mode.toString(8)}  ${e.size} bytes  sha256:${e.sha256}`,
      ),
    ];
  }
}
