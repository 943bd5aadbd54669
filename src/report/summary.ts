/**
 * The deployment summary as GitHub job-summary Markdown (pure). Totals, the reason a rollout stopped, the
 * top failure reasons with the servers they hit, then per wave a table of failures, skipped targets folded
 * into one line, and successes collapsed into a <details> list of ids. Digests are shortened in rows (the
 * full version is in the head once), and the whole text is kept under GitHub's 1 MiB step-summary limit
 * even for 10,000 targets, counted in UTF-8 bytes as GitHub counts (cut sections say how many rows they
 * left out and where the full report is). Server text (reasons, versions, the stop reason) is shown as code.
 */
import { analysisMarkdown } from './analysis';
import type { FleetReport } from '../deploy/fleet';
import type { Outcome, TargetResult } from '../deploy/result';
import { OUTCOME_ORDER, reason, seconds, targetTime } from './render';
import { rolloutChart } from './rollout-chart';
import { codeSpan, sanitizeLine, utf8Bytes } from './sanitize';

export const SUMMARY_LIMIT = 1024 * 1024;

const EMOJI: Record<Outcome, string> = {
  deployed: '✅',
  unchanged: '⏺️',
  'rolled-back': '↩️',
  failed: '❌',
  skipped: '⏭️',
};
const OUTCOMES: Outcome[] = ['deployed', 'unchanged', 'rolled-back', 'failed', 'skipped'];

/**
 * The reports with one result per target, the newest (by start time; the later report on a tie), and
 * only waves up to `throughWave` when given. A re-run of failed jobs leaves the first attempt's reports in
 * the run's artifacts beside the new ones, and reports of waves an earlier attempt got to: neither may be
 * judged again.
 */
export function latestResults(reports: readonly FleetReport[], throughWave?: number): FleetReport[] {
  const latest = new Map<string, TargetResult>();
  for (const r of reports.flatMap((x) => x.targets)) {
    const seen = latest.get(r.id);
    if (!seen || Date.parse(r.startedAt) >= Date.parse(seen.startedAt)) latest.set(r.id, r);
  }
  return reports.map((report) => ({
    ...report,
    targets: report.targets.filter(
      (r) => latest.get(r.id) === r && (throughWave === undefined || r.wave <= throughWave),
    ),
  }));
}

/** Several jobs' reports (one per matrix job or shard) as one, with the newest result of each target. */
export function mergeReports(all: readonly FleetReport[]): FleetReport {
  const reports = latestResults(all);
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
  const analysis = reports.flatMap((r) => r.analysis ?? []);
  return {
    version: reports[0]?.version ?? '',
    actor: reports[0]?.actor ?? '',
    runId: reports[0]?.runId ?? '',
    startedAt: starts.length ? new Date(Math.min(...starts)).toISOString() : new Date(0).toISOString(),
    durationMs: starts.length ? Math.max(...ends) - Math.min(...starts) : 0,
    totals: { targets: targets.length, ...totals },
    waves,
    ...(stopped ? { stopped } : {}),
    ...(analysis.length ? { analysis } : {}),
    targets,
  };
}

/**
 * A table cell: server text cleaned (no escape sequence, control character or workflow command), and
 * no pipe or line break ends it, and no `<` or `>` from a server opens an HTML tag.
 */
export const cell = (s: string) =>
  sanitizeLine(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|')
    .replace(/\r?\n/g, ' ');

/** Server text in a cell: a code span (no live Markdown, HTML or @mention), or an em dash when empty. */
export const serverCell = (s: string | undefined) => codeSpan(s ?? '') || '—';

/** A digest cut to 12 hex digits ("sha256:0123456789ab…"), as `docker images` shows it; tags unchanged. */
export function shortVersion(v: string): string {
  return v.replace(/sha256:([0-9a-f]{12})[0-9a-f]{52}/g, 'sha256:$1…');
}

const version = (r: TargetResult, which: 'previous' | 'next') =>
  serverCell(shortVersion(r[which]?.version ?? ''));
const row = (r: TargetResult) =>
  `| ${cell(r.id)} | ${cell(r.region)} | ${EMOJI[r.outcome]} ${r.outcome} | ` +
  `${version(r, 'previous')} → ${version(r, 'next')} | ${targetTime(r)} | ${serverCell(reason(r))} |`;
const isBad = (r: TargetResult) => r.outcome === 'failed' || r.outcome === 'rolled-back';
const isGood = (r: TargetResult) => r.outcome === 'deployed' || r.outcome === 'unchanged';

export interface SummaryOptions {
  title?: string;
  /** Where the full JSON report is (an artifact name or URL), named when rows are cut. */
  reportLink?: string;
  limit?: number;
}

/** Reasons with their counts, most frequent first (ties by text), at most `top`. */
function countReasons(rs: readonly TargetResult[], top: number) {
  const by = new Map<string, TargetResult[]>();
  for (const r of rs) {
    const key = reason(r) || 'no reason given';
    const list = by.get(key);
    if (list) list.push(r);
    else by.set(key, [r]);
  }
  return [...by.entries()]
    .map(([text, list]) => ({ text, list, servers: [...new Set(list.map((r) => r.server))].sort() }))
    .sort((a, b) => b.list.length - a.list.length || (a.text < b.text ? -1 : 1))
    .slice(0, top);
}

const listed = (items: readonly string[], max: number) =>
  items.length > max ? `${items.slice(0, max).join(', ')} …+${items.length - max}` : items.join(', ');

/** "Top failure reasons × servers": which reasons hit how many targets, on which servers. */
function topReasons(report: FleetReport): string[] {
  const bad = report.targets.filter(isBad);
  if (bad.length === 0) return [];
  const top = countReasons(bad, 10);
  return [
    '### Top failure reasons',
    '',
    '| reason | targets | servers |',
    '|---|---|---|',
    ...top.map(
      (t) =>
        `| ${serverCell(t.text)} | ${t.list.length} | ${t.servers.length}: ${cell(listed(t.servers, 5))} |`,
    ),
    '',
  ];
}

/** The skipped targets of a wave, folded into one line with their reasons. */
function skippedLine(skipped: readonly TargetResult[]): string[] {
  if (skipped.length === 0) return [];
  const reasons = countReasons(skipped, 3).map((t) => `${codeSpan(t.text, false) || '—'} (${t.list.length})`);
  return [`${EMOJI.skipped} **${skipped.length} skipped**: ${reasons.join('; ')}`, ''];
}

/** The rollout as a picture (waves, gates, failures marked) in a <details> that is open by default. */
function chartSection(report: FleetReport): string[] {
  const chart = rolloutChart(report);
  return chart
    ? ['<details open><summary>The rollout: waves and gates</summary>', '', chart, '', '</details>', '']
    : [];
}

/** The downtime users saw, as the health checks measured it (in place: the gate; blue-green: through the proxy). */
function downtimeLine(rs: readonly TargetResult[]): string[] {
  const down = rs.filter((r) => r.downtimeMs).sort((a, b) => b.downtimeMs! - a.downtimeMs!);
  if (down.length === 0) return [];
  const worst = down[0]!;
  return [
    '',
    `Downtime users saw, as the health checks measured it, on ${down.length} of ${rs.length} ` +
      `targets, at most ${seconds(worst.downtimeMs!)} (${cell(worst.id)})`,
  ];
}

export function renderSummary(report: FleetReport, o: SummaryOptions = {}): string {
  const limit = o.limit ?? SUMMARY_LIMIT;
  const t = report.totals;
  const ok = t.deployed + t.unchanged === t.targets;
  const head = [
    `## ${ok ? '✅' : '❌'} ${cell(shortVersion(o.title ?? `Deploy ${report.version}`))}`,
    '',
    `**${t.targets}** targets in ${seconds(report.durationMs)}: ${
      OUTCOMES.filter((x) => t[x] > 0)
        .map((x) => `${EMOJI[x]} ${t[x]} ${x}`)
        .join(' · ') || 'none'
    }`,
    ...(report.version ? ['', `Version: \`${report.version.replace(/`/g, "'")}\``] : []),
    ...(report.stopped ? ['', `> [!WARNING]`, `> Rollout stopped: ${codeSpan(report.stopped, false)}`] : []),
    ...downtimeLine(report.targets),
    '',
    ...chartSection(report),
    ...topReasons(report),
  ];
  const budgetFor = (sections: number) =>
    Math.floor((limit - utf8Bytes(head.join('\n')) - 2000) / Math.max(1, sections));
  const waves = [...new Set(report.targets.map((r) => r.wave))].sort((a, b) => a - b);
  const perWave = budgetFor(waves.length);
  const body: string[] = [];
  for (const wave of waves) {
    const rs = report.targets
      .filter((r) => r.wave === wave)
      .sort((a, b) => OUTCOME_ORDER[a.outcome] - OUTCOME_ORDER[b.outcome] || (a.id < b.id ? -1 : 1));
    const section = [`### Wave ${wave} · ${rs.length} target${rs.length === 1 ? '' : 's'}`, ''];
    const used = { bytes: utf8Bytes(section.join('\n')) };
    section.push(
      ...failureTable(rs.filter(isBad), used, perWave, o.reportLink),
      ...skippedLine(rs.filter((r) => r.outcome === 'skipped')),
      ...successList(rs.filter(isGood), used, perWave, o.reportLink),
    );
    body.push(...section);
    // fleet mode: the analysis after this wave (the workflow's gate writes its own to its job summary)
    const analysed = report.analysis?.find((a) => a.wave === wave);
    if (analysed) body.push('', analysisMarkdown(analysed));
  }
  return [...head, ...body].join('\n');
}

function failureTable(bad: readonly TargetResult[], used: { bytes: number }, perWave: number, link?: string) {
  if (bad.length === 0) return [];
  const lines = ['| target | region | outcome | from → to | time | reason |', '|---|---|---|---|---|---|'];
  used.bytes += utf8Bytes(lines.join('\n'));
  let shown = 0;
  for (const r of bad) {
    const line = row(r);
    const size = utf8Bytes(line);
    if (used.bytes + size + 200 > perWave * 0.7) break;
    lines.push(line);
    used.bytes += size + 1;
    shown++;
  }
  if (shown < bad.length)
    lines.push('', `…and ${bad.length - shown} more not shown here${link ? `; see ${link}` : ''}.`);
  return [...lines, ''];
}

function successList(good: readonly TargetResult[], used: { bytes: number }, perWave: number, link?: string) {
  if (good.length === 0) return [];
  const ids: string[] = [];
  for (const r of good) {
    const entry = `${EMOJI[r.outcome]} ${cell(r.id)}`;
    const size = utf8Bytes(entry) + 2;
    if (used.bytes + size + 300 > perWave) break;
    ids.push(entry);
    used.bytes += size;
  }
  const more = good.length - ids.length;
  const deployed = good.filter((r) => r.outcome === 'deployed').length;
  return [
    `<details><summary>${good.length} succeeded (${deployed} deployed, ${good.length - deployed} unchanged)</summary>`,
    '',
    ids.join(', ') + (more ? ` …and ${more} more${link ? ` (${link})` : ''}` : ''),
    '',
    '</details>',
    '',
  ];
}
