/** What the CLI needs from the world; tests pass their own. */
import { setMaxListeners } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { LockEvent } from '../deploy/target';
import { createInterface } from 'node:readline/promises';
import { ConfigurationError } from '../errors';
import { invocation } from './invocation';

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readText: (path: string) => Promise<string>;
  writeText?: (path: string, text: string) => Promise<void>;
  env: Readonly<Record<string, string | undefined>>;
  /** stderr is a terminal: live progress and colour. */
  tty?: boolean;
  /**
   * Aborted on the first SIGINT/SIGTERM (its reason the signal's name) or when the reader of stdout went
   * away (reason 'EPIPE'): no new targets start; running ones finish or roll back.
   */
  signal?: AbortSignal;
  /** Told of each lock a deploy takes and releases, so quitting at once can say which it leaves. */
  onLock?: (e: LockEvent) => void;
  /** The command as the person runs it, for hints that run as printed (invocation.ts). */
  self?: string;
  /** The terminal's width (stderr's), and a call on each resize; absent when not a terminal. */
  columns?: () => number | undefined;
  onResize?: (redraw: () => void) => () => void;
  /**
   * Ends the process with `code` once the current work returns, even if sockets of abandoned work (an
   * interrupted demo's deploy) would keep it alive; absent in tests, which run in-process.
   */
  exitSoon?: (code: number) => void;
  /** Asks the person a question and returns the answer; absent when nobody can answer (no terminal). */
  ask?: (question: string) => Promise<string>;
}

/** Why the run was interrupted, or undefined. */
export const interruption = (io: CliIO): string | undefined =>
  io.signal?.aborted ? String(io.signal.reason) : undefined;

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
      write(
        process.stderr,
        `\n${sig}: finishing the targets in progress (rolling back where needed) and releasing their ` +
          `locks; no new target starts. Again to quit at once.\n`,
      );
      controller.abort(sig);
    } else {
      // 'exit' handlers still run (the demo tears its sandbox down in one)
      write(process.stderr, quitMessage([...held.keys()], invocation(process.env)));
      process.exit(130);
    }
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  // `… | head`: the reader left. Write nothing more, stop like an interrupt, exit without a stack.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      closed.add(stream);
      if (!controller.signal.aborted) controller.abort('EPIPE');
    });
  const stderr = process.stderr;
  return {
    stdout: (t) => write(process.stdout, t),
    stderr: (t) => write(stderr, t),
    readText: (p) => readFile(p, 'utf8'),
    // `init` from any directory writes servers/production.json: its directory is made if missing
    writeText: async (p, t) => {
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, t);
    },
    env: process.env,
    tty: Boolean(stderr.isTTY),
    signal: controller.signal,
    onLock: (e) => (e.held ? held.set(e.target, e) : held.delete(e.target)),
    self: invocation(process.env),
    ...(process.stdin.isTTY ? { ask } : {}),
    exitSoon: (code) => {
      process.exitCode = code;
      setImmediate(() => process.exit(code));
    },
    ...(stderr.isTTY
      ? {
          columns: () => terminalColumns(stderr),
          onResize: (redraw: () => void) => {
            stderr.on('resize', redraw);
            return () => stderr.off('resize', redraw);
          },
        }
      : {}),
  };
}

/**
 * The terminal's width as it is now. `columns` is Node's copy, refreshed when the process handles
 * SIGWINCH — on a busy event loop after lines already drawn for the old width; the handle's own
 * `getWindowSize` (what that refresh calls, one ioctl) asks the terminal itself.
 */
function terminalColumns(tty: NodeJS.WriteStream): number | undefined {
  const handle = (tty as { _handle?: { getWindowSize?: (size: number[]) => number } })._handle;
  const size = [0, 0];
  const columns = handle?.getWindowSize?.(size) === 0 ? size[0] : undefined;
  // a terminal of no size (`docker run -t`, `ssh -tt` without one) says 0: the caller's default then
  return columns || tty.columns || undefined;
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

const closed = new Set<NodeJS.WriteStream>();
function write(stream: NodeJS.WriteStream, text: string): void {
  if (!closed.has(stream)) stream.write(text);
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

/** What quitting at once leaves behind, and the command that mends it (`self`: how to run this tool). */
export function quitMessage(locked: readonly string[], self = 'fleet-deploy'): string {
  if (locked.length === 0) return '\nQuit at once; no lock was left behind.\n';
  const one = locked.length === 1;
  const shown = locked.slice(0, 10).join(', ') + (locked.length > 10 ? `, … (${locked.length} in all)` : '');
  return (
    `\nQuit at once: ${one ? 'this target keeps its' : `these ${locked.length} targets keep their`} ` +
    `deploy lock: ${shown}.\nRelease ${one ? 'it' : 'them'} (this deploy is gone): ${self} unlock ` +
    `--force --select 'id=${locked.join('|')}'\n`
  );
}
