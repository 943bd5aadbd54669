/** Turns zod issues into problems that name the field, the value and the fix. */
import type { z } from 'zod';
import { show, type Problem } from '../errors';

type Path = Array<string | number>;
type Issue = z.core.$ZodIssue;

/** The keys an object schema accepts at `path`, for "did you mean" hints on unknown keys. */
export function keysAt(schema: z.ZodType, path: ReadonlyArray<string | number>): string[] {
  // zod 4 keeps each schema's definition in `_zod.def`; walk it through wrappers, arrays and records.
  let defs: Array<Record<string, unknown>> = [
    (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def,
  ];
  const defOf = (s: unknown) => (s as { _zod: { def: Record<string, unknown> } })._zod.def;
  const unwrap = (list: Array<Record<string, unknown>>): Array<Record<string, unknown>> =>
    list.flatMap((d) =>
      d.type === 'optional' || d.type === 'default'
        ? unwrap([defOf(d.innerType)])
        : d.type === 'union'
          ? unwrap((d.options as unknown[]).map(defOf))
          : [d],
    );
  for (const part of path) {
    defs = unwrap(defs).flatMap((d) => {
      if (d.type === 'object' && typeof part === 'string') {
        const child = (d.shape as Record<string, unknown>)[part];
        return child ? [defOf(child)] : [];
      }
      if (d.type === 'array' && typeof part === 'number') return [defOf(d.element)];
      if (d.type === 'record') return [defOf(d.valueType)];
      return [];
    });
  }
  return unwrap(defs).flatMap((d) => (d.type === 'object' ? Object.keys(d.shape as object) : []));
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const score = c.toLowerCase() === word.toLowerCase() ? 0 : distance(word.toLowerCase(), c.toLowerCase());
    if (score < bestScore) [best, bestScore] = [c, score];
  }
  if (bestScore <= Math.max(2, Math.floor(word.length / 3))) return best;
  // a word that one of them begins (`hostname` → `host`) or that begins one of them (`disc` → `discover`)
  const w = word.toLowerCase();
  const prefixed = candidates
    .filter((c) => Math.min(c.length, w.length) >= 3)
    .filter((c) => w.startsWith(c.toLowerCase()) || c.toLowerCase().startsWith(w));
  return prefixed.sort((a, b) => Math.abs(a.length - w.length) - Math.abs(b.length - w.length))[0];
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return Number.isInteger(value) ? 'a whole number' : 'a number';
  return `a ${typeof value}`;
}

/** Picks the union branch the user evidently meant: the one whose root type matched. */
function unionBranch(issue: Extract<Issue, { code: 'invalid_union' }>): Issue[] | undefined {
  const matched = issue.errors.filter(
    (branch) => !branch.some((i) => i.code === 'invalid_type' && i.path.length === 0),
  );
  return matched.length > 0 ? matched.sort((a, b) => a.length - b.length)[0] : undefined;
}

export function issueProblems(schema: z.ZodType, issues: readonly Issue[], base: Path = []): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    const path: Path = [...base, ...(issue.path as Path)];
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = keysAt(schema, path);
        for (const key of issue.keys) {
          const near = closest(key, known);
          out.push({
            path: [...path, key],
            message: `unknown key ${JSON.stringify(key)}`,
            atKey: true,
            hint: `${near ? `did you mean ${JSON.stringify(near)}? ` : ''}valid keys here: ${known.join(', ')}`,
          });
        }
        break;
      }
      case 'invalid_union': {
        const branch = unionBranch(issue);
        if (branch) out.push(...issueProblems(schema, branch, path));
        else
          out.push({
            path,
            message: `${show(input)} ${issue.message === 'Invalid input' ? 'has the wrong type' : issue.message}`,
            hint: unionHint(issue),
          });
        break;
      }
      case 'invalid_key':
        // A record key that fails its own schema: report the key's issue at the key.
        out.push(...issueProblems(schema, issue.issues, path).map((p) => ({ ...p, atKey: true })));
        break;
      case 'invalid_type':
        if (input === undefined)
          out.push({ path, message: 'is required', hint: `add ${JSON.stringify(path.at(-1))}` });
        else
          out.push({
            path,
            message:
              `${show(input)} is ${typeName(input)}, but ` +
              (issue.message.startsWith('must') ? issue.message : `must be ${issue.expected}`),
          });
        break;
      default:
        out.push({ path, message: input === undefined ? issue.message : `${show(input)} ${issue.message}` });
    }
  }
  return out;
}

function unionHint(issue: Extract<Issue, { code: 'invalid_union' }>): string {
  const wanted = issue.errors
    .map((b) => b.find((i) => i.code === 'invalid_type' && i.path.length === 0))
    .map((i) => (i && i.code === 'invalid_type' ? i.expected : undefined))
    .filter(Boolean);
  return `use ${wanted.map((w) => (w === 'array' ? 'a list' : `a ${w}`)).join(' or ')}`;
}
