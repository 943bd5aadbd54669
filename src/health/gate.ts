/**
 * The health gate's policy, pure: what counts as a healthy answer, and when the gate passes or fails.
 * A gate passes after `successes` consecutive healthy probes; it fails at the deadline, saying why the
 * last probe failed and how many passed, so a flapping service is told apart from a dead one.
 */
import type { HealthCheck } from '../registry/model';
import { ConnectionLost, type Clock, type HttpResponse } from '../ports';

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
  /** Some probe got an HTTP answer (any status): the port was reached at least once. */
  reached?: boolean;
  /** The gate ended early because a container crash-loops (`GateWatch`): `reason` says how. */
  crashed?: boolean;
}

/** A probe is given the timeout to use: the check's own, or less when the deadline is nearer. */
export type GateProbe = (timeoutMs: number) => Promise<HttpResponse>;

/**
 * Looks at the release's containers after a probe that failed: a reason ends the gate at once (a crash
 * loop, src/health/crash.ts); undefined, or an error other than a lost connection, lets it go on.
 */
export type GateWatch = () => Promise<string | undefined>;

/** The watch's verdict: a reason to stop now, `lost` when the connection went, else undefined. */
async function watched(watch: GateWatch | undefined): Promise<string | ConnectionLost | undefined> {
  try {
    return await watch?.();
  } catch (e) {
    return e instanceof ConnectionLost ? e : undefined;
  }
}

/**
 * Polls `probe` every interval until `successes` consecutive healthy answers, or fails at the deadline.
 * Probe errors (refused, timeout) count as unhealthy answers. No probe outlives the deadline: each gets
 * at most the time left, and none starts when no time is left (a probe with a 10 s timeout against an
 * 11 s deadline would otherwise end the gate at 21 s). After each failed probe, `watch` (when given)
 * may end the gate at once: a crash-looping release is failed now, not at the deadline.
 */
export async function runGate(
  check: HealthCheck,
  version: string,
  probe: GateProbe,
  clock: Clock,
  signal?: AbortSignal,
  watch?: GateWatch,
): Promise<GateResult> {
  const start = clock.now();
  const elapsed = () => clock.now() - start;
  let probes = 0;
  let passed = 0;
  let streak = 0;
  let last = 'no probe answered';
  const timeUp = (): GateResult => {
    const flapping =
      passed > 0 ? `flapping: ${passed} of ${probes} probes passed, never ${check.successes} in a row; ` : '';
    return {
      ok: false,
      probes,
      passed,
      ms: elapsed(),
      reason: `not healthy within ${check.deadlineMs / 1000} s (${flapping}last: ${last})`,
    };
  };
  let firstFailed: number | undefined;
  let downtimeMs: number | undefined;
  let reached = false;
  for (;;) {
    if (signal?.aborted) return { ok: false, probes, passed, ms: elapsed(), reason: 'cancelled' };
    const left = check.deadlineMs - elapsed();
    if (left <= 0) return { ...timeUp(), reached };
    const sent = clock.now();
    let verdict: Verdict;
    const budget = Math.min(check.timeoutMs, left);
    /** A probe the deadline cut short that got no answer says less than the answer before it. */
    let cutShort = false;
    try {
      const answer = await probe(budget);
      reached = true;
      verdict = judge(check, answer, version);
    } catch (e) {
      if (e instanceof ConnectionLost) return { ok: false, probes, passed, ms: elapsed(), reason: e.message };
      verdict = { ok: false, reason: (e as Error).message };
      cutShort = budget < check.timeoutMs;
    }
    probes++;
    if (verdict.ok) {
      passed++;
      streak++;
      downtimeMs ??= firstFailed === undefined ? 0 : sent - firstFailed;
      if (streak >= check.successes) return { ok: true, probes, passed, ms: elapsed(), downtimeMs };
    } else {
      streak = 0;
      if (!cutShort || probes === 1) last = verdict.reason;
      firstFailed ??= sent;
      const crash = await watched(watch);
      if (crash instanceof ConnectionLost)
        return { ok: false, probes, passed, ms: elapsed(), reason: crash.message };
      if (crash) return { ok: false, probes, passed, ms: elapsed(), reason: crash, crashed: true };
    }
    // the next probe would start with no time left
    if (elapsed() + check.intervalMs >= check.deadlineMs) return { ...timeUp(), reached };
    await clock.sleep(check.intervalMs, signal);
  }
}
