/**
 * Network faults on hosts in network namespaces (lib/netns.ts), over real sshd, injected at a step of
 * the deploy (timed by the engine's onStep events): at connect, during pull, the switch, the health gate,
 * the rollback, and during `fleet-deploy unlock`. For each: the outcome, the server's state afterwards
 * (.env old or new, never torn; lock released, or left and released by unlock; history consistent with
 * what runs) and the total time within the bound the configured timeouts set.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployFleet, type FleetOptions } from '../../src/deploy/fleet';
import { systemClock } from '../../src/ports';
import type { StepEvent } from '../../src/deploy/target';
import { fetchUrl } from '../../src/http/fetch';
import { planDeployment } from '../../src/plan/plan';
import { parseRegistry } from '../../src/registry';
import { SshConnector } from '../../src/ssh/transport';
import { DEPLOY_USER, freePort, makeKeyPair, tenantDefaults } from '../../src/testing';
import { envVersion } from './lib/fleet';
import { canNetns, makeNetHost, type NetHost } from './lib/netns';
import { scenario } from './lib/record';
import { historyOf, lockExists, REPO } from '../helpers/testfleet';

const describeNetns = canNetns ? describe : describe.skip;

/** The suite's timeouts, and the bound on a whole run that they set. */
const CONNECT = { connectTimeoutMs: 2000, connectAttempts: 2, keepaliveIntervalMs: 1000 };
const OPTIONS = {
  commandTimeoutMs: 4000,
  pullTimeoutMs: 4000,
  pullAttempts: 1,
  recoveryWindowMs: 8000,
  lockWaitMs: 500,
};
const GATE_DEADLINE_MS = 4000;
/** Connect, prepare, pull, switch, gate; rollback and its gate; two recovery windows; and slack for a loaded machine. */
const BOUND_MS =
  CONNECT.connectTimeoutMs * CONNECT.connectAttempts +
  3 * OPTIONS.commandTimeoutMs +
  OPTIONS.pullTimeoutMs +
  2 * GATE_DEADLINE_MS +
  2 * OPTIONS.recoveryWindowMs +
  10_000;

describeNetns('network faults', () => {
  const root = mkdtempSync(join(tmpdir(), 'fd-chaos-net-'));
  chmodSync(root, 0o755); // the deploy user works below it
  const key = makeKeyPair(join(root, 'client_ed25519'), 'chaos');
  const keyFile = join(root, 'key');
  writeFileSync(keyFile, key.privateKey, { mode: 0o600 });
  const hosts: NetHost[] = [];
  let n = 0;

  afterEach(() => {
    for (const h of hosts.splice(0)) h.destroy();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function host() {
    const h = makeNetHost(root, 10 + ++n, key, await freePort());
    hosts.push(h);
    const registryText = JSON.stringify({
      defaults: {
        tenant: tenantDefaults(REPO, {
          interval: '150ms',
          timeout: '1s',
          deadline: `${GATE_DEADLINE_MS / 1000}s`,
        }),
      },
      servers: [
        {
          name: 'ns-1',
          region: 'eu',
          host: h.address,
          user: DEPLOY_USER,
          hostKey: h.hostKey,
          tenants: [{ id: 'app', path: h.tenantDir, health: { port: h.port } }],
        },
      ],
    });
    return { h, registryText };
  }

  /** A deploy with the suite's timeouts; `at` injects the fault when a step starts (or ends). */
  async function deploy(
    registryText: string,
    version: string,
    at: (e: StepEvent) => void,
    extra: Partial<FleetOptions> = {},
    connect: typeof CONNECT = CONNECT,
  ) {
    const registry = parseRegistry(registryText, join(root, 'registry.json'));
    const t0 = Date.now();
    const report = await deployFleet(
      planDeployment(registry, {}),
      {
        version,
        actor: 'chaos',
        runId: 'chaos-run',
        concurrency: 1,
        perServer: 1,
        maxFailurePercent: 100,
        ...OPTIONS,
        ...extra,
      },
      {
        connector: new SshConnector({ privateKey: key.privateKey, ...connect }),
        clock: systemClock,
        urlGet: fetchUrl,
        onStep: at,
      },
    );
    return { r: report.targets[0]!, ms: Date.now() - t0 };
  }

  const once = (step: string, status: string, fn: () => void) => {
    let done = false;
    return (e: StepEvent) => {
      if (!done && e.step === step && e.status === status) {
        done = true;
        fn();
      }
    };
  };
  const later = (ms: number, fn: () => void) => void setTimeout(fn, ms);
  const tenant = (h: NetHost) => ({ dir: h.tenantDir }) as any;

  /** The state after a run: .env whole and one of the two releases, and what the history says runs. */
  function expectState(h: NetHost, from: string, to: string) {
    const env = envVersion(h.tenantDir);
    expect([from, to]).toContain(env);
    const last = historyOf(tenant(h)).at(-1);
    if (last) {
      const runs = last.outcome === 'deployed' ? last.to : last.from;
      expect(runs).toBe(env);
    }
    return env;
  }

  const unlock = (registryText: string, ...args: string[]) => {
    writeFileSync(join(root, 'registry.json'), registryText);
    return spawnSync(
      process.execPath,
      ['dist/cli.js', 'unlock', ...args, '-r', join(root, 'registry.json'), '--key', keyFile],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', USER: 'op' }, timeout: 60_000 },
    );
  };

  scenario(
    'network faults',
    'link down at connect',
    'the target fails with a connect error; nothing on the server changes',
    async () => {
      const { h, registryText } = await host();
      const { r, ms } = await deploy(
        registryText,
        'v2',
        once('connect', 'start', () => h.linkDown()),
      );
      expect(r.outcome).toBe('failed');
      expect(r.error).toMatch(/time|connect|reach/i);
      expect(expectState(h, 'v1', 'v2')).toBe('v1');
      expect(lockExists(tenant(h))).toBe(false);
      expect(historyOf(tenant(h))).toEqual([]);
      expect(ms).toBeLessThan(BOUND_MS);
      return {
        measured: 'failed at connect; .env v1, no lock, no history',
        faults: 1,
        ms,
        boundMs: BOUND_MS,
      };
    },
  );

  /** A fault from a step's start, healed after `healMs`: the recovery steps reconnect within their window. */
  async function faultThenHeal(
    version: string,
    step: string,
    inject: (h: NetHost) => void,
    heal: (h: NetHost) => void,
    healMs: number,
  ) {
    const { h, registryText } = await host();
    const { r, ms } = await deploy(
      registryText,
      version,
      once(step, 'start', () => {
        inject(h);
        later(healMs, () => heal(h));
      }),
    );
    await new Promise((done) => setTimeout(done, Math.max(0, healMs - ms) + 100));
    const env = expectState(h, 'v1', version);
    expect(lockExists(tenant(h))).toBe(false);
    expect(ms).toBeLessThan(BOUND_MS);
    return { h, r, ms, env };
  }

  scenario(
    'network faults',
    'packets dropped during pull (nftables), healed 5 s later',
    'the pull fails within its timeout; .env stays v1; the lock is released and the failure recorded',
    async () => {
      const { r, ms, env, h } = await faultThenHeal(
        'v2',
        'pull',
        (x) => x.nft('drop'),
        (x) => x.clearNft(),
        // after the 4 s pull timeout: healed earlier, TCP's retransmission may still finish the pull in time
        5000,
      );
      expect(r.outcome).toBe('failed');
      expect(env).toBe('v1');
      expect(historyOf(tenant(h)).at(-1)).toMatchObject({ outcome: 'failed', from: 'v1', to: 'v2' });
      return {
        measured: `${r.outcome}; .env v1, lock released, history: failed`,
        faults: 1,
        ms,
        boundMs: BOUND_MS,
      };
    },
  );

  scenario(
    'network faults',
    'connections reset during the switch (nftables tcp reset), healed 2 s later',
    '.env is v1 or v2, never torn; the history says which; the lock is released',
    async () => {
      const { r, ms, env } = await faultThenHeal(
        'v2',
        'update',
        (x) => x.nft('reset'),
        (x) => x.clearNft(),
        2000,
      );
      expect(['deployed', 'rolled-back', 'failed']).toContain(r.outcome);
      return {
        measured: `.env whole (one of v1/v2) and matching the history; lock released`,
        detail: `${r.outcome}, runs ${env}`,
        faults: 1,
        ms,
        boundMs: BOUND_MS,
      };
    },
  );

  scenario(
    'network faults',
    'server hung (SIGSTOP) through the health gate deadline, resumed 6 s later',
    'the gate fails at its deadline; rollback to v1 over a new connection; lock released',
    async () => {
      const { r, ms, env, h } = await faultThenHeal(
        'v2',
        'health',
        (x) => x.hang(),
        (x) => x.resume(),
        6000,
      );
      expect(r.outcome).toBe('rolled-back');
      expect(env).toBe('v1');
      expect(h.health()).toContain('"version":"v1"');
      return {
        measured: 'rolled back; .env v1, app healthy on v1, lock released',
        faults: 1,
        ms,
        boundMs: BOUND_MS,
      };
    },
  );

  scenario(
    'network faults',
    'link down during the rollback, up 2 s later',
    'the rollback reconnects and completes: .env v1, history rolled-back, lock released',
    async () => {
      const { r, ms, env, h } = await faultThenHeal(
        'bad-1',
        'rollback',
        (x) => x.linkDown(),
        (x) => x.linkUp(),
        2000,
      );
      expect(r.outcome).toBe('rolled-back');
      expect(env).toBe('v1');
      expect(historyOf(tenant(h)).at(-1)).toMatchObject({ outcome: 'rolled-back', from: 'v1', to: 'bad-1' });
      return {
        measured: 'rolled back; .env v1, history rolled-back, lock released',
        faults: 1,
        ms,
        boundMs: BOUND_MS,
      };
    },
  );

  scenario(
    'network faults',
    'link gone after the switch; unlock over a slow, lossy link (tbf 64 kbit, 30 % loss)',
    'the deploy reports the lock it leaves and how to release it; unlock releases it and notes the history',
    async () => {
      const { h, registryText } = await host();
      const { r, ms } = await deploy(
        registryText,
        'v2',
        once('update', 'ok', () => h.linkDown()),
        { recoveryWindowMs: 2000 },
      );
      expect(r.outcome).toBe('failed');
      expect(r.error).toContain('left on the server: the lock stays at');
      expect(ms).toBeLessThan(BOUND_MS);
      expect(lockExists(tenant(h))).toBe(true);
      expect(['v1', 'v2']).toContain(envVersion(h.tenantDir));
      h.linkUp();
      h.slowLink();
      h.nft({ loss: 3 });
      const t0 = Date.now();
      const u = unlock(registryText, '--force');
      const unlockMs = Date.now() - t0;
      expect(u.status).toBe(0);
      expect(u.stdout).toContain('released');
      expect(lockExists(tenant(h))).toBe(false);
      expect(historyOf(tenant(h)).at(-1)).toMatchObject({ outcome: 'failed', from: 'v1', to: 'v2' });
      return {
        measured:
          'deploy failed naming the lock and the unlock command; unlock released it over the bad link, history noted',
        faults: 2,
        ms: ms + unlockMs,
        boundMs: BOUND_MS + 60_000,
      };
    },
  );

  scenario(
    'network faults',
    'server drops off as a deploy starts its switch and stays away past the recovery window, then comes back',
    'the deploy ends within the window (and the seconds to notice the loss) naming what it left; the next deploy takes the expired lease over, mends the tenant and deploys, no person involved',
    async () => {
      const { h, registryText } = await host();
      const windowMs = OPTIONS.recoveryWindowMs;
      let downAt = 0;
      const { r, ms } = await deploy(
        registryText,
        'v2',
        // at the switch's start, not at a fixed second: a deploy that finished within that second would
        // never meet the drop (seen once in CI)
        once('update', 'start', () => {
          downAt = Date.now();
          h.linkDown();
        }),
        {},
        // a handshake may take 6 s (a slow link): a try still in flight at the window's end must not outlast it
        { ...CONNECT, connectTimeoutMs: 6000 },
      );
      const endedAt = Date.now();
      const t0 = endedAt - ms;
      // the window starts when the loss is noticed (the keepalive's 3 s at least, a command's timeout at
      // most) and every connection attempt in it is cut off at its end: the deploy ends within 3 s after
      // it (measured: 1–9 ms after it, 11.7–11.9 s after the drop, in 8 runs on a shared machine; 3.6 s
      // after it without the cut-off), having said when it ran out
      const windowEnd = Date.parse(/recovery window \(\d+ s, ended ([^)]+)\)/.exec(r.error ?? '')?.[1] ?? '');
      const bound = 3000;
      const afterDropMs = endedAt - downAt;
      expect(downAt).toBeGreaterThan(0);
      expect(windowEnd - downAt).toBeGreaterThan(windowMs);
      expect(windowEnd - downAt).toBeLessThan(windowMs + OPTIONS.commandTimeoutMs + 1500);
      expect(endedAt - windowEnd).toBeLessThan(bound);
      expect(r.outcome).toBe('failed');
      expect(r.error).toMatch(
        /lock stays at .* until its lease runs out .*the next deploy then takes it over/,
      );
      expect(lockExists(tenant(h))).toBe(true);

      // back once its lease has run out on the server's clock (the window and 2 s)
      const lease = Number(readFileSync(join(h.tenantDir, '.fleet', 'lock', 'lease'), 'utf8'));
      await new Promise((w) => setTimeout(w, Math.max(0, lease * 1000 - Date.now()) + 1500));
      h.linkUp();
      const next = await deploy(registryText, 'v3', () => undefined);
      expect(next.r.outcome).toBe('deployed');
      const took = next.r.steps.find((s) => s.step === 'take over');
      expect(took?.detail).toMatch(
        /^took over the lock of chaos \(run chaos-run, deploying v2, since [^)]+\): its lease ran out \d+ s ago; /,
      );
      expect(envVersion(h.tenantDir)).toBe('v3');
      expect(lockExists(tenant(h))).toBe(false);
      expect(historyOf(tenant(h)).at(-1)).toMatchObject({ outcome: 'deployed', to: 'v3' });
      // whether the drop caught the first deploy before or in its switch depends on the run: in the detail
      // (the CI log), not in the page generated from `measured`
      const mended = /switched back to v1/.test(took!.detail!)
        ? 'switched back to v1 first'
        : 'nothing to mend';
      return {
        measured:
          'first deploy failed within the window, lock left with its lease; next deploy took it over, mended what was left and deployed v3',
        faults: 1,
        ms: Date.now() - t0,
        boundMs: windowMs + OPTIONS.commandTimeoutMs + 1500 + bound,
        detail: `ended ${(afterDropMs / 1000).toFixed(1)} s after the drop; loss noticed ${((windowEnd - downAt - windowMs) / 1000).toFixed(1)} s after the drop; ended ${((endedAt - windowEnd) / 1000).toFixed(1)} s after the window (dropped ${downAt - t0} ms in); take-over (${mended}): ${took!.detail}`,
      };
    },
  );
});
