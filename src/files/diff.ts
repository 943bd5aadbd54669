/**
 * A unified line diff (as `diff -u` prints it), for `plan --diff` (issue 25): Myers' O(ND) algorithm
 * over lines, hunks with 3 lines of context. Pure: strings in, strings out.
 */

/** One line of an edit script: kept (' '), removed ('-') or added ('+'). */
export interface Edit {
  op: ' ' | '-' | '+';
  line: string;
}

/** The text's lines; a final newline ends the last line rather than starting an empty one. */
export function linesOf(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The shortest edit script from `a` to `b` (Myers 1986: furthest-reaching D-paths, then backtracked). */
export function diffLines(a: readonly string[], b: readonly string[]): Edit[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const v = new Int32Array(2 * max + 2);
  const trace: Int32Array[] = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && v[max + k - 1]! < v[max + k + 1]!);
      let x = down ? v[max + k + 1]! : v[max + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[max + k] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
  }
  return backtrack(a, b, trace, max);
}

function backtrack(
  a: readonly string[],
  b: readonly string[],
  trace: readonly Int32Array[],
  max: number,
): Edit[] {
  const out: Edit[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d >= 0; d--) {
    const v = trace[d]!;
    const k = x - y;
    const down = k === -d || (k !== d && v[max + k - 1]! < v[max + k + 1]!);
    const prevK = down ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : v[max + prevK]!;
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      out.push({ op: ' ', line: a[--x]! });
      y--;
    }
    if (d > 0) out.push(down ? { op: '+', line: b[--y]! } : { op: '-', line: a[--x]! });
  }
  return out.reverse();
}

/**
 * The unified diff of `before` and `after` (texts), headed `--- from` / `+++ to`: hunks of the changed
 * lines with `context` lines around them; '' when they are the same.
 */
export function unifiedDiff(before: string, after: string, from: string, to: string, context = 3): string {
  if (before === after) return '';
  const a = linesOf(before);
  const b = linesOf(after);
  const edits = diffLines(a, b);
  const out = [`--- ${from}`, `+++ ${to}`];
  // each edit's line numbers in a and b (1-based, of the line before it when it has none there)
  const at: Array<[number, number]> = [];
  let i = 0;
  let j = 0;
  for (const e of edits) {
    at.push([i, j]);
    if (e.op !== '+') i++;
    if (e.op !== '-') j++;
  }
  const changed = edits.map((e, k) => (e.op !== ' ' ? k : -1)).filter((k) => k >= 0);
  let h = 0;
  while (h < changed.length) {
    const start = Math.max(0, changed[h]! - context);
    let end = Math.min(edits.length, changed[h]! + context + 1);
    while (h + 1 < changed.length && changed[h + 1]! - context <= end)
      end = Math.min(edits.length, changed[++h]! + context + 1);
    h++;
    const slice = edits.slice(start, end);
    const aLen = slice.filter((e) => e.op !== '+').length;
    const bLen = slice.filter((e) => e.op !== '-').length;
    const [ai, bj] = at[start]!;
    out.push(`@@ -${range(ai, aLen)} +${range(bj, bLen)} @@`, ...slice.map((e) => `${e.op}${e.line}`));
  }
  const noNewline = (t: string) => t !== '' && !t.endsWith('\n');
  if (noNewline(before) !== noNewline(after))
    out.push(`\\ no newline at the end of ${noNewline(before) ? 'the current file' : 'the new file'}`);
  return `${out.join('\n')}\n`;
}

/** A hunk's range as diff -u writes it: "start,length" (start 0 for an empty range at the top). */
const range = (index: number, length: number) =>
  length === 0 ? `${index},0` : length === 1 ? `${index + 1}` : `${index + 1},${length}`;
