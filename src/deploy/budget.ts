/**
 * The failure budget, and the gate between waves in the reusable workflow (pure): from the finished waves' reports and the
 * budget, continue or stop — the same rule the fleet engine applies between its own waves.
 */
import { isFailure, type TargetResult } from './result';

export interface Budget {
  maxFailurePercent: number;
  maxFailures?: number;
}

/** Whether the results so far exceed the failure budget, and if so a sentence saying by how much. */
export function budgetExceeded(results: readonly TargetResult[], options: Budget): string | undefined {
  const done = results.filter((r) => r.outcome !== 'skipped');
  const failures = done.filter((r) => isFailure(r.outcome)).length;
  if (failures === 0 || done.length === 0) return undefined;
  const percent = (failures / done.length) * 100;
  const overPercent = percent > options.maxFailurePercent;
  const overCount = options.maxFailures !== undefined && failures > options.maxFailures;
  if (options.maxFailures !== undefined ? overCount : overPercent) {
    const limit =
      options.maxFailures !== undefined
        ? `more than ${options.maxFailures} allowed`
        : `${percent.toFixed(1)}% > ${options.maxFailurePercent}%`;
    return `${failures} of ${done.length} targets failed or rolled back (${limit})`;
  }
  return undefined;
}

export interface GateDecision {
  proceed: boolean;
  reason: string;
  failures: number;
  targets: number;
}

export function decideGate(
  reports: readonly { targets: readonly TargetResult[] }[],
  budget: { maxFailurePercent: number; maxFailures?: number },
  expectedTargets?: number,
): GateDecision {
  const results = reports.flatMap((r) => r.targets);
  const done = results.filter((r) => r.outcome !== 'skipped');
  const failures = done.filter((r) => isFailure(r.outcome)).length;
  if (expectedTargets !== undefined && results.length < expectedTargets) {
    return {
      proceed: false,
      reason: `only ${results.length} of ${expectedTargets} targets reported a result (a job failed before writing its report)`,
      failures,
      targets: results.length,
    };
  }
  const over = budgetExceeded(results, budget);
  if (over)
    return { proceed: false, reason: `failure budget exceeded: ${over}`, failures, targets: done.length };
  return {
    proceed: true,
    reason: `${failures} of ${done.length} targets failed or rolled back: within the budget`,
    failures,
    targets: done.length,
  };
}
