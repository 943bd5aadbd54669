/**
 * The sandbox runtime's record of the services it started (runtime.ts): one JSON file per compose project
 * in `$FLEET_SANDBOX_STATE/projects`, holding the service's PID. Whoever brings a sandbox runtime up (the
 * sandbox, tests, benchmarks) stops its services from here.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopProcesses } from './processes';

export const projectsDir = (stateDir: string) => join(stateDir, 'projects');

/** The PIDs of every service the runtime with this state directory started (running or not). */
export function servicePids(stateDir: string): number[] {
  const dir = projectsDir(stateDir);
  if (!existsSync(dir)) return [];
  const pids: number[] = [];
  for (const f of readdirSync(dir).filter((name) => name.endsWith('.json'))) {
    try {
      pids.push((JSON.parse(readFileSync(join(dir, f), 'utf8')) as { pid: number }).pid);
    } catch {
      // removed or half-written meanwhile
    }
  }
  return pids;
}

/** Stops every service of these runtime state directories. Returns how many were running. */
export function stopServices(stateDirs: readonly string[], graceMs = 3000): number {
  return stopProcesses(stateDirs.flatMap(servicePids), graceMs);
}
