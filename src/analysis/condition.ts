/**
 * Success and failure conditions are CEL expressions (https://cel.dev, the language of Kubernetes'
 * admission policies), parsed and evaluated by @bufbuild/cel: no eval, no Function, no parser of ours.
 * CEL is side-effect free, always terminates, and has the list macros a vector result needs
 * (`result.all(v, v < 0.03)`, `result.exists(v, v > 1)`).
 *
 * Each kind of check binds its own variables (VARIABLES); a condition that does not parse, or names a
 * variable its check does not have, is refused when the registry is read.
 */
import { celEnv, isCelError, parse, plan, type CelInput } from '@bufbuild/cel';

export type CheckKind = 'prometheus' | 'http' | 'command';

/** The variables each kind of check binds, with what they hold (for the docs and the error hint). */
export const VARIABLES: Readonly<Record<CheckKind, Readonly<Record<string, string>>>> = {
  prometheus: {
    result: 'list of the sample values (one per series; a scalar gives a list of one)',
    value: 'the one value when the query returned exactly one series or a scalar',
    series: 'list of {labels: map, value: double}, one per series',
  },
  http: {
    status: 'the HTTP status code',
    body: 'the answer as text (its first 64 KiB)',
    json: 'the answer parsed as JSON (null when it is not JSON)',
  },
  command: {
    targets: "how many of the wave's targets ran the command",
    passed: 'how many exited 0',
    failed: 'how many exited non-zero',
    failedPercent: 'failed / targets × 100',
  },
};

const EXAMPLES: Readonly<Record<CheckKind, string>> = {
  prometheus: 'value > 0.03',
  http: 'status == 200 && json.ok',
  command: 'failedPercent > 1',
};

export type Compiled = (vars: Record<string, CelInput>) => boolean | string;

const env = celEnv();

/** The free variables an expression reads (identifiers, not comprehension variables). */
function identifiers(node: unknown, bound: Set<string>, out: Set<string>): void {
  if (!node || typeof node !== 'object') return;
  const kind = (node as { exprKind?: { case?: string; value?: unknown } }).exprKind;
  if (kind?.case === 'identExpr') {
    const name = (kind.value as { name: string }).name;
    if (!bound.has(name)) out.add(name);
    return;
  }
  if (kind?.case === 'comprehensionExpr') {
    const c = kind.value as Record<string, unknown>;
    const inner = new Set([...bound, String(c.iterVar), String(c.accuVar)]);
    for (const [k, v] of Object.entries(c))
      identifiers(v, k === 'iterRange' || k === 'accuInit' ? bound : inner, out);
    return;
  }
  for (const v of Object.values(node as Record<string, unknown>)) {
    if (Array.isArray(v)) v.forEach((x) => identifiers(x, bound, out));
    else if (v && typeof v === 'object') identifiers(v, bound, out);
  }
}

/** The problem with a condition for a check of `kind`, or undefined when it is valid. */
export function conditionProblem(expr: string, kind: CheckKind): string | undefined {
  let parsed;
  try {
    parsed = parse(expr);
  } catch (e) {
    const why = (e as Error).message.replace(/^.*?<input>:/, 'at ');
    return `is not a valid CEL expression (${why}): write e.g. ${JSON.stringify(EXAMPLES[kind])} (docs/analysis.md)`;
  }
  const names = new Set<string>();
  identifiers(parsed.expr, new Set(), names);
  const known = Object.keys(VARIABLES[kind]);
  const unknown = [...names].filter((n) => !known.includes(n));
  if (unknown.length)
    return `uses ${unknown.map((n) => `"${n}"`).join(', ')}, which a ${kind} check does not have: use ${known.join(', ')}`;
  return undefined;
}

/** The variables an expression reads. */
export function variablesOf(expr: string): Set<string> {
  const names = new Set<string>();
  identifiers(parse(expr).expr, new Set(), names);
  return names;
}

/** A condition compiled once: true/false, or the evaluation error's message (an inconclusive measurement). */
export function compile(expr: string): Compiled {
  const run = plan(env, parse(expr));
  return (vars) => {
    try {
      const r = run(vars);
      if (isCelError(r)) return r.message;
      if (typeof r !== 'boolean') return `evaluates to ${String(r)}, not true or false`;
      return r;
    } catch (e) {
      return (e as Error).message;
    }
  };
}

/** A JSON value as CEL input: objects become maps, whole numbers stay doubles (CEL compares across kinds). */
export function celValue(v: unknown): CelInput {
  if (Array.isArray(v)) return v.map(celValue);
  if (v && typeof v === 'object')
    return new Map(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, celValue(x)]));
  return v as CelInput;
}
