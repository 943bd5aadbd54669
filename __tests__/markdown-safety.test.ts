/**
 * Server text is never live Markdown: in the job summary, the status summary and the drift list the
 * status example puts into an issue, it is rendered as code (checked with a real CommonMark + GFM-tables
 * renderer, markdown-it, with HTML and linkify on as GitHub has them); `--format json` strings carry no C1
 * control or bidi override; and the summaries' 1 MiB budget counts UTF-8 bytes, as GitHub does.
 */
import fc from 'fast-check';
import MarkdownIt from 'markdown-it';
import type { FleetReport } from '../src/deploy/fleet';
import type { Outcome, TargetResult } from '../src/deploy/result';
import { codeSpan, jsonText, utf8Bytes } from '../src/report/sanitize';
import { driftList, renderStatusSummary } from '../src/report/status-summary';
import { renderSummary, SUMMARY_LIMIT } from '../src/report/summary';

const md = new MarkdownIt({ html: true, linkify: true });
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** What a hostile server (or a deploy user on it) can put in its stderr, history or .env. */
const HOSTILE = [
  'pull failed: [click here](https://evil.example/steal) ![pixel](https://evil.example/p.png)',
  '**URGENT** @acme/oncall @octocat approve <img src=x onerror=alert(1)> <script>x</script>',
  'one | two || three \\| four \\\\| five',
  '`` ` ``` backticks ```` and a trailing one `',
  '`leading backtick',
  'line one\nline two\r\n# a heading\n> quote\n- item\n|---|---|',
  'bidi \u202etxt.exe\u202c and C1 \u009b31m and zero width\u200b and \u001b[2J',
  '<details open><summary>fake</summary>',
  'https://evil.example/autolink www.evil.example',
];

/** Tags the renderer made from server text, once code spans are taken out. */
function liveOutside(html: string): string[] {
  const outside = html.replace(/<code>[\s\S]*?<\/code>/g, '');
  return [
    ...outside.matchAll(/<(a|img|script|strong|em|h1|blockquote|details|li)\b/g),
    ...outside.matchAll(/@acme|@octocat|evil\.example/g),
  ].map((m) => m[0]);
}

function result(i: number, outcome: Outcome, error?: string, version = 'v2'): TargetResult {
  return {
    id: `eu-${i}/t${i}`,
    server: `eu-${i}`,
    tenant: `t${i}`,
    region: 'eu',
    ring: 'general',
    wave: 1,
    outcome,
    previous: { refs: {}, version: 'v1', imageIds: [], digests: [] },
    next: { refs: {}, version, imageIds: [], digests: [] },
    steps: [],
    durationMs: 4200,
    startedAt: '2026-01-01T00:00:00.000Z',
    ...(error ? { error } : {}),
  } as TargetResult;
}

function report(targets: TargetResult[], stopped?: string): FleetReport {
  const count = (o: Outcome) => targets.filter((t) => t.outcome === o).length;
  return {
    version: 'v2',
    actor: 'ci',
    runId: '1',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 60_000,
    totals: {
      targets: targets.length,
      deployed: count('deployed'),
      unchanged: count('unchanged'),
      'rolled-back': count('rolled-back'),
      failed: count('failed'),
      skipped: count('skipped'),
    },
    waves: [],
    targets,
    ...(stopped ? { stopped } : {}),
  } as FleetReport;
}

describe('server text is code, never live Markdown', () => {
  test.each(HOSTILE)('codeSpan(%j) renders as one code span with the text as the server sent it', (text) => {
    const span = codeSpan(text, false);
    const html = md.renderInline(span);
    expect(html).toMatch(/^<code>[\s\S]*<\/code>$/);
    expect(html.match(/<code>/g)).toHaveLength(1);
    // The code shows the cleaned text, one line (HTML-escaped only by the renderer).
    const shown = html
      .slice('<code>'.length, -'</code>'.length)
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&');
    // eslint-disable-next-line no-control-regex -- the controls a server sent must be gone
    expect(shown).not.toMatch(/[\n\r\u202e\u009b\u001b]/);
    expect(shown.replace(/\s+/g, ' ')).toContain(
      text.includes('bidi') ? 'txt.exe' : text.split(/\s/)[0]!.slice(0, 4),
    );
  });

  test('every hostile reason in the deploy summary: one row of six cells each, nothing live', () => {
    const targets = HOSTILE.map((h, i) => result(i, i % 2 ? 'failed' : 'rolled-back', h, `v2 ${h}`));
    // Our own Markdown: the counts in bold, the stop reason's one quote (a warning box), the chart's box.
    const html = md
      .render(renderSummary(report(targets, HOSTILE[1])))
      .replace('<blockquote>', '')
      .replace('<details open>', ''); // the rollout chart's own box
    expect(
      liveOutside(html.replace(/<strong>\d+<\/strong>/g, '').replace(/<strong>\d+ skipped<\/strong>/g, '')),
    ).toEqual([]);
    const rows = [...html.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((m) => m[1]!);
    const failureRows = rows.filter((r) => r.includes('eu-'));
    // The top-reasons table (3 cells) and the wave's failure table (6 cells): a pipe or a newline in
    // server text splits no cell and ends no row.
    expect(failureRows.filter((r) => (r.match(/<td>/g) ?? []).length === 6)).toHaveLength(HOSTILE.length);
    for (const r of rows.filter((x) => x.includes('<td>')))
      expect([3, 6]).toContain((r.match(/<td>/g) ?? []).length);
  });

  test('the status summary: hostile state, version and drift stay in their cells as code', () => {
    const headers = ['TARGET', 'STATE', 'VERSION', 'DRIFT / NOTES'];
    const rows = HOSTILE.map((h, i) => [`srv/t${i}`, h, h, h]);
    const html = md.render(
      renderStatusSummary({
        headers,
        rows,
        attention: rows.map(() => true),
        drifted: rows.length,
        unreachable: 0,
      }),
    );
    expect(liveOutside(html)).toEqual([]);
    const body = [...html.matchAll(/<tr>([\s\S]*?)<\/tr>/g)]
      .map((m) => m[1]!)
      .filter((r) => r.includes('<td>'));
    expect(body).toHaveLength(HOSTILE.length);
    for (const r of body) expect((r.match(/<td>/g) ?? []).length).toBe(4);
  });

  test('the drift list an issue is opened with: one item per target, what drifted as code', () => {
    const list = driftList(HOSTILE.map((h, i) => ({ id: `srv/t${i}`, drift: [h, 'image edited by hand'] })));
    const html = md.render(list);
    expect((html.match(/<li>/g) ?? []).length).toBe(HOSTILE.length);
    expect(liveOutside(html.replace(/<\/?li>/g, ''))).toEqual([]);
  });

  test('the drift list stays under the issue body limit and counts the rest', () => {
    const many = Array.from({ length: 2000 }, (_, i) => ({
      id: `srv/t${i}`,
      drift: ['設定が手で変更されました'.repeat(10)],
    }));
    const list = driftList(many);
    expect(bytes(list)).toBeLessThanOrEqual(60_000);
    expect(list).toMatch(/- … and \d+ more \(the `statuses` output lists all\)$/);
  });
});

describe('--format json and the statuses output', () => {
  test('strings lose C1 controls and bidi overrides; C0 is escaped by JSON; the rest is kept', () => {
    const value = {
      error: 'a\u009b31mb\u202ec\u2066d\u200fe\u0085f',
      nested: [{ x: '\u001b[2Jok 日本 🚀' }],
    };
    const text = jsonText(value, 2);
    expect(text).not.toMatch(/[\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
    expect(JSON.parse(text)).toEqual({ error: 'a31mbcdef', nested: [{ x: '\u001b[2Jok 日本 🚀' }] });
    expect(text).toContain('\\u001b[2J');
  });
});

describe('the summary budget counts UTF-8 bytes', () => {
  test('utf8Bytes is Buffer.byteLength for any text, wide characters and emoji included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(utf8Bytes(s)).toBe(bytes(s));
      }),
      { numRuns: 500 },
    );
    expect(utf8Bytes('a\ud800b')).toBe(bytes('a\ud800b')); // a lone surrogate: 3 bytes, as Node encodes it
  });

  test('10,000 failures with reasons in CJK: the deploy summary stays under 1 MiB in bytes', () => {
    const reason = '健康チェックに失敗しました：サーバーが応答しません。'.repeat(6);
    const targets = Array.from({ length: 10_000 }, (_, i) => ({
      ...result(i, 'failed', `${reason} ${i}`),
      wave: 1 + (i % 4),
    }));
    const text = renderSummary(report(targets), { reportLink: 'the fleet-deploy-reports artifact' });
    expect(bytes(text)).toBeLessThanOrEqual(SUMMARY_LIMIT);
    // Mostly three-byte text: a count by characters would have let it grow to about three times that.
    expect(text.length).toBeLessThan(bytes(text) / 2);
    expect(text).toContain('more not shown here');
  });

  test('10,000 status rows in CJK: the status summary stays under 1 MiB in bytes', () => {
    const drift = 'イメージが手で変更されました'.repeat(8);
    const rows = Array.from({ length: 10_000 }, (_, i) => [`srv-${i}/t`, '実行中', 'v2', drift]);
    const text = renderStatusSummary({
      headers: ['TARGET', 'STATE', 'VERSION', 'DRIFT'],
      rows,
      attention: rows.map((_, i) => i % 2 === 0),
      drifted: 5000,
      unreachable: 0,
    });
    expect(bytes(text)).toBeLessThanOrEqual(SUMMARY_LIMIT);
    expect(text).toContain('more targets');
  });
});
