/**
 * The plan: which targets, in which waves, split into GitHub matrix jobs. Pure and deterministic: the
 * same registry and options always give the same plan.
 *
 * Order. Targets are ordered by ring (the registry's `rings` order), then round-robin across servers
 * (by server name), then by the tenant's place on its server. Early waves therefore start with the first
 * rings and touch as many different servers as they can, which is what a canary wants.
 *
 * Jobs. A GitHub matrix holds at most 256 jobs. A wave becomes ceil(targets / maxPerJob) jobs, or 256 when
 * that is more, each with an even share (sizes differ by at most one). Within a wave the targets are
 * grouped by server before they are cut, so a server's tenants tend to share one job and one SSH
 * connection.
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

export function cutJobs(waveIndex: number, targets: readonly Target[], maxPerJob: number): Job[] {
  if (targets.length === 0) return [];
  const sorted = [...targets].sort((a, b) =>
    a.server.name < b.server.name ? -1 : a.server.name > b.server.name ? 1 : 0,
  );
  const jobs = Math.min(MAX_MATRIX_JOBS, Math.ceil(sorted.length / maxPerJob));
  const base = Math.floor(sorted.length / jobs);
  const extra = sorted.length % jobs;
  const out: Job[] = [];
  let start = 0;
  for (let j = 0; j < jobs; j++) {
    const size = base + (j < extra ? 1 : 0);
    const slice = sorted.slice(start, start + size);
    const name =
      size === 1 ? slice[0]!.id : `wave ${waveIndex} · ${start + 1}-${start + size} of ${sorted.length}`;
    out.push({ name, targets: slice.map((t) => t.id) });
    start += size;
  }
  return out;
}

export function planDeployment(registry: Registry, options: PlanOptions = {}): Plan {
  const select = options.select ?? '';
  const spec = options.waves ?? 'all';
  const maxPerJob = options.maxPerJob ?? 1;
  if (!Number.isInteger(maxPerJob) || maxPerJob < 1) {
    throw new ConfigurationError([
      {
        path: [],
        source: '--max-per-job',
        message: `${JSON.stringify(options.maxPerJob)} is not a whole number of at least 1`,
        hint: 'e.g. 1 (one target per job) or 20',
      },
    ]);
  }
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
    total: selected.length,
    plan: groups.map((targets, i) => ({ index: i + 1, targets, jobs: cutJobs(i + 1, targets, maxPerJob) })),
  };
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

/** The plan as plain JSON (the CLI's --format json and the action's `plan` output). */
export function planJson(plan: Plan) {
  return {
    select: plan.select,
    waves: plan.waves,
    maxPerJob: plan.maxPerJob,
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
    })),
  };
}
