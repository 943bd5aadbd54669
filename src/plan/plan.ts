/**
 * The plan: which targets, in which waves, split into GitHub matrix jobs. Pure and deterministic: the
 * same registry and options always give the same plan.
 *
 * Order. Targets are ordered by ring (the registry's `rings` order), then round-robin across servers
 * (by server name), then by the tenant's place on its server. Early waves therefore start with the first
 * rings and touch as many different servers as they can, which is what a canary wants.
 *
 * Jobs. A GitHub matrix holds at most 256 jobs, and its jobs run in parallel, so the cut is by server first:
 * a server's tenants in a wave go to at most `maxJobsPerServer` jobs (default 1), so parallel matrix jobs
 * never pile onto one small server — within its job, the deploy's own per-server limit applies. Then the
 * servers' shares are packed in server order into jobs of up to `maxPerJob` targets (a share larger than
 * that stays whole), and when that gives more than 256 jobs the shares are packed into 256 evenly.
 */
import { ConfigurationError } from '../errors';
import { targetsOf, type Registry, type Target } from '../registry/model';
import { selectTargets } from './select';
import { parseWaveSpec, waveSizes } from './waves';

export const MAX_MATRIX_JOBS = 256;

export interface PlanOptions {
  select?: string;
  waves?: string;
  /** Targets one matrix job deploys (a job deploys them with bounded concurrency). Default 1. */
  maxPerJob?: number;
  /** Matrix jobs of one wave that may deploy to the same server at once. Default 1. */
  maxJobsPerServer?: number;
}

export interface Job {
  /** Display name for the job, e.g. "eu-1/acme-corp" or "wave 3 · 41-80 of 400". */
  name: string;
  targets: readonly string[];
}

export interface Wave {
  /** 1-based */
  index: number;
  targets: readonly Target[];
  jobs: readonly Job[];
}

export interface Plan {
  select: string;
  waves: string;
  maxPerJob: number;
  maxJobsPerServer: number;
  total: number;
  plan: readonly Wave[];
}

export function orderTargets(targets: readonly Target[], rings: readonly string[]): Target[] {
  const rank = new Map(rings.map((r, i) => [r, i]));
  const byRing = new Map<number, Map<string, Target[]>>();
  for (const t of targets) {
    const r = rank.get(t.tenant.ring) ?? rings.length;
    let servers = byRing.get(r);
    if (!servers) byRing.set(r, (servers = new Map()));
    let list = servers.get(t.server.name);
    if (!list) servers.set(t.server.name, (list = []));
    list.push(t);
  }
  const out: Target[] = [];
  for (const r of [...byRing.keys()].sort((a, b) => a - b)) {
    const servers = byRing.get(r)!;
    const lists = [...servers.keys()].sort().map((name) => servers.get(name)!);
    for (let i = 0, left = true; left; i++) {
      left = false;
      for (const list of lists) {
        if (i < list.length) {
          out.push(list[i]!);
          left ||= i + 1 < list.length;
        }
      }
    }
  }
  return out;
}

/** A server's targets in a wave, split into at most `parts` even shares. */
function serverShares(targets: readonly Target[], maxPerJob: number, parts: number): Target[][] {
  const byServer = new Map<string, Target[]>();
  for (const t of targets) {
    const list = byServer.get(t.server.name);
    if (list) list.push(t);
    else byServer.set(t.server.name, [t]);
  }
  return [...byServer.keys()].sort().flatMap((name) => {
    const list = byServer.get(name)!;
    return evenSlices(list, Math.min(parts, Math.ceil(list.length / maxPerJob)));
  });
}

function evenSlices<T>(items: readonly T[], count: number): T[][] {
  const base = Math.floor(items.length / count);
  const extra = items.length % count;
  const out: T[][] = [];
  for (let i = 0, start = 0; i < count; i++) {
    const size = base + (i < extra ? 1 : 0);
    out.push(items.slice(start, (start += size)));
  }
  return out;
}

/** Consecutive shares packed into jobs of up to `capacity` targets (a larger share is a job alone). */
function pack(shares: readonly Target[][], capacity: number): Target[][] {
  const jobs: Target[][] = [];
  for (const share of shares) {
    const last = jobs[jobs.length - 1];
    if (last && last.length + share.length <= capacity) last.push(...share);
    else jobs.push([...share]);
  }
  return jobs;
}

/**
 * Past the matrix limit: consecutive shares spread over 256 jobs by where each share starts, so jobs are
 * as even as whole shares allow (shares of one target give sizes that differ by at most one).
 */
function spread(shares: readonly Target[][], total: number): Target[][] {
  const jobs: Target[][] = Array.from({ length: MAX_MATRIX_JOBS }, () => []);
  let start = 0;
  for (const share of shares) {
    jobs[Math.floor((start * MAX_MATRIX_JOBS) / total)]!.push(...share);
    start += share.length;
  }
  return jobs.filter((j) => j.length > 0);
}

function jobName(waveIndex: number, slice: readonly Target[], start: number, of: number): string {
  if (slice.length === 1) return slice[0]!.id;
  const servers = new Set(slice.map((t) => t.server.name));
  if (servers.size === 1) return `wave ${waveIndex} · ${slice[0]!.server.name} · ${slice.length} targets`;
  return `wave ${waveIndex} · ${start + 1}-${start + slice.length} of ${of}`;
}

export function cutJobs(
  waveIndex: number,
  targets: readonly Target[],
  maxPerJob: number,
  maxJobsPerServer = 1,
): Job[] {
  if (targets.length === 0) return [];
  const shares = serverShares(targets, maxPerJob, maxJobsPerServer);
  const packed = pack(shares, maxPerJob);
  const jobs = packed.length <= MAX_MATRIX_JOBS ? packed : spread(shares, targets.length);
  let start = 0;
  return jobs.map((slice) => {
    const job = { name: jobName(waveIndex, slice, start, targets.length), targets: slice.map((t) => t.id) };
    start += slice.length;
    return job;
  });
}

export function planDeployment(registry: Registry, options: PlanOptions = {}): Plan {
  const select = options.select ?? '';
  const spec = options.waves ?? 'all';
  const maxPerJob = atLeastOne(options.maxPerJob, '--max-per-job', 'e.g. 1 (one target per job) or 20');
  const maxJobsPerServer = atLeastOne(
    options.maxJobsPerServer,
    '--max-jobs-per-server',
    "e.g. 1 (a server's tenants share one job per wave) or 4",
  );
  const waveSpec = parseWaveSpec(spec);
  const selected = orderTargets(selectTargets(targetsOf(registry), select), registry.rings);

  let groups: Target[][];
  if (waveSpec.kind === 'rings') {
    groups = registry.rings
      .map((ring) => selected.filter((t) => t.tenant.ring === ring))
      .filter((g) => g.length > 0);
  } else {
    let start = 0;
    groups = waveSizes(selected.length, waveSpec.steps).map((n) => selected.slice(start, (start += n)));
  }
  return {
    select,
    waves: spec,
    maxPerJob,
    maxJobsPerServer,
    total: selected.length,
    plan: groups.map((targets, i) => ({
      index: i + 1,
      targets,
      jobs: cutJobs(i + 1, targets, maxPerJob, maxJobsPerServer),
    })),
  };
}

function atLeastOne(value: number | undefined, source: string, hint: string): number {
  if (value === undefined) return 1;
  if (Number.isInteger(value) && value >= 1) return value;
  throw new ConfigurationError([
    { path: [], source, message: `${JSON.stringify(value)} is not a whole number of at least 1`, hint },
  ]);
}

/** One GitHub matrix per wave: `strategy.matrix: ${{ fromJSON(needs.plan.outputs.matrices)[0] }}`. */
export function matrices(
  plan: Plan,
): Array<{ include: Array<{ name: string; targets: string; count: number; wave: number }> }> {
  return plan.plan.map((w) => ({
    include: w.jobs.map((j) => ({
      name: j.name,
      targets: j.targets.join(' '),
      count: j.targets.length,
      wave: w.index,
    })),
  }));
}

/**
 * Wave 1's matrix without its first job, for the matrix workflow: that first job runs on its own (it runs
 * the hooks marked `once`) and the rest of wave 1 waits for it. '' when wave 1 has no other job.
 */
export function waveOneRest(m: ReturnType<typeof matrices>): string {
  const rest = m[0]?.include.slice(1) ?? [];
  return rest.length > 0 ? JSON.stringify({ include: rest }) : '';
}

/** The plan as plain JSON (the CLI's --format json and the action's `plan` output). */
export function planJson(plan: Plan) {
  return {
    select: plan.select,
    waves: plan.waves,
    maxPerJob: plan.maxPerJob,
    maxJobsPerServer: plan.maxJobsPerServer,
    total: plan.total,
    plan: plan.plan.map((w) => ({
      wave: w.index,
      count: w.targets.length,
      targets: w.targets.map((t) => ({
        id: t.id,
        server: t.server.name,
        tenant: t.tenant.id,
        region: t.server.region,
        ring: t.tenant.ring,
      })),
      jobs: w.jobs.length,
      servers: new Set(w.targets.map((t) => t.server.name)).size,
    })),
  };
}
