/**
 * The SSH transport under load on one connection, against a real SSH server (the sandbox's ssh2 server
 * on 127.0.0.1): many commands at once, and a health probe that travels through the SSH connection and,
 * when it times out, closes its forwarded channel instead of leaving it open on the server; and the
 * connect backoff, seen on a fake clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';

import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from '../src/remote/shell';
import { generateKeyPair, startSandboxSsh } from '../src/sandbox/ssh-server';
import { OutputTail } from '../src/ssh/tail';
import { SshConnector } from '../src/ssh/transport';
import { client, host, sandboxServer } from './helpers/sandbox-ssh';

let port = 0;
let close: () => Promise<void>;
const home = mkdtempSync(join(tmpdir(), 'fd-transport-'));
const server = () => sandboxServer(port);

beforeAll(async () => {
  const s = await startSandboxSsh({
    hostKey: host.privateKey,
    authorizedKey: client.publicKey,
    port: 0,
    home,
    env: { PATH: '/usr/bin:/bin' },
  });
  port = s.port;
  close = s.close;
});
afterAll(async () => {
  await close();
  rmSync(home, { recursive: true, force: true });
});

// (that the connection's listeners do not pile up is checked where Node's warnings can be seen: the
// bundled CLI's stderr in sandbox.test.ts)
test('24 commands at once on one connection: every result, each its own', async () => {
  const t = await new SshConnector({ privateKey: client.privateKey }).connect(server());
  try {
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        t.exec(new Script(`sleep 0.3; echo ${i}; echo e${i} >&2; exit ${i % 4}`), { timeoutMs: 10_000 }),
      ),
    );
    expect(results).toEqual(
      Array.from({ length: 24 }, (_, i) => ({ code: i % 4, stdout: `${i}\n`, stderr: `e${i}\n` })),
    );
  } finally {
    await t.close();
  }
});

test('a probe goes through the SSH connection; one that gets no answer fails in time and closes its channel', async () => {
  const held: Socket[] = [];
  const closed: Array<Promise<void>> = [];
  const silent = createServer((s) => {
    held.push(s);
    closed.push(new Promise((r) => s.once('close', () => r())));
    s.resume(); // read (and drop) the request, so that its end is seen
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const t = await new SshConnector({ privateKey: client.privateKey }).connect(server());
  try {
    const started = Date.now();
    await expect(t.get((silent.address() as { port: number }).port, '/health', 300)).rejects.toThrow(
      'no answer within 300 ms',
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    // one connection reached the service: the server's end of the forwarded channel, carrying the request
    // (a probe that opened its own TCP socket on the runner would make a second)
    expect(held).toHaveLength(1);
    // the forwarded connection to the service ends although the SSH connection stays up
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      closed[0],
      new Promise((_, fail) => {
        timer = setTimeout(() => fail(new Error('the forwarded connection stayed open')), 3_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect((await t.exec(new Script('echo still up'), { timeoutMs: 5_000 })).stdout).toBe('still up\n');
  } finally {
    await t.close();
    held.forEach((s) => s.destroy());
    await new Promise((r) => silent.close(r));
  }
});

describe('connect retries with backoff, waiting on the clock it is given', () => {
  /** A clock that only records the waits asked of it. */
  const recording = () => {
    const sleeps: number[] = [];
    return { sleeps, sleep: async (ms: number) => void sleeps.push(ms) };
  };
  /** A port on 127.0.0.1 that nothing listens on: a connection there is refused (transient). */
  const closedPort = async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const { port: p } = s.address() as { port: number };
    await new Promise((r) => s.close(r));
    return p;
  };

  test('a refused connection is tried again after 0.5 s, then 1 s, then given up (no real waiting)', async () => {
    const clock = recording();
    const started = Date.now();
    const target = server();
    await expect(
      new SshConnector({ privateKey: client.privateKey, connectAttempts: 3, clock }).connect({
        ...target,
        port: await closedPort(),
      }),
    ).rejects.toThrow(/ECONNREFUSED.*\(after 3 attempts\)/);
    expect(clock.sleeps).toEqual([500, 1000]);
    expect(Date.now() - started).toBeLessThan(1500); // the real backoff alone would take 1.5 s
  });

  test('a deadline cuts off a handshake in flight and the retries after it, and says the time ran out', async () => {
    const held: Socket[] = [];
    const mute = createServer((s) => void held.push(s)); // accepts, never speaks: the handshake hangs
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
    const clock = recording();
    try {
      const deadline = Date.now() + 300;
      await expect(
        new SshConnector({
          privateKey: client.privateKey,
          connectTimeoutMs: 20_000,
          connectAttempts: 3,
          clock,
        }).connect({ ...server(), port: (mute.address() as { port: number }).port }, { deadline }),
      ).rejects.toThrow(
        new RegExp(
          `Timed out while waiting for handshake \\(cut off at ${new Date(deadline).toISOString()}: the time to try had run out\\)`,
        ),
      );
      expect(clock.sleeps).toEqual([]); // no retry once the time is up
    } finally {
      held.forEach((s) => s.destroy());
      await new Promise((r) => mute.close(r));
    }
  }, 10_000); // without the cut-off: 20 s for the first try alone

  test('a refused key is not tried again', async () => {
    const clock = recording();
    const stranger = generateKeyPair('stranger');
    await expect(
      new SshConnector({ privateKey: stranger.privateKey, connectAttempts: 3, clock }).connect(server()),
    ).rejects.toThrow(/authentication as \S+ was refused/);
    expect(clock.sleeps).toEqual([]);
  });
});

test('the kept tail of an output: whole UTF-8 characters, across chunks and at the cut', () => {
  const tail = new OutputTail('stderr', 8);
  const text = 'ééééééé'; // 14 bytes, 2 each
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += 3) tail.push(bytes.subarray(i, i + 3)); // chunks split characters
  expect(tail.text()).toBe('[fleet-deploy: 6 bytes of stderr cut here; the last 8 bytes follow]\néééé');
  const odd = new OutputTail('stdout', 7);
  odd.push(bytes);
  expect(odd.text()).toBe('[fleet-deploy: 8 bytes of stdout cut here; the last 6 bytes follow]\nééé');
  const short = new OutputTail('stdout', 64);
  short.push(Buffer.from('é'));
  expect(short.text()).toBe('é');
});
