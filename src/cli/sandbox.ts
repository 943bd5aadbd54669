/** `fleet-deploy sandbox up|down|status` and `fleet-deploy demo`: the local sandbox fleet. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError } from '../errors';
import { deployFleet, type FleetOptions, type FleetReport } from '../deploy/fleet';
import { systemClock } from '../deploy/ports';
import { fetchUrl } from '../http/fetch';
import { planDeployment } from '../plan/plan';
import { parseRegistry, targetsOf, type Registry, type Target } from '../registry';
import { renderReport } from '../report/render';
import { plural, table } from '../report/table';
import { sandboxDirDefault, sandboxDown, sandboxPid, sandboxServe, sandboxUp } from '../sandbox/fleet';
import { freePort } from '../sandbox/ports';
import { countRequests, sandboxProxyCommands, startSandboxProxy } from '../sandbox/proxy';
import { SshConnector } from '../ssh/transport';
import { wholeNumber } from '../values';
import { interruption, type CliIO } from './io';
import { Progress } from './progress';
import { colorWanted, painter } from './style';

type Values = Record<string, string | boolean | undefined>;

export const SANDBOX_USAGE = `fleet-deploy sandbox up|down|status [--dir DIR] [--servers N] [--tenants N]

A local SANDBOX fleet for trying fleet-deploy without servers, root or Docker: N sandbox servers on
127.0.0.1, each a real SSH endpoint with its own host key, whose tenants run on the sandbox container
runtime (each service a local process answering /health with its version). \`up\` writes DIR/registry.json
(host keys pinned), DIR/known_hosts and DIR/client_key, so these work against it:
  fleet-deploy deploy -r DIR/registry.json --key DIR/client_key --version v1
Tags can break a release on purpose: broken-* never gets healthy, slow-* takes 20 s, flaky-* flaps.
The registry's health gate allows 3 s per probe and 30 s in all, enough for a sandbox of many servers
deploying at high concurrency on a laptop's few cores; edit DIR/registry.json for another.

Options:
      --dir DIR     where the sandbox lives (default: $FLEET_SANDBOX_DIR or ./.fleet-sandbox)
      --servers N   sandbox servers (default 3)
      --tenants N   tenants per server (default 3)`;

export async function runSandbox(values: Values, positionals: string[], io: CliIO): Promise<number> {
  const dir = (values.dir as string | undefined) ?? sandboxDirDefault();
  const verb = positionals[0];
  switch (verb) {
    case 'up': {
      const servers = wholeNumber(values.servers as string | undefined, '--servers', 3);
      const tenants = wholeNumber(values.tenants as string | undefined, '--tenants', 3);
      const self = io.self ?? 'fleet-deploy';
      const r = await sandboxUp(dir, { servers, tenantsPerServer: tenants }, undefined, self);
      io.stdout(
        `Sandbox fleet up: ${plural(servers, 'server')} × ${plural(tenants, 'tenant')} on 127.0.0.1 (SANDBOX: local processes, not containers)\n  registry     ${r.registry}\n  key          ${r.keyFile}\n  known_hosts  ${r.knownHosts}\nTry: ${self} deploy -r ${r.registry} --key ${r.keyFile} --version v1\nStop: ${self} sandbox down --dir ${dir}\n`,
      );
      return 0;
    }
    case 'down': {
      const r = sandboxDown(dir);
      io.stdout(
        `Sandbox ${r.servers ? 'servers stopped' : 'servers were not running'}; ${plural(r.services, 'service')} stopped.\n`,
      );
      return 0;
    }
    case 'status': {
      const pid = sandboxPid(dir);
      if (!pid || !existsSync(join(dir, 'registry.json'))) {
        io.stdout(`No sandbox running in ${dir}.\n`);
        return 1;
      }
      const registry = parseRegistry(
        readFileSync(join(dir, 'registry.json'), 'utf8'),
        join(dir, 'registry.json'),
      );
      const rows = await Promise.all(
        targetsOf(registry).map(async (t) => {
          const h = await fetchUrl(`http://127.0.0.1:${t.tenant.health.port}/health`, 1000).catch(
            () => undefined,
          );
          return [
            t.id,
            `${t.server.host}:${t.server.port}`,
            t.tenant.ring,
            h ? `${h.status} ${h.body}` : 'not running',
          ];
        }),
      );
      io.stdout(
        `Sandbox running in ${dir} (pid ${pid})\n${table(['TARGET', 'SSH', 'RING', 'HEALTH'], rows)}\n`,
      );
      return 0;
    }
    case 'serve':
      await sandboxServe(dir);
      return 0;
    default:
      throw new ConfigurationError([
        {
          path: [],
          source: 'fleet-deploy sandbox',
          message: `${JSON.stringify(verb ?? '')} is not up, down or status`,
        },
      ]);
  }
}

/** Thrown between the demo's acts once it was asked to stop. */
class Stopped extends Error {}

/** The exit code of a demo stopped by `reason`: 0 when its reader left (`| head`), else 128 + the signal. */
const stoppedCode = (reason: string) => (reason === 'SIGINT' ? 130 : reason === 'SIGTERM' ? 143 : 0);

/**
 * The demo: a sandbox of 3 servers × 3 tenants; v1 everywhere; then v2 in waves 1,34%,100% where one
 * tenant's v2 is bad — with a failure budget of 0 (the rollout stops) and of 30% (it goes on); the
 * history of that tenant; a manual rollback; a rollout under load through a tenant's proxy, in place
 * and then blue-green; then everything is torn down.
 */
export async function runDemo(_values: Values, io: CliIO): Promise<number> {
  const color = colorWanted(io.env, Boolean(io.tty));
  const paint = painter(color);
  const say = (t = '') => io.stdout(`${t}\n`);
  const title = (n: number, t: string) => {
    const why = interruption(io);
    if (why) throw new Stopped(why);
    say(`\n${paint(`${n}. ${t}`, 'bold')}`);
  };
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'fleet-deploy-demo-'));
  // A second Ctrl-C (or `timeout`'s signal echoed by npm) quits at once: tear down on the way out too.
  const tearDown = () => {
    const down = sandboxDown(dir);
    rmSync(dir, { recursive: true, force: true });
    return down;
  };
  process.on('exit', tearDown);
  // Asked to stop: the sandbox is torn down at once, not after its targets in flight finish (a demo's
  // deploy has nothing worth finishing); what is left of the deploy then fails fast on closed servers.
  const stop = new Promise<never>((_, reject) => {
    const abort = () => reject(new Stopped(interruption(io)));
    if (io.signal?.aborted) abort();
    else io.signal?.addEventListener('abort', abort, { once: true });
  });
  stop.catch(() => undefined);
  const untilStopped = <T>(work: Promise<T>) => Promise.race([work, stop]);
  let code = 1;
  try {
    title(1, 'A sandbox fleet: 3 servers × 3 tenants on 127.0.0.1 (real SSH; services are local processes)');
    // a snappy gate: the bad release is rolled back after 4 s (9 targets leave the machine idle enough)
    const sb = await untilStopped(
      sandboxUp(dir, {
        servers: 3,
        tenantsPerServer: 3,
        health: { timeout: '1s', deadline: '4s' },
      }),
    );
    const registry = parseRegistry(readFileSync(sb.registry, 'utf8'), sb.registry);
    const key = readFileSync(sb.keyFile, 'utf8');
    const targets = targetsOf(registry);
    say(
      table(
        ['TARGET', 'RING', 'REGION'],
        targets.map((t) => [t.id, t.tenant.ring, t.server.region]),
        '   ',
      ),
    );

    let handshakes = 0;
    const deploy = async (
      version: string,
      extra: Partial<FleetOptions> & { select?: string; waves?: string } = {},
      from: Registry = registry,
    ): Promise<FleetReport> => {
      const plan = planDeployment(from, { select: extra.select, waves: extra.waves });
      const progress = new Progress({
        write: io.stdout,
        tty: Boolean(io.tty),
        color,
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
          connector: new SshConnector({ privateKey: key, onHandshake: () => handshakes++ }),
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
    };

    title(2, 'Deploy v1 to every tenant');
    let r = await untilStopped(deploy('v1'));
    say(
      paint(
        `   ${r.totals.deployed} deployed in ${(r.durationMs / 1000).toFixed(1)} s, one SSH connection per server (${handshakes} handshakes)`,
        'green',
      ),
    );

    const bad = registry.servers[0]!.tenants.find((t) => t.ring === 'canary')!;
    writeFileSync(join(bad.path, 'SANDBOX_BREAK'), 'v2\n');
    title(3, `Deploy v2 in waves 1,34%,100% — ${bad.id}'s v2 is broken — failure budget 0`);
    r = await untilStopped(deploy('v2', { waves: '1,34%,100%' }));
    say(paint(`   ${r.stopped ?? 'not stopped'}`, r.stopped ? 'yellow' : 'green'));

    title(4, 'The same rollout with a failure budget of 30% (1 failure in the 4 targets so far is 25%)');
    r = await untilStopped(deploy('v2', { waves: '1,34%,100%', maxFailurePercent: 30 }));
    say(renderReport(r).replace(/^/gm, '   '));

    title(5, `The release history of ${bad.id} (the audit log on its server)`);
    const history = readFileSync(join(bad.path, '.fleet', 'history.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { time: string; outcome: string; from: string | null; to: string });
    say(
      table(
        ['TIME', 'OUTCOME', 'FROM → TO'],
        history.map((h) => [h.time, h.outcome, `${h.from ?? '—'} → ${h.to}`]),
        '   ',
      ),
    );

    const victim = targets.find((t) => t.tenant.ring === 'general')!;
    title(6, `A manual rollback: ${victim.id} back to its previous release`);
    r = await untilStopped(deploy('previous', { select: `id=${victim.id}`, rollback: {} }));
    const t = r.targets[0]!;
    say(
      `   ${victim.id}: ${t.outcome === 'deployed' ? paint('rolled back', 'green') : paint(t.outcome, 'red')} ${t.previous?.version} → ${t.next?.version}`,
    );

    const shown = targets.find((t) => t.tenant.ring === 'general' && t.id !== victim.id)!;
    title(7, `A rollout under load: ${shown.id} behind its sandbox proxy, a request every 20 ms`);
    const counts = await untilStopped(rolloutUnderLoad(sb.registry, shown, deploy));
    for (const [name, c] of [
      ['in place   (v3)', counts.inPlace],
      ['blue-green (v4)', counts.blueGreen],
    ] as const)
      say(
        `   ${name}: ${c.sent} requests, ${c.failed === 0 ? paint('0 failed', 'green') : paint(`${c.failed} failed`, 'red')}`,
      );
    code = 0;
  } catch (e) {
    const why = e instanceof Stopped ? e.message : interruption(io);
    if (why) {
      io.stderr(`demo stopped (${why}): tearing the sandbox down\n`);
      code = stoppedCode(why);
    } else {
      io.stderr(`demo failed: ${(e as Error).message}\n`);
      code = 1;
    }
  } finally {
    process.off('exit', tearDown);
    const down = tearDown();
    if (interruption(io)) io.exitSoon?.(code);
    say(
      `\n${paint('8. Torn down', 'bold')}: sandbox servers stopped, ${plural(down.services, 'service')} stopped. Demo took ${((Date.now() - started) / 1000).toFixed(1)} s.`,
    );
  }
  return code;
}

export type { Registry };

type DemoDeploy = (version: string, extra: { select?: string }, from?: Registry) => Promise<FleetReport>;

/**
 * The demo's seventh act: the tenant gets a boot time like a real app's (1.5 s) and a sandbox proxy in
 * front of it; a request counter runs through the proxy while it is deployed in place (the proxy answers
 * 502 while the new process boots), then while it moves to blue-green (the new slot boots beside the old
 * one, the proxy is switched, the old one drained: nothing fails).
 */
async function rolloutUnderLoad(registryFile: string, target: Target, deploy: DemoDeploy) {
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
