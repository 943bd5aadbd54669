/**
 * One target's remote shell: runs the Scripts of src/remote over the server's shared connection, and
 * turns a failed command into a `StepFailure` that says what happened (exit code and the tail of its
 * output, or a lost connection). Every remote step checks its exit code; a null code is a failure.
 */
import type { Script } from '../remote/shell';
import type { Clock, ExecResult, Transport } from '../ports';

/** A step that failed, with the message people see; `step` names it in the report. */
export class StepFailure extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
  }
}

function tail(text: string, n = 400): string {
  const t = text.trim();
  return t.length > n ? `…${t.slice(-n)}` : t;
}

/** A failed command in a few words: its exit code and the end of what it printed. */
export function describe(r: ExecResult): string {
  if (r.code === null)
    return `connection lost or command timed out${r.stderr ? `: ${tail(r.stderr, 200)}` : ''}`;
  const out = tail(r.stderr) || tail(r.stdout);
  return `exit code ${r.code}${out ? `: ${out}` : ''}`;
}

export interface ServerSession {
  /**
   * The server's shared connection. A lost connection stays lost (its commands fail with a null exit
   * code) unless `reconnect` is set, which only the recovery steps (rollback, history, unlock) do.
   */
  transport(reconnect?: boolean, by?: number): Promise<Transport>;
  /** A command sent at `at` came back (the server was there): an open recovery window closes. */
  heard?(at: number): void;
  /** When the server's recovery window ends: one per server and loss, shared by its steps and targets. */
  recoveryDeadline?(): number;
  /** `make()` once for all the server's targets in this run (Session.shared); without it, each makes its own. */
  shared?<T>(key: string, make: () => Promise<T>): Promise<T>;
}

export class TargetShell {
  /** Set once something failed: from then on (rollback, history, unlock) a lost connection is re-opened. */
  recovering = false;
  /** When this target must stop trying (its lease on the lock runs out then); none: the server's window. */
  giveUpBy?: () => number;
  /** Set when the target must stop (its lease was lost): every command fails with this. */
  halted?: string;

  constructor(
    private readonly session: ServerSession,
    private readonly commandTimeoutMs: number,
    private readonly clock?: Pick<Clock, 'now'>,
  ) {}

  transport(): Promise<Transport> {
    return this.session.transport(this.recovering, this.giveUpBy?.());
  }

  /** When the recovery steps stop: the server's recovery window, or this target's lease if it ends first. */
  recoveryDeadline(fallback: number): number {
    return Math.min(this.session.recoveryDeadline?.() ?? fallback, this.giveUpBy?.() ?? Infinity);
  }

  /** What the server's targets share for the run, made once (ServerSession.shared). */
  shared<T>(key: string, make: () => Promise<T>): Promise<T> {
    return this.session.shared ? this.session.shared(key, make) : make();
  }

  /** `stdin`: written to the command's stdin, then closed (a secret that must not be on its command line). */
  async exec(script: Script, timeoutMs = this.commandTimeoutMs, stdin?: string): Promise<ExecResult> {
    if (this.halted) return { code: null, stdout: '', stderr: this.halted };
    const sent = this.clock?.now();
    const r = await (
      await this.transport()
    ).exec(script, { timeoutMs, ...(stdin !== undefined ? { stdin } : {}) });
    if (sent !== undefined && r.code !== null) this.session.heard?.(sent);
    return r;
  }

  /** Runs a script that must succeed and returns its stdout; a failure is a StepFailure of `step`. */
  async must(step: string, script: Script, timeoutMs?: number): Promise<string> {
    const r = await this.exec(script, timeoutMs);
    if (r.code !== 0) throw new StepFailure(step, `${step} failed: ${describe(r)}`);
    return r.stdout;
  }
}
