/** A wave's analysis as Markdown, for the job summary: the outcome, and each check's last value. Pure. */
import type { WaveAnalysis } from '../analysis/model';
import { sanitizeLine } from './sanitize';

const cell = (s: string) => sanitizeLine(s).replaceAll('|', '\\|').slice(0, 300);

export function analysisMarkdown(a: WaveAnalysis, rolledBack?: string): string {
  const rows = a.checks.map((c) => {
    const last = c.measurements.at(-1);
    const condition = [
      c.failureCondition && `failure: ${c.failureCondition}`,
      c.successCondition && `success: ${c.successCondition}`,
    ]
      .filter(Boolean)
      .join('; ');
    return (
      `| ${cell(c.name)}${c.dryRun ? ' (dry run)' : ''} | ${c.outcome} | ` +
      `${cell(last?.value ?? '-')}${last?.detail ? ` (${cell(last.detail)})` : ''} | ` +
      `\`${cell(condition)}\` | \`${cell(c.what)}\` |`
    );
  });
  return [
    `### Analysis after wave ${a.wave}: ${a.outcome} → ${a.decision}`,
    '',
    `${cell(a.reason)}${rolledBack ? `. ${cell(rolledBack)}` : ''}`,
    '',
    '| Check | Outcome | Last value | Condition | Query / request / command |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
