/**
 * What every proxy driver is (the contract `index.ts` dispatches to), and the one check of a port that a
 * proxy printed. The drivers import this file, never `index.ts`, so the folder has no import cycle.
 */
import type { Script } from '../remote/shell';

export type Upstream = { port: number } | { error: string };

export interface ProxyDriver {
  /** The proxy in a few words, for messages: `caddy route fleet-acme (admin 127.0.0.1:2019)`. */
  readonly label: string;
  /** Prints where the proxy sends the tenant now; fails when the proxy is down. */
  read(): Script;
  /** Points the tenant at 127.0.0.1:port, then prints what the proxy holds (as `read` does). */
  switchTo(port: number): Script;
  /** The upstream port in what `read` or `switchTo` printed (from the server: checked), or why there is none. */
  parse(stdout: string): Upstream;
}

/** A port number as the proxy printed it, checked: `127.0.0.1:PORT`, `localhost:PORT` or `PORT`. */
export function loopbackPort(text: string): number | undefined {
  const m = /^(?:(?:127\.0\.0\.1|localhost):)?([0-9]{1,5})$/.exec(text.trim());
  const port = m ? Number(m[1]) : NaN;
  return port >= 1 && port <= 65535 ? port : undefined;
}
