/**
 * Analysis between waves, resolved from the registry's `rollout.analysis`: named checks measured during a
 * wave's soak, before the next wave starts. Vocabulary after Argo Rollouts' AnalysisTemplate: a check
 * takes `count` measurements `interval` apart; each is successful, failed or inconclusive by its
 * conditions; more than `failureLimit` failed ones fail the check, more than `inconclusiveLimit`
 * inconclusive ones make it inconclusive.
 */
import type { CheckKind } from './condition';

export type InconclusivePolicy = 'stop' | 'continue' | 'pause';
export type RollbackPolicy = 'wave' | 'all' | 'none';
export type MeasurementOutcome = 'successful' | 'failed' | 'inconclusive';

export type CheckSource =
  | { kind: 'prometheus'; url: string; query: string }
  | { kind: 'http'; url: string }
  | { kind: 'command'; run: string };

export interface Check {
  name: string;
  source: CheckSource;
  successCondition?: string;
  failureCondition?: string;
  intervalMs: number;
  /** Measurements to take; undefined: every interval until the soak is over (at least one). */
  count?: number;
  failureLimit: number;
  inconclusiveLimit: number;
  /** For one measurement (a query, a request, the command on every target). */
  timeoutMs: number;
  /** Measured and reported, never stops anything. */
  dryRun: boolean;
}

export interface RingAnalysis {
  soakMs?: number;
  /** The names of the checks a wave of this ring runs; undefined: all. */
  checks?: readonly string[];
}

export interface Analysis {
  soakMs: number;
  inconclusive: InconclusivePolicy;
  rollback: RollbackPolicy;
  checks: readonly Check[];
  rings: Readonly<Record<string, RingAnalysis>>;
}

/** What the checks of one wave will run, after templating: for --dry-run, `plan` and the reports. */
export type PlannedCheck = Omit<Check, 'source' | 'timeoutMs'> & {
  kind: CheckKind;
  /** The query, URL or command, with the wave's values filled in. */
  what: string;
};

export interface Measurement {
  at: string;
  outcome: MeasurementOutcome;
  /** What was seen, short: the value(s), the status, the count of failed targets. */
  value: string;
  /** Why it is inconclusive or failed, when there is more to say than the condition. */
  detail?: string;
}

export interface CheckResult extends PlannedCheck {
  outcome: MeasurementOutcome;
  measurements: Measurement[];
}

export interface WaveAnalysis {
  wave: number;
  soakMs: number;
  /** successful: the next wave may start; failed / inconclusive: by the policy. */
  outcome: MeasurementOutcome;
  /** What happens now: the rollout goes on, stops, or pauses for a person. */
  decision: 'proceed' | 'stop' | 'pause';
  checks: CheckResult[];
  durationMs: number;
  /** One line: which check decided, the value seen, the condition and the query. */
  reason: string;
}
