/**
 * `fleet-deploy demo`: a sandbox of 3 servers × 3 tenants; v1 everywhere; then v2 in waves 1,34%,100% where
 * one tenant's v2 is bad — with a failure budget of 0 (the rollout stops) and of 30% (it goes on); the
 * history of that tenant; a manual rollback; a rollout gated by an analysis between waves (a release whose
 * heartbeats stop is stopped at the first ring and rolled back, a healthy one soaks and goes on); a rollout
 * under load through a tenant's proxy, in place and then blue-green; then everything is torn down.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployFleet, type FleetOptions, type FleetReport } from '../deploy/fleet';
import { systemClock } from '../ports';
import { fetchUrl } from '../http/fetch';
import { planDeployment } from '../plan/plan';
import { parseRegistry, targetsOf, type Registry, type Target, type Tenant } from '../registry';
import { renderReport } from '../report/render';
import { plural, table } from '../report/table';
import { sandboxDown, sandboxUp } from '../sandbox/fleet';
import { freePort } from '../sandbox/ports';
import { startSandboxHub } from '../sandbox/hub';
import { countRequests, sandboxProxyCommands, startSandboxProxy } from '../sandbox/proxy';
import { SshConnector } from '../ssh/transport';
import { interruption, type CliIO } from './io';
import { Progress } from './progress';
import { colorWanted, painter } from './style';
import { wrapText } from './wrap';

type Values = Record<string, string | boolean | undefined>;

/** Thrown between the demo's acts once it was asked to stop. */
class Stopped extends Error {}

/** The exit code of a demo stopped by `reason`: 0 when its reader left (`| head`), else 128 + the signal. */
const stoppedCode = (reason: string) => (reason === 'SIGINT' ? 130 : reason === 'SIGTERM' ? 143 : 0);

export async function runDemo(_values: Values, io: CliIO): Promise<number> {
  const started = Date.now();
  const demo = new Demo(io);
  // A second Ctrl-C (or `timeout`'s signal echoed by npm) quits at once: tear down on the way out too.
  process.on('exit', demo.tearDown);
  let code = 1;
  try {
    await playActs(demo);
    code = 0;
  } catch (e) {
    code = demo.failed(e);
  } finally {
    process.off('exit', demo.tearDown);
    const down = demo.tearDown();
    if (interruption(io)) io.exitSoon?.(code);
    demo.say(
      `\n${demo.paint('9. Torn down', 'bold')}: sandbox servers stopped, ` +
        `${plural(down.services, 'service')} stopped. Demo took ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s.`,
    );
  }
  return code;
}

/** The acts in order; each one's title is where a demo asked to stop stops. */
async function playActs(demo: Demo): Promise<void> {
  const fleet = await startFleet(demo);
  await deployEverywhere(demo, fleet);
  const bad = await rollOutBrokenRelease(demo, fleet);
  showHistory(demo, bad);
  const victim = await rollBackOne(demo, fleet);
  await rollOutWatched(demo, fleet);
  await rollOutUnderLoad(demo, fleet, victim);
}

type DeployExtra = Partial<FleetOptions> & { select?: string; waves?: string };

/** The sandbox fleet the demo deploys to. */
interface DemoFleet {
  registryFile: string;
  registry: Registry;
  targets: Target[];
  deploy: (version: string, extra?: DeployExtra, from?: Registry) => Promise<FleetReport>;
}

/** The demo's terminal, its sandbox folder and the way it stops (at an act's title or at once). */
class Demo {
  readonly color: boolean;
  readonly paint: ReturnType<typeof painter>;
  readonly dir = mkdtempSync(join(tmpdir(), 'fleet-deploy-demo-'));
  handshakes = 0;
  private readonly stop: Promise<never>;

  constructor(readonly io: CliIO) {
    this.color = colorWanted(io.env, Boolean(io.tty));
    this.paint = painter(this.color);
    // Asked to stop: the sandbox is torn down at once, not after its targets in flight finish (a demo's
    // deploy has nothing worth finishing); what is left of the deploy then fails fast on closed servers.
    this.stop = new Promise<never>((_, reject) => {
      const abort = () => reject(new Stopped(interruption(io)));
      if (io.signal?.aborted) abort();
      else io.signal?.addEventListener('abort', abort, { once: true });
    });
    this.stop.catch(() => undefined);
  }

  /** Whether anything was written yet: the first heading opens the output, without a blank line. */
  private said = false;

  say(text = ''): void {
    this.said = true;
    this.io.stdout(`${text}\n`);
  }

  title(n: number, text: string): void {
    const why = interruption(this.io);
    if (why) throw new Stopped(why);
    // fitted to the terminal (80 columns when not one), continuation lines under the heading's text
    const lines = wrapText(`${n}. ${text}`, this.io.columns?.() ?? 80).split('\n');
    this.say(`${this.said ? '\n' : ''}${lines.map((l) => this.paint(l, 'bold')).join('\n')}`);
  }

  untilStopped<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.stop]);
  }

  readonly tearDown = () => {
    const down = sandboxDown(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
    return down;
  };

  /** Says why the demo ended early; the exit code. */
  failed(e: unknown): number {
    const why = e instanceof Stopped ? e.message : interruption(this.io);
    if (why) {
      this.io.stderr(`demo stopped (${why}): tearing the sandbox down\n`);
      return stoppedCode(why);
    }
    this.io.stderr(`demo failed: ${(e as Error).message}\n`);
    return 1;
  }

  /** One rollout with the demo's settings and a progress display. */
  async deploy(key: string, from: Registry, version: string, extra: DeployExtra = {}): Promise<FleetReport> {
    const { io } = this;
    const plan = planDeployment(from, { select: extra.select, waves: extra.waves });
    const progress = new Progress({
      write: io.stdout,
      tty: Boolean(io.tty),
      color: this.color,
      total: plan.total,
      columns: io.columns,
      onResize: io.onResize,
    });
    const report = await deployFleet(
      plan,
      {
        version,
        actor: 'demo',
        runId: 'demo',
        lockWaitMs: 5000,
        commandTimeoutMs: 30_000,
        pullTimeoutMs: 60_000,
        pullAttempts: 2,
        recoveryWindowMs: 30_000,
        concurrency: 6,
        perServer: 3,
        maxFailurePercent: 0,
        ...extra,
      },
      {
        connector: new SshConnector({ privateKey: key, onHandshake: () => this.handshakes++ }),
        clock: systemClock,
        urlGet: fetchUrl,
        signal: io.signal,
        onTarget: progress.onTarget,
        onWave: progress.onWave,
        onStep: io.tty ? progress.onStep : () => undefined,
      },
    );
    progress.finish();
    return report;
  }
}

/** Act 1: the sandbox fleet. */
async function startFleet(demo: Demo): Promise<DemoFleet> {
  demo.title(
    1,
    'A sandbox fleet: 3 servers × 3 tenants on 127.0.0.1 (real SSH; services are local processes)',
  );
  // a snappy gate: the bad release is rolled back after 4 s (9 targets leave the machine idle enough)
  const sb = await demo.untilStopped(
    sandboxUp(demo.dir, {
      servers: 3,
      tenantsPerServer: 3,
      health: { timeout: '1s', deadline: '4s' },
    }),
  );
  const registry = parseRegistry(readFileSync(sb.registry, 'utf8'), sb.registry);
  const key = readFileSync(sb.keyFile, 'utf8');
  const targets = targetsOf(registry);
  demo.say(
    table(
      ['TARGET', 'RING', 'REGION'],
      targets.map((t) => [t.id, t.tenant.ring, t.server.region]),
      '   ',
    ),
  );
  return {
    registryFile: sb.registry,
    registry,
    targets,
    deploy: (version, extra, from = registry) => demo.deploy(key, from, version, extra),
  };
}

/** Act 2: v1 everywhere, over one connection per server. */
async function deployEverywhere(demo: Demo, fleet: DemoFleet): Promise<void> {
  demo.title(2, 'Deploy v1 to every tenant');
  const r = await demo.untilStopped(fleet.deploy('v1'));
  demo.say(
    demo.paint(
      `   ${r.totals.deployed} deployed in ${(r.durationMs / 1000).toFixed(1)} s, one SSH connection ` +
        `per server (${demo.handshakes} handshakes)`,
      'green',
    ),
  );
}

/** Acts 3 and 4: a v2 that one canary tenant cannot run, with a failure budget of 0 and of 30%. */
async function rollOutBrokenRelease(demo: Demo, fleet: DemoFleet): Promise<Tenant> {
  const bad = fleet.registry.servers[0]!.tenants.find((t) => t.ring === 'canary')!;
  writeFileSync(join(bad.path, 'SANDBOX_BREAK'), 'v2\n');
  demo.title(3, `Deploy v2 in waves 1,34%,100% — ${bad.id}'s v2 is broken — failure budget 0`);
  let r = await demo.untilStopped(fleet.deploy('v2', { waves: '1,34%,100%' }));
  demo.say(demo.paint(`   ${r.stopped ?? 'not stopped'}`, r.stopped ? 'yellow' : 'green'));

  demo.title(4, 'The same rollout with a failure budget of 30% (1 failure in the 4 targets so far is 25%)');
  r = await demo.untilStopped(fleet.deploy('v2', { waves: '1,34%,100%', maxFailurePercent: 30 }));
  demo.say(renderReport(r).replace(/^/gm, '   '));
  return bad;
}

/** Act 5: the broken tenant's history, as its server keeps it. */
function showHistory(demo: Demo, tenant: Tenant): void {
  demo.title(5, `The release history of ${tenant.id} (the audit log on its server)`);
  const history = readFileSync(join(tenant.path, '.fleet', 'history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { time: string; outcome: string; from: string | null; to: string });
  demo.say(
    table(
      ['TIME', 'OUTCOME', 'FROM → TO'],
      history.map((h) => [h.time, h.outcome, `${h.from ?? '—'} → ${h.to}`]),
      '   ',
    ),
  );
}

/** Act 6: one general tenant back to its previous release; that tenant. */
async function rollBackOne(demo: Demo, fleet: DemoFleet): Promise<Target> {
  const victim = fleet.targets.find((t) => t.tenant.ring === 'general')!;
  demo.title(6, `A manual rollback: ${victim.id} back to its previous release`);
  const r = await demo.untilStopped(fleet.deploy('previous', { select: `id=${victim.id}`, rollback: {} }));
  const t = r.targets[0]!;
  demo.say(
    `   ${victim.id}: ` +
      `${t.outcome === 'deployed' ? demo.paint('rolled back', 'green') : demo.paint(t.outcome, 'red')} ` +
      `${t.previous?.version} → ${t.next?.version}`,
  );
  return victim;
}

/**
 * Act 7: analysis between waves. A "silent" v5 passes every health gate but its heartbeats stop; the
 * Hub's heartbeat API (a sandbox stand-in) is checked after each ring's wave: the canary wave's drop stops
 * the rollout and rolls that wave back. Then a healthy v5 soaks after each wave and goes on.
 */
async function rollOutWatched(demo: Demo, fleet: DemoFleet): Promise<void> {
  demo.title(7, "Analysis between waves: each ring soaks while the Hub's heartbeat API is checked");
  const ports = new Map(fleet.targets.map((t) => [t.tenant.id, t.tenant.health.port!]));
  const hub = await startSandboxHub(ports);
  try {
    const registry = withAnalysis(fleet.registryFile, {
      soak: '2s',
      interval: '1s',
      checks: [
        {
          name: 'heartbeat-drop',
          http: { url: `${hub.url}/heartbeats?tenants={tenants}` },
          failureCondition: 'json.dropPercent > 3',
        },
      ],
    });
    demo.say(
      '   rollout.analysis: heartbeat-drop = GET /heartbeats?tenants={tenants}, fails when json.dropPercent > 3',
    );
    for (const version of ['silent-5', 'v5']) {
      demo.say(
        `\n   ${version}${version.startsWith('silent') ? ' (its heartbeats stop)' : ''}, waves by ring:`,
      );
      const r = await demo.untilStopped(
        fleet.deploy(version, { waves: 'rings', analysis: registry.analysis! }),
      );
      for (const a of r.analysis ?? [])
        demo.say(
          `   analysis after wave ${a.wave}: ` +
            `${demo.paint(a.outcome, a.outcome === 'successful' ? 'green' : 'red')}, ` +
            `${a.checks[0]?.measurements.length ?? 0} measurement(s) in ${(a.durationMs / 1000).toFixed(1)} ` +
            `s, last: ${a.checks[0]?.measurements.at(-1)?.value ?? '-'}`,
        );
      const t = r.totals;
      demo.say(
        `   ${t.deployed} deployed, ${t['rolled-back']} rolled back, ${t.skipped} skipped` +
          (r.stopped ? ` — ${demo.paint('stopped', 'yellow')}` : ''),
      );
    }
  } finally {
    await hub.close();
  }
}

/** The sandbox registry with `rollout.analysis` added. */
function withAnalysis(registryFile: string, analysis: unknown): Registry {
  const raw = JSON.parse(readFileSync(registryFile, 'utf8')) as Record<string, unknown>;
  return parseRegistry(JSON.stringify({ ...raw, rollout: { analysis } }), registryFile);
}

/** Act 8: another general tenant deployed under load, in place and then blue-green. */
async function rollOutUnderLoad(demo: Demo, fleet: DemoFleet, victim: Target): Promise<void> {
  const shown = fleet.targets.find((t) => t.tenant.ring === 'general' && t.id !== victim.id)!;
  demo.title(8, `A rollout under load: ${shown.id} behind its sandbox proxy, a request every 20 ms`);
  const counts = await demo.untilStopped(countedRollouts(fleet.registryFile, shown, fleet.deploy));
  for (const [name, c] of [
    ['in place   (v3)', counts.inPlace],
    ['blue-green (v4)', counts.blueGreen],
  ] as const)
    demo.say(
      `   ${name}: ${c.sent} requests, ${c.failed === 0 ? demo.paint('0 failed', 'green') : demo.paint(`${c.failed} failed`, 'red')}`,
    );
}

type DemoDeploy = (version: string, extra: { select?: string }, from?: Registry) => Promise<FleetReport>;

/**
 * The tenant gets a boot time like a real app's (1.5 s) and a sandbox proxy in front of it; a request
 * counter runs through the proxy while it is deployed in place (the proxy answers 502 while the new process
 * boots), then while it moves to blue-green (the new slot boots beside the old one, the proxy is switched,
 * the old one drained: nothing fails).
 */
async function countedRollouts(registryFile: string, target: Target, deploy: DemoDeploy) {
  const dir = target.tenant.path;
  writeFileSync(join(dir, 'SANDBOX_BOOT_MS'), '1500\n');
  const proxy = await startSandboxProxy(dir, await freePort(), target.tenant.health.port!);
  const select = `id=${target.id}`;
  const counted = async (version: string, from?: Registry) => {
    const counter = countRequests(proxy.port);
    const report = await deploy(version, { select }, from).catch(async (e: unknown) => {
      await counter.stop();
      throw e;
    });
    const counts = await counter.stop();
    const r = report.targets[0];
    if (r?.outcome !== 'deployed') throw new Error(`${target.id}: ${version} was ${r?.outcome}: ${r?.error}`);
    return counts;
  };
  try {
    const inPlace = await counted('v3');
    const blueGreen = await counted('v4', await blueGreenRegistry(registryFile, target, proxy.port));
    return { inPlace, blueGreen };
  } finally {
    await proxy.stop();
  }
}

/** The sandbox registry with `target` moved to blue-green behind its sandbox proxy on `proxyPort`. */
async function blueGreenRegistry(registryFile: string, target: Target, proxyPort: number): Promise<Registry> {
  const raw = JSON.parse(readFileSync(registryFile, 'utf8')) as {
    servers: Array<{ tenants: Array<{ id: string; health?: object } & Record<string, unknown>> }>;
  };
  const entry = raw.servers
    .flatMap((s) => s.tenants)
    .find((t) => t.id === target.tenant.id && t.path === target.tenant.path)!;
  entry.health = { ...entry.health, port: proxyPort };
  entry.strategy = {
    kind: 'blue-green',
    slots: { blue: { port: await freePort() }, green: { port: await freePort() } },
    drainTimeout: '2s',
    proxy: sandboxProxyCommands,
  };
  return parseRegistry(JSON.stringify(raw), registryFile);
}
