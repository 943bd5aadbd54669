/**
 * Target selection: a small expression language for --select.
 *
 *   expr    := clause ("," clause)*          every clause must hold (AND)
 *   clause  := key ("=" | "!=") value ("|" value)*
 *   key     := tenant | server | region | ring | id | label.NAME | NAME (a label)
 *   value   := text, where "*" matches any run of characters
 *
 * Examples: `region=eu,ring!=sandbox`, `tenant=acme-*|globex`, `tier=enterprise`, `id=eu-1/acme-corp`.
 * An empty expression, "*" or "all" selects every target.
 */
import { ConfigurationError } from '../errors';
import { closest } from '../registry/issues';
import type { Target } from '../registry/model';
import { wildcardMatch } from '../wildcard';

const BUILTIN = ['tenant', 'server', 'region', 'ring', 'id'] as const;
type Builtin = (typeof BUILTIN)[number];

export interface Clause {
  text: string;
  key: { builtin: Builtin } | { label: string };
  negate: boolean;
  /** Patterns; "*" is a wildcard (see wildcardMatch). */
  values: string[];
}

const CLAUSE = /^\s*([A-Za-z0-9._-]+)\s*(!=|=)\s*(.*?)\s*$/;
const VALUE = /^[A-Za-z0-9._/*-]+$/;

function valueOf(target: Target, clause: Clause): string | undefined {
  if ('label' in clause.key) return target.labels[clause.key.label];
  switch (clause.key.builtin) {
    case 'tenant':
      return target.tenant.id;
    case 'server':
      return target.server.name;
    case 'region':
      return target.server.region;
    case 'ring':
      return target.tenant.ring;
    case 'id':
      return target.id;
  }
}

export function matchesClause(target: Target, clause: Clause): boolean {
  const v = valueOf(target, clause);
  const hit = v !== undefined && clause.values.some((pattern) => wildcardMatch(pattern, v));
  return clause.negate ? !hit : hit;
}

/** Parses an expression against the targets it will select from (to know which label keys exist). */
export function parseSelection(expr: string, targets: readonly Target[], source = '--select'): Clause[] {
  const text = expr.trim();
  if (text === '' || text === '*' || text === 'all') return [];
  const labelKeys = [...new Set(targets.flatMap((t) => Object.keys(t.labels)))].sort();
  return text.split(',').map((part) => {
    const m = CLAUSE.exec(part);
    if (!m) {
      throw new ConfigurationError([
        {
          path: [],
          source,
          message: `${JSON.stringify(part.trim())} in ${JSON.stringify(expr)} is not a clause`,
          hint: 'write KEY=VALUE or KEY!=VALUE, clauses joined by ",", alternatives by "|", e.g. "region=eu,ring!=sandbox"',
        },
      ]);
    }
    const [, rawKey, op, rawValues] = m as unknown as [string, string, string, string];
    let key: Clause['key'];
    if ((BUILTIN as readonly string[]).includes(rawKey)) key = { builtin: rawKey as Builtin };
    else {
      const label = rawKey.startsWith('label.') ? rawKey.slice(6) : rawKey;
      if (!labelKeys.includes(label)) {
        const near = closest(rawKey, [...BUILTIN, ...labelKeys]);
        throw new ConfigurationError([
          {
            path: [],
            source,
            message:
              `unknown key ${JSON.stringify(rawKey)} in ${JSON.stringify(part.trim())}: it is neither a ` +
              `built-in key nor a label of any target`,
            hint:
              `${near ? `did you mean "${near}"? ` : ''}keys: ${BUILTIN.join(', ')}` +
              (labelKeys.length ? `; labels: ${labelKeys.join(', ')}` : ''),
          },
        ]);
      }
      key = { label };
    }
    const values = rawValues.split('|').map((v) => v.trim());
    for (const v of values) {
      if (!VALUE.test(v)) {
        throw new ConfigurationError([
          {
            path: [],
            source,
            message: `${JSON.stringify(v)} in ${JSON.stringify(part.trim())} is not a value`,
            hint: 'values are letters, digits, ".", "_", "-", "/" and "*" as a wildcard',
          },
        ]);
      }
    }
    return { text: part.trim(), key, negate: op === '!=', values };
  });
}

/**
 * The targets that match every clause, in the order given. An empty result is a ConfigurationError that
 * says which clause matched nothing, and what values exist for its key.
 */
export function selectTargets(targets: readonly Target[], expr: string, source = '--select'): Target[] {
  const clauses = parseSelection(expr, targets, source);
  const selected = targets.filter((t) => clauses.every((c) => matchesClause(t, c)));
  if (selected.length > 0) return selected;
  if (targets.length === 0)
    throw new ConfigurationError([
      { path: [], source, message: 'the registry has no targets: no server lists any tenant' },
    ]);
  const reasons = clauses.map((c) => {
    const alone = targets.filter((t) => matchesClause(t, c)).length;
    const known = [
      ...new Set(targets.map((t) => valueOf(t, c)).filter((v): v is string => v !== undefined)),
    ].sort();
    const shown =
      known.length > 12 ? `${known.slice(0, 12).join(', ')}, … (${known.length})` : known.join(', ');
    return `"${c.text}" alone matches ${alone} of ${targets.length}${alone === 0 ? ` (values: ${shown})` : ''}`;
  });
  throw new ConfigurationError([
    {
      path: [],
      source,
      message: `selection ${JSON.stringify(expr)} matched no target: ${reasons.join('; ')}`,
      hint: 'clauses are joined by AND; use "|" for alternatives within one key',
    },
  ]);
}
