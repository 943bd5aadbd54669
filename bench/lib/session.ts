/**
 * A benchmark's processes and clean-up. Everything started is recorded and stopped synchronously (so it
 * also works from a signal handler or an uncaught exception), each step bounded; the children it runs
 * under measurement each get their own process group, their output in the logs directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  input?: string;
  cwd?: string;
}

/** A command that must succeed (bounded). Returns stdout. */
export function run(cmd: string, args: readonly string[], o: RunOptions = {}): string {
  const r = tryRun(cmd, args, o);
  if (r.error || r.status !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}): ${(r.stderr || r.stdout || '').trim().slice(-2000)}`,
    );
  return r.stdout;
}

/** A command that may fail (bounded): its status and output. */
export function tryRun(cmd: string, args: readonly string[], o: RunOptions = {}) {
  return spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: o.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
    env: o.env ?? process.env,
    input: o.input,
    cwd: o.cwd,
    maxBuffer: 64 << 20,
  });
}

export interface Timed {
  code: number | null;
  timedOut: boolean;
  wallS: number;
  /** user+sys of the process and its children (/usr/bin/time), when timed */
  cpuS?: number;
  out: string;
  err: string;
}

const TIME = '/usr/bin/time';

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

function cpuOf(timeFile: string): number | undefined {
  if (!existsSync(timeFile)) return undefined;
  const last = (readFileSync(timeFile, 'utf8').trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  return last.length === 3 && last.every(Number.isFinite) ? last[1]! + last[2]! : undefined;
}

export class Session {
  private readonly cleanups: Array<() => void> = [];
  private readonly active = new Set<ChildProcess>();
  private cleanedUp = false;

  constructor(
    /** Where runAsync writes LABEL.out, LABEL.err, LABEL.time. */
    private readonly logs: string,
    private readonly log: (msg: string) => void,
  ) {}

  /** Runs `fn` at clean-up (in reverse order of registration). */
  onCleanup(fn: () => void): void {
    this.cleanups.push(fn);
  }

  /** Cleans up on SIGINT/SIGTERM/SIGHUP, an uncaught error and exit. */
  installHandlers(): void {
    const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
    for (const sig of Object.keys(codes))
      process.on(sig, () => {
        this.log(`${sig}: cleaning up`);
        this.cleanupAll();
        process.exit(codes[sig]);
      });
    for (const event of ['uncaughtException', 'unhandledRejection'] as const)
      process.on(event, (e: unknown) => {
        this.log(`${event}: ${(e as Error)?.stack ?? e}`);
        this.cleanupAll();
        process.exit(1);
      });
    process.on('exit', () => this.cleanupAll());
  }

  cleanupAll(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    for (const child of this.active) killGroup(child, 'SIGKILL');
    for (const fn of this.cleanups.reverse()) {
      try {
        fn();
      } catch (e) {
        this.log(`clean-up step failed: ${(e as Error).message}`);
      }
    }
  }

  /** A child run asynchronously in its own process group, bounded; with `time`, under /usr/bin/time. */
  runAsync(
    label: string,
    argv: readonly string[],
    o: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number; time?: boolean },
  ): Promise<Timed> {
    const timeFile = join(this.logs, `${label}.time`);
    const outFile = join(this.logs, `${label}.out`);
    const errFile = join(this.logs, `${label}.err`);
    const out = openSync(outFile, 'w');
    const err = openSync(errFile, 'w');
    const full = o.time ? [TIME, '-f', '%e %U %S', '-o', timeFile, '--', ...argv] : [...argv];
    return new Promise((resolve) => {
      const t0 = performance.now();
      const child = spawn(full[0]!, full.slice(1), {
        env: o.env ?? process.env,
        cwd: o.cwd,
        stdio: ['ignore', out, err],
        detached: true,
      });
      this.active.add(child);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        this.log(`${label}: no end after ${o.timeoutMs / 1000} s, killing it`);
        killGroup(child, 'SIGTERM');
        setTimeout(() => killGroup(child, 'SIGKILL'), 5000).unref();
      }, o.timeoutMs);
      let finished = false;
      const done = (code: number | null) => {
        if (finished) return; // 'error' and then 'close'
        finished = true;
        clearTimeout(timer);
        this.active.delete(child);
        closeSync(out);
        closeSync(err);
        const wallS = (performance.now() - t0) / 1000;
        resolve({
          code,
          timedOut,
          wallS,
          cpuS: o.time ? cpuOf(timeFile) : undefined,
          out: outFile,
          err: errFile,
        });
      };
      child.on('error', (e) => {
        writeFileSync(join(this.logs, `${label}.spawn-error`), e.message);
        done(-1);
      });
      child.on('close', done);
    });
  }
}
