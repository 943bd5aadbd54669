/**
 * The rollout at a glance (pure): a Mermaid Gantt chart of the waves and the gates between them, which
 * GitHub draws in a job summary. One section per wave: a bar for the targets that succeeded, a red (crit)
 * bar for those that failed or were rolled back, a bar for the skipped; between two waves the gate, a
 * milestone that is red where the rollout stopped. Its size grows with the waves, never with the targets
 * (10,000 targets in 10 waves make about 2 KB), and past MAX_WAVES sections the last waves share one.
 * Only counts and our own words: no text from a server reaches it.
 */
import type { FleetReport } from '../deploy/fleet';
import type { TargetResult } from '../deploy/result';

/** Wave sections drawn one by one; later waves share one section. */
export const MAX_WAVES = 20;

interface Span {
  start: number;
  end: number;
}

/** When a set of targets ran: the first start to the last end (at least a second, so a bar shows). */
function spanOf(rs: readonly TargetResult[], fallback: number): Span {
  const starts = rs.map((r) => Date.parse(r.startedAt)).filter(Number.isFinite);
  const start = starts.length ? Math.min(...starts) : fallback;
  const ends = rs.map((r) => Date.parse(r.startedAt) + (r.durationMs ?? 0)).filter(Number.isFinite);
  const end = ends.length ? Math.max(...ends) : start;
  return { start, end: Math.max(end, start + 1000) };
}

const bar = (label: string, tags: string, id: string, s: Span) =>
  `    ${label} :${tags ? `${tags}, ` : ''}${id}, ${s.start}, ${s.end}`;

/** A wave's bars: succeeded, failed or rolled back (crit), skipped. */
function waveBars(n: string, rs: readonly TargetResult[], fallback: number): string[] {
  const good = rs.filter((r) => r.outcome === 'deployed' || r.outcome === 'unchanged');
  const bad = rs.filter((r) => r.outcome === 'failed' || r.outcome === 'rolled-back');
  const skipped = rs.filter((r) => r.outcome === 'skipped');
  const lines: string[] = [];
  if (good.length) lines.push(bar(`${good.length} succeeded`, 'done', `w${n}ok`, spanOf(good, fallback)));
  if (bad.length)
    lines.push(bar(`${bad.length} failed or rolled back`, 'crit', `w${n}bad`, spanOf(bad, fallback)));
  if (skipped.length)
    lines.push(bar(`${skipped.length} skipped`, '', `w${n}skip`, spanOf(skipped, fallback)));
  return lines;
}

/** The Mermaid chart as a fenced block for Markdown, or '' when there is nothing to draw. */
export function rolloutChart(report: FleetReport): string {
  const waves = [...new Set(report.targets.map((r) => r.wave))].sort((a, b) => a - b);
  if (waves.length === 0) return '';
  const origin = Date.parse(report.startedAt);
  const fallback = Number.isFinite(origin) ? origin : 0;
  const drawn = waves.slice(0, MAX_WAVES - 1);
  const rest = waves.slice(MAX_WAVES - 1);
  const groups: Array<{ name: string; id: string; rs: TargetResult[] }> = drawn.map((w) => ({
    name: `Wave ${w}`,
    id: String(w),
    rs: report.targets.filter((r) => r.wave === w),
  }));
  if (rest.length === 1)
    groups.push({
      name: `Wave ${rest[0]}`,
      id: String(rest[0]),
      rs: report.targets.filter((r) => r.wave === rest[0]),
    });
  else if (rest.length > 1)
    groups.push({
      name: `Waves ${rest[0]} to ${rest.at(-1)}`,
      id: 'rest',
      rs: report.targets.filter((r) => r.wave >= rest[0]!),
    });
  const lines = ['```mermaid', 'gantt', '    dateFormat x', '    axisFormat %H:%M:%S', '    todayMarker off'];
  for (const [i, g] of groups.entries()) {
    lines.push(`    section ${g.name} · ${g.rs.length} target${g.rs.length === 1 ? '' : 's'}`);
    lines.push(...waveBars(g.id, g.rs, fallback));
    const next = groups[i + 1];
    if (!next) continue;
    // The gate between this wave and the next: passed when the next wave ran, else where it stopped.
    const went = next.rs.some((r) => r.outcome !== 'skipped');
    const at = spanOf(
      g.rs.filter((r) => r.outcome !== 'skipped'),
      fallback,
    ).end;
    lines.push(
      `    ${went ? 'gate passed' : 'gate stopped the rollout'} :${went ? 'done, ' : 'crit, '}milestone, g${g.id}, ${at}, ${at}`,
    );
  }
  lines.push('```');
  return lines.join('\n');
}
