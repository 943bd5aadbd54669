/**
 * The small interfaces the pure rooms (deploy/, fleet/, health/, analysis/) talk to the world through, at
 * the top of src/ so that every layer can import them. The SSH edge (src/ssh) implements Transport and
 * Connector over node-ssh, src/http the UrlGet; tests use real sshd, and orchestration tests a recording double.
 */
import type { Server } from './registry/model';
import type { Script } from './remote/shell';

export interface ExecResult {
  /** null when the connection was lost or the command was killed: always a failure. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface HttpResponse {
  status: number;
  body: string;
}

export interface ExecOptions {
  timeoutMs: number;
  /**
   * Streams stdout as it arrives (and leaves it out of the result): `logs -f`. With it, `pty` asks for a
   * terminal so the remote command is hung up when the channel closes, and `signal` closes the channel.
   */
  onOutput?: (chunk: string) => void;
  pty?: boolean;
  signal?: AbortSignal;
  /**
   * Written to the command's stdin, which is then closed: how a secret (a registry password) reaches
   * the server without being part of the command line, a log or a process listing.
   */
  stdin?: string;
}

/** A probe over a dead connection cannot succeed; the health gate stops at once on this error. */
export class ConnectionLost extends Error {
  constructor(message = 'the SSH connection was lost') {
    super(message);
    this.name = 'ConnectionLost';
  }
}

/** One SSH connection to one server; every target of the server shares it. */
export interface Transport {
  exec(script: Script, options: ExecOptions): Promise<ExecResult>;
  /**
   * HTTP GET to 127.0.0.1:port on the server, through the SSH connection (a forwarded channel). Rejects
   * with ConnectionLost once the connection is gone (no probe can succeed then).
   */
  get(port: number, path: string, timeoutMs: number): Promise<HttpResponse>;
  /** False once the connection is lost. */
  readonly alive: boolean;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /**
   * When to give up (ms since the epoch, on the runner's clock): a recovery step passes its window's end,
   * so no connection attempt, retry or backoff runs past it. The error then says the time ran out.
   */
  deadline?: number;
}

export interface Connector {
  connect(server: Server, options?: ConnectOptions): Promise<Transport>;
}

/** HTTP GET from the runner, for public health URLs. */
export type UrlGet = (url: string, timeoutMs: number) => Promise<HttpResponse>;

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};
