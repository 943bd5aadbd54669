/**
 * The SSH edge against a real OpenSSH sshd on 127.0.0.1: what a server can send back is bounded (a health
 * answer whose body never ends, a command that prints hundreds of megabytes), and which host keys are
 * trusted.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROBE_BODY_LIMIT } from '../../src/http/body';
import { parseRegistry } from '../../src/registry';
import type { Server } from '../../src/registry/model';
import { Script } from '../../src/remote/shell';
import { STDERR_TAIL_LIMIT, STDOUT_TAIL_LIMIT } from '../../src/ssh/tail';
import { SshConnector } from '../../src/ssh/transport';
import { handOver, haveSshd } from '../../src/testing';
import { makeClientKey, startSshd, tempRoot, type ClientKey, type TestSshd } from '../helpers/sshd';

const describeSshd = haveSshd ? describe : describe.skip;

/** The registry's view of a test sshd; `extra` edits the raw server entry (host key, jump host). */
function serverOf(sshd: TestSshd, extra: Record<string, unknown> = {}): Server {
  const raw = {
    name: sshd.name,
    host: '127.0.0.1',
    port: sshd.port,
    user: sshd.user,
    region: 'local',
    hostKey: sshd.hostKey,
    tenants: [],
    ...extra,
  };
  return parseRegistry(JSON.stringify({ servers: [raw] }), `${sshd.name}.json`).servers[0]!;
}

describeSshd('the SSH edge over real sshd', () => {
  let root: string;
  let key: ClientKey;
  let sshd: TestSshd;
  beforeAll(async () => {
    root = tempRoot('fd-edge-');
    key = makeClientKey(root);
    sshd = await startSshd('edge', root, key);
    handOver(root);
  }, 30_000);
  afterAll(async () => {
    await sshd?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('stdin: written to the command, then closed; never part of the command line', async () => {
    const t = await new SshConnector({ privateKey: key.privateKey }).connect(serverOf(sshd));
    try {
      const secret = "pa ss'$(id)\nline two";
      const r = await t.exec(
        new Script('pw=$(cat) && printf %s "$pw" | wc -c && ps -o args= -u "$(id -u)"'),
        {
          timeoutMs: 10_000,
          stdin: secret,
        },
      );
      expect(r.code).toBe(0);
      const [count, ...processes] = r.stdout.trim().split('\n');
      expect(Number(count)).toBe(Buffer.byteLength(secret));
      expect(processes.join('\n')).not.toContain('pa ss');
      // An empty stdin is closed too: a reader sees its end at once rather than waiting.
      const empty = await t.exec(new Script('cat | wc -c'), { timeoutMs: 10_000, stdin: '' });
      expect([empty.code, empty.stdout.trim()]).toEqual([0, '0']);
    } finally {
      await t.close();
    }
  });

  test('a command that times out is stopped on the server (its whole process group), and the error says so', async () => {
    const t = await new SshConnector({ privateKey: key.privateKey }).connect(serverOf(sshd));
    const pidFile = join(root, 'hung.pid');
    try {
      // a hung pull: a child of the command's shell that would sleep on after the tool gave up
      const r = await t.exec(new Script(`sleep 300 & echo $! > ${pidFile}; echo started >&2; wait`), {
        timeoutMs: 1500,
      });
      expect(r.code).toBeNull();
      expect(r.stderr).toMatch(
        /^started\s+timed out after 2 s; its processes on the server \(process group \d+\) were stopped$/,
      );
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const alive = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      expect(alive()).toBe(false);
      // the connection still serves
      expect((await t.exec(new Script('echo ok'), { timeoutMs: 5000 })).stdout).toBe('ok\n');
    } finally {
      await t.close();
      rmSync(pidFile, { force: true });
    }
  });

  test('a command that prints 300 MB: the tail of each stream is kept, marked as cut, and the connection stays', async () => {
    const t = await new SshConnector({ privateKey: key.privateKey }).connect(serverOf(sshd));
    try {
      const handshakes = sshd.handshakes();
      const r = await t.exec(
        new Script(
          'yes | head -c 300000000; echo last-out; yes e | head -c 100000000 >&2; echo last-err >&2; exit 3',
        ),
        { timeoutMs: 300_000 },
      );
      expect(r.code).toBe(3);
      const [outMarker, ...out] = r.stdout.split('\n');
      expect(outMarker).toBe(
        `[fleet-deploy: ${300_000_000 + 9 - STDOUT_TAIL_LIMIT} bytes of stdout cut here; the last ${STDOUT_TAIL_LIMIT} bytes follow]`,
      );
      expect(out.join('\n')).toBe(
        `${'y\n'.repeat(STDOUT_TAIL_LIMIT / 2)}last-out\n`.slice(-STDOUT_TAIL_LIMIT),
      );
      const [errMarker, ...err] = r.stderr.split('\n');
      expect(errMarker).toBe(
        `[fleet-deploy: ${100_000_000 + 9 - STDERR_TAIL_LIMIT} bytes of stderr cut here; the last ${STDERR_TAIL_LIMIT} bytes follow]`,
      );
      expect(err.join('\n')).toBe(
        `${'e\n'.repeat(STDERR_TAIL_LIMIT / 2)}last-err\n`.slice(-STDERR_TAIL_LIMIT),
      );
      // the same connection answers the next command: no reconnect
      expect(await t.exec(new Script('echo still up'), { timeoutMs: 10_000 })).toEqual({
        code: 0,
        stdout: 'still up\n',
        stderr: '',
      });
      expect(t.alive).toBe(true);
      expect(sshd.handshakes()).toBe(handshakes);
    } finally {
      await t.close();
    }
  }, 320_000);

  test('a health answer whose body never ends: the probe keeps the first PROBE_BODY_LIMIT bytes and stops', async () => {
    const sockets = new Set<Socket>();
    let sent = 0;
    let closed!: () => void;
    const connectionClosed = new Promise<void>((r) => (closed = r));
    const chunk = Buffer.alloc(16 * 1024, 'y');
    const endless: HttpServer = createServer((_req, res) => {
      res.writeHead(200);
      res.on('close', () => closed());
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    endless.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', () => r()));
    const t = await new SshConnector({ privateKey: key.privateKey }).connect(serverOf(sshd));
    try {
      const r = await t.get((endless.address() as { port: number }).port, '/health', 60_000);
      expect(r).toEqual({ status: 200, body: 'y'.repeat(PROBE_BODY_LIMIT) });
      await connectionClosed;
      expect(sent).toBeLessThan(64 * 1024 * 1024); // channel and socket buffers, not the endless rest
      expect((await t.exec(new Script('echo still up'), { timeoutMs: 5_000 })).stdout).toBe('still up\n');
    } finally {
      await t.close();
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => endless.close(r));
    }
  }, 90_000);
  describe('host keys', () => {
    let jump: TestSshd;
    beforeAll(async () => {
      jump = await startSshd('jump', root, key);
      handOver(root);
    }, 30_000);
    afterAll(async () => jump?.stop());
    const fingerprint = (s: TestSshd) =>
      execFileSync('ssh-keygen', ['-lf', '-'], { input: s.hostKey, encoding: 'utf8' }).split(' ')[1]!;
    /** TCP connections the server has seen (the log says so before any key is exchanged). */
    const connections = (s: TestSshd) =>
      (readFileSync(s.log, 'utf8').match(/Connection from /g) ?? []).length;

    test('a pinned key that known_hosts marks @revoked is refused before logging in, naming host and fingerprint', async () => {
      const before = sshd.handshakes();
      const connector = new SshConnector({
        privateKey: key.privateKey,
        knownHosts: `@revoked * ${sshd.hostKey}\n`,
        connectAttempts: 1,
      });
      await expect(connector.connect(serverOf(sshd))).rejects.toThrow(
        `host key verification failed for edge (127.0.0.1:${sshd.port}): it offered ${fingerprint(sshd)}, a key marked @revoked in the known_hosts text`,
      );
      expect(sshd.handshakes()).toBe(before); // no login happened
    }, 30_000);

    test('a hashed known_hosts entry (ssh-keygen -H) is trusted without a pin', async () => {
      const file = join(root, 'known_hosts_hashed');
      writeFileSync(file, `[127.0.0.1]:${sshd.port} ${sshd.hostKey}\n`);
      execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
      const hashed = readFileSync(file, 'utf8');
      expect(hashed).toMatch(/^\|1\|/);
      expect(hashed).not.toContain('127.0.0.1');
      const t = await new SshConnector({ privateKey: key.privateKey, knownHosts: hashed }).connect(
        serverOf(sshd, { hostKey: undefined }),
      );
      try {
        expect((await t.exec(new Script('echo in'), { timeoutMs: 10_000 })).stdout).toBe('in\n');
      } finally {
        await t.close();
      }
    }, 30_000);

    test('a jump host whose key is revoked is refused, and the server behind it is never reached', async () => {
      const reached = connections(sshd);
      const connector = new SshConnector({
        privateKey: key.privateKey,
        knownHosts: `@revoked [127.0.0.1]:${jump.port} ${jump.hostKey}\n`,
        connectAttempts: 1,
      });
      const server = serverOf(sshd, {
        jump: { host: '127.0.0.1', port: jump.port, user: jump.user, hostKey: jump.hostKey },
      });
      await expect(connector.connect(server)).rejects.toThrow(
        `host key verification failed for edge via jump 127.0.0.1 (127.0.0.1:${jump.port}): it offered ${fingerprint(jump)}, a key marked @revoked`,
      );
      expect(jump.handshakes()).toBe(0);
      expect(connections(sshd)).toBe(reached);
    }, 30_000);
  });
});
