/**
 * Fleet mode's analysis between waves: after a wave, its checks are measured through its soak (the
 * shared engine in src/analysis) over the run's own SSH sessions; a failed analysis stops the rollout and
 * rolls back the wave, every wave so far, or nothing, by the registry's `rollback` policy.
 */
import {
  analyseWave,
  checksFor,
  plannedCheck,
  soakFor,
  type Analysis,
  type AnalysisPorts,
  type Measurement,
  type PlannedCheck,
  type TemplateValues,
  type WaveAnalysis,
} from '../analysis';
import type { Wave } from '../plan/plan';
import type { Session } from './session';
import type { TargetResult } from './result';

export type AnalysisEvent =
  | { status: 'start'; wave: number; soakMs: number; checks: readonly string[] }
  | { status: 'measurement'; wave: number; check: PlannedCheck; measurement: Measurement }
  | { status: 'done'; wave: number; analysis: WaveAnalysis };

/** The most common of the values (the wave's previous version), or '' when there is none. */
function mostCommon(values: readonly (string | undefined)[]): string {
  const counts = new Map<string, number>();
  for (const v of values) if (v) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? '';
}

const onNewRelease = (r: TargetResult) => r.outcome === 'deployed' || r.outcome === 'unchanged';

/**
 * What a wave's checks fill their placeholders with, from the plan and the wave's results. The other
 * tenants are those of the later waves: the baseline that has not moved yet.
 */
export function templateValues(
  plan: { plan: readonly Wave[] },
  wave: Wave,
  version: string,
  waveResults: readonly TargetResult[],
): TemplateValues {
  const mine = new Set(wave.targets.map((t) => t.tenant.id));
  const later = plan.plan.filter((w) => w.index > wave.index).flatMap((w) => w.targets);
  return {
    wave: wave.index,
    rings: [...new Set(wave.targets.map((t) => t.tenant.ring))],
    version,
    previousVersion: mostCommon(waveResults.filter(onNewRelease).map((r) => r.previous?.version)),
    tenants: [...mine],
    servers: [...new Set(wave.targets.map((t) => t.server.name))],
    otherTenants: [...new Set(later.map((t) => t.tenant.id))],
  };
}

export interface FleetAnalysisContext {
  plan: { plan: readonly Wave[] };
  version: string;
  sessions: Map<string, Session>;
  ports: Omit<AnalysisPorts, 'execOn' | 'onMeasurement'>;
  onAnalysis?: (e: AnalysisEvent) => void;
}

/** Measures one wave's checks through its soak, over the run's SSH sessions. */
export async function analyseFleetWave(
  ctx: FleetAnalysisContext,
  analysis: Analysis,
  wave: Wave,
  waveResults: readonly TargetResult[],
): Promise<WaveAnalysis> {
  const values = templateValues(ctx.plan, wave, ctx.version, waveResults);
  const live = new Set(waveResults.filter(onNewRelease).map((r) => r.id));
  ctx.onAnalysis?.({
    status: 'start',
    wave: wave.index,
    soakMs: soakFor(analysis, values.rings),
    checks: checksFor(analysis, values.rings).map((c) => c.name),
  });
  const result = await analyseWave(
    analysis,
    { values, targets: wave.targets.filter((t) => live.has(t.id)) },
    {
      ...ctx.ports,
      execOn: async (t, script, timeoutMs) => {
        const transport = await ctx.sessions.get(t.server.name)!.transport();
        return transport.exec(script, {
          timeoutMs,
          ...(ctx.ports.signal ? { signal: ctx.ports.signal } : {}),
        });
      },
      onMeasurement: (check, measurement) =>
        ctx.onAnalysis?.({ status: 'measurement', wave: wave.index, check, measurement }),
    },
  );
  ctx.onAnalysis?.({ status: 'done', wave: wave.index, analysis: result });
  return result;
}

/** The targets a failed analysis rolls back under the policy: those that moved to the new release. */
export function toRollBack(
  policy: 'wave' | 'all' | 'none',
  wave: number,
  results: readonly TargetResult[],
): TargetResult[] {
  if (policy === 'none') return [];
  return results.filter((r) => r.outcome === 'deployed' && (policy === 'all' || r.wave === wave));
}

/** A target's result after the analysis rolled it back (`back`: the rollback's own result). */
export function rolledBack(original: TargetResult, back: TargetResult, reason: string): TargetResult {
  const ok = back.outcome === 'deployed' || back.outcome === 'unchanged';
  return {
    ...original,
    outcome: ok ? 'rolled-back' : 'failed',
    error: `analysis after wave ${back.wave} failed: ${reason}`,
    steps: [...original.steps, ...back.steps.map((s) => ({ ...s, step: `analysis-rollback:${s.step}` }))],
    ...(ok ? {} : { rollbackError: back.error ?? 'the rollback failed' }),
    durationMs: original.durationMs + back.durationMs,
  };
}

const duration = (ms: number) =>
  ms % 60_000 === 0 && ms > 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;

/**
 * What `plan` and `--dry-run` print after a wave: its soak and each check it will run, templated for
 * the wave ({previousVersion} is known only once the wave ran: shown empty). Nothing after the last wave.
 */
export function describeWaveAnalysis(
  analysis: Analysis | undefined,
  plan: { plan: readonly Wave[] },
  wave: Wave,
  version: string,
): string[] {
  if (!analysis || wave.index >= plan.plan.length) return [];
  const values = templateValues(plan, wave, version, []);
  const checks = checksFor(analysis, values.rings);
  const lines = [
    `Analysis after wave ${wave.index}: soak ${duration(soakFor(analysis, values.rings))}, ` +
      `${checks.length} check(s), on failure roll back: ${analysis.rollback}, inconclusive: ${analysis.inconclusive}`,
  ];
  for (const c of checks.map((x) => plannedCheck(x, values))) {
    const conditions = [
      c.failureCondition ? `failure: ${c.failureCondition}` : '',
      c.successCondition ? `success: ${c.successCondition}` : '',
    ].filter(Boolean);
    lines.push(
      `  ${c.name}${c.dryRun ? ' (dry run)' : ''}: ${c.kind} every ` +
        `${duration(c.intervalMs)}${c.count ? ` ×${c.count}` : ''}, failureLimit ${c.failureLimit}, ` +
        `inconclusiveLimit ${c.inconclusiveLimit}; ${conditions.join('; ')}`,
      `    ${c.what}`,
    );
  }
  return lines;
}
