/**
 * A target's status from one inspection (src/remote/status.ts): the release it runs (image, digest,
 * version), the one before it and its last deploy (from the history), its containers' state and health,
 * a lock left in place, and drift — reasons it does not run what was deployed. Drift across targets
 * (a target running something other than most of its wave) is added by `waveDrift`. Pure.
 */
import type { Target } from '../registry/model';
import { configHashOf } from '../remote/compose';
import { fileDrift } from '../remote/files';
import { stackState, type ContainerInfo, type ContainerState, type TenantInspection } from '../remote/status';
import { History, parseHistory, type HistoryEntry } from '../deploy/history';
import { longestQuiet, type StepLimits } from '../deploy/locks';
import type { ReleaseStrategy, StrategyStatus } from '../deploy/strategy';

export interface TargetStatus {
  id: string;
  wave: number;
  state: ContainerState;
  /** The version .env names (compose, blue-green: the live one) or the `current` command prints (commands). */
  version?: string;
  /** Blue-green: the live slot (none: the in-place stack serves) and the release and state of each slot. */
  slots?: StrategyStatus['slots'];
  refs: Record<string, string>;
  /** IDs of the images the containers run, and their repository digests. */
  images: string[];
  digests: string[];
  previous?: string;
  lastDeploy?: { time?: string; actor?: string; run?: string; outcome: string; to?: string };
  /** The containers' own health checks: healthy, unhealthy, starting, none. */
  health: string;
  /** The registry's health check probed now, when it was. */
  probe?: { ok: boolean; detail: string };
  /**
   * A lock in place. With a lease, `interrupted` is whether it ran out on the server's clock (as a deploy
   * judges it: it then takes the lock over), `lease.leftS` how long it runs more (≤ 0: ran out that long
   * ago) and `lease.until` its end (the server's clock). Without one (a restore's, an older
   * fleet-deploy's), `interrupted` is judged by its age, as `--break-stale-locks` would.
   */
  lock?: {
    ageS: number;
    owner: string;
    actor?: string;
    run?: string;
    interrupted: boolean;
    lease?: { leftS: number; until: string };
  };
  drift: string[];
  error?: string;
}

function healthOf(states: readonly string[]): string {
  for (const h of ['unhealthy', 'starting', 'healthy']) if (states.includes(h)) return h;
  return states.length ? 'none' : '';
}

/**
 * The lock left on the target; `limits` are the step limits a deploy runs with (the defaults of
 * --command-timeout and --pull-timeout): a lock without a lease untouched longer than any step takes is
 * judged interrupted.
 */
function lockOf(
  target: Target,
  lock: NonNullable<TenantInspection['lock']>,
  limits: StepLimits,
): TargetStatus['lock'] {
  let owner: { actor?: unknown; run?: unknown } = {};
  try {
    owner = JSON.parse(lock.owner) as typeof owner;
  } catch {
    // an owner that is not ours to read is shown as text
  }
  const text = (v: unknown) => (typeof v === 'string' && !/[\r\n]/.test(v) ? v.slice(0, 200) : undefined);
  const quietMs = longestQuiet(target.tenant, limits).ms;
  return {
    ageS: lock.ageS,
    owner: lock.owner.slice(0, 500),
    ...(text(owner.actor) ? { actor: text(owner.actor) } : {}),
    ...(text(owner.run) ? { run: text(owner.run) } : {}),
    // a lease says when its holder gives up; without one, no deploy at work leaves its lock untouched this long
    interrupted: lock.lease ? lock.lease.leftS <= 0 : lock.ageS * 1000 >= 2 * quietMs,
    ...(lock.lease
      ? { lease: { leftS: lock.lease.leftS, until: new Date(lock.lease.expiresS * 1000).toISOString() } }
      : {}),
  };
}

const lastDeployed = (entries: readonly HistoryEntry[]) =>
  [...entries].reverse().find((e) => e.outcome === 'deployed');

function driftOf(
  i: TenantInspection,
  containers: readonly ContainerInfo[],
  images: string[],
  last: HistoryEntry | undefined,
): string[] {
  const drift: string[] = [];
  if (!last) return drift;
  if (last.toRefs && Object.keys(i.env).length) {
    const changed = Object.entries(last.toRefs).filter(([k, v]) => i.env[k] !== undefined && i.env[k] !== v);
    for (const [k, v] of changed) drift.push(`.env sets ${k}=${i.env[k]}, the last release set ${v}`);
  }
  if (last.toImages?.length && images.length) {
    const foreign = images.filter((id) => !last.toImages!.includes(id));
    if (foreign.length)
      drift.push(
        `runs image ${foreign.map((id) => id.slice(7, 19)).join(', ')}, not the last release's (${last.to ?? '?'})`,
      );
  }
  const now = configHashOf(containers.flatMap((c) => (c.configHash ? [c.configHash] : [])));
  if (last.configHash && now && now !== last.configHash)
    drift.push('its Compose config differs from the deployed one (config-hash label)');
  if (i.files) drift.push(...fileDrift(i.files));
  return drift;
}

/** The target's status from its inspection, read by its strategy (`status`). */
export function targetStatus(
  target: Target,
  wave: number,
  i: TenantInspection,
  strategy: Pick<ReleaseStrategy, 'status'>,
  limits: StepLimits,
): TargetStatus {
  if (i.noDirectory)
    return {
      id: target.id,
      wave,
      state: 'missing',
      refs: {},
      images: [],
      digests: [],
      health: '',
      drift: [],
      error: `no directory ${target.tenant.path}`,
    };
  const entries = parseHistory(i.history);
  const history = new History(entries);
  const { version, containers, state, slots } = strategy.status(i);
  const images = [...new Set(containers.map((c) => c.image))];
  const last = [...entries].reverse()[0];
  const previous = history.previous(version);
  return {
    id: target.id,
    wave,
    state: state ?? stackState(containers),
    ...(version ? { version } : {}),
    ...(slots ? { slots } : {}),
    refs: i.env,
    images,
    digests: [...new Set(images.flatMap((id) => i.digests[id] ?? []))],
    ...(previous ? { previous } : {}),
    ...(last
      ? {
          lastDeploy: {
            outcome: last.outcome,
            ...(last.time ? { time: last.time } : {}),
            ...(last.actor ? { actor: last.actor } : {}),
            ...(last.run ? { run: last.run } : {}),
            ...(last.to ? { to: last.to } : {}),
          },
        }
      : {}),
    health: healthOf(containers.map((c) => c.health)),
    ...(i.lock ? { lock: lockOf(target, i.lock, limits) } : {}),
    drift: driftOf(i, containers, images, lastDeployed(entries)),
  };
}

/** Adds "differs from most of its wave" to each target whose version is not its wave's most common one. */
export function waveDrift(statuses: TargetStatus[]): void {
  const waves = new Map<number, TargetStatus[]>();
  for (const s of statuses) waves.set(s.wave, [...(waves.get(s.wave) ?? []), s]);
  for (const [wave, list] of waves) {
    const counts = new Map<string, number>();
    for (const s of list) if (s.version) counts.set(s.version, (counts.get(s.version) ?? 0) + 1);
    const [top, n] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [];
    if (!top || n! * 2 <= list.length) continue; // no majority, no verdict
    for (const s of list)
      if (s.version && s.version !== top)
        s.drift.push(`runs ${s.version} where most of wave ${wave} (${n}/${list.length}) runs ${top}`);
  }
}

export const hasDrift = (s: TargetStatus) => s.drift.length > 0;
