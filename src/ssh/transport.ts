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
import { Script } from '../remote/shell';
import {
  ConnectionLost,
  systemClock,
  type Clock,
  type ConnectOptions,
  type Connector,
  type ExecOptions,
  type ExecResult,
  type HttpResponse,
  type Transport,
} from '../ports';
import { readCapped } from '../http/body';
import { OutputTail, STDERR_TAIL_LIMIT, STDOUT_TAIL_LIMIT } from './tail';
import { parseKnownHosts, verifyHostKey, type KnownHostEntry } from './known-hosts';
import { connectCoalescing } from './coalescing-socket';

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
  clock?: Pick<Clock, 'sleep'> & { now?: () => number };
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

const TRANSIENT = new RegExp(
  [
    'ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EAI_AGAIN',
    'Timed out while waiting for handshake|Connection lost before handshake|socket hang up',
  ].join('|'),
  'i',
);

export class SshConnector implements Connector {
  private readonly known: KnownHostEntry[];

  constructor(private readonly options: SshOptions) {
    this.known = parseKnownHosts(options.knownHosts ?? '');
  }

  async connect(server: Server, options: ConnectOptions = {}): Promise<Transport> {
    const attempts = this.options.connectAttempts ?? 3;
    const clock = this.options.clock ?? systemClock;
    const now = clock.now ?? Date.now;
    const timeoutMs = this.options.connectTimeoutMs ?? 20_000;
    const left = () => (options.deadline === undefined ? Infinity : options.deadline - now());
    let last: ConnectError | undefined;
    let cut = false;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (left() <= 0) {
        cut = true;
        break;
      }
      const timeout = Math.max(1, Math.min(timeoutMs, left()));
      try {
        return await this.connectOnce(server, timeout);
      } catch (e) {
        last =
          e instanceof ConnectError
            ? e
            : new ConnectError((e as Error).message, TRANSIENT.test((e as Error).message));
        cut = last.transient && left() <= 0;
        if (!last.transient || attempt === attempts || cut) break;
        await clock.sleep(Math.min(connectBackoffMs(attempt), Math.max(0, left())));
      }
    }
    const why = last ? last.message : 'no time left to try';
    const tries = last?.transient && attempts > 1 ? ` (after ${attempts} attempts)` : '';
    throw new ConnectError(
      `cannot connect to ${server.name} (${server.user}@${server.host}:${server.port}): ${why}` +
        (cut
          ? ` (cut off at ${new Date(options.deadline!).toISOString()}: the time to try had run out)`
          : tries),
      false,
    );
  }

  private async open(
    label: string,
    host: string,
    port: number,
    user: string,
    pins: readonly PinnedHostKey[],
    timeoutMs: number,
    sock?: ClientChannel,
  ): Promise<NodeSSH> {
    let refusal: string | undefined;
    const ssh = new NodeSSH();
    // Through a jump host the connection rides a channel of the jump's; otherwise its own TCP socket, one
    // that sends each turn's packets in one system call. ssh2 takes a socket still connecting as its own.
    const tcp = sock ? undefined : connectCoalescing(host, port);
    tcp?.on('error', () => undefined); // ssh2 reports it; this only keeps one before ssh2 listens from crashing
    try {
      await ssh.connect({
        host,
        port,
        username: user,
        ...(this.options.privateKey ? { privateKey: this.options.privateKey } : {}),
        ...(this.options.agent ? { agent: this.options.agent } : {}),
        ...(this.options.passphrase ? { passphrase: this.options.passphrase } : {}),
        sock: sock ?? tcp,
        readyTimeout: timeoutMs,
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
      tcp?.destroy();
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

  private async connectOnce(server: Server, timeoutMs: number): Promise<Transport> {
    let jump: NodeSSH | undefined;
    try {
      let sock: ClientChannel | undefined;
      if (server.jump) {
        const j: JumpHost = server.jump;
        jump = await this.open(
          `${server.name} via jump ${j.host}`,
          j.host,
          j.port,
          j.user,
          j.hostKeys,
          timeoutMs,
        );
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
      const ssh = await this.open(
        server.name,
        server.host,
        server.port,
        server.user,
        server.hostKeys,
        timeoutMs,
        sock,
      );
      return new SshTransport(ssh, jump, server.name);
    } catch (e) {
      jump?.dispose();
      throw e;
    }
  }
}

/** Reads the `@@pgid N` line a command prints first on stderr, and hands back the rest of the stream. */
class GroupMarker {
  pgid?: number;
  private head: Buffer | undefined = Buffer.alloc(0);

  take(d: Buffer): Buffer {
    if (!this.head) return d;
    const all = Buffer.concat([this.head, d]);
    const nl = all.indexOf(10);
    if (nl < 0 && all.length < 64) {
      this.head = all;
      return Buffer.alloc(0);
    }
    this.head = undefined;
    const m = nl < 0 ? null : /^@@pgid (\d{1,10})$/.exec(all.subarray(0, nl).toString('latin1'));
    if (!m) return all;
    const n = Number(m[1]);
    if (n > 1) this.pgid = n; // never 0 or 1: `kill -- -1` would signal every process of the user
    return all.subarray(nl + 1);
  }

  /** What is still held back when the stream ends (a short first line that was not the marker). */
  flush(): Buffer | undefined {
    const h = this.head;
    this.head = undefined;
    return h;
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

  exec(script: Script, options: ExecOptions): Promise<ExecResult> {
    return this.run(script, options, !options.pty);
  }

  /**
   * `marked`: sshd starts each command in a session of its own, so the shell's PID is its process group;
   * it is printed first on stderr (and taken off again) so that a command given up on can be stopped.
   */
  private run(
    script: Script,
    { timeoutMs, onOutput, pty, signal, stdin }: ExecOptions,
    marked: boolean,
  ): Promise<ExecResult> {
    const group = marked ? new GroupMarker() : undefined;
    const text = group ? `printf '@@pgid %s\n' "$$" >&2; ${script.text}` : script.text;
    return new Promise((resolve) => {
      if (this.lost) return resolve({ code: null, stdout: '', stderr: 'the connection was lost' });
      if (signal?.aborted) return resolve({ code: null, stdout: '', stderr: 'stopped' });
      const stdout = new OutputTail('stdout', STDOUT_TAIL_LIMIT);
      const stderr = new OutputTail('stderr', STDERR_TAIL_LIMIT);
      let done = false;
      let givenUp = false;
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
        const timedOut = `\ntimed out after ${Math.round(timeoutMs / 1000)} s`;
        if (!group) return finish(null, timedOut);
        givenUp = true; // the channel's end is ours now: the stop below says how it went
        void this.stopGroup(group.pgid).then((what) => finish(null, `${timedOut}; ${what}`));
      }, timeoutMs);
      try {
        this.client.exec(text, pty ? { pty: true } : {}, (err, ch) => {
          if (err) return finish(null, err.message);
          channel = ch;
          if (stdin !== undefined) ch.end(stdin); // then EOF: `cat` or `--password-stdin` stops reading
          let exit: number | null | undefined;
          let signal: string | undefined;
          const utf8 = new StringDecoder('utf8'); // a character split across chunks stays whole
          ch.on('data', (d: Buffer) => (onOutput ? onOutput(utf8.write(d)) : stdout.push(d)));
          ch.stderr.on('data', (d: Buffer) => {
            const rest = group ? group.take(d) : d;
            if (rest.length) stderr.push(rest);
          });
          ch.on('exit', (code: number | null, sig?: string) => {
            exit = typeof code === 'number' ? code : null;
            signal = sig;
          });
          // 'close' comes after 'exit' and after all output has arrived.
          ch.on('close', () => {
            if (givenUp) return;
            const held = group?.flush();
            if (held?.length) stderr.push(held);
            finish(
              exit ?? null,
              exit === undefined
                ? '\nthe command ended without an exit status'
                : signal
                  ? `\nkilled by signal ${signal}`
                  : '',
            );
          });
        });
      } catch (e) {
        finish(null, (e as Error).message);
      }
    });
  }

  /**
   * Stops what a command given up on left running on the server (a hung `compose pull`): TERM to its
   * process group, then KILL after 5 s, over a new channel of the same connection. Says what happened.
   */
  private async stopGroup(pgid: number | undefined): Promise<string> {
    if (pgid === undefined) return 'its process group on the server is not known: it may still run there';
    const g = `-${pgid}`;
    const r = await this.run(
      new Script(
        `kill -TERM -- ${g} 2>/dev/null || exit 0; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.5; kill -0 ` +
          `-- ${g} 2>/dev/null || exit 0; done; kill -KILL -- ${g} 2>/dev/null; sleep 0.2; ! kill -0 -- ` +
          `${g} 2>/dev/null`,
      ),
      { timeoutMs: 15_000 },
      false,
    );
    return r.code === 0
      ? `its processes on the server (process group ${pgid}) were stopped`
      : `its processes on the server (process group ${pgid}) could not be stopped ` +
          `(${r.code === null ? 'no answer' : `exit ${r.code}`}): they may still run there`;
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
