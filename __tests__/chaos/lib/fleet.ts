/**
 * A tenant's state after a chaos scenario, read from its directory: the release .env names (or how the
 * file is torn), the lock, and the history.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyOf, lockExists, REPO, type TestTenant } from '../../helpers/testfleet';

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
