/**
 * Blue-green end to end: the real engine and Compose (engine-up.sh), real OpenSSH, and real proxies from
 * Debian — one tenant behind Caddy switched by a flag file (a `file` matcher per slot: no reload), one
 * behind nginx (an upstream file and a reload).
 * Both tenants start in place behind their proxy, move to blue-green without downtime, and then go
 * through a failed gate before the switch, a failure after it (switched back), a proxy that is down
 * (nothing stopped), a deploy cancelled mid-drain and manual rollbacks. A steady stream of requests
 * through each proxy runs during every blue-green deploy, on fresh connections (and on a kept-alive one
 * through Caddy, whose switch changes no configuration): none may fail, and none is retried.
 *
 * Needs root and /usr/sbin/sshd, like podman.test.ts; run alone (the engine is heavy).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { Agent, get as httpGet } from 'node:http';
import { join } from 'node:path';
import { deploy } from '../helpers/deploy';
import { freePort, handOver } from '../../src/testing';
import { parseRegistry, type Registry } from '../../src/registry';
import type { TargetResult } from '../../src/deploy/result';
import { e2eSkipReason, stackUp, type Stack } from './stack';
import { startCaddy, startNginx, type Nginx, type RunningProxy } from './proxies';

if (e2eSkipReason) console.warn(e2eSkipReason);
const describeE2e = e2eSkipReason ? describe.skip : describe;

interface Tenant {
  id: 'cad' | 'ngx';
  dir: string;
  /** The in-place stack's port before the move, the proxy's, and the slots'. */
  legacy: number;
  proxy: number;
  blue: number;
  green: number;
}

const project = (t: Tenant, slot?: 'blue' | 'green') => `bg-${t.id}${slot ? `-${slot}` : ''}`;

describeE2e('e2e blue-green: real engine, Compose, sshd, Caddy and nginx', () => {
  let stack: Stack;
  let caddy: RunningProxy | undefined;
  let nginx: Nginx | undefined;
  const caddyAdmin = { port: 0 };
  const tenants: Tenant[] = [];
  const nginxUpstream = () => join(stack.root, 'nginx', 'upstreams', 'ngx.conf');
  /** Caddy's static route for the tenant: the slot whose flag is set, else the in-place stack. */
  const caddyRoute = (t: Tenant) => ({
    id: 'fleet-cad',
    listen: t.proxy,
    upstream: t.legacy,
    flags: { dir: t.dir, blue: t.blue, green: t.green },
  });

  const registry = (o: { blueGreen: boolean; postDeploy?: string[]; drainTimeout?: string }): Registry => {
    const raw = {
      servers: [
        {
          ...stack.server('bg-1'),
          tenants: tenants.map((t) => ({
            id: t.id,
            path: t.dir,
            compose: { command: 'docker-compose', project: 'bg-{tenant}' },
            images: [{ variable: 'APP_IMAGE', repository: stack.repo }],
            health: {
              port: o.blueGreen ? t.proxy : t.legacy,
              json: { status: 'ok', version: '{version}' },
              interval: '300ms',
              timeout: '2s',
              deadline: '8s',
              successes: 2,
            },
            ...(o.postDeploy ? { hooks: { postDeploy: o.postDeploy } } : {}),
            ...(o.blueGreen
              ? {
                  strategy: {
                    kind: 'blue-green',
                    slots: { blue: { port: t.blue }, green: { port: t.green } },
                    drainTimeout: o.drainTimeout ?? '20s',
                    proxy:
                      t.id === 'cad'
                        ? { kind: 'flag-file' }
                        : {
                            kind: 'nginx',
                            upstreamFile: nginxUpstream(),
                            check: nginx!.check,
                            reload: nginx!.reload,
                          },
                  },
                }
              : {}),
            minFreeDiskMb: 1,
          })),
        },
      ],
    };
    return parseRegistry(JSON.stringify(raw), 'bg-registry.json');
  };

  /** Where each proxy sends its tenant now, read from the proxy itself. */
  const upstream = async (t: Tenant): Promise<number> => {
    if (t.id === 'ngx') return Number(/127\.0\.0\.1:(\d+)/.exec(readFileSync(nginxUpstream(), 'utf8'))![1]);
    const flag = (slot: string) => existsSync(join(t.dir, '.fleet', 'slots', `live-${slot}`));
    return flag('blue') ? t.blue : flag('green') ? t.green : t.legacy;
  };
  const version = async (port: number) => {
    const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) }).catch(
      () => undefined,
    );
    return r ? `${r.status} ${((await r.json().catch(() => ({}))) as { version?: string }).version}` : 'down';
  };
  const envOf = (t: Tenant) => readFileSync(join(t.dir, '.env'), 'utf8');
  const active = (t: Tenant) => {
    const f = join(t.dir, '.fleet', 'slots', 'active');
    return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
  };
  const historyOf = (t: Tenant): Array<Record<string, unknown>> =>
    readFileSync(join(t.dir, '.fleet', 'history.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  const locked = (t: Tenant) => existsSync(join(t.dir, '.fleet', 'lock'));
  const result = (report: { targets: TargetResult[] }, t: Tenant) =>
    report.targets.find((r) => r.tenant === t.id)!;
  const steps = (r: TargetResult) => r.steps.map((s) => `${s.step}${s.ok ? '' : ' FAILED'}`);

  /**
   * One GET through the proxy, on a connection of its own or on `agent`'s kept-alive one; the failure,
   * if it did not answer 200. Nothing is retried: a reset counts.
   */
  const get = (port: number, agent: Agent | false) =>
    new Promise<string | undefined>((resolve) => {
      const req = httpGet({ host: '127.0.0.1', port, path: '/health', agent, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}`));
        res.on('error', (e) => resolve(e.message));
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
      req.on('error', (e) => resolve(e.message));
    });

  /**
   * A steady stream of requests through each proxy (one every 25 ms on fresh connections, and through
   * Caddy one every 25 ms on a kept-alive connection too); `stop()` tells what failed.
   */
  const traffic = () => {
    let sent = 0;
    const failures: string[] = [];
    let on = true;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const loop = async (t: Tenant, via: Agent | false) => {
      while (on) {
        sent++;
        const failure = await get(t.proxy, via);
        if (failure) failures.push(`${t.id}${via ? ' (kept alive)' : ''}: ${failure}`);
        await new Promise((res) => setTimeout(res, 25));
      }
    };
    const loops = tenants.flatMap((t) =>
      t.id === 'cad' ? [loop(t, false), loop(t, agent)] : [loop(t, false)],
    );
    return async () => {
      on = false;
      await Promise.all(loops);
      agent.destroy();
      return { sent, failures };
    };
  };

  beforeAll(async () => {
    stack = await stackUp('fd-bg-', 280_000);
    for (const id of ['cad', 'ngx'] as const) {
      const dir = join(stack.root, 'tenants', id);
      mkdirSync(dir, { recursive: true });
      const [legacy, proxy, blue, green] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      tenants.push({ id, dir, legacy, proxy, blue, green });
      writeFileSync(
        join(dir, 'docker-compose.yml'),
        'services:\n  app:\n    image: ${APP_IMAGE}\n    network_mode: host\n    environment:\n      APP_PORT: ${APP_PORT}\n',
      );
      writeFileSync(join(dir, '.env'), `# ${id}\nAPP_IMAGE=${stack.repo}:v1\nAPP_PORT=${legacy}\n`);
    }
    handOver(join(stack.root, 'tenants'));
    caddyAdmin.port = await freePort();
    const [cad, ngx] = tenants as [Tenant, Tenant];
    caddy = await startCaddy(join(stack.root, 'caddy'), caddyAdmin.port, [caddyRoute(cad)]);
    nginx = await startNginx(join(stack.root, 'nginx'), [
      {
        listen: ngx.proxy,
        upstreamFile: join(stack.root, 'nginx', 'upstreams', 'ngx.conf'),
        upstream: ngx.legacy,
      },
    ]);
  }, 300_000);

  afterAll(async () => {
    caddy?.stop();
    nginx?.stop();
    await stack?.down();
  }, 120_000);

  test('v1 in place on the legacy port, behind each proxy', async () => {
    const report = await deploy(registry({ blueGreen: false }), stack.key, 'v1');
    expect(report.targets.map((r) => [r.tenant, r.outcome, r.error])).toEqual([
      ['cad', 'deployed', undefined],
      ['ngx', 'deployed', undefined],
    ]);
    for (const t of tenants) expect(await version(t.proxy)).toBe('200 v1');
  }, 90_000);

  test('moving to blue-green: v2 in slot blue, the proxy switched, the in-place stack drained and stopped, no request failed', async () => {
    const legacy = tenants.map((t) => stack.running(project(t)));
    const stop = traffic();
    const report = await deploy(registry({ blueGreen: true }), stack.key, 'v2');
    const { sent, failures } = await stop();
    for (const [i, t] of tenants.entries()) {
      const r = result(report, t);
      expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
      expect(steps(r)).toEqual([
        'connect',
        'prepare',
        'pull',
        'start',
        'health',
        'promote',
        'retire',
        'finish',
      ]);
      expect(r.steps.find((s) => s.step === 'health')!.detail).toMatch(/^2\/\d+ probes/);
      expect(r.steps.find((s) => s.step === 'retire')!.detail).toMatch(
        new RegExp(`^drained the in-place stack on port ${t.legacy} in [0-9.]+ s, stopped$`),
      );
      expect(await upstream(t)).toBe(t.blue);
      expect(await version(t.proxy)).toBe('200 v2');
      expect(await version(t.blue)).toBe('200 v2');
      expect(legacy[i]).toHaveLength(1);
      expect(stack.running(project(t))).toEqual([]);
      expect(stack.running(project(t, 'blue'))).toHaveLength(1);
      expect(envOf(t)).toBe(`# ${t.id}\nAPP_IMAGE=${stack.repo}:v2\nAPP_PORT=${t.legacy}\n`);
      expect(readFileSync(join(t.dir, '.fleet/slots/blue.env'), 'utf8')).toBe(
        `# ${t.id}\nAPP_IMAGE=${stack.repo}:v2\nAPP_PORT=${t.blue}\n`,
      );
      expect(active(t)).toBe('blue');
      expect(historyOf(t).at(-1)).toMatchObject({ outcome: 'deployed', from: 'v1', to: 'v2' });
      expect(locked(t)).toBe(false);
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(10);
  }, 120_000);

  test('bad: the gate on green fails before the switch; green stopped, the tenant never left blue', async () => {
    const blue = tenants.map((t) => stack.running(project(t, 'blue')));
    const stop = traffic();
    const report = await deploy(registry({ blueGreen: true }), stack.key, 'bad');
    const { failures } = await stop();
    for (const [i, t] of tenants.entries()) {
      const r = result(report, t);
      expect(r.outcome).toBe('rolled-back');
      expect(r.error).toBe('health gate failed: not healthy within 8 s (last: HTTP 404, expected 200)');
      expect(steps(r)).toEqual([
        'connect',
        'prepare',
        'pull',
        'start',
        'health FAILED',
        'rollback',
        'rollback health',
        'finish',
      ]);
      expect(stack.running(project(t, 'green'))).toEqual([]);
      expect(stack.running(project(t, 'blue'))).toEqual(blue[i]);
      expect(await upstream(t)).toBe(t.blue);
      expect(await version(t.proxy)).toBe('200 v2');
      expect(active(t)).toBe('blue');
      expect(envOf(t)).toContain(`APP_IMAGE=${stack.repo}:v2\n`);
      expect(historyOf(t).at(-1)).toMatchObject({ outcome: 'rolled-back', from: 'v2', to: 'bad' });
      expect(locked(t)).toBe(false);
    }
    expect(failures).toEqual([]);
  }, 120_000);

  test('a failure after the switch (a post-deploy hook): the proxy goes back to blue, which still runs; green stopped', async () => {
    const blue = tenants.map((t) => stack.running(project(t, 'blue')));
    const stop = traffic();
    const report = await deploy(
      registry({ blueGreen: true, postDeploy: ['echo smoke test failed >&2; exit 3'] }),
      stack.key,
      'v1',
    );
    const { failures } = await stop();
    for (const [i, t] of tenants.entries()) {
      const r = result(report, t);
      expect(r.outcome).toBe('rolled-back');
      expect(r.error).toMatch(/^post-deploy hook failed: exit code 3: smoke test failed/);
      expect(steps(r)).toEqual([
        'connect',
        'prepare',
        'pull',
        'start',
        'health',
        'promote',
        'post-deploy hooks FAILED',
        'rollback',
        'rollback health',
        'finish',
      ]);
      expect(r.steps.find((s) => s.step === 'promote')!.detail).toMatch(
        new RegExp(`→ slot green \\(127\\.0\\.0\\.1:${t.green}\\), verified through port ${t.proxy}`),
      );
      expect(await upstream(t)).toBe(t.blue);
      expect(await version(t.proxy)).toBe('200 v2');
      expect(stack.running(project(t, 'blue'))).toEqual(blue[i]);
      expect(stack.running(project(t, 'green'))).toEqual([]);
      expect(active(t)).toBe('blue');
      expect(envOf(t)).toContain(`APP_IMAGE=${stack.repo}:v2\n`);
      expect(locked(t)).toBe(false);
    }
    expect(failures).toEqual([]);
  }, 120_000);

  test('a proxy that is down: the deploy fails and nothing that ran is stopped', async () => {
    const blue = tenants.map((t) => stack.running(project(t, 'blue')));
    caddy!.stop();
    nginx!.stop();
    const report = await deploy(registry({ blueGreen: true }), stack.key, 'v1');
    const [cad, ngx] = tenants as [Tenant, Tenant];
    // Caddy does not answer through the tenant's port: found before anything starts.
    expect(result(report, cad)).toMatchObject({ outcome: 'failed' });
    expect(result(report, cad).error).toMatch(
      new RegExp(`^the proxy on 127\\.0\\.0\\.1:${cad.proxy} did not answer, so nothing was started`),
    );
    expect(steps(result(report, cad))).toEqual(['connect', 'prepare', 'pull FAILED', 'finish']);
    // nginx does not reload: the upstream file is put back, the new slot stopped.
    const n = result(report, ngx);
    expect(n.error).toMatch(/^nginx upstream .* refused the switch to slot green .*nginx did not reload/s);
    expect(n.steps.find((s) => s.step === 'rollback')).toMatchObject({ ok: true });
    expect(readFileSync(nginxUpstream(), 'utf8')).toBe(`server 127.0.0.1:${ngx.blue};\n`);
    for (const [i, t] of tenants.entries()) {
      expect(stack.running(project(t, 'blue'))).toEqual(blue[i]);
      expect(stack.running(project(t, 'green'))).toEqual([]);
      expect(await version(t.blue)).toBe('200 v2');
      expect(active(t)).toBe('blue');
      expect(locked(t)).toBe(false);
    }
    caddy = await startCaddy(join(stack.root, 'caddy'), caddyAdmin.port, [caddyRoute(cad)]);
    nginx = await startNginx(join(stack.root, 'nginx'), [
      { listen: ngx.proxy, upstreamFile: nginxUpstream(), upstream: ngx.blue },
    ]);
    for (const t of tenants) expect(await version(t.proxy)).toBe('200 v2');
  }, 120_000);

  test('v1 cancelled mid-drain: green is live, blue left running (its connection kept), the lock released', async () => {
    // An open connection to each blue slot that never finishes its request keeps the drain waiting.
    const held: Socket[] = await Promise.all(
      tenants.map(
        (t) =>
          new Promise<Socket>((res) => {
            const s = connect(t.blue, '127.0.0.1', () => res(s));
          }),
      ),
    );
    const blue = tenants.map((t) => stack.running(project(t, 'blue')));
    const controller = new AbortController();
    const draining = new Set<string>();
    const report = await deploy(registry({ blueGreen: true, drainTimeout: '60s' }), stack.key, 'v1', {
      signal: controller.signal,
      onStep: (e: { target: string; step: string; status: string }) => {
        if (e.step === 'retire' && e.status === 'start') draining.add(e.target);
        if (draining.size === tenants.length) controller.abort();
      },
    });
    for (const s of held) s.destroy();
    for (const [i, t] of tenants.entries()) {
      const r = result(report, t);
      expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
      expect(r.steps.find((s) => s.step === 'retire')!.detail).toMatch(
        /^drain cancelled with [1-9]\d* connections open: slot blue left running$/,
      );
      expect(await upstream(t)).toBe(t.green);
      expect(await version(t.proxy)).toBe('200 v1');
      expect(stack.running(project(t, 'blue'))).toEqual(blue[i]);
      expect(active(t)).toBe('green');
      expect(historyOf(t).at(-1)).toMatchObject({ outcome: 'deployed', from: 'v2', to: 'v1' });
      expect(locked(t)).toBe(false);
    }
  }, 120_000);

  test('manual rollback while the old slot still runs: the proxy goes back to blue, which is not restarted', async () => {
    const blue = tenants.map((t) => stack.running(project(t, 'blue')));
    const stop = traffic();
    const report = await deploy(registry({ blueGreen: true }), stack.key, 'v1', {
      options: { rollback: { to: 'v2' } },
    });
    const { failures } = await stop();
    for (const [i, t] of tenants.entries()) {
      const r = result(report, t);
      expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
      expect(r.steps.find((s) => s.step === 'start')!.ok).toBe(true);
      expect(stack.running(project(t, 'blue'))).toEqual(blue[i]); // the same containers: switched back, not started
      expect(await upstream(t)).toBe(t.blue);
      expect(await version(t.proxy)).toBe('200 v2');
      expect(stack.running(project(t, 'green'))).toEqual([]);
      expect(active(t)).toBe('blue');
      expect(historyOf(t).at(-1)).toMatchObject({
        outcome: 'deployed',
        from: 'v1',
        to: 'v2',
        rollback: true,
      });
    }
    expect(failures).toEqual([]);
  }, 120_000);

  test('manual rollback once the old slot was stopped: a normal deploy of that version into it', async () => {
    const first = await deploy(registry({ blueGreen: true }), stack.key, 'v1');
    expect(first.targets.map((r) => r.outcome)).toEqual(['deployed', 'deployed']);
    for (const t of tenants) expect(stack.running(project(t, 'blue'))).toEqual([]);
    const stop = traffic();
    const report = await deploy(registry({ blueGreen: true }), stack.key, 'v1', {
      options: { rollback: { to: 'v2' } },
    });
    const { failures } = await stop();
    for (const t of tenants) {
      const r = result(report, t);
      expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
      expect(await upstream(t)).toBe(t.blue);
      expect(await version(t.proxy)).toBe('200 v2');
      expect(stack.running(project(t, 'blue'))).toHaveLength(1);
      expect(stack.running(project(t, 'green'))).toEqual([]);
    }
    expect(failures).toEqual([]);
  }, 120_000);
  test('--versions on blue-green: slow1 (an app that boots in 3 s) in green; the users saw no downtime, and a rollback returns', async () => {
    const stop = traffic();
    const report = await deploy(registry({ blueGreen: true }), stack.key, 'v1', {
      options: { versions: { APP_IMAGE: 'slow1' } },
    });
    const { sent, failures } = await stop();
    for (const t of tenants) {
      const r = result(report, t);
      expect([r.outcome, r.error, r.next?.version]).toEqual(['deployed', undefined, 'slow1']);
      expect(await upstream(t)).toBe(t.green);
      expect(await version(t.proxy)).toBe('200 slow1');
      expect(readFileSync(join(t.dir, '.fleet/slots/green.env'), 'utf8')).toContain(
        `APP_IMAGE=${stack.repo}:slow1\n`,
      );
      // The gate on green waited for its boot, which no user saw: the figure is the check through the proxy.
      const health = r.steps.find((s) => s.step === 'health')!;
      expect(health.detail).not.toMatch(/down/);
      expect(r.downtimeMs).toBe(0);
      expect(historyOf(t).at(-1)).toMatchObject({ outcome: 'deployed', from: 'v2', to: 'slow1' });
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(10);

    const back = await deploy(registry({ blueGreen: true }), stack.key, 'v1', { options: { rollback: {} } });
    for (const t of tenants) {
      expect([result(back, t).outcome, result(back, t).next?.version]).toEqual(['deployed', 'v2']);
      expect(await version(t.proxy)).toBe('200 v2');
    }
  }, 150_000);
});
