/**
 * A server's shared SSH connection for a whole run: opened at its first target, shared by its tenants,
 * closed after its last (`remaining` counts them down).
 */
import type { Server } from '../registry/model';
import type { Connector, Transport } from './ports';
import type { ServerSession } from './shell';

/** A server's shared connection: connects once, reconnects only after the link was lost. */
export class Session implements ServerSession {
  private current?: Promise<Transport>;
  remaining: number;

  constructor(
    private readonly server: Server,
    private readonly connector: Connector,
    targets: number,
  ) {
    this.remaining = targets;
  }

  async transport(reconnect = false): Promise<Transport> {
    for (;;) {
      const p = this.current;
      if (!p) return (this.current = this.connector.connect(this.server));
      const t = await p.catch(() => undefined);
      if (!t) return p; // the connect failed: every target of the server gets that error
      if (t.alive || !reconnect) return t;
      if (this.current === p) {
        await t.close().catch(() => undefined); // a jump host may still be open behind the lost link
        if (this.current === p) this.current = this.connector.connect(this.server); // lost: reconnect once
      }
    }
  }

  async close(): Promise<void> {
    const t = await this.current?.catch(() => undefined);
    this.current = undefined;
    await t?.close();
  }
}
