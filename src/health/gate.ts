/**
 * The health gate's policy, pure: what counts as a healthy answer, and when the gate passes or fails.
 * A gate passes after `successes` consecutive healthy probes; it fails at the deadline, saying why the
 * last probe failed and how many passed, so a flapping service is told apart from a dead one.
 */
import type { HealthCheck } from '../registry/model';
import type { Clock, HttpResponse } from '../deploy/ports';

export type Verdict = { ok: true } | { ok: false; reason: string };

function field(body: unknown, path: string): unknown {
  let v = body;
  for (const k of path.split('.'))
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

const fill = (text: string, version: string) => text.replaceAll('{version}', version);

export function judge(check: HealthCheck, response: HttpResponse, version: string): Verdict {
  if (response.status !== check.expectStatus)
    return { ok: false, reason: `HTTP ${response.status}, expected ${check.expectStatus}` };
  if (check.bodyIncludes !== undefined) {
    const want = fill(check.bodyIncludes, version);
    if (!response.body.includes(want))
      return { ok: false, reason: `body does not contain ${JSON.stringify(want)}` };
  }
  if (check.json) {
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch {
      return { ok: false, reason: `body is not JSON: ${JSON.stringify(response.body.slice(0, 60))}` };
    }
    for (const [path, expected] of Object.entries(check.json)) {
      const want = typeof expected === 'string' ? fill(expected, version) : expected;
      const got = field(body, path);
      if (typeof want === 'string' ? String(got) !== want : got !== want) {
        return {
          ok: false,
          reason: `${path} is ${got === undefined ? 'missing' : JSON.stringify(got)}, expected ${JSON.stringify(want)}`,
        };
      }
    }
  }
  return { ok: true };
}

export interface GateResult {
  ok: boolean;
  probes: number;
  passed: number;
  ms: number;
  reason?: string;
  /**
   * The downtime the gate saw: from the first failed probe to the first healthy one after it (0 when
   * the first probe was healthy; absent when no probe was healthy).
   */
  downtimeMs?: number;
}

/**
 * Polls `probe` every interval until `successes` consecutive healthy answers, or fails at the deadline.
 * Probe errors (refused, timeout) count as unhealthy answers.
 */
export async function runGate(
  check: HealthCheck,
  version: string,
  probe: () => Promise<HttpResponse>,
  clock: Clock,
  signal?: AbortSignal,
): Promise<GateResult> {
  const start = clock.now();
  let probes = 0;
  let passed = 0;
  let streak = 0;
  let last = 'no probe answered';
  let firstFailed: number | undefined;
  let downtimeMs: number | undefined;
  for (;;) {
    if (signal?.aborted) return { ok: false, probes, passed, ms: clock.now() - start, reason: 'cancelled' };
    const sent = clock.now();
    let verdict: Verdict;
    try {
      verdict = judge(check, await probe(), version);
    } catch (e) {
      if ((e as Error).name === 'ConnectionLost') {
        return { ok: false, probes, passed, ms: clock.now() - start, reason: (e as Error).message };
      }
      verdict = { ok: false, reason: (e as Error).message };
    }
    probes++;
    if (verdict.ok) {
      passed++;
      streak++;
      downtimeMs ??= firstFailed === undefined ? 0 : sent - firstFailed;
      if (streak >= check.successes) return { ok: true, probes, passed, ms: clock.now() - start, downtimeMs };
    } else {
      streak = 0;
      last = verdict.reason;
      firstFailed ??= sent;
    }
    const elapsed = clock.now() - start;
    if (elapsed + check.intervalMs > check.deadlineMs) {
      const flapping =
        passed > 0
          ? `flapping: ${passed} of ${probes} probes passed, never ${check.successes} in a row; `
          : '';
      return {
        ok: false,
        probes,
        passed,
        ms: elapsed,
        reason: `not healthy within ${check.deadlineMs / 1000} s (${flapping}last: ${last})`,
      };
    }
    await clock.sleep(check.intervalMs, signal);
  }
}
