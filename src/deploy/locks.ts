/**
 * When a tenant's lock may be called stale. A lock's age is the time since its directory was last
 * touched: taking it touches it, and so does every later round trip of the deploy that holds it (pull,
 * switch, hooks, backup, container health — see src/remote/tenant-dir.ts `touchLock`). So a live deploy leaves its
 * lock untouched for at most its longest stretch between two of those — a hook, or the switch's
 * `compose up` followed by the health gate — and `--break-stale-locks AGE` is safe well above that.
 */
import type { Problem } from '../errors';
import type { Target, Tenant } from '../registry/model';

export interface StepLimits {
  /** Any remote command but a pull or a switch. */
  commandTimeoutMs: number;
  /** A pull, and the switch (`compose up` may pull too). */
  pullTimeoutMs: number;
}

/** The longest a live deploy of this tenant goes between two touches of its lock, and which steps those are. */
export function longestQuiet(t: Tenant, limits: StepLimits): { ms: number; step: string } {
  const steps: Array<{ ms: number; step: string }> = [
    { ms: limits.commandTimeoutMs, step: 'a remote command' },
    { ms: limits.pullTimeoutMs, step: 'a pull' },
    // the switch touches the lock as it starts; `compose up` and the health gate after it do not
    {
      ms: limits.pullTimeoutMs + t.health.deadlineMs + t.health.timeoutMs,
      step: 'the switch and the health gate',
    },
    ...[...t.hooks.preDeploy, ...t.hooks.postDeploy, ...t.hooks.onRollback].map((h) => ({
      ms: h.timeoutMs,
      step: 'a hook',
    })),
  ];
  return steps.reduce((a, b) => (b.ms > a.ms ? b : a));
}

/** A duration as people write it: 2h, 90m, 45s (exact). */
const exact = (ms: number) =>
  ms % 3_600_000 === 0
    ? `${ms / 3_600_000}h`
    : ms % 60_000 === 0
      ? `${ms / 60_000}m`
      : `${Math.ceil(ms / 1000)}s`;
/** Whole minutes, rounded up (what a bound should be). */
const minutes = (ms: number) => exact(Math.ceil(ms / 60_000) * 60_000);

/**
 * A problem when `ageMs` could break the lock of a deploy that is still at work: it must be at least
 * twice the longest quiet stretch of any target (a margin for clocks and slow round trips).
 */
export function staleLockProblem(
  ageMs: number,
  targets: readonly Target[],
  limits: StepLimits,
  source: string,
): Problem | undefined {
  let worst: { ms: number; step: string; id: string } | undefined;
  for (const target of targets) {
    const q = longestQuiet(target.tenant, limits);
    if (!worst || q.ms > worst.ms) worst = { ...q, id: target.id };
  }
  if (!worst || ageMs >= 2 * worst.ms) return undefined;
  const least = Math.ceil((2 * worst.ms) / 60_000) * 60_000;
  return {
    path: [],
    source,
    message:
      `${exact(ageMs)} could break the lock of a deploy still at work: one may leave its lock ` +
      `untouched for up to ${minutes(worst.ms)} (${worst.step} of ${worst.id})`,
    hint: `give at least twice that, e.g. ${minutes(least)}`,
  };
}

/** Who holds a lock, from its owner file (server text: each field checked, anything else ignored). */
export interface LockOwner {
  token?: string;
  run?: string;
  actor?: string;
  version?: string;
  since?: string;
}

// eslint-disable-next-line no-control-regex -- rejecting control characters is the point
const OWNER_FIELD = /^[^\x00-\x1f\x7f]{1,200}$/;

export function parseLockOwner(text: string): LockOwner | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (raw === null || typeof raw !== 'object') return undefined;
  const out: LockOwner = {};
  for (const k of ['token', 'run', 'actor', 'version', 'since'] as const) {
    const v = (raw as Record<string, unknown>)[k];
    if (typeof v === 'string' && OWNER_FIELD.test(v)) out[k] = v;
  }
  if (out.token && !/^[A-Za-z0-9_-]{1,64}$/.test(out.token)) delete out.token;
  return out;
}

const ago = (s: number) =>
  s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;

/** A lock's holder in words: "op (run acme/app#12.1, deploying v2, since 2026-…); last active 40 s ago". */
export function describeHolder(ownerText: string, ageS: number): string {
  const o = parseLockOwner(ownerText);
  if (!o || (!o.actor && !o.run)) return `an unknown holder; last active ${ago(ageS)} ago`;
  const what = [
    o.run ? `run ${o.run}` : '',
    o.version ? `deploying ${o.version}` : '',
    o.since ? `since ${o.since}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `${o.actor ?? 'someone'}${what ? ` (${what})` : ''}; last active ${ago(ageS)} ago`;
}

/** The command that releases a target's lock, as a person would type it. */
export const unlockCommand = (targetId: string) => `fleet-deploy unlock --select 'id=${targetId}'`;
