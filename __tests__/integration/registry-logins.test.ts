/**
 * Registry logins go to their own host only, against real registries: three of Debian's docker-registry,
 * each with its own htpasswd user, on 127.0.0.1; the real `podman login`. A tenant whose images come from
 * registries A and B is pulled with logins for A, B and C: the pull's script (the compose strategy's own,
 * run by bash with the passwords on stdin, as a server runs it) logs in to A and B, each with its own
 * password, and C, which no image names, never hears from it. A wrong password for B is refused by B, by
 * name. The images are not pushed: a pull that gets as far as "manifest unknown" was let in.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRegistry, targetsOf } from '../../src/registry';
import { strategyFor } from '../../src/deploy/strategies';
import type { StrategyContext } from '../../src/deploy/strategy';
import type { TargetShell } from '../../src/deploy/shell';
import type { Script } from '../../src/remote/shell';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const runnable = have('docker-registry') && have('podman') && have('htpasswd');
const describeIf = runnable ? describe : describe.skip;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

interface Registry {
  host: string;
  user: string;
  password: string;
  log: string;
  proc: ChildProcess;
}

describeIf('registry logins per host, against real htpasswd registries', () => {
  const dir = mkdtempSync(join(tmpdir(), 'registry-logins-'));
  const registries: Record<'a' | 'b' | 'c', Registry> = {} as never;

  beforeAll(async () => {
    for (const name of ['a', 'b', 'c'] as const) {
      const port = await freePort();
      const user = `user-${name}`;
      const password = `pw-${name}-${Math.random().toString(36).slice(2)}`;
      const htpasswd = join(dir, `${name}.htpasswd`);
      writeFileSync(htpasswd, spawnSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8' }).stdout);
      const config = join(dir, `${name}.yml`);
      writeFileSync(
        config,
        `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, `${name}-data`)}\n` +
          `http:\n  addr: 127.0.0.1:${port}\nauth:\n  htpasswd:\n    realm: ${name}\n    path: ${htpasswd}\n`,
      );
      const log = join(dir, `${name}.log`);
      const proc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
      const append = (d: Buffer) => {
        try {
          writeFileSync(log, d, { flag: 'a' });
        } catch {
          // the directory is gone: the test is over
        }
      };
      proc.stdout!.on('data', append);
      proc.stderr!.on('data', append);
      registries[name] = { host: `localhost:${port}`, user, password, log, proc };
    }
    // podman speaks plain HTTP to these (local only), as engine-up.sh's registries.conf says.
    writeFileSync(
      join(dir, 'registries.conf'),
      Object.values(registries)
        .map((r) => `[[registry]]\nlocation = "${r.host}"\ninsecure = true\n`)
        .join('\n'),
    );
    for (const r of Object.values(registries))
      for (
        let i = 0;
        i < 100 && spawnSync('curl', ['-s', `http://127.0.0.1:${r.host.split(':')[1]}/v2/`]).status !== 0;
        i++
      )
        await new Promise((res) => setTimeout(res, 50));
  }, 30_000);

  afterAll(() => {
    for (const r of Object.values(registries)) r.proc?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A shell that runs each script with bash here, as the server's shell would. */
  const localShell = {
    exec: async (script: Script, _timeout: number, stdin?: string) => {
      const r = spawnSync('bash', ['--norc', '--noprofile', '-c', script.text], {
        input: stdin ?? '',
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: dir,
          TMPDIR: dir,
          CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
        },
      });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  } as unknown as TargetShell;

  /** One tenant whose images come from registries A and B (podman compose), in a directory of its own. */
  function target() {
    const { a, b } = registries;
    const file = {
      servers: [
        {
          name: 's1',
          region: 'eu',
          host: '127.0.0.1',
          user: 'deploy',
          hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
          tenants: [
            {
              id: 't1',
              path: join(dir, 't1'),
              compose: { command: 'podman compose' },
              images: [
                { variable: 'APP_IMAGE', repository: `${a.host}/fleet/app` },
                { variable: 'SIDE_IMAGE', repository: `${b.host}/fleet/side` },
              ],
              health: { port: 8080 },
            },
          ],
        },
      ],
    };
    return targetsOf(parseRegistry(JSON.stringify(file), 'two-registries.json'))[0]!;
  }

  async function pull(logins: Array<{ host: string; username: string; password: string }>) {
    const t = target();
    const strategy = strategyFor(t);
    const ctx = {
      shell: localShell,
      clock: { now: () => Date.now(), sleep: async () => {} },
      pullTimeoutMs: 60_000,
      pullAttempts: 1,
      registry: { logins, keep: false },
    } as unknown as StrategyContext;
    try {
      await strategy.fetch!(ctx, strategy.release({ version: 'v2', versions: {} }));
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  }
  let markers = 0;
  /**
   * The requests a registry logged, once everything before now is in its log: a marker request of our own
   * goes last, and its line is awaited (bounded) before the log is read; marker lines are left out.
   */
  async function requests(r: Registry): Promise<string[]> {
    const marker = `marker-${++markers}`;
    spawnSync('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${r.host.split(':')[1]}/v2/?${marker}`]);
    const lines = () => readFileSync(r.log, { encoding: 'utf8', flag: 'a+' }).split('\n');
    for (let i = 0; i < 100 && !lines().some((l) => l.includes(marker)); i++)
      await new Promise((res) => setTimeout(res, 50));
    expect(lines().some((l) => l.includes(marker))).toBe(true);
    return lines().filter((l) => l.includes('/v2/') && !l.includes('marker-'));
  }

  test('A and B each get their own login; C, named by no image, is never asked', async () => {
    const { a, b, c } = registries;
    const login = (r: Registry) => ({ host: r.host, username: r.user, password: r.password });
    const before = (await requests(c)).length;
    const why = await pull([login(c), login(b), login(a)]);
    // Both logins succeeded (a refused one fails with "registry login to … failed" first); the pull of A's
    // image then gets as far as the manifest, which was never pushed.
    expect(why).not.toMatch(/registry login to .* failed/);
    expect(why).toMatch(new RegExp(`pull .*${a.host}/fleet/app:v2.*(manifest unknown|not found)`, 'i'));
    expect((await requests(a)).length).toBeGreaterThan(0);
    expect((await requests(b)).length).toBeGreaterThan(0);
    expect((await requests(c)).length).toBe(before);
    for (const r of [a, b, c]) expect(why).not.toContain(r.password);
  }, 90_000);

  test('a wrong password for B is refused by B, by name, and A’s is not sent there', async () => {
    const { a, b } = registries;
    const why = await pull([
      { host: a.host, username: a.user, password: a.password },
      { host: b.host, username: b.user, password: a.password },
    ]);
    expect(why).toContain(`registry login to ${b.host} as ${b.user} failed`);
    expect(why).not.toContain(a.password);
  }, 90_000);

  test('without a login for A, the pull is refused by A (the check above can fail)', async () => {
    const { b } = registries;
    const why = await pull([{ host: b.host, username: b.user, password: b.password }]);
    expect(why).toMatch(/unauthorized|authentication required/i);
  }, 90_000);
});
