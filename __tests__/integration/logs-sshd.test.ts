/**
 * `fleet-deploy logs` over real sshd (SANDBOX runtime: each service logs the requests it answers): the
 * last lines prefixed by target, and -f following two tenants of one server over ONE connection until
 * stopped, leaving no remote `logs` process behind.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../src/cli/main';
import { haveSshd } from '../../src/testing';
import { startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;

/** The PIDs of sandbox `docker logs` processes still running. */
const remoteLogs = () =>
  execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /runtime\.js logs /.test(l));

describeSshd('logs over sshd', () => {
  let fleet: TestFleet;
  let keyFile: string;
  const args = () => ['-r', join(fleet.root, 'registry.json'), '--key', keyFile];

  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 2, startWith: 'v1' });
    keyFile = join(fleet.root, 'key');
    writeFileSync(keyFile, fleet.key.privateKey, { mode: 0o600 });
    // three answered requests each (a service just started may not listen yet)
    for (const t of fleet.tenants)
      for (let answered = 0; answered < 3;) if ((await fleet.health(t)).startsWith('200')) answered++;
  }, 60_000);
  afterAll(async () => fleet?.stop());

  test('the last N lines of each tenant, prefixed by target and container', async () => {
    let stdout = '';
    const code = await runCli(['logs', '--tail', '2', ...args()], {
      stdout: (t) => (stdout += t),
      stderr: () => undefined,
      readText: async (p) => (await import('node:fs/promises')).readFile(p, 'utf8'),
      env: {},
    });
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const t of fleet.tenants)
      expect(lines.filter((l) => l.startsWith(`srv-1/${t.id} ${t.id}-app-1 `))).toHaveLength(2);
    expect(lines[0]).toMatch(/ GET \/health 200 \(v1\)$/);
  }, 30_000);

  test('-f follows two tenants over one connection, and stopping leaves nothing running', async () => {
    const sshd = fleet.sshds.get('srv-1')!;
    const before = sshd.handshakes();
    const controller = new AbortController();
    let stdout = '';
    const done = runCli(['logs', '-f', '--tail', '0', ...args()], {
      stdout: (t) => (stdout += t),
      stderr: () => undefined,
      readText: async (p) => (await import('node:fs/promises')).readFile(p, 'utf8'),
      env: {},
      signal: controller.signal,
    });
    const seen = () => fleet.tenants.every((t) => stdout.includes(`srv-1/${t.id} ${t.id}-app-1 `));
    while (!seen()) {
      for (const t of fleet.tenants) await fleet.health(t); // new lines while following
      await new Promise((r) => setTimeout(r, 200));
    }
    controller.abort();
    expect(await done).toBe(0);
    expect(sshd.handshakes() - before).toBe(1);
    while (remoteLogs().length) await new Promise((r) => setTimeout(r, 100));
    expect(remoteLogs()).toEqual([]);
  }, 60_000);
});
