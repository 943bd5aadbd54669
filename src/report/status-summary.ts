/**
 * `fleet-deploy status` as GitHub job-summary Markdown (pure): the counts, then a table of the targets
 * that need a look (drifted, unreachable, not running, a lock left behind) and the others folded into a
 * <details> table. Cells are made safe by `cell` (server text); the text is kept under the summary limit.
 */
import { cell, SUMMARY_LIMIT } from './summary';

export interface StatusSummary {
  headers: readonly string[];
  /** One row per target, as `statusRows` makes them (the first cell the target id). */
  rows: ReadonlyArray<readonly string[]>;
  /** Which rows need a look (same order as rows). */
  attention: readonly boolean[];
  drifted: number;
  unreachable: number;
}

const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;

function tableOf(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  budget: number,
): string[] {
  const out = [line(headers), `|${headers.map(() => ' --- ').join('|')}|`];
  let size = out.join('\n').length;
  for (const [i, r] of rows.entries()) {
    const text = line(r);
    if (size + text.length + 1 > budget) {
      out.push('', `… and ${rows.length - i} more targets (the \`statuses\` output lists all)`);
      break;
    }
    out.push(text);
    size += text.length + 1;
  }
  return out;
}

export function renderStatusSummary(s: StatusSummary): string {
  const ok = s.drifted === 0 && s.unreachable === 0;
  const head = [
    `## ${ok ? '✅' : '⚠️'} Fleet status: ${s.rows.length} targets, ${s.drifted} drifted, ${s.unreachable} unreachable`,
    '',
  ];
  const look = s.rows.filter((_, i) => s.attention[i]);
  const fine = s.rows.filter((_, i) => !s.attention[i]);
  const budget = SUMMARY_LIMIT - 4096;
  const out = [...head];
  if (look.length) out.push(...tableOf(s.headers, look, budget / 2), '');
  if (fine.length)
    out.push(
      `<details><summary>${fine.length} targets as deployed, running, no lock</summary>`,
      '',
      ...tableOf(s.headers, fine, budget / 2),
      '',
      '</details>',
      '',
    );
  return out.join('\n');
}
