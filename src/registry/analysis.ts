/** `rollout.analysis` → the Analysis the rollout runs: defaults, durations, and what refers to what. */
import type { Analysis, Check, CheckSource, RingAnalysis } from '../analysis/model';
import { show } from '../errors';
import { durationMs } from './patterns';
import type { RawAnalysis } from './schema';

type Report = (path: Array<string | number>, message: string, hint?: string) => void;
type RawCheck = RawAnalysis['checks'][number];

function source(c: RawCheck): CheckSource {
  if (c.prometheus) return { kind: 'prometheus', ...c.prometheus };
  if (c.http) return { kind: 'http', url: c.http.url };
  return { kind: 'command', run: c.command! };
}

function check(c: RawCheck, intervalMs: number): Check {
  const s = source(c);
  return {
    name: c.name,
    source: s,
    ...(c.successCondition ? { successCondition: c.successCondition } : {}),
    ...(c.failureCondition ? { failureCondition: c.failureCondition } : {}),
    intervalMs: c.interval ? durationMs(c.interval) : intervalMs,
    ...(c.count !== undefined ? { count: c.count } : {}),
    failureLimit: c.failureLimit ?? 0,
    inconclusiveLimit: c.inconclusiveLimit ?? 0,
    timeoutMs: c.timeout ? durationMs(c.timeout) : s.kind === 'command' ? 60_000 : 10_000,
    dryRun: c.dryRun ?? false,
  };
}

export function resolveAnalysis(
  raw: RawAnalysis | undefined,
  rings: readonly string[],
  problem: Report,
): Analysis | undefined {
  if (!raw) return undefined;
  const at = ['rollout', 'analysis'];
  const intervalMs = raw.interval ? durationMs(raw.interval) : 30_000;
  const names = new Map<string, number>();
  raw.checks.forEach((c, i) => {
    const first = names.get(c.name);
    if (first !== undefined)
      problem(
        [...at, 'checks', i, 'name'],
        `check name ${show(c.name)} is already used by checks[${first}]`,
        'check names must be unique',
      );
    else names.set(c.name, i);
  });
  const ringsOut: Record<string, RingAnalysis> = {};
  for (const [ring, r] of Object.entries(raw.rings ?? {})) {
    if (!rings.includes(ring))
      problem(
        [...at, 'rings', ring],
        `ring ${show(ring)} is not one of the registry's rings`,
        `use one of: ${rings.join(', ')}`,
      );
    r.checks?.forEach((name, i) => {
      if (!names.has(name))
        problem(
          [...at, 'rings', ring, 'checks', i],
          `no check is named ${show(name)}`,
          `use one of: ${[...names.keys()].join(', ')}`,
        );
    });
    ringsOut[ring] = {
      ...(r.soak ? { soakMs: durationMs(r.soak) } : {}),
      ...(r.checks ? { checks: r.checks } : {}),
    };
  }
  return {
    soakMs: raw.soak ? durationMs(raw.soak) : 0,
    inconclusive: raw.inconclusive ?? 'stop',
    rollback: raw.rollback ?? 'wave',
    checks: raw.checks.map((c) => check(c, intervalMs)),
    rings: ringsOut,
  };
}
