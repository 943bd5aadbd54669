import { readFileSync } from 'node:fs';
import { failureAnnotations } from '../src/report/annotations';
import { renderReport } from '../src/report/render';
import { decideGate } from '../src/deploy/budget';
import type { FleetReport } from '../src/deploy/fleet';
import type { Outcome, TargetResult } from '../src/deploy/result';
import {
  latestResults,
  mergeReports,
  renderSummary,
  shortVersion,
  SUMMARY_LIMIT,
} from '../src/report/summary';

function target(i: number, wave: number, outcome: Outcome): TargetResult {
  return {
    id: `eu-${String(Math.floor(i / 8)).padStart(4, '0')}/t${String(i).padStart(5, '0')}`,
    server: `eu-${Math.floor(i / 8)}`,
    tenant: `t${i}`,
    region: 'eu',
    ring: 'general',
    wave,
    outcome,
    previous: { refs: {}, version: 'v1', imageIds: [], digests: [] },
    next: { refs: {}, version: 'v2', imageIds: [], digests: [] },
    steps: [],
    ...(outcome === 'failed' || outcome === 'rolled-back'
      ? { error: `health gate failed: not healthy within 90 s (last: HTTP 503, expected 200) | pipe` }
      : {}),
    ...(outcome === 'skipped' ? { error: 'wave 2 exceeded the failure budget' } : {}),
    startedAt: '2026-11-22T10:00:00.000Z',
    durationMs: 4200,
  };
}

function report(targets: TargetResult[], extra: Partial<FleetReport> = {}): FleetReport {
  return mergeReports([
    {
      version: 'v2',
      actor: 'a',
      runId: 'r',
      startedAt: '2026-11-22T10:00:00.000Z',
      durationMs: 60_000,
      totals: {} as any,
      waves: [],
      targets,
      ...extra,
    },
  ]);
}

describe('the summary', () => {
  test('totals, a table per wave with failures first, successes collapsed, pipes escaped', () => {
    const md = renderSummary(
      report(
        [
          target(1, 1, 'deployed'),
          target(2, 2, 'deployed'),
          target(3, 2, 'rolled-back'),
          target(4, 2, 'unchanged'),
          target(5, 3, 'skipped'),
        ],
        { stopped: 'wave 2 exceeded the failure budget' },
      ),
    );
    expect(md).toContain('## ❌ Deploy v2');
    expect(md).toContain(
      '**5** targets in 60 s: ✅ 2 deployed · ⏺️ 1 unchanged · ↩️ 1 rolled-back · ⏭️ 1 skipped',
    );
    expect(md).toContain('> Rollout stopped: `wave 2 exceeded the failure budget`');
    const wave2 = md.slice(md.indexOf('### Wave 2'), md.indexOf('### Wave 3'));
    expect(wave2).toContain(
      '| eu-0000/t00003 | eu | ↩️ rolled-back | `v1` → `v2` | 4.2 s | `health gate failed: not healthy within 90 s (last: HTTP 503, expected 200) \\| pipe` |',
    );
    expect(wave2).toContain('<details><summary>2 succeeded (1 deployed, 1 unchanged)</summary>');
    expect(wave2).toContain('✅ eu-0000/t00002, ⏺️ eu-0000/t00004');
  });

  test("10,000 targets with 10% failures stay under GitHub's 1 MiB limit and keep the failures", () => {
    const ts = Array.from({ length: 10_000 }, (_, i) =>
      target(i, i < 100 ? 1 : i < 2500 ? 2 : 3, i % 10 === 3 ? 'failed' : 'deployed'),
    );
    const md = renderSummary(report(ts));
    expect(Buffer.byteLength(md)).toBeLessThan(SUMMARY_LIMIT);
    expect(md).toContain('**10000** targets');
    expect(md.split('\n').filter((l) => l.includes('❌ failed')).length).toBeGreaterThan(500);
  });

  test('40,000 failures still fit: rows are cut and the cut says where the rest is', () => {
    const ts = Array.from({ length: 40_000 }, (_, i) => target(i, 1, 'failed'));
    const md = renderSummary(report(ts), { reportLink: 'the fleet-deploy-reports artifact' });
    expect(Buffer.byteLength(md)).toBeLessThan(SUMMARY_LIMIT);
    expect(md).toMatch(/…and \d+ more not shown here; see the fleet-deploy-reports artifact\./);
  });

  const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
  /** A rollout at scale: 5% failed in wave 2 (two reasons), the rest skipped. */
  function atScale(n: number): FleetReport {
    const ts = Array.from({ length: n }, (_, i) => {
      const wave = i < 10 ? 1 : i < Math.ceil(n * 0.4) ? 2 : 3;
      const r = target(i, wave, wave === 3 ? 'skipped' : i % 20 === 7 ? 'failed' : 'deployed');
      r.next = { refs: {}, version: DIGEST, imageIds: [], digests: [] };
      if (i % 40 === 7) r.error = 'pull failed: <html>denied</html>';
      return r;
    });
    return report(ts, { version: DIGEST, stopped: 'failure budget exceeded: 5.0% > 2% <after wave 2>' });
  }

  test.each([
    [2_000, 40_000],
    [10_000, 200_000],
  ])('%i targets: the shape, and a size well under the limit (< %i bytes)', (n, maxBytes) => {
    const md = renderSummary(atScale(n), { reportLink: 'the fleet-deploy-reports artifact' });
    expect(Buffer.byteLength(md)).toBeLessThan(maxBytes);
    const lines = md.split('\n');
    // Skipped targets: one line for the whole wave, not a row each.
    // (the rollout chart has one bar for them, outside the wave sections)
    expect(lines.filter((l) => l.includes('skipped') && !/ :w\d+skip, /.test(l)).length).toBeLessThanOrEqual(
      2,
    );
    expect(md).toContain(`⏭️ **${n - Math.ceil(n * 0.4)} skipped**: \`wave 2 exceeded the failure budget\``);
    // The full digest once in the head, short in the rows.
    expect(md.split(DIGEST).length - 1).toBe(1);
    expect(md).toContain('| `v1` → `sha256:0123456789ab…` |');
    // The gate's reason, and the top reasons with the servers they hit, escaped.
    expect(md).toContain('> Rollout stopped: `failure budget exceeded: 5.0% > 2% <after wave 2>`');
    expect(md).toContain('### Top failure reasons');
    expect(md).toMatch(/\| `pull failed: <html>denied<\/html>` \| \d+ \| \d+: eu-\d+, /);
    // Server text is code: a tag from a server is shown, never opened.
    expect(md.replace(/`[^`\n]*`/g, '')).not.toContain('<html>');
    expect(lines.filter((l) => l.includes('❌ failed')).length).toBeGreaterThan(n * 0.4 * 0.05 * 0.5);
  });

  test('digests are cut to 12 hex digits; tags are left alone', () => {
    expect(shortVersion(`ghcr.io/a/b@${DIGEST}`)).toBe('ghcr.io/a/b@sha256:0123456789ab…');
    expect(shortVersion('v1.4.2')).toBe('v1.4.2');
  });

  test('a re-run: the newest result of each target counts, and a gate judges only its waves', () => {
    const first = report([target(1, 1, 'failed'), target(2, 1, 'deployed'), target(3, 2, 'deployed')]);
    const rerun = report([{ ...target(1, 1, 'deployed'), startedAt: '2026-11-22T11:00:00.000Z' }]);
    const merged = mergeReports([rerun, first]);
    expect(merged.totals).toMatchObject({ targets: 3, deployed: 3, failed: 0 });
    const throughWave1 = latestResults([first, rerun], 1).flatMap((r) => r.targets);
    expect(throughWave1.map((r) => [r.id, r.outcome])).toEqual([
      ['eu-0000/t00002', 'deployed'],
      ['eu-0000/t00001', 'deployed'],
    ]);
    expect(decideGate(latestResults([first, rerun], 1), { maxFailurePercent: 0 }, 2)).toMatchObject({
      proceed: true,
    });
  });

  test('merging job reports: totals, waves and the time span', () => {
    const a = {
      version: 'v2',
      actor: 'a',
      runId: 'r',
      startedAt: '2026-11-22T10:00:00.000Z',
      durationMs: 10_000,
      totals: {} as any,
      waves: [],
      targets: [target(1, 1, 'deployed')],
    };
    const b = {
      ...a,
      startedAt: '2026-11-22T10:00:05.000Z',
      durationMs: 20_000,
      targets: [target(2, 2, 'failed'), target(3, 2, 'deployed')],
    };
    const m = mergeReports([b, a]);
    expect(m.totals).toEqual({
      targets: 3,
      deployed: 2,
      unchanged: 0,
      'rolled-back': 0,
      failed: 1,
      skipped: 0,
    });
    expect(m.waves.map((w) => [w.wave, w.targets])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(m.durationMs).toBe(25_000);
    expect(m.targets.map((t) => t.wave)).toEqual([1, 2, 2]);
  });
});

describe('the gate between waves', () => {
  const rep = (outcomes: Outcome[]) => report(outcomes.map((o, i) => target(i, 1, o)));
  test('within the budget: go on', () => {
    expect(
      decideGate([rep(['deployed', 'deployed', 'rolled-back', 'deployed'])], { maxFailurePercent: 25 }),
    ).toEqual({
      proceed: true,
      reason: '1 of 4 targets failed or rolled back: within the budget',
      failures: 1,
      targets: 4,
    });
  });
  test('over the budget: stop, saying by how much', () => {
    expect(decideGate([rep(['deployed', 'failed'])], { maxFailurePercent: 0 })).toMatchObject({
      proceed: false,
      reason: 'failure budget exceeded: 1 of 2 targets failed or rolled back (50.0% > 0%)',
    });
    expect(
      decideGate([rep(['failed', 'failed', 'deployed'])], { maxFailurePercent: 100, maxFailures: 1 }),
    ).toMatchObject({
      proceed: false,
      reason: 'failure budget exceeded: 2 of 3 targets failed or rolled back (more than 1 allowed)',
    });
  });
  test('a job that died before reporting stops the rollout', () => {
    expect(decideGate([rep(['deployed'])], { maxFailurePercent: 50 }, 3)).toMatchObject({
      proceed: false,
      reason: 'only 1 of 3 targets reported a result (a job failed before writing its report)',
    });
  });
  test('10,000 targets decide at once', () => {
    const ts = Array.from({ length: 10_000 }, (_, i) =>
      target(i, 1, i % 100 === 0 ? 'rolled-back' : 'deployed'),
    );
    expect(decideGate([report(ts)], { maxFailurePercent: 1 }, 10_000)).toMatchObject({
      proceed: true,
      failures: 100,
    });
    expect(decideGate([report(ts)], { maxFailurePercent: 0.5 }, 10_000)).toMatchObject({ proceed: false });
  });
});

describe('annotations of failed targets', () => {
  const text = readFileSync('servers/example.json', 'utf8');
  const failed = (id: string): TargetResult => ({
    ...target(1, 1, 'failed'),
    id,
    server: id.split('/')[0]!,
    error: 'pull failed',
  });
  test("each failure is placed on its tenant's line in the registry file", () => {
    const line = text.split('\n').findIndex((l) => l.includes('"id": "acme-corp"')) + 1;
    const [a] = failureAnnotations(report([failed('eu-1/acme-corp')]), {
      path: 'servers/example.json',
      text,
    });
    expect(a).toMatchObject({
      file: 'servers/example.json',
      message: 'eu-1/acme-corp: failed: pull failed',
    });
    // The tenant object opens on the line before its "id".
    expect(a!.startLine).toBe(line - 1);
  });
  test('at most 10, the last one says how many more; without a registry, no file', () => {
    const many = report(Array.from({ length: 25 }, (_, i) => failed(`eu-9/t${i}`)));
    const out = failureAnnotations(many);
    expect(out).toHaveLength(10);
    expect(out[9]!.message).toContain('…and 16 more failed or rolled-back targets');
    expect(out[0]!.file).toBeUndefined();
  });
});

test("a deploy's measured downtime is in its time cell, in the summary and the terminal table", () => {
  const down = { ...target(0, 1, 'deployed'), downtimeMs: 3100 };
  const md = renderSummary(report([down, target(1, 1, 'deployed')]));
  expect(md).toContain(
    'Downtime users saw, as the health checks measured it, on 1 of 2 targets, at most 3.1 s (eu-0000/t00000)',
  );
  expect(renderSummary(report([target(1, 1, 'deployed')]))).not.toContain('Downtime');
  const failed = { ...target(2, 1, 'rolled-back'), downtimeMs: 2000 };
  expect(renderSummary(report([failed]))).toContain('| 4.2 s (down 2.0 s) |');
  const table = renderReport({ ...report([down]), targets: [down] });
  expect(table).toMatch(/eu-0000\/t00000 +1 +deployed +v1 → v2 +4\.2 s \(down 3\.1 s\)/);
});
