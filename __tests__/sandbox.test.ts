/**
 * The sandbox must behave like a server, so the demo cannot pass by accident: its SSH endpoint is driven
 * by the real SSH client transport (exit codes, stdout/stderr, environment, concurrent sessions, port
 * forwarding, refused keys), and the sandbox fleet's CLI leaves no process behind.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRegistry } from '../src/registry';
import { Script } from '../src/remote/shell';
import { freePort, isRunning, servicePids as servicePidsOf } from '../src/testing';
import { generateKeyPair, startSandboxSsh } from '../src/sandbox/ssh-server';
import { SshConnector } from '../src/ssh/transport';
import { runBundledCli } from './helpers/run';
import { client, host, sandboxServer } from './helpers/sandbox-ssh';
import { utils } from 'ssh2';

const server = sandboxServer;

describe('the sandbox SSH endpoint', () => {
  let port = 0;
  let close: () => Promise<void>;
  const home = mkdtempSync(join(tmpdir(), 'fd-sb-home-'));
  beforeAll(async () => {
    const s = await startSandboxSsh({
      hostKey: host.privateKey,
      authorizedKey: client.publicKey,
      port: 0,
      home,
      env: { PATH: '/usr/bin:/bin', SANDBOX_MARK: 'sb-1' },
    });
    port = s.port;
    close = s.close;
  });
  afterAll(async () => {
    await close();
    rmSync(home, { recursive: true, force: true });
  });

  test('exit codes, stdout, stderr, environment and working directory like a server', async () => {
    const t = await new SshConnector({ privateKey: client.privateKey }).connect(server(port));
    try {
      expect(await t.exec(new Script('echo out; echo err >&2; exit 3'), { timeoutMs: 5000 })).toEqual({
        code: 3,
        stdout: 'out\n',
        stderr: 'err\n',
      });
      expect(
        (await t.exec(new Script('printf %s "$SANDBOX_MARK:$PWD:$HOME"'), { timeoutMs: 5000 })).stdout,
      ).toBe(`sb-1:${home}:${home}`);
      expect((await t.exec(new Script('kill -9 $$'), { timeoutMs: 5000 })).code).toBeNull();
    } finally {
      await t.close();
    }
  });

  test('concurrent sessions on one connection', async () => {
    const t = await new SshConnector({ privateKey: client.privateKey }).connect(server(port));
    try {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => t.exec(new Script(`sleep 0.2; echo ${i}`), { timeoutMs: 5000 })),
      );
      expect(results.map((r) => r.stdout.trim())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    } finally {
      await t.close();
    }
  });

  test('port forwarding to 127.0.0.1, as the health probe uses it', async () => {
    const http = createServer((req, res) => res.end(`hello ${req.url}`));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    const t = await new SshConnector({ privateKey: client.privateKey }).connect(server(port));
    try {
      expect(await t.get((http.address() as { port: number }).port, '/health', 2000)).toEqual({
        status: 200,
        body: 'hello /health',
      });
    } finally {
      await t.close();
      await new Promise((r) => http.close(r));
    }
  });

  test('another key is refused; a wrong pinned host key is refused', async () => {
    const stranger = generateKeyPair('stranger');
    await expect(
      new SshConnector({ privateKey: stranger.privateKey, connectAttempts: 1 }).connect(server(port)),
    ).rejects.toThrow(/authentication as \S+ was refused/);
    const wrong = {
      ...server(port),
      hostKeys: [{ fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    };
    await expect(
      new SshConnector({ privateKey: client.privateKey, connectAttempts: 1 }).connect(wrong),
    ).rejects.toThrow(/host key verification failed for sb/);
  });
});

test('generated key pairs always parse (ssh2 makes one malformed pair in 256; those are drawn again)', () => {
  let malformed = 0;
  for (let i = 0; i < 2000; i++) {
    const pair = generateKeyPair(`k${i}`);
    if (utils.parseKey(pair.privateKey) instanceof Error || utils.parseKey(pair.publicKey) instanceof Error)
      malformed++;
  }
  expect(malformed).toBe(0);
});

describe('sandbox service ports', () => {
  test('free, distinct, and outside the ephemeral range that outgoing connections use', async () => {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    const ports: number[] = [];
    for (let i = 0; i < 50; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(50);
    expect(ports.filter((p) => p >= lo! && p <= hi!)).toEqual([]);
    // a port in use is skipped: hold the next candidate, then ask again
    const held = createServer();
    await new Promise<void>((r) => held.listen(ports[49]! + 1, '127.0.0.1', r));
    try {
      expect(await freePort()).not.toBe(ports[49]! + 1);
    } finally {
      held.close();
    }
  });
});

describe('fleet-deploy sandbox (the bundled CLI)', () => {
  test('up, deploy over it, status, down: no process left', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fd-sandbox-'));
    const cli = (...args: string[]) => runBundledCli(args, { HOME: dir }, 60_000);
    const up = cli('sandbox', 'up', '--dir', dir, '--servers', '2', '--tenants', '12');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('Sandbox fleet up: 2 servers × 12 tenants on 127.0.0.1');
    const pid = Number(readFileSync(join(dir, 'sandbox.pid'), 'utf8'));
    const servicePids = () =>
      ['sandbox-1', 'sandbox-2'].flatMap((s) => servicePidsOf(join(dir, 'servers', s, '.sandbox-runtime')));
    let services: number[];
    try {
      const registry = parseRegistry(readFileSync(join(dir, 'registry.json'), 'utf8'), 'r');
      expect(registry.servers.map((s) => s.hostKeys.length)).toEqual([1, 1]);
      const deploy = cli(
        'deploy',
        '-r',
        join(dir, 'registry.json'),
        '--key',
        join(dir, 'client_key'),
        '-v',
        'v1',
        '--concurrency',
        '24',
        '--per-server',
        '12',
      );
      expect(deploy.stdout).toContain('24 targets: 24 deployed');
      expect(deploy.code).toBe(0);
      // 24 health gates wait on one cancellation signal, 12 commands run on each connection at once:
      // nothing piles listeners up (Node warns past 10 on one emitter)
      expect(deploy.stderr).not.toContain('MaxListenersExceededWarning');
      const status = cli('sandbox', 'status', '--dir', dir);
      expect(status.stdout).toMatch(
        /sandbox-1\/tenant-1-1 +127\.0\.0\.1:\d+ +sandbox +200 \{"status":"ok","version":"v1"\}/,
      );
      // while up, every service and the server process are seen running (so "none left" below means it)
      expect([pid, ...servicePids()].filter(isRunning)).toHaveLength(25);
    } finally {
      services = servicePids();
      const down = cli('sandbox', 'down', '--dir', dir);
      expect(down.stdout).toMatch(/^Sandbox servers stopped; \d+ services? stopped\.\n$/);
    }
    expect(services).toHaveLength(24);
    // gone, or a zombie that only waits for PID 1 to reap it: no longer running
    expect([pid, ...services].filter(isRunning)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);
});
