/**
 * One target's files of a release (issue 25), between the steps of target.ts: `check` (in `compare`)
 * learns what the server has, sends only the files it lacks and stages them (hashes checked, compose
 * files parsed) without changing the tenant's files; `install` (in the switch, before `.env`) puts them
 * in place; `restore` (in a rollback) puts back, byte for byte, the files they replaced. Pure: it talks to
 * the server through TargetShell and the scripts of src/remote/files.ts.
 */
import type { Tenant } from '../registry/model';
import { RELATIVE_FILE, hasDotSegment } from '../registry/patterns';
import { projectOf, takesProjectDirectory } from '../remote/compose';
import * as F from '../remote/files';
import type { Release } from './result';
import { describe, StepFailure, type TargetShell } from './shell';

/** A release's files for one target, as src/files/local.ts read them: the list and each file's bytes. */
export interface FileRelease {
  entries: readonly F.ShippedEntry[];
  /** sha256 → the file's bytes (each hash once). */
  contents: ReadonlyMap<string, Uint8Array>;
}

/** The files of a release as the history records them: path → sha256. */
export const fileHashes = (entries: readonly { to: string; sha256: string }[]): Record<string, string> =>
  Object.fromEntries(entries.map((e) => [e.to, e.sha256]));

/** The modes of `entries` that are not 644, as the history records them. */
const modesOf = (entries: readonly F.ShippedEntry[]): Record<string, string> =>
  Object.fromEntries(entries.filter((e) => e.mode !== 0o644).map((e) => [e.to, e.mode.toString(8)]));

/** A release's files as the history recorded them (their bytes are on the server, in the store). */
export function recordedRelease(files: Record<string, string>, modes: Record<string, string>): FileRelease {
  const entries = Object.entries(files).map(([to, sha256]) => ({
    to,
    sha256,
    mode: modes[to] ? parseInt(modes[to], 8) : 0o644,
    size: 0,
  }));
  return { entries, contents: new Map() };
}

const listText = (list: readonly { sha256: string; mode: number; to: string }[]) =>
  list.map((e) => `${e.sha256} ${e.mode.toString(8)} ${e.to}\n`).join('');

/**
 * What a switch's `install files` notes in the lock before the first file changes (and the deploy
 * action keeps in its state): the files it installs and those they replace, by hash (the store keeps
 * both), the paths it adds (the restore removes them) and the installed list before it. A deploy cut off
 * after that — killed, its lease run out — is mended with it: the post step or the next deploy's
 * take-over puts the replaced files back byte for byte (`restoreNoted`) with the previous images.
 */
export interface FilesNote {
  files: Record<string, string>;
  fileModes: Record<string, string>;
  fromFiles: Record<string, string>;
  fromFileModes: Record<string, string>;
  /** Paths the switch adds or that had no file before it: the restore removes them. */
  remove: string[];
  /** The installed list before the switch ("SHA256 MODE PATH" each); null: there was none. */
  fromList: string[] | null;
}

const SHA = /^[a-f0-9]{64}$/;
const MODE = /^[0-7]{3,4}$/;
const isPath = (p: unknown): p is string =>
  typeof p === 'string' && RELATIVE_FILE.re.test(p) && !hasDotSegment(p);
const LIST_LINE = /^([a-f0-9]{64}) ([0-7]{3,4}) (.+)$/;

/** path → value, every path and value checked (`undefined`: anything else). */
function checkedMap(v: unknown, value: RegExp): Record<string, string> | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!isPath(k) || typeof x !== 'string' || !value.test(x)) return undefined;
    out[k] = x;
  }
  return out;
}

/**
 * A files note read back (server text, or the action's state): every hash, mode and path checked
 * against the patterns; anything else, or a mode of a file the note does not have, refuses the whole note.
 */
export function parseFilesNote(text: string): FilesNote | undefined {
  let n: Record<string, unknown>;
  try {
    n = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (n === null || typeof n !== 'object') return undefined;
  const [files, fileModes, fromFiles, fromFileModes] = [
    checkedMap(n.files, SHA),
    checkedMap(n.fileModes, MODE),
    checkedMap(n.fromFiles, SHA),
    checkedMap(n.fromFileModes, MODE),
  ];
  if (!files || !fileModes || !fromFiles || !fromFileModes) return undefined;
  if (!Object.keys(fromFileModes).every((p) => p in fromFiles)) return undefined;
  const remove = n.remove;
  if (!Array.isArray(remove) || !remove.every(isPath) || remove.some((p) => p in fromFiles)) return undefined;
  const list = n.fromList;
  const listOk = (l: unknown) => typeof l === 'string' && LIST_LINE.test(l) && isPath(LIST_LINE.exec(l)![3]);
  if (list !== null && (!Array.isArray(list) || !list.every(listOk))) return undefined;
  return { files, fileModes, fromFiles, fromFileModes, remove, fromList: list as string[] | null };
}

/** The previous files of a note back in place, byte for byte (the store keeps them): a cut-off switch undone. */
export async function restoreNoted(
  tenant: Tenant,
  shell: TargetShell,
  note: FilesNote,
  timeoutMs?: number,
): Promise<string> {
  const { entries } = recordedRelease(note.fromFiles, note.fromFileModes);
  const list = note.fromList === null ? {} : { list: note.fromList.map((l) => `${l}\n`).join('') };
  await shell.must('files', F.installFiles(tenant, { entries, remove: note.remove, ...list }), timeoutMs);
  const added = note.remove.length ? `, ${note.remove.length} it had added removed` : '';
  return `its previous ${entries.length} files put back${added}`;
}

export class TargetFiles {
  /** The files differ from the installed ones: the switch installs them. */
  changed = false;
  /** The install began: a rollback restores the previous files. */
  installing = false;
  private remove: string[] = [];
  private changedPaths = new Set<string>();
  private previous: { entries: F.ShippedEntry[]; remove: string[]; list?: string } = {
    entries: [],
    remove: [],
  };
  /** Bytes sent to stage the files (their base64), for the report and the benchmark. */
  sentBytes = 0;

  constructor(
    private readonly tenant: Tenant,
    private readonly release: FileRelease,
    private readonly shell: TargetShell,
    private readonly timeoutMs: number,
  ) {}

  /** Probes the server and stages what it lacks; fills the releases' file hashes; returns a detail. */
  async check(current: Release, next: Release): Promise<string> {
    const entries = this.release.entries;
    const t = this.tenant;
    const wanted = [...new Set(entries.map((e) => e.sha256))];
    const r = await this.shell.exec(
      F.probeFiles(
        t,
        wanted,
        entries.map((e) => e.to),
      ),
      this.timeoutMs,
    );
    if (r.code !== 0) throw new StepFailure('files', `reading the files of ${t.path} failed: ${describe(r)}`);
    const probed = F.parseProbe(r.stdout);
    const links = [...probed.installed].filter(([, s]) => s === 'link').map(([p]) => p);
    if (links.length)
      throw new StepFailure(
        'files',
        `refusing to ship files into ${t.path}: ${links.join(', ')} ` +
          `${links.length > 1 ? 'are symbolic links' : 'is a symbolic link'} (a release writes no file ` +
          `through a link); make ${links.length > 1 ? 'them' : 'it'} a plain ` +
          `${links.length > 1 ? 'files or directories' : 'file or directory'}: nothing was changed`,
      );
    const installedOf = (to: string) => probed.installed.get(to) as F.Installed | undefined;
    const same = (e: F.ShippedEntry) => {
      const i = installedOf(e.to);
      return typeof i === 'object' && i.sha256 === e.sha256 && i.mode === e.mode;
    };
    const shipped = new Set(entries.map((e) => e.to));
    this.remove = probed.list
      .map((l) => l.to)
      .filter((to) => !shipped.has(to) && typeof installedOf(to) === 'object');
    const differ = entries.filter((e) => !same(e));
    this.changedPaths = new Set([...differ.map((e) => e.to), ...this.remove]);
    this.changed = differ.length > 0 || this.remove.length > 0;
    next.files = fileHashes(entries);
    next.fileModes = modesOf(entries);
    current.files = this.recordPrevious(probed, [...shipped, ...this.remove]);
    current.fileModes = modesOf(this.previous.entries);
    if (!this.changed) return `${entries.length} files unchanged (hashes only sent)`;
    const send = wanted.filter((s) => !probed.have.has(s));
    const lost = send.filter((s) => !this.release.contents.has(s));
    if (lost.length)
      throw new StepFailure(
        'files',
        `${lost.length} of the files of the release to put back are no longer kept in ` +
          `${t.path}/${F.FILES_DIR}: deploy that release from its commit instead`,
      );
    const stdin = send
      .map((s) => `${Buffer.from(this.release.contents.get(s)!).toString('base64')}\n`)
      .join('');
    this.sentBytes = stdin.length;
    const keep = this.previous.entries.map((e) => ({ to: e.to, sha256: e.sha256 }));
    // files of the release not on the server yet, besides the compose files
    const arriving = differ.filter(
      (e) => !t.compose.files.includes(e.to) && typeof installedOf(e.to) !== 'object',
    );
    const compose = this.checksStaged(shipped, arriving.length > 0)
      ? t.compose.files.map((f) => entries.find((e) => e.to === f)?.sha256 ?? f)
      : undefined;
    const staged = await this.shell.exec(
      F.stageFiles(t, { send, keep, all: wanted, ...(compose ? { compose } : {}) }),
      this.timeoutMs,
      stdin,
    );
    if (staged.code !== 0)
      throw new StepFailure('files', `staging the files of ${t.path} failed: ${describe(staged)}`);
    const drift = F.driftOf(probed);
    return (
      `${differ.length + this.remove.length} of ${entries.length + this.remove.length} files change, ` +
      `${send.length} sent (${this.sentBytes} bytes), staged${compose ? ' and checked' : ''}` +
      (drift.length ? `; drift replaced: ${drift.join('; ')}` : '')
    );
  }

  /**
   * Whether staging parses the compose files: the staged copies stand in for the shipped compose files,
   * and everything else they name (an `env_file:`, an `extends` file, a build context) is read from the
   * tenant's directory as it is now — so not when the release brings a file the server does not have yet
   * (the compose file may name it: refused as not parsing, the release could never land), nor when
   * Compose takes no `--project-directory` (podman-compose; `podman compose` may hand over to it). Then
   * the switch meets them in place, after the files are installed (its compose check when they changed,
   * and `up`), where a failure puts the previous ones back.
   */
  private checksStaged(shipped: ReadonlySet<string>, arriving: boolean): boolean {
    const compose = this.tenant.compose;
    return compose.files.some((f) => shipped.has(f)) && !arriving && takesProjectDirectory(compose.command);
  }

  /** The switch: the release's files in place (before `.env`); from here a failure restores the previous ones. */
  async install(running?: string, kept: readonly string[] = []): Promise<string> {
    const project = running ?? projectOf(this.tenant);
    this.installing = true;
    const list = listText(this.release.entries);
    // a compose file changed: the services it no longer has are removed (as `up --remove-orphans` would)
    const compose = this.tenant.compose.files.some((f) => this.changedPaths.has(f));
    const orphans = compose ? { orphans: project } : {};
    const out = await this.shell.must(
      'install files',
      F.installFiles(this.tenant, {
        entries: this.release.entries,
        remove: this.remove,
        list,
        note: JSON.stringify(this.note()),
        ...orphans,
        // the store keeps this release's files, those it replaces, and those of the releases kept
        keep: [
          ...new Set([...this.release.entries, ...this.previous.entries].map((e) => e.sha256).concat(kept)),
        ],
      }),
      this.timeoutMs,
    );
    const orphaned = F.parseOrphans(out);
    const pruned = Number(/^@@pruned (\d+)$/m.exec(out)?.[1] ?? 0);
    return [
      `${this.release.entries.length} files in place`,
      this.remove.length ? `${this.remove.length} removed` : '',
      orphaned.length ? `containers of ${orphaned.join(', ')} removed (no longer in the compose files)` : '',
      pruned ? `${pruned} stored files of older releases pruned` : '',
    ]
      .filter(Boolean)
      .join(', ');
  }

  /** The rollback: the files the release replaced, back byte for byte (and the ones it added removed). */
  async restore(): Promise<void> {
    if (!this.installing) return;
    await this.shell.must('rollback', F.installFiles(this.tenant, this.previous), this.timeoutMs);
  }

  /** What the switch installs and what it replaces: noted in the lock before it (FilesNote). */
  note(): FilesNote {
    const prev = this.previous;
    return {
      files: fileHashes(this.release.entries),
      fileModes: modesOf(this.release.entries),
      fromFiles: fileHashes(prev.entries),
      fromFileModes: modesOf(prev.entries),
      remove: prev.remove,
      fromList: prev.list === undefined ? null : prev.list.split('\n').filter(Boolean),
    };
  }

  /** What the files were before this release (for the restore and the history). */
  private recordPrevious(probed: F.Probed, paths: readonly string[]): Record<string, string> {
    const entries: F.ShippedEntry[] = [];
    const remove: string[] = [];
    for (const to of paths) {
      const i = probed.installed.get(to);
      if (typeof i === 'object') entries.push({ to, sha256: i.sha256, mode: i.mode, size: 0 });
      else remove.push(to);
    }
    this.previous = { entries, remove, ...(probed.list.length ? { list: listText(probed.list) } : {}) };
    return fileHashes(entries);
  }
}
