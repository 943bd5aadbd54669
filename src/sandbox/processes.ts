/**
 * Processes of a local fleet (sandbox services and servers, test and benchmark sshd), by PID.
 */
import { readFileSync } from 'node:fs';

/** Running: exists and is not a zombie waiting to be reaped (an exited process is not running). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false; // EPERM: it exists, another user's
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "PID (name) STATE …": the name may hold spaces and parentheses, the state follows the last ")"
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // gone meanwhile
    }
  }
}

function waitGone(pids: readonly number[], ms: number): void {
  for (let waited = 0; waited < ms && pids.some(isRunning); waited += 20) sleepSync(20);
}

/**
 * Stops processes by PID: SIGTERM to each, up to `graceMs` for them to exit, then SIGKILL to the rest.
 * Synchronous and bounded, so exit and signal handlers can use it too. Returns how many were running.
 */
export function stopProcesses(pids: readonly number[], graceMs = 3000): number {
  const live = pids.filter(isRunning);
  signal(live, 'SIGTERM');
  waitGone(live, graceMs);
  signal(live.filter(isRunning), 'SIGKILL');
  waitGone(live, 1000);
  return live.length;
}
