/** What the CLI needs from the world; tests pass their own. */
import { setMaxListeners } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import type { LockEvent } from '../deploy/target';
import { ConfigurationError } from '../errors';

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readText: (path: string) => Promise<string>;
  writeText?: (path: string, text: string) => Promise<void>;
  env: Readonly<Record<string, string | undefined>>;
  /** stderr is a terminal: live progress and colour. */
  tty?: boolean;
  /** Aborted on the first SIGINT/SIGTERM: no new targets start; running ones finish or roll back. */
  signal?: AbortSignal;
  /** Told of each lock a deploy takes and releases, so quitting at once can say which it leaves. */
  onLock?: (e: LockEvent) => void;
}

export function processIO(): CliIO {
  const controller = new AbortController();
  // Every target in flight waits on this signal (health probe intervals, retries): as many listeners as
  // --concurrency allows, removed as each wait ends — not a leak, so no warning past the default 10.
  setMaxListeners(0, controller.signal);
  const held = new Map<string, LockEvent>();
  let interrupts = 0;
  const interrupt = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write(
        `\n${sig}: finishing the targets in progress (rolling back where needed) and releasing their locks; no new target starts. Again to quit at once.\n`,
      );
      controller.abort();
    } else {
      process.stderr.write(quitMessage([...held.keys()]));
      process.exit(130);
    }
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readText: (p) => readFile(p, 'utf8'),
    writeText: (p, t) => writeFile(p, t),
    env: process.env,
    tty: Boolean(process.stderr.isTTY),
    signal: controller.signal,
    onLock: (e) => (e.held ? held.set(e.target, e) : held.delete(e.target)),
  };
}

/** What quitting at once leaves behind, and the command that mends it. */
export function quitMessage(locked: readonly string[]): string {
  if (locked.length === 0) return '\nQuit at once; no lock was left behind.\n';
  const shown = locked.slice(0, 10).join(', ') + (locked.length > 10 ? `, … (${locked.length} in all)` : '');
  return `\nQuit at once: ${locked.length === 1 ? 'this target keeps its' : `these ${locked.length} targets keep their`} deploy lock: ${shown}.\nRelease ${locked.length === 1 ? 'it' : 'them'} (this deploy is gone): fleet-deploy unlock --force --select 'id=${locked.join('|')}'\n`;
}

/** Reads a user-named file; a missing or unreadable file is the user's mistake, said with the flag. */
export async function readUserFile(io: CliIO, path: string, flag: string): Promise<string> {
  try {
    return await io.readText(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : String((e as Error).message);
    throw new ConfigurationError([
      { path: [], source: flag, message: `cannot read ${JSON.stringify(path)}: ${why}` },
    ]);
  }
}
