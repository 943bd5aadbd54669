/**
 * What `plan --diff` prints (issue 25): per target, a unified diff of each file a release would change
 * on its server (the files there now against what would ship), with the values of secret variables
 * redacted, and identical changes grouped across targets ("same change on 37 targets: …") so a
 * 10,000-target plan stays readable. Pure: the server's files come in as data (src/remote/files-read.ts).
 *
 * Secrets: every value of a secret variable is replaced on both sides. In a file templated with a
 * tenant that has secret variables, a line of the new file holding a secret becomes a pattern; a line
 * on the server matching it is shown as the new line, redacted (so a rotated secret is no change), and a
 * line of the server's file the new file does not have is hidden (it may hold an old secret value).
 */
import type { FileRelease } from '../deploy/files';
import type { Tenant } from '../registry/model';
import type { ServerFile } from '../remote/files-read';
import { sanitize, sanitizeLine } from '../report/sanitize';
import { unifiedDiff } from './diff';

export const REDACTED = '‹redacted›';
const HIDDEN = '‹a line of the server’s file, hidden: this file is templated with secret variables›';

/** One file's change on one target: its path and the diff (or a one-line note when there is no text diff). */
export interface FileChange {
  path: string;
  text: string;
  /**
   * The text with the target's own names ({tenant}, {server}) in place of their values, when it has any:
   * a per-tenant file changed the same way everywhere groups as one change.
   */
  generic?: string;
}

/** `text` with each of `names`' values, as a whole word, replaced by its {placeholder}; undefined when none is in it. */
function genericOf(text: string, names: Readonly<Record<string, string>>): string | undefined {
  let out = text;
  for (const [name, value] of Object.entries(names).sort((a, b) => b[1].length - a[1].length))
    if (value.length >= 3)
      out = out.replace(new RegExp(`(?<![\\w.-])${escape(value)}(?![\\w-])`, 'g'), `{${name}}`);
  return out === text ? undefined : out;
}

const isBinary = (b: Uint8Array) => b.includes(0);
const same = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The text with every secret value replaced (longest first, so a value containing another goes whole). */
function redactValues(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...secrets].filter(Boolean).sort((a, b) => b.length - a.length))
    out = out.split(s).join(REDACTED);
  return out;
}

/** The paths of a tenant's files templated while it has secret variables (their server side is guarded). */
function guardedPaths(tenant: Tenant): (path: string) => boolean {
  const files = tenant.files;
  const hasSecret = files && Object.values(files.variables).some((v) => 'env' in v && v.secret);
  if (!files || !hasSecret) return () => false;
  const templated = files.ship.filter((f) => f.template);
  return (path) => templated.some((f) => (f.to.endsWith('/') ? path.startsWith(f.to) : path === f.to));
}

/** The server's text as it may be shown next to `next` (already redacted), in a guarded file. */
function guardServer(server: string, next: string, rawNext: string, secrets: readonly string[]): string {
  const shown = new Set(next.split('\n'));
  const patterns: Array<[RegExp, string]> = [];
  const rawLines = rawNext.split('\n');
  const nextLines = next.split('\n');
  rawLines.forEach((raw, i) => {
    const parts = secrets.filter(Boolean).reduce<string[]>((acc, s) => acc.flatMap((p) => p.split(s)), [raw]);
    if (parts.length > 1)
      patterns.push([new RegExp(`^${parts.map(escape).join('.*')}$`, 's'), nextLines[i]!]);
  });
  return server
    .split('\n')
    .map((line) => {
      const r = redactValues(line, secrets);
      if (shown.has(r)) return r;
      const match = patterns.find(([re]) => re.test(line));
      return match ? match[1] : HIDDEN;
    })
    .join('\n');
}

/** The changes of one target's release against its server's files (unchanged files: none). */
export function fileChanges(
  tenant: Tenant,
  release: FileRelease,
  server: ReadonlyMap<string, ServerFile>,
  secrets: readonly string[],
  /** the target's names, for grouping per-tenant changes: { tenant, server } */
  names: Readonly<Record<string, string>> = {},
): FileChange[] {
  const withGeneric = (c: FileChange): FileChange => {
    const generic = genericOf(c.text, names);
    return generic ? { ...c, generic } : c;
  };
  const guarded = guardedPaths(tenant);
  const out: FileChange[] = [];
  const shipped = new Set(release.entries.map((e) => e.to));
  for (const e of release.entries) {
    const bytes = release.contents.get(e.sha256) ?? new Uint8Array();
    const now = server.get(e.to) ?? { kind: 'absent' };
    if (now.kind === 'link') {
      out.push({
        path: e.to,
        text: `${e.to}: a symbolic link on the server: a deploy refuses to write through it`,
      });
      continue;
    }
    if (now.kind === 'big') {
      out.push({
        path: e.to,
        text: `${e.to}: ${now.size} bytes on the server, too big to compare here (the deploy compares hashes)`,
      });
      continue;
    }
    if (now.kind === 'file' && same(now.bytes, bytes)) continue;
    const before = now.kind === 'file' ? now.bytes : new Uint8Array();
    if (isBinary(bytes) || isBinary(before)) {
      out.push({
        path: e.to,
        text: `${e.to}: binary file ${now.kind === 'file' ? 'differs' : 'added'} (${bytes.length} bytes)`,
      });
      continue;
    }
    const rawNext = Buffer.from(bytes).toString('utf8');
    const next = redactValues(rawNext, secrets);
    const rawNow = Buffer.from(before).toString('utf8');
    const shownNow = guarded(e.to)
      ? guardServer(rawNow, next, rawNext, secrets)
      : redactValues(rawNow, secrets);
    const from = now.kind === 'file' ? `server/${e.to}` : '/dev/null';
    const text =
      unifiedDiff(shownNow, next, from, `release/${e.to}`) ||
      `${e.to}: differs only in values of secret variables (${REDACTED})`;
    out.push({ path: e.to, text });
  }
  for (const [path, now] of server) {
    if (shipped.has(path) || now.kind === 'absent') continue;
    const text =
      now.kind === 'file' && !isBinary(now.bytes)
        ? unifiedDiff(
            guarded(path) ? HIDDEN : redactValues(Buffer.from(now.bytes).toString('utf8'), secrets),
            '',
            `server/${path}`,
            '/dev/null',
          )
        : `${path}: removed (the last release installed it)`;
    out.push({ path, text });
  }
  return out.map(withGeneric);
}

/** One distinct change and the targets it is the same on, in plan order. */
export interface ChangeGroup {
  change: FileChange;
  targets: string[];
}

/** Identical changes (same path, same diff) grouped across targets, in the order first seen. */
export function groupChanges(
  changes: ReadonlyArray<readonly [targetId: string, FileChange[]]>,
): ChangeGroup[] {
  const groups = new Map<string, ChangeGroup>();
  for (const [id, list] of changes)
    for (const change of list) {
      const key = `${change.path}\0${change.generic ?? change.text}`;
      const g = groups.get(key);
      if (g) g.targets.push(id);
      else groups.set(key, { change, targets: [id] });
    }
  return [...groups.values()];
}

/** The targets of a group as a line: all of them up to `shown`, then how many more. */
const targetList = (ids: readonly string[], shown = 5) =>
  ids.length <= shown ? ids.join(', ') : `${ids.slice(0, shown).join(', ')} and ${ids.length - shown} more`;

export interface DiffSummary {
  /** targets whose files would not change */
  unchanged: string[];
  /** targets whose server could not be read, with why */
  unread: Array<[targetId: string, error: string]>;
}

/** The `plan --diff` text: each distinct change once with the targets it is on, then the rest. */
export function renderChanges(groups: readonly ChangeGroup[], summary: DiffSummary): string {
  const changed = new Set(groups.flatMap((g) => g.targets)).size;
  const out = [
    `Files: ${groups.length} distinct ${groups.length === 1 ? 'change' : 'changes'} ` +
      `on ${changed} ${changed === 1 ? 'target' : 'targets'}; ` +
      `${summary.unchanged.length} unchanged; ${summary.unread.length} not read`,
  ];
  for (const g of groups) {
    const on =
      g.targets.length === 1
        ? `on ${g.targets[0]}`
        : `same change on ${g.targets.length} targets: ${targetList(g.targets)}`;
    // one target: its own text; several: the text with {tenant}/{server} standing for each one's
    const text = g.targets.length > 1 && g.change.generic ? g.change.generic : g.change.text;
    const each = text === g.change.text ? '' : ' ({tenant} and {server} stand for each target’s)';
    out.push('', `== ${g.change.path} — ${on}${each}`, sanitize(text).trimEnd()); // server text: no terminal control
  }
  if (summary.unchanged.length) out.push('', `unchanged: ${targetList(summary.unchanged)}`);
  for (const [id, error] of summary.unread) out.push('', `not read: ${id}: ${sanitizeLine(error)}`);
  return `${out.join('\n')}\n`;
}
