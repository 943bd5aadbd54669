/**
 * The release history of a target: `.fleet/history.jsonl` in its directory, one JSON entry per deploy,
 * rollback or failed attempt. This module is its one home (as Kamal's auditor is): the entry type, how
 * an entry is written, how lines read back from a server are parsed — each value checked with the same
 * patterns as user input, because the file lives on a server and anyone who can write there can edit it —
 * and every choice made from it: the versions a target ran, the release before the running one (the
 * rollback rule), and the images a deploy may prune. Pure.
 */
import { z } from 'zod';
import {
  ENV_VAR,
  hasDotSegment,
  IMAGE_DIGEST,
  IMAGE_REF,
  IMAGE_TAG,
  RELATIVE_FILE,
} from '../registry/patterns';
import { versionOf } from '../registry/release';
import type { Outcome, Release } from './result';

/** A version as the registry and the flags accept it: an image tag or a digest. */
export const isVersion = (v: string) => IMAGE_TAG.re.test(v) || IMAGE_DIGEST.re.test(v);

const IMAGE_ID = /^sha256:[a-f0-9]{64}$/;

const version = z.string().refine(isVersion);
/** What a release's refs may hold: image variables → references (compose), or { version } (commands). */
const refs = z.record(
  z.string().regex(ENV_VAR.re),
  z.string().refine((r) => IMAGE_REF.test(r) || isVersion(r)),
);
/** Free text (who, which run, why it failed): shown to people, never run; one line, bounded. */
const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !/[\r\n]/.test(s));

/** Shipped files as recorded: a path in the tenant directory → its sha256. */
const fileHashes = z.record(
  z.string().refine((p) => RELATIVE_FILE.re.test(p) && !hasDotSegment(p)),
  z.string().regex(/^[a-f0-9]{64}$/),
);

const fileModes = z.record(
  z.string().refine((p) => RELATIVE_FILE.re.test(p) && !hasDotSegment(p)),
  z.string().regex(/^[0-7]{3}$/),
);

const entrySchema = z.object({
  time: z.string().max(64).optional(),
  actor: text(256).optional(),
  run: text(512).optional(),
  target: text(256).optional(),
  outcome: z.enum(['deployed', 'rolled-back', 'failed', 'unchanged', 'skipped', 'cancelled']),
  from: version.nullable().optional(),
  to: version.optional(),
  fromRefs: refs.optional(),
  toRefs: refs.optional(),
  fromImages: z.array(z.string().regex(IMAGE_ID)).optional(),
  toImages: z.array(z.string().regex(IMAGE_ID)).optional(),
  digests: z.array(z.string().refine((r) => IMAGE_REF.test(r))).optional(),
  /** Compose's config-hash label of the release's containers, when the deploy recorded it (status compares it). */
  configHash: z
    .string()
    .regex(/^[a-f0-9]{64}$/)
    .optional(),
  /** The files shipped with the release (registry `files`): path → sha256, and those before it. */
  files: fileHashes.optional(),
  fromFiles: fileHashes.optional(),
  /** Their modes where not 644 (path → octal mode). */
  fileModes: fileModes.optional(),
  fromFileModes: fileModes.optional(),
  rollback: z.boolean().optional(),
  error: z.string().max(4096).optional(),
});

export type HistoryEntry = z.infer<typeof entrySchema>;

/**
 * The entries of history lines as read from a server, oldest first. A line that is not JSON, or whose
 * values fail the patterns a user's input must pass (a version with a newline, a reference with shell
 * text), is dropped: it says nothing and steers nothing.
 */
/** The repository of an image reference: without its digest (`@…`) and its tag (`:…` after the last `/`). */
export function repositoryOf(ref: string): string {
  const bare = ref.replace(/@.*$/, '');
  const slash = bare.lastIndexOf('/');
  const colon = bare.lastIndexOf(':');
  return colon > slash ? bare.slice(0, colon) : bare;
}

export function parseHistory(lines: readonly string[]): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const line of lines) {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      continue;
    }
    const entry = entrySchema.safeParse(raw);
    if (entry.success) out.push(entry.data);
  }
  return out;
}

/** What one target's deploy records. */
export interface Recorded {
  time: Date;
  actor: string;
  run: string;
  target: string;
  /**
   * A deploy's outcome, or "cancelled": the run was stopped while its gate waited (and it was rolled
   * back), or a CI job was cancelled mid-switch and its post step switched the target back.
   */
  outcome: Outcome | 'cancelled';
  previous: Release;
  next: Release;
  rollback: boolean;
  error?: string;
  /** Why a rollback was made, when a rollout decided it (an analysis between waves that failed). */
  reason?: string;
}

/** The history line of a finished deploy (one line of JSON; its field order is the file's). */
export function historyLine(r: Recorded): string {
  return JSON.stringify({
    time: r.time.toISOString(),
    actor: r.actor,
    run: r.run,
    target: r.target,
    outcome: r.outcome,
    from: r.previous.version ?? null,
    to: r.next.version,
    fromRefs: r.previous.refs,
    toRefs: r.next.refs,
    fromImages: r.previous.imageIds,
    toImages: r.next.imageIds,
    digests: r.next.digests,
    ...(r.next.configHash ? { configHash: r.next.configHash } : {}),
    ...(r.next.files ? { files: r.next.files, fromFiles: r.previous.files ?? {} } : {}),
    ...(r.next.files && Object.keys(r.next.fileModes ?? {}).length ? { fileModes: r.next.fileModes } : {}),
    ...(r.next.files && Object.keys(r.previous.fileModes ?? {}).length
      ? { fromFileModes: r.previous.fileModes }
      : {}),
    ...(r.rollback ? { rollback: true } : {}),
    ...(r.error ? { error: r.error } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  });
}

/** The running release, as the history matches it: by its references when known, else by its version. */
export interface Running {
  version?: string;
  refs?: Readonly<Record<string, string>>;
}

/** A release recalled from the history: its version, and its references when the entry had them. */
interface Recalled {
  version: string;
  refs?: Readonly<Record<string, string>>;
}

const asRunning = (r: string | undefined | Running): Running =>
  typeof r === 'object' ? r : r === undefined ? {} : { version: r };
const hasRefs = (refs: Readonly<Record<string, string>> | undefined): refs is Record<string, string> =>
  refs !== undefined && Object.keys(refs).length > 0;
const refsKey = (refs: Readonly<Record<string, string>>) =>
  JSON.stringify(Object.entries(refs).sort(([a], [b]) => (a < b ? -1 : 1)));
const key = (r: Recalled) => (hasRefs(r.refs) ? refsKey(r.refs) : `v:${r.version}`);

/** An entry's side (`version`, `refs`) is release `r`: the same references when both have them, else the same version. */
function same(
  version: string | null | undefined,
  refs: Readonly<Record<string, string>> | undefined,
  r: Running,
) {
  if (hasRefs(refs) && hasRefs(r.refs)) return refsKey(refs) === refsKey(r.refs);
  return version != null && version === r.version;
}

/** A rollback's choice: the version, and each image's version from the references recorded with it. */
function withVersions(version: string, refs: Readonly<Record<string, string>> | undefined) {
  const versions = Object.fromEntries(
    Object.entries(refs ?? {})
      .filter(([, ref]) => IMAGE_REF.test(ref))
      .map(([variable, ref]) => [variable, versionOf(ref)]),
  );
  return Object.keys(versions).length ? { version, versions } : { version };
}

/** A target's history, newest entry first, and the choices made from it. */
export class History {
  /** Newest first. */
  private readonly entries: readonly HistoryEntry[];

  constructor(oldestFirst: readonly HistoryEntry[]) {
    this.entries = [...oldestFirst].reverse();
  }

  static parse(lines: readonly string[]): History {
    return new History(parseHistory(lines));
  }

  private deployed(): HistoryEntry[] {
    return this.entries.filter((e) => e.outcome === 'deployed');
  }

  /**
   * The versions the target has run, newest first: the `to` of every deployed release and the `from`
   * it replaced (so the release before the first recorded deploy counts too).
   */
  releases(): string[] {
    const out = new Set<string>();
    for (const e of this.deployed()) {
      if (e.to) out.add(e.to);
      if (e.from) out.add(e.from);
    }
    return [...out];
  }

  /**
   * The release before `running`: the `from` of the newest forward deploy (not a rollback) that brought
   * `running` in. So rolling back again goes further back (v3 → v2 → v1), never forward. A `from` that
   * never ran (only ever the target of failed attempts, as when a cut-off deploy left it in .env) is
   * passed over for what ran before that attempt.
   */
  previous(running: string | undefined | Running): string | undefined {
    return this.previousRelease(asRunning(running))?.version;
  }

  /**
   * `previous`, with the references the release had (`fromRefs` of the deploy that brought the running
   * one in). Releases are told apart by their references when both sides have them — two releases of a
   * tenant with several images may share the first image's version — else by their versions.
   */
  private previousRelease(running: Running): Recalled | undefined {
    const found = this.previousOf(running);
    // References the history never saw (the registry's images changed since): match by version.
    return found ?? (hasRefs(running.refs) ? this.previousOf({ version: running.version }) : undefined);
  }

  private previousOf(running: Running): Recalled | undefined {
    for (const e of this.deployed())
      if (!e.rollback && e.from && same(e.to, e.toRefs, running)) {
        const before = this.ranBefore({ version: e.from, refs: e.fromRefs }, running);
        if (before) return before;
      }
    return undefined;
  }

  /** `candidate`, or when it never ran, what ran before the attempt at it (and so on); never `running`. */
  private ranBefore(candidate: Recalled, running: Running): Recalled | undefined {
    const seen = new Set<string>();
    let c: Recalled | undefined = candidate;
    while (c && !same(c.version, c.refs, running) && this.neverRan(c) && !seen.has(key(c))) {
      seen.add(key(c));
      const at: Recalled = c;
      const attempt = this.entries.find(
        (x) => same(x.to, x.toRefs, at) && x.outcome !== 'deployed' && x.from,
      );
      c = attempt?.from ? { version: attempt.from, refs: attempt.fromRefs } : undefined;
    }
    return c && !same(c.version, c.refs, running) ? c : undefined;
  }

  /** Only ever the target of attempts that did not deploy. */
  private neverRan(r: Recalled): boolean {
    return (
      !this.entries.some((x) => same(x.to, x.toRefs, r) && x.outcome === 'deployed') &&
      this.entries.some((x) => same(x.to, x.toRefs, r))
    );
  }

  /**
   * Where a rollback goes: to `to` when given (it must be a version the target ran), else to the
   * release before the running one; an error message when there is none. With the version come the
   * versions of each image as the history recorded them (`toRefs` of the newest deploy of `to`, or the
   * `fromRefs` of the deploy that brought the running release in), so a release whose images were at
   * different versions comes back exactly as it ran.
   */
  rollbackTarget(
    targetId: string,
    running: string | undefined | Running,
    to: string | undefined,
  ): { version: string; versions?: Record<string, string> } | { error: string } {
    const known = this.releases();
    const now = asRunning(running);
    if (to !== undefined) {
      if (known.includes(to)) return withVersions(to, this.refsOf(to));
      return {
        error:
          `version ${to} is not in the release history of ${targetId}; known versions: ` +
          (known.length ? known.join(', ') : 'none (no history yet)'),
      };
    }
    const before = this.previousRelease(now);
    if (before) return withVersions(before.version, before.refs ?? this.refsOf(before.version));
    return {
      error:
        `${targetId} has no earlier release in its history to roll back to (running ${now.version ?? 'nothing'}` +
        `${known.length ? `; known versions: ${known.join(', ')}, pick one with --to` : ''})`,
    };
  }

  /**
   * The files `version` ran with (path → sha256, and the modes that are not 644), found as its
   * references are: the newest deploy that brought it in, else the one that replaced it.
   */
  filesOf(version: string): { files: Record<string, string>; modes: Record<string, string> } | undefined {
    const deployed = this.deployed();
    const to = deployed.find((e) => e.to === version && e.files);
    if (to) return { files: to.files!, modes: to.fileModes ?? {} };
    const from = deployed.find((e) => e.from === version && e.fromFiles);
    return from ? { files: from.fromFiles!, modes: from.fromFileModes ?? {} } : undefined;
  }

  /**
   * The file hashes a tenant keeps in its store (`.fleet/files/`): those of its last `keep` deployed
   * releases and of the files each replaced, so `rollback` can go back that far (as with images).
   */
  keptFiles(keep: number): string[] {
    const kept = new Set<string>();
    for (const e of this.deployed()
      .filter((x) => x.files)
      .slice(0, keep))
      for (const sha of [...Object.values(e.files ?? {}), ...Object.values(e.fromFiles ?? {})]) kept.add(sha);
    return [...kept];
  }

  /** The references `version` ran with: of the newest deploy that brought it in, else that replaced it. */
  private refsOf(version: string): Record<string, string> | undefined {
    const deployed = this.deployed();
    const to = deployed.find((e) => e.to === version && e.toRefs && Object.keys(e.toRefs).length);
    if (to) return to.toRefs;
    return deployed.find((e) => e.from === version && e.fromRefs && Object.keys(e.fromRefs).length)?.fromRefs;
  }

  /**
   * Image references a deploy may remove once `next` runs: those of this tool's own earlier releases
   * (from the history) that fell out of the last `keep`, never one of `next` or `previous`. Found from
   * the history rather than by listing the engine's images, so pruning costs no extra command, and
   * images this tool did not deploy are left alone.
   */
  prunable(next: Release, previous: Release, keep: number, repositories: readonly string[]): string[] {
    return this.retention(next, previous, keep, repositories).prunable;
  }

  /**
   * The retention rule both ways: the references kept (`next`, `previous` and the last `keep` releases)
   * and the older ones of this tool's releases that may go. `fleet-deploy prune` keeps what any tenant
   * sharing a server keeps. The history is server text: only references to `repositories` (the tenant's
   * own images, as the registry names them) may go, whatever else a history line names.
   */
  retention(
    next: Release,
    previous: Release,
    keep: number,
    repositories: readonly string[],
  ): { kept: string[]; prunable: string[] } {
    const releases: Array<Record<string, string>> = [next.refs];
    for (const e of this.deployed()) {
      if (e.toRefs) releases.push(e.toRefs);
      if (e.fromRefs) releases.push(e.fromRefs);
    }
    const distinct: Array<Record<string, string>> = [];
    for (const r of releases)
      if (!distinct.some((d) => JSON.stringify(d) === JSON.stringify(r))) distinct.push(r);
    const kept = new Set([
      ...Object.values(next.refs),
      ...Object.values(previous.refs),
      ...distinct.slice(0, keep).flatMap((r) => Object.values(r)),
    ]);
    const old = distinct.slice(keep).flatMap((r) => Object.values(r));
    return {
      kept: [...kept],
      prunable: [...new Set(old)].filter(
        (r) => !kept.has(r) && IMAGE_REF.test(r) && repositories.includes(repositoryOf(r)),
      ),
    };
  }
}
