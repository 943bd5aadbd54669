/**
 * Each scenario of the reliability suite records what it promises and what it measured, one JSON line in
 * chaos-results/results.jsonl, whether it passed or not; `.ci/reliability.mjs` makes the table of
 * docs/RELIABILITY.md and of the CI log from them. Only stable figures go in `measured` (counts, outcomes,
 * bounds): the page is regenerated on every run and must not change unless the behaviour does; times go in
 * `ms`, printed in the CI log only.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export type Area =
  | 'network faults'
  | 'hostile input'
  | 'planted links'
  | 'host keys'
  | 'secrets'
  | 'concurrency'
  | 'load'
  | 'server limits';

export interface Measured {
  /** What was observed, in words that do not change from run to run. */
  measured: string;
  cases?: number;
  faults?: number;
  secretBytes?: number;
  injections?: number;
  /** How long it took, and the bound the configured timeouts set (CI log only). */
  ms?: number;
  boundMs?: number;
  /** Figures that change from run to run (counts of a timing-dependent loop): CI log only. */
  detail?: string;
}

export interface ScenarioResult extends Measured {
  area: Area;
  scenario: string;
  promise: string;
  passed: boolean;
}

const RESULTS = join(process.cwd(), 'chaos-results', 'results.jsonl');

export function recordResult(r: ScenarioResult): void {
  mkdirSync(join(process.cwd(), 'chaos-results'), { recursive: true });
  appendFileSync(RESULTS, `${JSON.stringify(r)}\n`); // one short write: whole lines from parallel workers
}

/**
 * A jest test that is one scenario of the table: `body` asserts and returns what it measured. A failure
 * is recorded as such (with its message's first line) and fails the test.
 */
export function scenario(
  area: Area,
  name: string,
  promise: string,
  body: () => Promise<Measured>,
  timeoutMs = 120_000,
): void {
  test(
    name,
    async () => {
      const t0 = Date.now();
      try {
        const m = await body();
        recordResult({ area, scenario: name, promise, passed: true, ms: Date.now() - t0, ...m });
      } catch (e) {
        const first =
          String((e as Error).message ?? e)
            .split('\n')
            .find((l) => l.trim()) ?? 'failed';
        recordResult({
          area,
          scenario: name,
          promise,
          passed: false,
          measured: `FAILED: ${first.slice(0, 200)}`,
          ms: Date.now() - t0,
        });
        throw e;
      }
    },
    timeoutMs,
  );
}
