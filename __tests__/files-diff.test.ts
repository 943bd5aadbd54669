/**
 * The unified line diff of `plan --diff` (src/files/diff.ts): the edit script is a shortest one (its
 * length checked against an LCS table on random inputs) and applying it gives the new text; hunks are
 * written as `diff -u` writes them.
 */
import { diffLines, linesOf, unifiedDiff } from '../src/files/diff';

/** The length of the longest common subsequence, by the textbook table. */
function lcs(a: readonly string[], b: readonly string[]): number {
  const t = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      t[i]![j] = a[i - 1] === b[j - 1] ? t[i - 1]![j - 1]! + 1 : Math.max(t[i - 1]![j]!, t[i]![j - 1]!);
  return t[a.length]![b.length]!;
}

/** A small deterministic generator (no Math.random: the same cases every run). */
function rng(seed: number) {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) & 0x7fffffff), s / 0x7fffffff);
}

describe('diffLines', () => {
  test('a shortest edit script, which applied to the old lines gives the new ones (300 random cases)', () => {
    const r = rng(25);
    for (let c = 0; c < 300; c++) {
      const words = ['a', 'b', 'c', 'd'];
      const gen = () =>
        Array.from({ length: Math.floor(r() * 12) }, () => words[Math.floor(r() * words.length)]!);
      const a = gen();
      const b = gen();
      const edits = diffLines(a, b);
      expect(edits.filter((e) => e.op !== '+').map((e) => e.line)).toEqual(a);
      expect(edits.filter((e) => e.op !== '-').map((e) => e.line)).toEqual(b);
      expect(edits.filter((e) => e.op === ' ')).toHaveLength(lcs(a, b));
    }
  });

  test('empty sides', () => {
    expect(diffLines([], [])).toEqual([]);
    expect(diffLines([], ['x'])).toEqual([{ op: '+', line: 'x' }]);
    expect(diffLines(['x'], [])).toEqual([{ op: '-', line: 'x' }]);
  });
});

describe('unifiedDiff', () => {
  const before = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';

  test('nothing for the same text', () => {
    expect(unifiedDiff(before, before, 'a', 'b')).toBe('');
  });

  test('hunks with 3 lines of context, far changes apart, near ones merged (as diff -u)', () => {
    const after = before
      .replace('line 2\n', 'line two\n')
      .replace('line 15\n', '')
      .replace('line 20\n', 'line 20\nline 21\n');
    expect(unifiedDiff(before, after, 'server/x.yml', 'release/x.yml')).toBe(
      [
        '--- server/x.yml',
        '+++ release/x.yml',
        '@@ -1,5 +1,5 @@',
        ' line 1',
        '-line 2',
        '+line two',
        ' line 3',
        ' line 4',
        ' line 5',
        '@@ -12,9 +12,9 @@',
        ' line 12',
        ' line 13',
        ' line 14',
        '-line 15',
        ' line 16',
        ' line 17',
        ' line 18',
        ' line 19',
        ' line 20',
        '+line 21',
        '',
      ].join('\n'),
    );
  });

  test('a new file and a removed one: ranges at 0', () => {
    expect(unifiedDiff('', 'a\nb\n', '/dev/null', 'x')).toBe(
      '--- /dev/null\n+++ x\n@@ -0,0 +1,2 @@\n+a\n+b\n',
    );
    expect(unifiedDiff('a\n', '', 'x', '/dev/null')).toBe('--- x\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n');
  });

  test('a missing final newline is said', () => {
    expect(unifiedDiff('a\n', 'a', 'x', 'y')).toBe(
      '--- x\n+++ y\n\\ no newline at the end of the new file\n',
    );
    expect(linesOf('a\nb')).toEqual(['a', 'b']);
  });
});
