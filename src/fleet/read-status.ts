/**
 * Reading the fleet's status: per target, one inspection (one exec) and, at the same time on the same
 * connection, one probe of its health check; one connection per server. The result is checked data
 * (`TargetStatus`), drift across each wave included; the CLI and the status action render it.
 */
import type { StepLimits } from '../deploy/locks';
import { describe } from '../deploy/shell';
import { strategyFor } from '../deploy/strategies';
import { judge } from '../health/gate';
import type { Plan } from '../plan/plan';
import type { Connector, HttpResponse, Transport, UrlGet } from '../ports';
import type { Target } from '../registry/model';
import { inspectTenant, parseInspection } from '../remote/status';
import { eachServer } from './each-server';
import { targetStatus, waveDrift, type TargetStatus } from './status';

/** One GET of the registry's health check (the answer is judged once the version is known). */
async function get(t: Target, transport: Transport, getUrl: UrlGet): Promise<HttpResponse | Error> {
  const check = t.tenant.health;
  try {
    return check.url !== undefined
      ? await getUrl(check.url.replaceAll('{version}', ''), check.timeoutMs)
      : await transport.get(check.port!, check.path, check.timeoutMs);
  } catch (e) {
    return e as Error;
  }
}

function verdict(t: Target, answer: HttpResponse | Error, version: string): TargetStatus['probe'] {
  if (answer instanceof Error) return { ok: false, detail: answer.message };
  const v = judge(t.tenant.health, answer, version);
  return v.ok ? { ok: true, detail: `${answer.status}` } : { ok: false, detail: v.reason };
}

/** What the status is read from: the selected targets, each one's wave, and how to reach their servers. */
export interface StatusSource {
  targets: readonly Target[];
  /** target id → its wave in the plan (drift is judged against the rest of the wave) */
  waveOf: ReadonlyMap<string, number>;
  connector: Connector;
  /** servers read at once */
  concurrency: number;
  /** a GET from here, for health checks with a public URL */
  getUrl: UrlGet;
  /** the step limits deploys run with, by which a lock without a lease is judged */
  limits: StepLimits;
}

/** A plan's targets in order, and each one's wave. */
export function plannedTargets(plan: Plan): { targets: Target[]; waveOf: Map<string, number> } {
  return {
    targets: plan.plan.flatMap((w) => w.targets),
    waveOf: new Map(plan.plan.flatMap((w) => w.targets.map((t) => [t.id, w.index] as const))),
  };
}

/** The status of every target, drift across waves included (`fleet-deploy status` and the status action). */
export async function fleetStatus({
  targets,
  waveOf,
  connector,
  concurrency,
  getUrl,
  limits,
}: StatusSource): Promise<TargetStatus[]> {
  const results = await eachServer(
    targets,
    connector,
    async (t, transport) => {
      // the inspection and the probe at once, on two channels of the one connection: one round trip
      const strategy = strategyFor(t);
      const [r, answer] = await Promise.all([
        transport.exec(inspectTenant(t.tenant, strategy.inspect()), { timeoutMs: 60_000 }),
        get(t, transport, getUrl),
      ]);
      if (r.code !== 0) throw new Error(`cannot inspect: ${describe(r)}`);
      const status = targetStatus(t, waveOf.get(t.id) ?? 1, parseInspection(r.stdout), strategy, limits);
      if (status.state !== 'missing') status.probe = verdict(t, answer, status.version ?? '');
      return status;
    },
    { concurrency, perServer: 4 },
  );
  const statuses = targets.map((t): TargetStatus => {
    const r = results.get(t.id)!;
    if (r.ok) return r.value;
    const empty = { refs: {}, images: [], digests: [], health: '', drift: [] };
    return { id: t.id, wave: waveOf.get(t.id) ?? 1, state: 'missing', ...empty, error: r.error };
  });
  waveDrift(statuses);
  return statuses;
}
