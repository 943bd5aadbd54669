/**
 * A server's recovery window bounds every connection attempt made in it: a handshake in flight at the
 * window's end is cut off there, not left to run its own timeout (and retries) past it.
 * A fake clock and a double connector (no real waiting): the connector honours the deadline it is
 * given, as SshConnector does (its cut-off against a real socket is in transport.test.ts).
 */
import type { ConnectOptions, Connector, Transport } from '../src/ports';
import type { Server } from '../src/registry/model';
import { Session } from '../src/deploy/session';
import { FakeClock } from './helpers/fakes';

const server = { name: 'web-1', host: '127.0.0.1', port: 22, user: 'deploy' } as Server;

/** Connects once (a connection that is then lost); every later try hangs for 3 s, or until its deadline. */
class HangingConnector implements Connector {
  readonly deadlines: Array<number | undefined> = [];
  constructor(private readonly clock: FakeClock) {}
  async connect(_server: Server, options?: ConnectOptions): Promise<Transport> {
    if (this.deadlines.push(options?.deadline) === 1)
      return {
        alive: false,
        exec: async () => ({ code: null, stdout: '', stderr: '' }),
        get: async () => ({ status: 0, body: '' }),
        close: async () => undefined,
      };
    const end = Math.min(this.clock.t + 3000, options?.deadline ?? Infinity);
    this.clock.t = Math.max(this.clock.t, end);
    throw new Error('Timed out while waiting for handshake');
  }
}

test('a recovery ends at its window: each try is given the window end as deadline and none runs past it', async () => {
  const clock = new FakeClock();
  const connector = new HangingConnector(clock);
  const session = new Session(server, connector, clock, 8000, 1);
  expect((await session.transport()).alive).toBe(false);
  const lostAt = clock.now();
  await expect(session.transport(true)).rejects.toThrow(
    /stayed unreachable for its recovery window \(8 s, ended /,
  );
  expect(session.recoveryDeadline()).toBe(lostAt + 8000);
  expect(connector.deadlines.length).toBeGreaterThan(2);
  expect(connector.deadlines.slice(1)).toEqual(connector.deadlines.slice(1).map(() => lostAt + 8000));
  expect(clock.now()).toBe(lostAt + 8000); // without the cut-off the last try ran on to 11 s
});

test('a step that must end earlier (its lease) cuts the try off at its own time', async () => {
  const clock = new FakeClock();
  const connector = new HangingConnector(clock);
  const session = new Session(server, connector, clock, 8000, 1);
  await session.transport();
  const by = clock.now() + 2500;
  await expect(session.transport(true, by)).rejects.toThrow(/when this deploy's lease on the lock ran out/);
  expect(connector.deadlines.slice(1).every((d) => d === by)).toBe(true);
  expect(clock.now()).toBe(by);
});

test("what a server's targets share is made once for the run; a failed one is made again by the next to ask", async () => {
  const clock = new FakeClock();
  const session = new Session(server, new HangingConnector(clock), clock, 8000, 3);
  let made = 0;
  const answer = () => Promise.resolve(`1.4${++made}`);
  // three targets at once, then one later: one answer for all
  const first = await Promise.all([1, 2, 3].map(() => session.shared('api-version docker', answer)));
  expect(first).toEqual(['1.41', '1.41', '1.41']);
  expect(await session.shared('api-version docker', answer)).toBe('1.41');
  expect(made).toBe(1);
  // another key is another fact
  expect(await session.shared('api-version podman', answer)).toBe('1.42');
  // no answer (a lost connection): forgotten, so the next target asks again
  await expect(session.shared('x', () => Promise.reject(new Error('lost')))).rejects.toThrow('lost');
  expect(await session.shared('x', answer)).toBe('1.43');
  expect(made).toBe(3);
});
