/**
 * The rollout chart in the job summary: a Mermaid Gantt of the waves and the gates, failures and the
 * gate that stopped the rollout marked red, bounded in size however many targets (10,000 here).
 */
import type { FleetReport } from '../src/deploy/fleet';
import type { Outcome, TargetResult } from '../src/deploy/result';
import { MAX_WAVES, rolloutChart } from '../src/report/rollout-chart';
import { renderSummary } from '../src/report/summary';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');

function result(i: number, wave: number, outcome: Outcome): TargetResult {
  return {
    id: `eu-${i}/t${i}`,
    server: `eu-${i}`,
    tenant: `t${i}`,
    region: 'eu',
    ring: 'general',
    wave,
    outcome,
    steps: [],
    durationMs: outcome === 'skipped' ? 0 : 4000,
    startedAt: new Date(T0 + wave * 60_000 + (i % 50) * 100).toISOString(),
    ...(outcome === 'failed' ? { error: 'health gate failed' } : {}),
  } as TargetResult;
}

function report(targets: TargetResult[]): FleetReport {
  return {
    version: 'v2',
    actor: 'ci',
    runId: '1',
    startedAt: new Date(T0).toISOString(),
    durationMs: 600_000,
    totals: { targets: targets.length, deployed: 0, unchanged: 0, 'rolled-back': 0, failed: 0, skipped: 0 },
    waves: [],
    targets,
  } as FleetReport;
}

/** 10,000 targets in 4 waves; wave 3 fails past the budget and wave 4 is skipped. */
function stoppedRollout(n = 10_000): FleetReport {
  const wave = (i: number) => (i < 10 ? 1 : i < n * 0.25 ? 2 : i < n * 0.6 ? 3 : 4);
  return report(
    Array.from({ length: n }, (_, i) => {
      const w = wave(i);
      return result(i, w, w === 4 ? 'skipped' : w === 3 && i % 10 === 0 ? 'failed' : 'deployed');
    }),
  );
}

test('waves as sections, failures and the stopping gate marked red, the passed gates done', () => {
  const chart = rolloutChart(stoppedRollout(1000));
  const lines = chart.split('\n');
  expect(lines.slice(0, 3)).toEqual(['```mermaid', 'gantt', '    dateFormat x']);
  expect(lines.at(-1)).toBe('```');
  expect(lines.filter((l) => l.startsWith('    section '))).toEqual([
    '    section Wave 1 · 10 targets',
    '    section Wave 2 · 240 targets',
    '    section Wave 3 · 350 targets',
    '    section Wave 4 · 400 targets',
  ]);
  expect(chart).toContain('    35 failed or rolled back :crit, w3bad, ');
  expect(chart).toContain('    400 skipped :w4skip, ');
  expect(lines.filter((l) => l.includes('gate passed :done, milestone'))).toHaveLength(2);
  expect(lines.filter((l) => l.includes('gate stopped the rollout :crit, milestone, g3'))).toHaveLength(1);
  // Every bar has a start before its end (Mermaid draws nothing otherwise), in ms since the epoch.
  for (const l of lines.filter((x) => /, \d+, \d+$/.test(x))) {
    const [start, end] = l.split(', ').slice(-2).map(Number);
    expect(end).toBeGreaterThanOrEqual(start!);
    expect(start).toBeGreaterThanOrEqual(T0);
  }
});

test('10,000 targets: the chart stays small (it grows with the waves, not the targets)', () => {
  const big = rolloutChart(stoppedRollout(10_000));
  const small = rolloutChart(stoppedRollout(100));
  expect(Buffer.byteLength(big)).toBeLessThan(2048);
  // 100 times the targets: only the counts' digits grow.
  expect(Buffer.byteLength(big) - Buffer.byteLength(small)).toBeLessThan(60);
  // …and it heads the job summary, which stays within its limit.
  const md = renderSummary(stoppedRollout(10_000));
  expect(md).toContain('<details open><summary>The rollout: waves and gates</summary>');
  expect(md).toContain(big);
});

test(`more than ${MAX_WAVES} waves (fleet mode): the last ones share a section, so the size is bounded`, () => {
  const many = report(Array.from({ length: 10_000 }, (_, i) => result(i, 1 + (i % 100), 'deployed')));
  const chart = rolloutChart(many);
  const sections = chart.split('\n').filter((l) => l.startsWith('    section '));
  expect(sections).toHaveLength(MAX_WAVES);
  expect(sections.at(-1)).toBe(
    `    section Waves ${MAX_WAVES} to 100 · ${10_000 - (MAX_WAVES - 1) * 100} targets`,
  );
  expect(Buffer.byteLength(chart)).toBeLessThan(6000);
});

test('no targets: no chart; only our own words, never server text', () => {
  expect(rolloutChart(report([]))).toBe('');
  const hostile = { ...result(1, 1, 'failed'), id: 'x:crit, evil', error: '```\n</details>' } as TargetResult;
  const chart = rolloutChart(report([hostile]));
  expect(chart).not.toContain('evil');
  expect(chart).not.toContain('</details>');
});
