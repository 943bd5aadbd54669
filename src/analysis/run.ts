/**
 * A wave's analysis: every check of the wave measured at once, each `interval` apart, from the moment the
 * wave's last target switched until its soak is over (or `count` measurements). A failed check — or an
 * inconclusive one under the `stop` and `pause` policies — ends the analysis at once: the rollout stops
 * within one interval of the data showing the problem. `dryRun` checks are measured and reported and
 * decide nothing. Fleet mode (src/deploy/fleet.ts) and the workflow's gate job (src/actions/gate.ts)
 * both call `analyseWave`.
 */
import type { ExecResult, Clock, UrlGet } from '../ports';
import type { Target } from '../registry/model';
import type { Script } from '../remote/shell';
import {
  Judge,
  commandScript,
  observeCommand,
  observeHttp,
  observePrometheus,
  prometheusUrl,
  type Observed,
} from './measure';
import type { Analysis, Check, CheckResult, Measurement, PlannedCheck, WaveAnalysis } from './model';
import { fill, type TemplateValues } from './template';

export interface AnalysisPorts {
  clock: Clock;
  urlGet: UrlGet;
  /** Runs a script on a target's server (the fleet's SSH session); absent: command checks are inconclusive. */
  execOn?: (target: Target, script: Script, timeoutMs: number) => Promise<ExecResult>;
  signal?: AbortSignal;
  onMeasurement?: (check: PlannedCheck, m: Measurement) => void;
}

export interface WaveInput {
  values: TemplateValues;
  /** The wave's targets on the new release (deployed or unchanged): where command checks run. */
  targets: readonly Target[];
}

/** The checks a wave of these rings runs: all, or only those every ring's `checks` names. */
export function checksFor(analysis: Analysis, rings: readonly string[]): Check[] {
  const named = rings.map((r) => analysis.rings[r]?.checks).filter((c) => c !== undefined);
  if (named.length === 0) return [...analysis.checks];
  return analysis.checks.filter((c) => named.some((list) => list.includes(c.name)));
}

/** The wave's soak: the longest of its rings' own, else the analysis's. */
export function soakFor(analysis: Analysis, rings: readonly string[]): number {
  const own = rings.map((r) => analysis.rings[r]?.soakMs).filter((s) => s !== undefined);
  return own.length ? Math.max(...own) : analysis.soakMs;
}

/** What a check will run for a wave, templated: what --dry-run, `plan` and the reports show. */
export function plannedCheck(c: Check, values: TemplateValues): PlannedCheck {
  const s = c.source;
  const what =
    s.kind === 'prometheus'
      ? `${fill(s.query, values, 'promql')} @ ${fill(s.url, values, 'url')}`
      : s.kind === 'http'
        ? `GET ${fill(s.url, values, 'url')}`
        : `on each target: ${fill(s.run, values, 'shell')}`;
  return {
    name: c.name,
    kind: s.kind,
    what,
    ...Judge.conditions(c),
    intervalMs: c.intervalMs,
    ...(c.count !== undefined ? { count: c.count } : {}),
    failureLimit: c.failureLimit,
    inconclusiveLimit: c.inconclusiveLimit,
    dryRun: c.dryRun,
  };
}

/** The message of whatever a port threw (an error of another realm is no `instanceof Error`). */
const failedWith = (e: unknown) => String((e as { message?: unknown })?.message ?? e);

/** A port's answer or its failure's message, without try/catch at each call. */
const settle = <T>(p: Promise<T>): Promise<{ ok: T } | { error: string }> =>
  p.then(
    (ok) => ({ ok }),
    (e: unknown) => ({ error: failedWith(e) }),
  );

async function measure(check: Check, input: WaveInput, ports: AnalysisPorts): Promise<Observed> {
  const s = check.source;
  if (s.kind === 'prometheus') {
    const r = await settle(ports.urlGet(prometheusUrl(s.url, s.query, input.values), check.timeoutMs));
    return 'error' in r
      ? { inconclusive: `Prometheus did not answer: ${r.error}`, value: '-' }
      : observePrometheus(r.ok);
  }
  if (s.kind === 'http') {
    const r = await settle(ports.urlGet(fill(s.url, input.values, 'url'), check.timeoutMs));
    return 'error' in r ? { inconclusive: `no answer: ${r.error}`, value: '-' } : observeHttp(r.ok);
  }
  const exec = ports.execOn;
  if (!exec) return { inconclusive: "a command check needs the servers' SSH connections", value: '-' };
  if (input.targets.length === 0)
    return { inconclusive: 'no target of the wave runs the new release', value: '-' };
  // One command at a time per server (its sshd limits sessions), the servers in parallel.
  const byServer = new Map<string, Target[]>();
  for (const t of input.targets) byServer.set(t.server.name, [...(byServer.get(t.server.name) ?? []), t]);
  const results: { target: string; result: ExecResult | { error: string } }[] = [];
  await Promise.all(
    [...byServer.values()].map(async (list) => {
      for (const t of list) {
        const r = await settle(exec(t, commandScript(t, s.run, input.values), check.timeoutMs));
        results.push({ target: t.id, result: 'error' in r ? r : r.ok });
      }
    }),
  );
  return observeCommand(results);
}

interface CheckRun {
  check: Check;
  planned: PlannedCheck;
  judge: Judge;
}

async function runCheck(
  { check, planned, judge }: CheckRun,
  input: WaveInput,
  ports: AnalysisPorts,
  window: { start: number; soakMs: number; stop: AbortSignal },
): Promise<CheckResult> {
  const measurements: Measurement[] = [];
  const result: CheckResult = { ...planned, outcome: 'successful', measurements };
  let failed = 0;
  let inconclusive = 0;
  for (let i = 0; !window.stop.aborted; i++) {
    const observed = await measure(check, input, ports);
    const { outcome, detail } = judge.judge(observed);
    const m: Measurement = {
      at: new Date(ports.clock.now()).toISOString(),
      outcome,
      value: observed.value,
      ...(detail ? { detail } : {}),
    };
    measurements.push(m);
    ports.onMeasurement?.(planned, m);
    if (outcome === 'failed' && ++failed > check.failureLimit) return { ...result, outcome: 'failed' };
    if (outcome === 'inconclusive' && ++inconclusive > check.inconclusiveLimit)
      return { ...result, outcome: 'inconclusive' };
    const next = window.start + (i + 1) * check.intervalMs;
    const done = check.count !== undefined ? i + 1 >= check.count : next > window.start + window.soakMs;
    if (done || window.stop.aborted) break;
    await ports.clock.sleep(Math.max(0, next - ports.clock.now()), window.stop);
  }
  return result;
}

function describe(c: CheckResult): string {
  const last = [...c.measurements].reverse().find((m) => m.outcome === c.outcome) ?? c.measurements.at(-1);
  const bad = c.measurements.filter((m) => m.outcome === c.outcome).length;
  const limit = c.outcome === 'failed' ? c.failureLimit : c.inconclusiveLimit;
  const condition = [
    c.failureCondition ? `failureCondition: ${c.failureCondition}` : '',
    c.successCondition ? `successCondition: ${c.successCondition}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return (
    `check "${c.name}" ${c.outcome}${c.dryRun ? ' (dry run)' : ''}: value ${last?.value ?? '-'}` +
    `${last?.detail ? ` (${last.detail})` : ''}; ${bad} of ${c.measurements.length} measurement(s) ${c.outcome}, limit ${limit}; ` +
    `${condition}; ${c.kind === 'prometheus' ? 'query' : c.kind === 'http' ? 'request' : 'command'}: ${c.what}`
  );
}

/** The wave's outcome and what the rollout does next, from its checks' outcomes and the policy. */
export function decide(
  analysis: Pick<Analysis, 'inconclusive'>,
  checks: readonly CheckResult[],
): Pick<WaveAnalysis, 'outcome' | 'decision' | 'reason'> {
  const deciding = checks.filter((c) => !c.dryRun);
  const failed = deciding.find((c) => c.outcome === 'failed');
  if (failed) return { outcome: 'failed', decision: 'stop', reason: describe(failed) };
  const unsure = deciding.find((c) => c.outcome === 'inconclusive');
  if (unsure) {
    const decision = analysis.inconclusive === 'continue' ? 'proceed' : analysis.inconclusive;
    return {
      outcome: 'inconclusive',
      decision,
      reason: `${describe(unsure)}; inconclusive policy: ${analysis.inconclusive}`,
    };
  }
  const dry = checks.filter((c) => c.dryRun && c.outcome !== 'successful').map(describe);
  return {
    outcome: 'successful',
    decision: 'proceed',
    reason: `${deciding.length} check(s) passed${dry.length ? `; ${dry.join('; ')}` : ''}`,
  };
}

/**
 * Measures the wave's checks through its soak and decides. Resolves when the soak is over, or as soon as
 * a check decides to stop (or pause) the rollout, or when `ports.signal` aborts.
 */
export async function analyseWave(
  analysis: Analysis,
  input: WaveInput,
  ports: AnalysisPorts,
): Promise<WaveAnalysis> {
  const start = ports.clock.now();
  const soakMs = soakFor(analysis, input.values.rings);
  const stopper = new AbortController();
  const onAbort = () => stopper.abort();
  ports.signal?.addEventListener('abort', onAbort, { once: true });
  if (ports.signal?.aborted) stopper.abort();
  const window = { start, soakMs, stop: stopper.signal };
  try {
    const checks = await Promise.all(
      checksFor(analysis, input.values.rings).map(async (check) => {
        const run = { check, planned: plannedCheck(check, input.values), judge: new Judge(check) };
        const r = await runCheck(run, input, ports, window);
        const stops =
          r.outcome === 'failed' || (r.outcome === 'inconclusive' && analysis.inconclusive !== 'continue');
        if (!check.dryRun && stops) stopper.abort();
        return r;
      }),
    );
    if (!stopper.signal.aborted)
      await ports.clock.sleep(Math.max(0, start + soakMs - ports.clock.now()), stopper.signal);
    const decided = decide(analysis, checks);
    const cancelled = ports.signal?.aborted && decided.decision === 'proceed';
    return {
      wave: input.values.wave,
      soakMs,
      ...(cancelled
        ? { outcome: 'inconclusive', decision: 'stop', reason: 'cancelled during the soak' }
        : decided),
      checks,
      durationMs: ports.clock.now() - start,
    };
  } finally {
    ports.signal?.removeEventListener('abort', onAbort);
  }
}
