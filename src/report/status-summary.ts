/**
 * `fleet-deploy status` as GitHub job-summary Markdown (pure): the counts, then a table of the targets
 * that need a look (drifted, unreachable, not running, a lock left behind) and the others folded into a
 * <details> table. What a server said is shown as code (`serverCell`); the text is kept under the summary
 * limit in UTF-8 bytes.
 */
import { codeSpan, utf8Bytes } from './sanitize';
import { cell, serverCell, SUMMARY_LIMIT } from './summary';

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
/** A target's row: its id, then what the server said, each as code. */
const row = ([id = '', ...rest]: readonly string[]) =>
  `| ${[cell(id), ...rest.map(serverCell)].join(' | ')} |`;

function tableOf(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  budget: number,
): string[] {
  const out = [line(headers), `|${headers.map(() => ' --- ').join('|')}|`];
  let size = utf8Bytes(out.join('\n'));
  for (const [i, r] of rows.entries()) {
    const text = row(r);
    const bytes = utf8Bytes(text);
    if (size + bytes + 1 > budget) {
      out.push('', `… and ${rows.length - i} more targets (the \`statuses\` output lists all)`);
      break;
    }
    out.push(text);
    size += bytes + 1;
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

/** GitHub refuses an issue or comment body over 65,536 characters; a UTF-8 byte count never undercounts. */
export const ISSUE_BODY_LIMIT = 60_000;

/**
 * The drifted targets as a Markdown list for an issue or a comment (the status action's `drift-list`
 * output): each target's id, then what drifted as code, so nothing a server wrote (a link, an image, an
 * @mention, bold) is live in the issue. Kept under `limit` UTF-8 bytes; the rest is counted.
 */
export function driftList(
  drifted: ReadonlyArray<{ id: string; drift: readonly string[] }>,
  limit = ISSUE_BODY_LIMIT,
): string {
  const out: string[] = [];
  let size = 0;
  for (const [i, s] of drifted.entries()) {
    const item = `- ${codeSpan(s.id, false)}: ${s.drift.map((d) => codeSpan(d, false)).join('; ')}`;
    const bytes = utf8Bytes(item) + 1;
    if (size + bytes + 100 > limit) {
      out.push(`- … and ${drifted.length - i} more (the \`statuses\` output lists all)`);
      break;
    }
    out.push(item);
    size += bytes;
  }
  return out.join('\n');
}
