/**
 * The fleet: waves one after another; within a wave up to `concurrency` targets at once (and at most
 * `perServer` on one server, below sshd's MaxSessions); each target fails alone. After each wave the
 * failure budget is checked on the results so far; when it is exceeded no later wave starts and their
 * targets are `skipped`, with the reason. One SSH connection per server for the whole run: opened at the
 * server's first target, shared by its tenants, closed after its last.
 */
import type { Plan } from '../plan/plan';
import type { Target } from '../registry/model';
import type { Clock, Connector, UrlGet } from '../ports';
import { countOutcomes, isFailure, resultOf, type Outcome, type TargetResult } from './result';
import { budgetExceeded } from './budget';
import { OnceHooks } from './hooks';
import { PrePull, type PrePullEvent } from './prepull';
import { ServerPulls } from './pulls';
import { Session } from './session';
import { deployTarget, type DeployOptions, type LockEvent, type StepEvent } from './target';
import type { Analysis, WaveAnalysis } from '../analysis';
import { analyseFleetWave, rolledBack, toRollBack, type AnalysisEvent } from './analysis';

export interface FleetOptions extends DeployOptions {
  concurrency: number;
  perServer: number;
  /** Stop after a wave when failures so far exceed this share of the targets so far (0 = any failure stops). */
  maxFailurePercent: number;
  /** …or this count, when given. */
  maxFailures?: number;
  /** Run the hooks marked `once` (default); false: they run elsewhere in this rollout (another matrix job). */
  onceHooks?: boolean;
  /** Checks measured after each wave but the last, through its soak (registry `rollout.analysis`). */
  analysis?: Analysis;
  /** Tenants of one server deploying the same images share one pull (pulls.ts); default true. */
  sharePulls?: boolean;
  /** While a wave runs and gates, pull the next wave's images on their servers (prepull.ts); default false here. */
  prePull?: boolean;
  /** How many waves ahead the pre-pull runs (1: the next wave; Infinity: every later wave). Default 1. */
  prePullWaves?: number;
  /** A server's filesystem with less free than this (MiB) gets no pre-pull. */
  prePullMinFreeMb?: number;
}

export interface FleetPorts {
  connector: Connector;
  clock: Clock;
  urlGet: UrlGet;
  signal?: AbortSignal;
  onStep?: (e: StepEvent) => void;
  onLock?: (e: LockEvent) => void;
  onTarget?: (r: TargetResult) => void;
  /** A pre-pull ended: pulled, or skipped or failed (a warning, never a failure of the deploy). */
  onPrePull?: (e: PrePullEvent) => void;
  onWave?: (e: {
    wave: number;
    of: number;
    targets: number;
    status: 'start' | 'done';
    failures?: number;
  }) => void;
  onAnalysis?: (e: AnalysisEvent) => void;
}

export interface WaveSummary {
  wave: number;
  targets: number;
  counts: Record<Outcome, number>;
}

export interface FleetReport {
  version: string;
  actor: string;
  runId: string;
  startedAt: string;
  durationMs: number;
  totals: Record<Outcome, number> & { targets: number };
  waves: WaveSummary[];
  /** Why the rollout stopped early (failure budget, analysis or cancellation), when it did. */
  stopped?: string;
  /** The analysis after each wave that had one. */
  analysis?: WaveAnalysis[];
  /** The analysis asked for a person (inconclusive policy "pause"): the rollout stopped, nothing rolled back. */
  paused?: boolean;
  /** The pre-pulls of later waves' images, when pre-pull was on. */
  prePulls?: PrePullEvent[];
  targets: TargetResult[];
}

function skipped(target: Target, wave: number, reason: string, clock: Clock): TargetResult {
  return {
    ...resultOf(target, wave),
    outcome: 'skipped',
    steps: [],
    error: reason,
    startedAt: new Date(clock.now()).toISOString(),
    durationMs: 0,
  };
}

/** A wave the rollout stopped before: each target skipped, and said so. */
function skipWave(wave: Plan['plan'][number], why: string, ports: FleetPorts): TargetResult[] {
  const rs = wave.targets.map((t) => skipped(t, wave.index, why, ports.clock));
  rs.forEach((r) => ports.onTarget?.(r));
  return rs;
}

/** Why the rollout stops after a wave: cancelled, or (before the last wave) the failure budget spent. */
function stopAfterWave(
  results: readonly TargetResult[],
  options: FleetOptions,
  ports: FleetPorts,
  waveBeforeLast: number | undefined,
): string | undefined {
  if (ports.signal?.aborted) return 'cancelled';
  const over = budgetExceeded(results, options);
  return over && waveBeforeLast !== undefined
    ? `wave ${waveBeforeLast} exceeded the failure budget: ${over}`
    : undefined;
}

export async function deployFleet(
  plan: Plan,
  options: FleetOptions,
  ports: FleetPorts,
): Promise<FleetReport> {
  const started = ports.clock.now();
  const once = new OnceHooks(options.onceHooks === false);
  const sessions = sessionsFor(plan, options, ports);
  const pulls = new Map<string, ServerPulls>();
  const prePull = prePullFor(plan, options, ports, sessions, pulls);
  const results: TargetResult[] = [];
  const waves: WaveSummary[] = [];
  const analyses: WaveAnalysis[] = [];
  let stopped: string | undefined;
  let paused = false;

  try {
    for (const wave of plan.plan) {
      if (stopped) {
        const rs = skipWave(wave, stopped, ports);
        results.push(...rs);
        waves.push({ wave: wave.index, targets: rs.length, counts: countOutcomes(rs) });
        continue;
      }
      ports.onWave?.({
        wave: wave.index,
        of: plan.plan.length,
        targets: wave.targets.length,
        status: 'start',
      });
      const wavePorts = withPrePull(ports, prePull, wave.index, wave.targets);
      const waveResults = await runWave(
        { options, ports: wavePorts, sessions, once, pulls },
        wave.index,
        wave.targets,
      );
      results.push(...waveResults);
      waves.push({ wave: wave.index, targets: waveResults.length, counts: countOutcomes(waveResults) });
      ports.onWave?.({
        wave: wave.index,
        of: plan.plan.length,
        targets: wave.targets.length,
        status: 'done',
        failures: waveResults.filter((r) => isFailure(r.outcome)).length,
      });
      stopped = stopAfterWave(
        results,
        options,
        ports,
        wave.index < plan.plan.length ? wave.index : undefined,
      );
      if (!stopped && options.analysis && wave.index < plan.plan.length) {
        const gate = await analyseAfterWave({ options, ports, sessions, once, pulls }, plan, wave, results);
        analyses.push(gate.analysis);
        stopped = gate.stopped;
        paused = gate.analysis.decision === 'pause';
      }
    }
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.close()));
    await prePull?.settle(); // a pre-pull cut off by the close ends with its connection
  }

  const c = countOutcomes(results);
  return {
    version: options.version,
    actor: options.actor,
    runId: options.runId,
    startedAt: new Date(started).toISOString(),
    durationMs: ports.clock.now() - started,
    totals: { targets: results.length, ...c },
    // counted again: an analysis may have rolled back targets of earlier waves
    waves: waves.map((w) => ({ ...w, counts: countOutcomes(results.filter((r) => r.wave === w.wave)) })),
    ...(stopped ? { stopped } : {}),
    ...(analyses.length ? { analysis: analyses } : {}),
    ...(paused ? { paused } : {}),
    ...(prePull ? { prePulls: prePull.events } : {}),
    targets: results,
  };
}

/**
 * The wave's analysis (src/deploy/analysis.ts); when it stops the rollout, the targets the `rollback`
 * policy names are rolled back in place in `results`. Returns why the rollout stops, if it does.
 */
async function analyseAfterWave(
  ctx: WaveContext,
  plan: Plan,
  wave: Plan['plan'][number],
  results: TargetResult[],
): Promise<{ analysis: WaveAnalysis; stopped?: string }> {
  const { options, ports, sessions } = ctx;
  const analysis = await analyseFleetWave(
    {
      plan,
      version: options.version,
      sessions,
      ports: { clock: ports.clock, urlGet: ports.urlGet, ...(ports.signal ? { signal: ports.signal } : {}) },
      ...(ports.onAnalysis ? { onAnalysis: ports.onAnalysis } : {}),
    },
    options.analysis!,
    wave,
    results.filter((r) => r.wave === wave.index),
  );
  if (analysis.decision === 'proceed') return { analysis };
  if (analysis.decision === 'pause')
    return { analysis, stopped: `paused after wave ${wave.index} for a person: ${analysis.reason}` };
  const back =
    analysis.outcome === 'failed' ? toRollBack(options.analysis!.rollback, wave.index, results) : [];
  if (back.length && !ports.signal?.aborted) {
    const targets = back.map((r) => plan.plan[r.wave - 1]!.targets.find((t) => t.id === r.id)!);
    targets.forEach((t) => sessions.get(t.server.name)!.remaining++);
    // The rollback's results replace the targets' own below; they are not new targets for onTarget.
    const quiet = { ...ports, onTarget: undefined };
    const undone = await runWave(
      {
        ...ctx,
        ports: quiet,
        options: {
          ...options,
          rollback: { reason: `analysis after wave ${wave.index} failed: ${analysis.reason}` },
        },
      },
      wave.index,
      targets,
    );
    for (const u of undone) {
      const i = results.findIndex((r) => r.id === u.id);
      results[i] = rolledBack(results[i]!, u, analysis.reason);
    }
  }
  return { analysis, stopped: `analysis after wave ${wave.index} ${analysis.outcome}: ${analysis.reason}` };
}

interface WaveContext {
  options: FleetOptions;
  ports: FleetPorts;
  sessions: Map<string, Session>;
  once: OnceHooks;
  /** Each server's shared pulls (filled as servers come up). */
  pulls: Map<string, ServerPulls>;
}

/** One session per server of the plan, counting the targets that will use it. */
function sessionsFor(plan: Plan, options: FleetOptions, ports: FleetPorts): Map<string, Session> {
  const sessions = new Map<string, Session>();
  for (const t of plan.plan.flatMap((w) => w.targets)) {
    const s = sessions.get(t.server.name);
    if (s) s.remaining++;
    else
      sessions.set(
        t.server.name,
        new Session(t.server, ports.connector, ports.clock, options.recoveryWindowMs, 1),
      );
  }
  return sessions;
}

/** The rollout's pre-pull, when it is on (and the pulls are shared, which it goes by). */
function prePullFor(
  plan: Plan,
  options: FleetOptions,
  ports: FleetPorts,
  sessions: Map<string, Session>,
  pulls: Map<string, ServerPulls>,
): PrePull | undefined {
  if (!options.prePull || options.sharePulls === false) return undefined;
  return new PrePull(
    plan,
    { ...options, prePullMinFreeMb: options.prePullMinFreeMb ?? 1024 },
    {
      sessions,
      pulls: (server) => serverPulls(pulls, server),
      askApiVersion: true,
      clock: ports.clock,
      ...(ports.signal ? { signal: ports.signal } : {}),
      ...(ports.onPrePull ? { onPrePull: ports.onPrePull } : {}),
    },
  );
}

/**
 * Only the pre-pull of wave `wave` (the reusable workflow's prepull-N job, which runs beside gate N-1): the
 * same PrePull over one connection per server of the wave's pre-pulls, each ended through `onPrePull`.
 * Never throws for a server: a pre-pull holds no lock, changes nothing that runs and fails nothing.
 */
export async function prePullWave(
  plan: Plan,
  wave: number,
  options: FleetOptions,
  ports: Pick<FleetPorts, 'connector' | 'clock' | 'signal' | 'onPrePull'>,
): Promise<PrePullEvent[]> {
  const sessions = new Map<string, Session>();
  for (const t of plan.plan[wave - 1]?.targets ?? [])
    if (!sessions.has(t.server.name))
      sessions.set(
        t.server.name,
        new Session(t.server, ports.connector, ports.clock, options.recoveryWindowMs, 1),
      );
  const prePull = new PrePull(
    plan,
    { ...options, prePullMinFreeMb: options.prePullMinFreeMb ?? 1024 },
    {
      sessions,
      pulls: () => undefined,
      clock: ports.clock,
      ...(ports.signal ? { signal: ports.signal } : {}),
      ...(ports.onPrePull ? { onPrePull: ports.onPrePull } : {}),
    },
  );
  try {
    prePull.start(wave);
    await prePull.settle();
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.close()));
  }
  return prePull.events;
}

/** The wave's ports, telling the pre-pull how its targets' pulls went (the next wave's pre-pull starts at the first that succeeds). */
function withPrePull(
  ports: FleetPorts,
  prePull: PrePull | undefined,
  index: number,
  targets: readonly Target[],
): FleetPorts {
  if (!prePull) return ports;
  const watch = prePull.watch(
    index,
    targets.map((t) => t.id),
  );
  return {
    ...ports,
    onStep: (e) => (watch.onStep(e), ports.onStep?.(e)),
    onTarget: (r) => (watch.onTarget(r), ports.onTarget?.(r)),
  };
}

function serverPulls(pulls: Map<string, ServerPulls>, server: string): ServerPulls {
  let p = pulls.get(server);
  if (!p) pulls.set(server, (p = new ServerPulls()));
  return p;
}

/** One wave: up to `concurrency` targets at once, at most `perServer` of one server; each fails alone. */
async function runWave(
  { options, ports, sessions, once, pulls }: WaveContext,
  index: number,
  targets: readonly Target[],
): Promise<TargetResult[]> {
  const out: TargetResult[] = new Array(targets.length);
  const busy = new Map<string, number>();
  const queue = targets.map((t, i) => ({ t, i }));
  let running = 0;
  return new Promise((resolve) => {
    const pump = () => {
      if (queue.length === 0 && running === 0) return resolve(out);
      for (let k = 0; k < queue.length && running < options.concurrency;) {
        const { t, i } = queue[k]!;
        if (ports.signal?.aborted) {
          queue.splice(k, 1);
          out[i] = skipped(t, index, 'cancelled', ports.clock);
          ports.onTarget?.(out[i]!);
          continue;
        }
        if ((busy.get(t.server.name) ?? 0) >= options.perServer) {
          k++;
          continue;
        }
        queue.splice(k, 1);
        running++;
        busy.set(t.server.name, (busy.get(t.server.name) ?? 0) + 1);
        const session = sessions.get(t.server.name)!;
        deployTarget(t, index, options, {
          session,
          clock: ports.clock,
          urlGet: ports.urlGet,
          onStep: ports.onStep ?? (() => undefined),
          onLock: ports.onLock,
          once,
          signal: ports.signal,
          ...(options.sharePulls === false ? {} : { pulls: serverPulls(pulls, t.server.name) }),
        })
          .catch((e: Error): TargetResult => ({
            ...skipped(t, index, `internal error: ${e.message}`, ports.clock),
            outcome: 'failed',
          }))
          .then(async (r) => {
            try {
              out[i] = r;
              ports.onTarget?.(r);
              busy.set(t.server.name, busy.get(t.server.name)! - 1);
              if (--session.remaining === 0) await session.close();
            } catch {
              // a reporting or closing error must not stall the wave
            } finally {
              running--;
              pump();
            }
          });
      }
      if (queue.length === 0 && running === 0) resolve(out);
    };
    pump();
  });
}
