/** Plain-text tables for terminals and logs (pure). */
import { sanitizeLine } from './sanitize';

/** A table; every cell is printed as one safe line (cells carry server text: errors, history fields). */
export function table(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  indent = '',
): string {
  const safe = rows.map((r) => r.map(sanitizeLine));
  const widths = headers.map((h, i) => Math.max(h.length, ...safe.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...safe.map(line)].join('\n');
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? word : many}`;
}
