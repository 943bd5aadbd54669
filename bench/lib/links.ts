/**
 * Network links of a given bandwidth between each benchmark "server" and the registry: one TCP proxy per
 * server on 127.0.0.1, forwarding to the registry, whose downstream (registry → server) bytes all go
 * through one token bucket per link, shared by every connection of that server (as one WAN link is).
 * Upstream bytes (requests) are not limited. Loopback only; nothing else on the machine is touched.
 *
 * Each link counts the bytes it delivered, and the links together record the 100 ms slots in which any
 * of them delivered bytes (how much of a run's wall time the fleet spent transferring layers).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface Link {
  port: number;
  /** Bytes delivered to the server so far. */
  bytes: number;
}

const SLOT_MS = 100;

export class Links {
  readonly links: Link[] = [];
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly busySlots = new Set<number>();
  /** Bytes per second of each link; Infinity: no limit (setting up). */
  rate = Infinity;

  constructor(private readonly upstreamPort: number) {}

  /** Opens `n` links; each proxy listens on its own free port of 127.0.0.1. */
  async open(n: number): Promise<void> {
    for (let i = 0; i < n; i++) this.links.push(await this.listen());
  }

  private listen(): Promise<Link> {
    const link: Link = { port: 0, bytes: 0 };
    let nextFree = 0; // when the link is free again (ms, performance.now())
    const server = createServer((down) => {
      const up = connect(this.upstreamPort, '127.0.0.1');
      this.sockets.add(down).add(up);
      // The registry's end ends the server's side once its bytes are written; either error ends both.
      const close = () => {
        down.destroy();
        up.destroy();
        this.sockets.delete(down);
        this.sockets.delete(up);
      };
      down.on('error', close).on('close', close);
      up.on('error', close);
      down.pipe(up);
      // Each chunk waits for its turn on the link; the registry's end waits for the last chunk.
      let queue = Promise.resolve();
      const later = (ms: number) => new Promise<void>((r) => (ms < 1 ? r() : setTimeout(r, ms)));
      up.on('data', (chunk: Buffer) => {
        const now = performance.now();
        const start = Math.max(now, nextFree);
        const due = start + (Number.isFinite(this.rate) ? (chunk.length / this.rate) * 1000 : 0);
        nextFree = due;
        up.pause();
        queue = queue
          .then(() => later(due - performance.now()))
          .then(() => {
            link.bytes += chunk.length;
            this.busySlots.add(Math.floor(performance.now() / SLOT_MS));
            if (down.write(chunk)) up.resume();
            else down.once('drain', () => up.resume());
          });
      });
      up.on('end', () => void queue.then(() => down.end()));
    });
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        link.port = (server.address() as { port: number }).port;
        resolve(link);
      });
    });
  }

  /** The share of [t0, t1] (performance.now() ms) in which some link delivered bytes. */
  busyShare(t0: number, t1: number): number {
    let busy = 0;
    for (let s = Math.floor(t0 / SLOT_MS); s <= Math.floor(t1 / SLOT_MS); s++)
      if (this.busySlots.has(s)) busy++;
    return busy / Math.max(1, Math.floor(t1 / SLOT_MS) - Math.floor(t0 / SLOT_MS) + 1);
  }

  /** Bytes each link delivered so far. */
  counts(): number[] {
    return this.links.map((l) => l.bytes);
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    for (const s of this.servers) s.close();
  }
}
