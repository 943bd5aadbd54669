/**
 * A user's mistake (bad registry, bad input, unknown tenant) is a ConfigurationError; anything else is a
 * failure. The edges turn the first into exit code 2 / annotations and the second into exit code 1.
 */

/** One problem in the user's input, located as precisely as we can. */
export interface Problem {
  /** JSON path inside the input, e.g. ['servers', 2, 'tenants', 0, 'id']; empty for the whole input. */
  path: ReadonlyArray<string | number>;
  /** What is wrong, in a sentence that names the value. */
  message: string;
  /** What would be valid, or how to fix it. */
  hint?: string;
  /** Where the input came from: a file path, or an input/flag name such as `--select`. */
  source?: string;
  /** 1-based line and column in `source`, when it is a file. */
  line?: number;
  column?: number;
  /** The problem is the key itself (an unknown key), so locate the key rather than its value. */
  atKey?: boolean;
}

/** Renders a JSON path the way people write it: servers[2].tenants[0].id */
export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out === '' ? '(root)' : out;
}

export function formatProblem(p: Problem): string {
  const where = p.source ? `${p.source}${p.line ? `:${p.line}:${p.column ?? 1}` : ''}: ` : '';
  const path = p.path.length > 0 ? `${formatPath(p.path)}: ` : '';
  return `${where}${path}${p.message}${p.hint ? ` (${p.hint})` : ''}`;
}

export class ConfigurationError extends Error {
  readonly problems: readonly Problem[];

  constructor(problems: Problem[] | string) {
    const list: Problem[] = typeof problems === 'string' ? [{ path: [], message: problems }] : problems;
    const head = list.length === 1 ? '' : `${list.length} problems:\n`;
    super(head + list.map((p) => (list.length === 1 ? '' : '  - ') + formatProblem(p)).join('\n'));
    this.name = 'ConfigurationError';
    this.problems = list;
  }
}

export function isConfigurationError(error: unknown): error is ConfigurationError {
  return error instanceof ConfigurationError;
}

/** A short, quoted rendering of a user's value for messages; long values are cut. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
