/**
 * A server's shared SSH connection for a whole run: opened at its first target, shared by its tenants,
 * closed after its last (`remaining` counts them down).
 */
import type { Server } from '../registry/model';
import type { Clock, Connector, Transport } from './ports';
import type { ServerSession } from './shell';

/**
 * A server's shared connection. Steps share the first connection; once it is lost it stays lost for
 * them (their commands fail), except for the recovery steps, which ask for a live one: each try opens
 * a new connection, backing off (1 s, 2 s, 4 s … at most 10 s) until `recoveryMs` has passed. Targets
 * recovering at once share each try.
 */
export class Session implements ServerSession {
  private current?: Promise<Transport>;
  remaining: number;

  constructor(
    private readonly server: Server,
    private readonly connector: Connector,
    private readonly clock: Clock,
    private readonly recoveryMs: number,
    targets: number,
  ) {
    this.remaining = targets;
  }

  async transport(reconnect = false): Promise<Transport> {
    if (!this.current) this.current = this.connector.connect(this.server);
    if (!reconnect) return this.current; // a failed connect fails every target of the server alike
    return this.recover();
  }

  private async recover(): Promise<Transport> {
    const deadline = this.clock.now() + this.recoveryMs;
    for (let attempt = 0; ; attempt++) {
      const p = this.current!;
      const t = await p.catch(() => undefined);
      if (t?.alive) return t;
      if (attempt > 0 || !t) {
        const left = deadline - this.clock.now();
        if (left <= 0) {
          const why = await p.then(
            () => 'the connection was lost',
            (e: Error) => e.message,
          );
          throw new Error(
            `${this.server.name} stayed unreachable for ${Math.round(this.recoveryMs / 1000)} s: ${why}`,
          );
        }
        if (attempt > 0) await this.clock.sleep(Math.min(1000 * 2 ** (attempt - 1), 10_000, left));
      }
      if (this.current === p) {
        await t?.close().catch(() => undefined); // a jump host may still be open behind the lost link
        this.current = this.connector.connect(this.server); // each try is a new connection
      }
    }
  }

  async close(): Promise<void> {
    const t = await this.current?.catch(() => undefined);
    this.current = undefined;
    await t?.close();
  }
}
