/**
 * A SANDBOX server's SSH endpoint, for the local sandbox fleet: a real SSH server (ssh2's server
 * module), so the sandbox needs neither root nor OpenSSH. It authenticates one public key, runs each
 * `exec` request as `sh -c` in the sandbox server's home with its environment (where `docker` is the
 * sandbox container runtime), returns the exit status, and forwards `direct-tcpip` channels to
 * 127.0.0.1 (the health probes). It listens on 127.0.0.1 only. It is never used for a real target.
 */
import { spawn } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { connect } from 'node:net';
import { Server, utils, type Connection, type ParsedKey } from 'ssh2';

export interface SandboxSshOptions {
  /** The server's private host key (OpenSSH format). */
  hostKey: string;
  /** The one public key allowed to log in ("ssh-ed25519 AAAA…"). */
  authorizedKey: string;
  port: number;
  /** Working directory of every command (the sandbox server's home). */
  home: string;
  env: Record<string, string>;
  /** Called on every authenticated connection (the sandbox counts handshakes). */
  onLogin?: () => void;
}

function publicKey(text: string): ParsedKey {
  const k = utils.parseKey(text);
  if (k instanceof Error) throw k;
  return Array.isArray(k) ? k[0]! : k;
}

export function startSandboxSsh(o: SandboxSshOptions): Promise<{ port: number; close(): Promise<void> }> {
  const allowed = publicKey(o.authorizedKey);
  const allowedBlob = allowed.getPublicSSH();
  const server = new Server({ hostKeys: [o.hostKey] }, (client: Connection) => {
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const blob = ctx.key.data;
      const same =
        blob.length === allowedBlob.length &&
        timingSafeEqual(blob, allowedBlob) &&
        ctx.key.algo === allowed.type;
      if (!same) return ctx.reject(['publickey']);
      if (!ctx.signature) return ctx.accept(); // the client asks whether this key would do
      if (allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
      ctx.accept();
    });
    client.on('ready', () => {
      o.onLogin?.();
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, _reject, info) => {
          const stream = accept();
          const child = spawn('/bin/sh', ['-c', info.command], {
            cwd: o.home,
            env: { ...o.env, HOME: o.home },
            stdio: ['pipe', 'pipe', 'pipe'],
          });
          child.stdout.pipe(stream, { end: false });
          child.stderr.pipe(stream.stderr, { end: false });
          stream.pipe(child.stdin);
          child.stdin.on('error', () => undefined);
          child.on('error', (e) => {
            stream.stderr.write(`${e.message}\n`);
            stream.exit(127);
            stream.end();
          });
          child.on('close', (code, signal) => {
            if (signal) stream.exit(signal, false, '');
            else stream.exit(code ?? 1);
            stream.end();
          });
        });
      });
      client.on('tcpip', (accept, reject, info) => {
        if (info.destIP !== '127.0.0.1' && info.destIP !== 'localhost') return reject();
        const socket = connect(info.destPort, '127.0.0.1');
        let accepted = false;
        socket.once('connect', () => {
          accepted = true;
          const channel = accept();
          channel.pipe(socket).pipe(channel);
          // as sshd does: a channel closed by the client (a probe that gave up) ends the connection it forwards
          channel.on('close', () => socket.destroy());
          channel.on('error', () => socket.destroy());
        });
        socket.on('error', () => (accepted ? undefined : reject()));
      });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      resolve({ port, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

/**
 * An ed25519 key pair in OpenSSH format: the private key and the "ssh-ed25519 AAAA…" public line.
 * ssh2's generator strips leading zero bytes from the public key, so one pair in 256 is malformed and
 * its own parser rejects it (mscdex/ssh2#1390, #1513): such a pair is drawn again.
 */
export function generateKeyPair(comment: string): { privateKey: string; publicKey: string } {
  for (let attempt = 1; ; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error))
      return { privateKey: pair.private, publicKey: pair.public.trim() };
    if (attempt === 20) throw new Error('ssh2 generated 20 malformed ed25519 key pairs in a row');
  }
}
