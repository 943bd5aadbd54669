/**
 * The deployment summary as GitHub job-summary Markdown (pure). Totals, then a table per wave with the
 * failures first; successes are collapsed into a <details> list of ids, and the whole text is kept under
 * GitHub's 1 MiB step-summary limit even for 10,000 targets (cut sections say how many rows they left
 * out and where the full report is).
 */
import type { FleetReport } from '../deploy/fleet';
import type { Outcome, TargetResult } from '../deploy/result';
import { OUTCOME_ORDER, reason, seconds } from './render';
import { sanitizeLine } from './sanitize';

export const SUMMARY_LIMIT = 1024 * 1024;

const EMOJI: Record<Outcome, string> = {
  deployed: '✅',
  unchanged: '⏺️',
  'rolled-back': '↩️',
  failed: '❌',
  skipped: '⏭️',
};
const OUTCOMES: Outcome[] = ['deployed', 'unchanged', 'rolled-back', 'failed', 'skipped'];

/** Several jobs' reports (one per matrix job or shard) as one. */
export function mergeReports(reports: readonly FleetReport[]): FleetReport {
  const targets = reports
    .flatMap((r) => r.targets)
    .sort((a, b) => a.wave - b.wave || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const totals = Object.fromEntries(
    OUTCOMES.map((o) => [o, targets.filter((t) => t.outcome === o).length]),
  ) as Record<Outcome, number>;
  const waves = [...new Set(targets.map((t) => t.wave))]
    .sort((a, b) => a - b)
    .map((wave) => {
      const ts = targets.filter((t) => t.wave === wave);
      return {
        wave,
        targets: ts.length,
        counts: Object.fromEntries(
          OUTCOMES.map((o) => [o, ts.filter((t) => t.outcome === o).length]),
        ) as Record<Outcome, number>,
      };
    });
  const starts = reports.map((r) => Date.parse(r.startedAt)).filter(Number.isFinite);
  const ends = reports.map((r) => Date.parse(r.startedAt) + r.durationMs).filter(Number.isFinite);
  const stopped = reports.map((r) => r.stopped).find(Boolean);
  return {
    version: reports[0]?.version ?? '',
    actor: reports[0]?.actor ?? '',
    runId: reports[0]?.runId ?? '',
    startedAt: starts.length ? new Date(Math.min(...starts)).toISOString() : new Date(0).toISOString(),
    durationMs: starts.length ? Math.max(...ends) - Math.min(...starts) : 0,
    totals: { targets: targets.length, ...totals },
    waves,
    ...(stopped ? { stopped } : {}),
    targets,
  };
}

const cell = (s: string) => sanitizeLine(s).replace(/\|/g, '\\|');
const row = (r: TargetResult) =>
  `| ${cell(r.id)} | ${cell(r.region)} | ${EMOJI[r.outcome]} ${r.outcome} | ${cell(r.previous?.version ?? '—')} → ${cell(r.next?.version ?? '—')} | ${seconds(r.durationMs)} | ${cell(reason(r))} |`;

export interface SummaryOptions {
  title?: string;
  /** Where the full JSON report is (an artifact name or URL), named when rows are cut. */
  reportLink?: string;
  limit?: number;
}

export function renderSummary(report: FleetReport, o: SummaryOptions = {}): string {
  const limit = o.limit ?? SUMMARY_LIMIT;
  const t = report.totals;
  const ok = t.deployed + t.unchanged === t.targets;
  const head = [
    `## ${ok ? '✅' : '❌'} ${cell(o.title ?? `Deploy ${report.version}`)}`,
    '',
    `**${t.targets}** targets in ${seconds(report.durationMs)}: ${
      OUTCOMES.filter((x) => t[x] > 0)
        .map((x) => `${EMOJI[x]} ${t[x]} ${x}`)
        .join(' · ') || 'none'
    }`,
    ...(report.stopped ? ['', `> [!WARNING]`, `> Rollout stopped: ${cell(report.stopped)}`] : []),
    '',
  ];
  const budgetFor = (sections: number) =>
    Math.floor((limit - head.join('\n').length - 2000) / Math.max(1, sections));
  const waves = [...new Set(report.targets.map((r) => r.wave))].sort((a, b) => a - b);
  const perWave = budgetFor(waves.length);
  const body: string[] = [];
  for (const wave of waves) {
    const rs = report.targets
      .filter((r) => r.wave === wave)
      .sort((a, b) => OUTCOME_ORDER[a.outcome] - OUTCOME_ORDER[b.outcome] || (a.id < b.id ? -1 : 1));
    const bad = rs.filter((r) => r.outcome !== 'deployed' && r.outcome !== 'unchanged');
    const good = rs.filter((r) => r.outcome === 'deployed' || r.outcome === 'unchanged');
    const section = [`### Wave ${wave} · ${rs.length} target${rs.length === 1 ? '' : 's'}`, ''];
    let used = section.join('\n').length;
    if (bad.length) {
      const lines = [
        '| target | region | outcome | from → to | time | reason |',
        '|---|---|---|---|---|---|',
      ];
      used += lines.join('\n').length;
      let shown = 0;
      for (const r of bad) {
        const line = row(r);
        if (used + line.length + 200 > perWave * 0.7) break;
        lines.push(line);
        used += line.length + 1;
        shown++;
      }
      if (shown < bad.length)
        lines.push(
          '',
          `…and ${bad.length - shown} more not shown here${o.reportLink ? `; see ${o.reportLink}` : ''}.`,
        );
      section.push(...lines, '');
    }
    if (good.length) {
      const ids: string[] = [];
      for (const r of good) {
        if (used + r.id.length + 300 > perWave) break;
        ids.push(`${EMOJI[r.outcome]} ${r.id}`);
        used += r.id.length + 6;
      }
      const more = good.length - ids.length;
      section.push(
        `<details><summary>${good.length} succeeded (${good.filter((r) => r.outcome === 'deployed').length} deployed, ${good.filter((r) => r.outcome === 'unchanged').length} unchanged)</summary>`,
        '',
        ids.join(', ') + (more ? ` …and ${more} more${o.reportLink ? ` (${o.reportLink})` : ''}` : ''),
        '',
        '</details>',
        '',
      );
    }
    body.push(...section);
  }
  return [...head, ...body].join('\n');
}
