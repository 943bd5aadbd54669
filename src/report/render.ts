/** The deploy report for people: the final table, and the outcome words. Pure. */
import type { FleetReport } from '../deploy/fleet';
import { OUTCOMES, type Outcome, type TargetResult } from '../deploy/result';
import { sanitizeLine } from './sanitize';
import { plural, table } from './table';

export const OUTCOME_ORDER: Record<Outcome, number> = {
  failed: 0,
  'rolled-back': 1,
  skipped: 2,
  deployed: 3,
  unchanged: 4,
};

export function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** A target's time, with the downtime its health gate measured when there was any. */
export function targetTime(r: TargetResult): string {
  return r.downtimeMs ? `${seconds(r.durationMs)} (down ${seconds(r.downtimeMs)})` : seconds(r.durationMs);
}

const versionOf = (r: TargetResult, which: 'previous' | 'next') => r[which]?.version ?? '—';

/**
 * `rollback`: the run was a manual rollback, whose targets that reached the old release read
 * "deployed (rollback)" — not "rolled-back", which is the automatic rollback after a failed deploy and
 * counts as a failure.
 */
export function renderReport(report: FleetReport, o: { rollback?: boolean } = {}): string {
  const rows = [...report.targets]
    .sort(
      (a, b) =>
        OUTCOME_ORDER[a.outcome] - OUTCOME_ORDER[b.outcome] || a.wave - b.wave || (a.id < b.id ? -1 : 1),
    )
    .map((r) => [
      r.id,
      String(r.wave),
      o.rollback && r.outcome === 'deployed' ? 'deployed (rollback)' : r.outcome,
      `${versionOf(r, 'previous')} → ${versionOf(r, 'next')}`,
      targetTime(r),
      reason(r),
    ]);
  const t = report.totals;
  const parts = OUTCOMES.filter((o) => t[o] > 0).map((o) => `${t[o]} ${o}`);
  const lines = [
    table(['TARGET', 'WAVE', 'OUTCOME', 'FROM → TO', 'TIME', 'REASON'], rows),
    '',
    `${plural(t.targets, 'target')}: ${parts.join(', ') || 'none'} in ${seconds(report.durationMs)}`,
  ];
  for (const a of report.analysis ?? [])
    lines.push(
      `Analysis after wave ${a.wave}: ${a.outcome} in ${seconds(a.durationMs)}: ${sanitizeLine(a.reason)}`,
    );
  if (report.stopped) lines.push(`${report.paused ? 'Paused' : 'Stopped'}: ${sanitizeLine(report.stopped)}`);
  return `${lines.join('\n')}\n`;
}

export function reason(r: TargetResult): string {
  const text = r.rollbackError ? `${r.error}; rollback: ${r.rollbackError}` : (r.error ?? '');
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}

export function succeeded(report: FleetReport): boolean {
  return report.targets.every((r) => r.outcome === 'deployed' || r.outcome === 'unchanged');
}
