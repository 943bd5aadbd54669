/**
 * Ports for services that start later (sandbox tenants, test and benchmark sshd and apps), on 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A port the kernel picks (from its ephemeral range) that is free on 127.0.0.1 now. */
function kernelPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const s = createServer();
    s.once('error', () => answer(false));
    s.listen(port, '127.0.0.1', () => s.close(() => answer(true)));
  });
}

/**
 * Where service ports come from: outside the kernel's ephemeral range (which outgoing connections — SSH
 * sessions, health probes — draw their local ports from), so that no connection made between choosing a
 * port and starting the service can be holding it. Linux only; elsewhere the kernel picks.
 */
function serviceWindow(): { from: number; to: number } | undefined {
  let lo: number, hi: number;
  try {
    [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number) as [number, number];
  } catch {
    return undefined;
  }
  if (lo - 1 - 10_000 >= 4_096) return { from: 10_000, to: lo - 1 };
  if (65_535 - hi >= 4_096) return { from: hi + 1, to: 65_535 };
  return undefined;
}

let cursor: number | undefined;

/**
 * A port free on 127.0.0.1 now, for a service that starts later: taken in turn from a random point of the
 * service window (free ones only), so one process never hands out a port twice and two processes rarely
 * meet.
 */
export async function freePort(): Promise<number> {
  const w = serviceWindow();
  if (w) {
    const size = w.to - w.from + 1;
    cursor ??= Math.floor(Math.random() * size);
    for (let tries = 0; tries < 256; tries++) {
      const port = w.from + (cursor++ % size);
      if (await canListen(port)) return port;
    }
  }
  return kernelPort();
}
