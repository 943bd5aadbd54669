/** What a deploy reports for each target and for the whole run. */
import type { Target } from '../registry/model';

/** Every outcome, in the order reports list them. */
export const OUTCOMES = ['deployed', 'unchanged', 'rolled-back', 'failed', 'skipped'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** A target that did not end on the new release counts against the failure budget. */
export const isFailure = (o: Outcome) => o === 'failed' || o === 'rolled-back';

/** How many targets ended with each outcome. */
export function countOutcomes(results: readonly { outcome: Outcome }[]): Record<Outcome, number> {
  const c = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  for (const r of results) c[r.outcome]++;
  return c;
}

export interface Release {
  /** image variable → reference, as in .env (compose), or { version } (commands) */
  refs: Record<string, string>;
  version?: string;
  /** IDs of the images (compose): the running ones for `previous`, the pulled ones for `next` */
  imageIds: string[];
  digests: string[];
  /** The Compose project it runs as, derived on the server (compose). */
  project?: string;
  /** Its Compose configuration's hash, read after `compose up` (see configHashOf). */
  configHash?: string;
  /** The files shipped with it (registry `files`): path in the tenant directory → sha256. */
  files?: Record<string, string>;
  /** Their modes where not 644 (path → octal mode). */
  fileModes?: Record<string, string>;
}

export interface StepTiming {
  step: string;
  ms: number;
  ok: boolean;
  detail?: string;
}

/** Where a target's result stands in the fleet: its names and its wave, as every report shows them. */
export function resultOf(
  target: Target,
  wave: number,
): Pick<TargetResult, 'id' | 'server' | 'tenant' | 'region' | 'ring' | 'wave'> {
  return {
    id: target.id,
    server: target.server.name,
    tenant: target.tenant.id,
    region: target.server.region,
    ring: target.tenant.ring,
    wave,
  };
}

export interface TargetResult {
  id: string;
  server: string;
  tenant: string;
  region: string;
  ring: string;
  wave: number;
  outcome: Outcome;
  previous?: Release;
  next?: Release;
  steps: StepTiming[];
  /** Why the deploy failed (also for rolled-back) or why the target was skipped. */
  error?: string;
  /**
   * The downtime the tenant's users saw (0: every probe answered). In place: the health gate's, first
   * failed probe to first healthy one. Blue-green: the check through the proxy after the switch, first
   * probe with no answer or a 5xx to the next answer (the gate on the idle slot measures a boot no user
   * sees). A lower bound: the probes start once the switch returned.
   */
  downtimeMs?: number;
  /** Why the rollback failed, when the outcome is failed after a rollback attempt. */
  rollbackError?: string;
  startedAt: string;
  durationMs: number;
}
