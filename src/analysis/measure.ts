/**
 * One measurement of a check: the request (templated), what came back turned into the condition's
 * variables, and the outcome by the conditions. Everything that comes back is untrusted: it is parsed,
 * never run, and only short excerpts reach a report.
 */
import type { CelInput } from '@bufbuild/cel';
import type { ExecResult, HttpResponse } from '../ports';
import { sh, envPrefix, type Script } from '../remote/shell';
import type { Target } from '../registry/model';
import { sanitizeLine } from '../report/sanitize';
import { celValue, compile, variablesOf, type Compiled } from './condition';
import type { Check, MeasurementOutcome } from './model';
import { fill, type TemplateValues } from './template';

/** What a measurement saw: the variables for the conditions, and a short text for the report. */
export type Observed =
  { vars: Record<string, CelInput>; value: string } | { inconclusive: string; value: string };

const excerpt = (s: string | undefined, n = 200) => {
  const one = sanitizeLine(String(s ?? '')).trim();
  return one.length > n ? `${one.slice(0, n)}…` : one;
};
const num = (v: number) => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6))));

/** Prometheus' /api/v1/query URL for the check's query, templated for the wave. */
export function prometheusUrl(base: string, query: string, values: TemplateValues): string {
  const q = fill(query, values, 'promql');
  return `${fill(base, values, 'url').replace(/\/+$/, '')}/api/v1/query?query=${encodeURIComponent(q)}`;
}

type PromSample = [number, string];
interface PromAnswer {
  status?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

/** A Prometheus instant-query answer → result/value/series; no series (or only NaN) is inconclusive. */
export function observePrometheus(r: HttpResponse): Observed {
  let answer: PromAnswer;
  try {
    answer = JSON.parse(r.body) as PromAnswer;
  } catch {
    return { inconclusive: `Prometheus answered HTTP ${r.status}, not JSON: ${excerpt(r.body)}`, value: '-' };
  }
  if (answer.status !== 'success')
    return { inconclusive: `query error (HTTP ${r.status}): ${excerpt(String(answer.error))}`, value: '-' };
  const { resultType, result } = answer.data ?? {};
  let series: { labels: Record<string, string>; value: number }[];
  if (resultType === 'scalar') series = [{ labels: {}, value: Number((result as PromSample)[1]) }];
  else if (resultType === 'vector' && Array.isArray(result))
    series = (result as { metric?: Record<string, string>; value: PromSample }[]).map((s) => ({
      labels: { ...s.metric },
      value: Number(s.value?.[1]),
    }));
  else
    return { inconclusive: `a ${String(resultType)} result: use an instant vector or a scalar`, value: '-' };
  series = series.filter((s) => !Number.isNaN(s.value));
  if (series.length === 0) return { inconclusive: 'no data: the query returned no series', value: '[]' };
  const shown = series
    .slice(0, 5)
    .map((s) => {
      const labels = Object.entries(s.labels)
        .filter(([k]) => k !== '__name__')
        .map(([k, v]) => `${k}="${excerpt(v, 40)}"`)
        .join(',');
      return labels ? `{${labels}} ${num(s.value)}` : num(s.value);
    })
    .join(', ');
  const vars: Record<string, CelInput> = {
    result: series.map((s) => s.value),
    series: series.map((s) => celValue(s)),
  };
  if (series.length === 1) vars.value = series[0]!.value;
  return { vars, value: series.length > 5 ? `${shown} (+${series.length - 5} more)` : shown };
}

/** An HTTP answer → status/body/json. */
export function observeHttp(r: HttpResponse): Observed {
  let json: unknown = null;
  try {
    json = JSON.parse(r.body);
  } catch {
    // not JSON: `json` is null
  }
  return {
    vars: { status: r.status, body: r.body, json: celValue(json) },
    value: `HTTP ${r.status} ${excerpt(r.body, 120)}`.trim(),
  };
}

/** The command check's script on one target: in the tenant's directory, with FLEET_* set. */
export function commandScript(target: Target, run: string, values: TemplateValues): Script {
  const env = {
    FLEET_VERSION: values.version,
    FLEET_PREVIOUS_VERSION: values.previousVersion,
    FLEET_TARGET: target.id,
    FLEET_WAVE: String(values.wave),
  };
  return sh`cd -- ${target.tenant.path} && ${envPrefix(env)} sh -c ${fill(run, values, 'shell')}`;
}

/**
 * Every target's exit → targets/passed/failed/failedPercent. A target whose command did not finish (lost
 * connection, timeout: a null code) is neither passed nor failed; if any, and the rest passed, the
 * measurement is inconclusive.
 */
export function observeCommand(
  results: readonly { target: string; result: ExecResult | { error: string } }[],
): Observed {
  const failed: string[] = [];
  const unknown: string[] = [];
  for (const { target, result } of results) {
    if ('error' in result || result.code === null)
      unknown.push(`${target}: ${'error' in result ? result.error : 'did not finish'}`);
    else if (result.code !== 0)
      failed.push(
        `${target}: exit ${result.code} ${excerpt(`${result.stdout} ${result.stderr}`, 100)}`.trim(),
      );
  }
  const ran = results.length - unknown.length;
  const value = `${failed.length}/${ran} targets failed${failed.length ? `: ${failed.slice(0, 3).join('; ')}` : ''}`;
  if (ran === 0) return { inconclusive: `no target answered: ${unknown.slice(0, 3).join('; ')}`, value };
  const vars = {
    targets: ran,
    passed: ran - failed.length,
    failed: failed.length,
    failedPercent: (failed.length / ran) * 100,
  };
  if (unknown.length && failed.length === 0)
    return {
      inconclusive: `${unknown.length} target(s) did not answer: ${unknown.slice(0, 3).join('; ')}`,
      value,
    };
  return { vars, value };
}

/** The conditions of a check, compiled once; the defaults: HTTP 2xx, no command failed. */
export class Judge {
  private readonly success?: Compiled;
  private readonly failure?: Compiled;
  private readonly usesValue: boolean;

  constructor(readonly check: Check) {
    const { successCondition: s, failureCondition: f } = Judge.conditions(check);
    if (s) this.success = compile(s);
    if (f) this.failure = compile(f);
    this.usesValue = [s, f].some((c) => c !== undefined && variablesOf(c).has('value'));
  }

  static conditions(c: Check): { successCondition?: string; failureCondition?: string } {
    if (c.successCondition || c.failureCondition)
      return {
        ...(c.successCondition ? { successCondition: c.successCondition } : {}),
        ...(c.failureCondition ? { failureCondition: c.failureCondition } : {}),
      };
    if (c.source.kind === 'http') return { successCondition: 'status >= 200 && status < 300' };
    return { failureCondition: 'failed > 0' };
  }

  /**
   * Argo's rule: failureCondition true → failed; successCondition given → its value decides, except that
   * with both given and neither true the measurement is inconclusive; an evaluation error is inconclusive.
   */
  judge(o: Observed): { outcome: MeasurementOutcome; detail?: string } {
    if ('inconclusive' in o) return { outcome: 'inconclusive', detail: o.inconclusive };
    if (this.usesValue && !('value' in o.vars))
      return {
        outcome: 'inconclusive',
        detail:
          `"value" needs exactly one series, the query returned ${(o.vars.result as unknown[]).length}: ` +
          `use result.all(…) or aggregate`,
      };
    const f = this.failure?.(o.vars);
    if (typeof f === 'string') return { outcome: 'inconclusive', detail: `failureCondition: ${f}` };
    if (f === true) return { outcome: 'failed' };
    if (!this.success) return { outcome: 'successful' };
    const s = this.success(o.vars);
    if (typeof s === 'string') return { outcome: 'inconclusive', detail: `successCondition: ${s}` };
    if (s) return { outcome: 'successful' };
    return this.failure
      ? { outcome: 'inconclusive', detail: 'neither condition held' }
      : { outcome: 'failed' };
  }
}
