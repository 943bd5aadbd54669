/**
 * The SSH edge: Connector and Transport over node-ssh (ssh2). One connection per server, host key
 * verified against the registry's pins or a known_hosts text (fail closed), an optional jump host,
 * keepalive, an 'error' listener (without one a dead link crashes the process), a timeout on every
 * command, and retries with backoff for transient connect errors only.
 */
import * as http from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { NodeSSH } from 'node-ssh';
import type { Client, ClientChannel } from 'ssh2';
import type { JumpHost, Server } from '../registry/model';
import type { PinnedHostKey } from '../registry/hostkey';
import type { Script } from '../remote/shell';
import {
  ConnectionLost,
  systemClock,
  type Clock,
  type Connector,
  type ExecOptions,
  type ExecResult,
  type HttpResponse,
  type Transport,
} from '../deploy/ports';
import { readCapped } from '../http/body';
import { OutputTail, STDERR_TAIL_LIMIT, STDOUT_TAIL_LIMIT } from './tail';
import { parseKnownHosts, verifyHostKey, type KnownHostEntry } from './known-hosts';

export interface SshOptions {
  /** The private key's text (OpenSSH or PEM). Held in memory only; never written to disk. */
  privateKey?: string;
  passphrase?: string;
  /** An ssh-agent's socket, used when there is no private key. */
  agent?: string;
  /** known_hosts lines trusted besides the registry's pinned keys. */
  knownHosts?: string;
  /** Override the SSH user of every server (e.g. for a sandbox). */
  connectTimeoutMs?: number;
  connectAttempts?: number;
  /** Waits between connect attempts (systemClock; tests give a fake one to see the backoff at once). */
  clock?: Pick<Clock, 'sleep'>;
  keepaliveIntervalMs?: number;
  /** Called after every successful handshake (tests and benchmarks count them). */
  onHandshake?: (server: string) => void;
  /** Told the host key each server offered once it was accepted (setup-server prints it to pin). */
  onHostKey?: (server: string, key: Buffer) => void;
}

/** An error the user can fix (auth, host key): never retried. */
export class ConnectError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

/** The wait after failed attempt n (1, 2, …) before the next: 0.5 s, 1 s, 2 s, … */
const connectBackoffMs = (attempt: number) => 500 * 2 ** (attempt - 1);

const TRANSIENT =
  /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EAI_AGAIN|Timed out while waiting for handshake|Connection lost before handshake|socket hang up/i;

export class SshConnector implements Connector {
  private readonly known: KnownHostEntry[];

  constructor(private readonly options: SshOptions) {
    this.known = parseKnownHosts(options.knownHosts ?? '');
  }

  async connect(server: Server): Promise<Transport> {
    const attempts = this.options.connectAttempts ?? 3;
    let last: ConnectError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        return await this.connectOnce(server);
      } catch (e) {
        last =
          e instanceof ConnectError
            ? e
            : new ConnectError((e as Error).message, TRANSIENT.test((e as Error).message));
        if (!last.transient || attempt === attempts) break;
        await (this.options.clock ?? systemClock).sleep(connectBackoffMs(attempt));
      }
    }
    throw new ConnectError(
      `cannot connect to ${server.name} (${server.user}@${server.host}:${server.port}): ${last!.message}${last!.transient && attempts > 1 ? ` (after ${attempts} attempts)` : ''}`,
      false,
    );
  }

  private async open(
    label: string,
    host: string,
    port: number,
    user: string,
    pins: readonly PinnedHostKey[],
    sock?: ClientChannel,
  ): Promise<NodeSSH> {
    let refusal: string | undefined;
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        host,
        port,
        username: user,
        ...(this.options.privateKey ? { privateKey: this.options.privateKey } : {}),
        ...(this.options.agent ? { agent: this.options.agent } : {}),
        ...(this.options.passphrase ? { passphrase: this.options.passphrase } : {}),
        ...(sock ? { sock } : {}),
        readyTimeout: this.options.connectTimeoutMs ?? 20_000,
        keepaliveInterval: this.options.keepaliveIntervalMs ?? 10_000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          const verdict = verifyHostKey(label, host, port, key, pins, this.known);
          if (!verdict.ok) refusal = verdict.message;
          else this.options.onHostKey?.(label, key);
          return verdict.ok;
        },
      });
    } catch (e) {
      ssh.dispose();
      if (refusal) throw new ConnectError(refusal, false);
      const message = (e as Error).message;
      if (/authentication methods failed/i.test(message))
        throw new ConnectError(
          `authentication as ${user} was refused (check the private key and the server's authorized_keys)`,
          false,
        );
      throw new ConnectError(
        message,
        TRANSIENT.test(message) || (e as NodeJS.ErrnoException).code === 'ECONNREFUSED',
      );
    }
    ssh.connection!.on('error', () => undefined); // a lost link surfaces as null exit codes instead of a crash
    this.options.onHandshake?.(label);
    return ssh;
  }

  private async connectOnce(server: Server): Promise<Transport> {
    let jump: NodeSSH | undefined;
    try {
      let sock: ClientChannel | undefined;
      if (server.jump) {
        const j: JumpHost = server.jump;
        jump = await this.open(`${server.name} via jump ${j.host}`, j.host, j.port, j.user, j.hostKeys);
        sock = await new Promise<ClientChannel>((resolve, reject) =>
          jump!.connection!.forwardOut('127.0.0.1', 0, server.host, server.port, (err, ch) =>
            err
              ? reject(
                  new ConnectError(
                    `jump host ${j.host} cannot reach ${server.host}:${server.port}: ${err.message}`,
                    true,
                  ),
                )
              : resolve(ch),
          ),
        );
      }
      const ssh = await this.open(server.name, server.host, server.port, server.user, server.hostKeys, sock);
      return new SshTransport(ssh, jump, server.name);
    } catch (e) {
      jump?.dispose();
      throw e;
    }
  }
}

/**
 * Why a forward to 127.0.0.1:PORT failed. sshd answers a refused connection with "connect failed" and,
 * often, an empty description ("(SSH) Channel open failure: "): said as what it means.
 */
export function forwardError(err: Error & { reason?: unknown }, port: number, server: string): Error {
  const why = err.message.replace(/^\(SSH\) Channel open failure: ?/, '').trim();
  if (err.reason === 2)
    return new Error(
      `nothing listens on 127.0.0.1:${port} on ${server} — check health.port${why ? ` (${why})` : ''}`,
    );
  return new Error(
    `cannot reach 127.0.0.1:${port} on ${server}: ${why || `the SSH server refused the forward (reason ${String(err.reason)})`}`,
  );
}

export class SshTransport implements Transport {
  private lost = false;
  private readonly client: Client;
  /** Commands in flight, ended at once when the connection closes (one listener for all of them). */
  private readonly inFlight = new Set<() => void>();

  constructor(
    private readonly ssh: NodeSSH,
    private readonly jump?: NodeSSH,
    /** The server's name, for messages. */
    private readonly name = 'the server',
  ) {
    this.client = ssh.connection!;
    const down = () => (this.lost = true);
    this.client.on('close', () => {
      down();
      for (const lose of [...this.inFlight]) lose();
    });
    this.client.on('end', down);
    this.client.on('error', down);
  }

  get alive(): boolean {
    return !this.lost;
  }

  exec(script: Script, { timeoutMs, onOutput, pty, signal, stdin }: ExecOptions): Promise<ExecResult> {
    return new Promise((resolve) => {
      if (this.lost) return resolve({ code: null, stdout: '', stderr: 'the connection was lost' });
      if (signal?.aborted) return resolve({ code: null, stdout: '', stderr: 'stopped' });
      const stdout = new OutputTail('stdout', STDOUT_TAIL_LIMIT);
      const stderr = new OutputTail('stderr', STDERR_TAIL_LIMIT);
      let done = false;
      let channel: ClientChannel | undefined;
      const finish = (code: number | null, extra = '') => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.inFlight.delete(onClose);
        signal?.removeEventListener('abort', onAbort);
        resolve({ code, stdout: stdout.text(), stderr: stderr.text() + extra });
      };
      const onClose = () => finish(null, '\nthe connection was lost');
      this.inFlight.add(onClose);
      const onAbort = () => {
        channel?.close();
        finish(null, '\nstopped');
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        channel?.close();
        finish(null, `\ntimed out after ${Math.round(timeoutMs / 1000)} s`);
      }, timeoutMs);
      try {
        this.client.exec(script.text, pty ? { pty: true } : {}, (err, ch) => {
          if (err) return finish(null, err.message);
          channel = ch;
          if (stdin !== undefined) ch.end(stdin); // then EOF: `cat` or `--password-stdin` stops reading
          let exit: number | null | undefined;
          let signal: string | undefined;
          const utf8 = new StringDecoder('utf8'); // a character split across chunks stays whole
          ch.on('data', (d: Buffer) => (onOutput ? onOutput(utf8.write(d)) : stdout.push(d)));
          ch.stderr.on('data', (d: Buffer) => stderr.push(d));
          ch.on('exit', (code: number | null, sig?: string) => {
            exit = typeof code === 'number' ? code : null;
            signal = sig;
          });
          // 'close' comes after 'exit' and after all output has arrived.
          ch.on('close', () =>
            finish(
              exit ?? null,
              exit === undefined
                ? '\nthe command ended without an exit status'
                : signal
                  ? `\nkilled by signal ${signal}`
                  : '',
            ),
          );
        });
      } catch (e) {
        finish(null, (e as Error).message);
      }
    });
  }

  get(port: number, path: string, timeoutMs: number): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      if (this.lost) return reject(new ConnectionLost());
      let settled = false;
      let channel: ClientChannel | undefined;
      // Whatever ends the probe first (answer, error, timeout) closes its channel: none is left open.
      const settle = (end: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        channel?.close();
        end();
      };
      const timer = setTimeout(
        () => settle(() => reject(new Error(`no answer within ${timeoutMs} ms`))),
        timeoutMs,
      );
      this.client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, ch) => {
        if (err)
          return settle(() => reject(this.lost ? new ConnectionLost() : forwardError(err, port, this.name)));
        channel = ch;
        if (settled) return void ch.close(); // opened after the timeout
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            path,
            method: 'GET',
            // No `agent` (not even `false`, which makes a fresh Agent that opens its own TCP socket on
            // the runner): without one, Node speaks HTTP over the connection given here, the channel.
            createConnection: () => ch as unknown as import('node:net').Socket,
            headers: { connection: 'close' },
          },
          (res) => {
            // an answer cut off mid-body fails now, not when the timer fires
            res.on('aborted', () => settle(() => reject(new Error('the answer was cut off'))));
            readCapped(res).then(
              ({ text }) => settle(() => resolve({ status: res.statusCode ?? 0, body: text })),
              (e: Error) => settle(() => reject(e)),
            );
          },
        );
        req.on('error', (e) => settle(() => reject(e)));
        req.end();
      });
    });
  }

  async close(): Promise<void> {
    this.lost = true;
    this.ssh.dispose();
    this.jump?.dispose();
  }
}
