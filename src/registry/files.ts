/**
 * The `files` field of a tenant: the files of the caller's repository shipped with each release. What
 * can be checked without reading them is checked here (pure): two entries going to one place, an entry
 * going inside another's file, a variable no file may use. What needs the files themselves — a path
 * that leads out of the repository, a pin that does not match — is checked by src/files/local.ts, also
 * before any server is contacted.
 */
import { show } from '../errors';
import type { FileVariable, ShippedFile, TenantFiles } from './model';
import type { RawFiles } from './schema';

type Path = Array<string | number>;
type Report = (path: Path, message: string, hint?: string) => void;
type Picked<T> = { value: T; at: Path } | undefined;
type RawShip = NonNullable<RawFiles['ship']>;
type RawVariables = NonNullable<RawFiles['variables']>;

/** `{ files }` for the tenant, or nothing when no layer lists a file to ship. */
export function resolveFiles(
  ship: Picked<RawShip>,
  /** Each layer's variables, least specific first: merged key by key. */
  variables: ReadonlyArray<RawVariables | undefined>,
  problem: Report,
): { files?: TenantFiles } {
  if (!ship || ship.value.length === 0) return {};
  const entries: ShippedFile[] = ship.value.map((f, i) => ({
    from: f.from,
    to: f.to,
    ...(f.sha256 ? { sha256: f.sha256 } : {}),
    template: f.template ?? false,
    at: [...ship.at, i],
  }));
  checkTargets(entries, problem);
  for (const f of entries) {
    const dirFrom = f.from.endsWith('/');
    if (dirFrom !== f.to.endsWith('/'))
      problem(
        [...f.at, 'to'],
        `${show(f.from)} is a ${dirFrom ? 'directory' : 'file'} but "to" ${show(f.to)} ${dirFrom ? 'is not' : 'is'} one`,
        'end both "from" and "to" in "/" for a directory, neither for a file',
      );
    if (dirFrom && f.sha256)
      problem(
        [...f.at, 'sha256'],
        'a sha256 pin is for one file, not a directory',
        'list the file on its own to pin it',
      );
  }
  const vars: Record<string, FileVariable> = {};
  for (const [name, v] of Object.entries(Object.assign({}, ...variables) as RawVariables))
    vars[name] = typeof v === 'string' ? { value: v } : { env: v.env, secret: v.secret ?? true };
  return { files: { ship: entries, variables: vars } };
}

/** Two entries may not ship to one place, nor one into a file another ships. */
function checkTargets(entries: readonly ShippedFile[], problem: Report): void {
  entries.forEach((f, i) => {
    for (const o of entries.slice(0, i)) {
      const same = f.to === o.to;
      const inside = (a: string, b: string) => !b.endsWith('/') && a.startsWith(`${b}/`);
      if (same || inside(f.to, o.to) || inside(o.to, f.to))
        problem(
          [...f.at, 'to'],
          `${show(f.to)} ${same ? 'is also' : 'overlaps'} the "to" of ${show(o.from)}`,
          'ship each file to a place of its own',
        );
    }
  });
}
