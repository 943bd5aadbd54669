/**
 * A server's shared SSH connection for a whole run: opened at its first target, shared by its tenants,
 * closed after its last (`remaining` counts them down).
 */
import type { Server } from '../registry/model';
import type { Clock, Connector, Transport } from '../ports';
import type { ServerSession } from './shell';

/**
 * A server's shared connection. Steps share the first connection; once it is lost it stays lost for
 * them (their commands fail), except for the recovery steps, which ask for a live one: each try opens
 * a new connection, backing off (1 s, 2 s, 4 s … at most 10 s). Targets recovering at once share each
 * try.
 *
 * One recovery window per server and loss: it starts when the first step or target finds the connection
 * lost and ends `recoveryMs` later, whichever step or target asks. A rollback that spent it leaves none
 * for the finish step after it, nor for the server's other targets. Only a command sent after the window
 * started that comes back (the server is there again) closes it; a later loss opens a new one. Each
 * connection attempt made while recovering is given the window's end as its deadline: neither a handshake
 * in flight nor the connector's own retries and backoff run past it.
 */
export class Session implements ServerSession {
  private current?: Promise<Transport>;
  /** When the open recovery window started (undefined: none is open). */
  private windowStart?: number;
  remaining: number;
  /** What the server's targets ask once per run (`shared`), by key. */
  private readonly facts = new Map<string, Promise<unknown>>();

  constructor(
    private readonly server: Server,
    private readonly connector: Connector,
    private readonly clock: Clock,
    private readonly recoveryMs: number,
    targets: number,
  ) {
    this.remaining = targets;
  }

  async transport(reconnect = false, by?: number): Promise<Transport> {
    if (!this.current) this.current = this.connector.connect(this.server);
    if (!reconnect) return this.current; // a failed connect fails every target of the server alike
    return this.recover(by);
  }

  /**
   * `make()` once per server and run, however many of its targets ask under `key`, at once or later. A
   * rejected one is forgotten, so the next target to ask makes it again.
   */
  shared<T>(key: string, make: () => Promise<T>): Promise<T> {
    const known = this.facts.get(key) as Promise<T> | undefined;
    if (known) return known;
    const made = make();
    this.facts.set(key, made);
    made.catch(() => this.facts.get(key) === made && this.facts.delete(key));
    return made;
  }

  /** A command sent at `at` came back: the server was there then, so an open window closes. */
  heard(at: number): void {
    if (this.windowStart !== undefined && at >= this.windowStart) this.windowStart = undefined;
  }

  /** When this server's recovery window ends (or ended); a window not open yet would start now. */
  recoveryDeadline(): number {
    return (this.windowStart ?? this.clock.now()) + this.recoveryMs;
  }

  /** A live connection, opened again if need be, until the window ends (or `by`, when earlier). */
  private async recover(by = Infinity): Promise<Transport> {
    for (let attempt = 0; ; attempt++) {
      const p = this.current!;
      const t = await p.catch(() => undefined);
      if (t?.alive) return t;
      this.windowStart ??= this.clock.now();
      const end = Math.min(this.recoveryDeadline(), by);
      if (attempt > 0 || !t) {
        const left = end - this.clock.now();
        if (attempt > 0 && left > 0)
          await this.clock.sleep(Math.min(1000 * 2 ** (attempt - 1), 10_000, left));
        if (end <= this.clock.now()) throw new Error(await this.gaveUp(p, by)); // the window ran out
      }
      if (this.current === p) {
        await t?.close().catch(() => undefined); // a jump host may still be open behind the lost link
        // each try is a new connection, cut off at the window's end (a try in flight then does not outlast it)
        this.current = this.connector.connect(this.server, { deadline: end });
      }
    }
  }

  private async gaveUp(p: Promise<Transport>, by: number): Promise<string> {
    const why = await p.then(
      () => 'the connection was lost',
      (e: Error) => e.message,
    );
    const window = Math.round(this.recoveryMs / 1000);
    const end = new Date(Math.min(this.recoveryDeadline(), by)).toISOString();
    return by < this.recoveryDeadline()
      ? `${this.server.name} stayed unreachable until ${end}, when this deploy's lease on the lock ran out: ${why}`
      : `${this.server.name} stayed unreachable for its recovery window (${window} s, ended ${end}): ${why}`;
  }

  async close(): Promise<void> {
    const t = await this.current?.catch(() => undefined);
    this.current = undefined;
    await t?.close();
  }
}
