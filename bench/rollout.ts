// npm run bench:rollout — a rollout of realistic images in waves, on the real engine, three ways:
//   ours        node dist/cli.js deploy --waves 1,5%,25%,100% (shared pulls and pre-pull on: the defaults)
//   ours-plain  the same with --share-pulls false --pre-pull false (each target pulls for itself, when
//               its turn comes)
//   floor       the plain parallel script of bench:fleet (bench/fleet/floor.ts: per target pull, switch,
//               up, gate, from the same builders), one `parallel` run per wave
// Then one crash-looping release deployed to one target by ours: the time from its switch to its rollback.
//
// Images (built here with podman, pushed to the local registry): fleet/big:vN = the busybox app of the e2e
// tests + a base layer (BENCH_BASE_MB, default 100) + a library layer (BENCH_LIB_MB, 60) + a layer of the
// version (BENCH_APP_MB, 40), all of random (incompressible) bytes; consecutive versions share every layer
// but the last, as real images do. Before each run the fleet is brought back to v1 and v2 removed from the
// engine, so each run pulls v2's new layer.
//
// Fleet: BENCH_SERVERS (20) real OpenSSH servers with 2 to BENCH_TENANTS_MAX (5) tenants each (2, 3, 4, 5,
// 2, …). All servers share ONE podman engine (as in bench:fleet): a layer one server pulled is in the store
// for all. So bytes are measured as what the registry served (its access log: each blob GET's size), and
// the pulls a run asked for as the manifest GETs; a fleet of separate engines would pull a new layer once
// per server, and the floor and ours-plain once per target racing on a server.
//
// Root required. Knobs: BENCH_SERVERS, BENCH_TENANTS_MAX, BENCH_CONCURRENCY (20), BENCH_BASE_MB,
// BENCH_LIB_MB, BENCH_APP_MB, BENCH_KEEP=1 (keep the temp dir). Writes bench/results/rollout-latest.{json,md}
// and its section of docs/PERFORMANCE.md.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Session } from './lib/session';
import { formatMarkdown, writeSection } from './lib/markdown';
import { engineUp, type Engine } from './fleet/engine';
import { floorArgv } from './fleet/floor';
import { onVersion } from './fleet/measure';
import { startFleet, type Fleet } from './fleet/servers';
import { planDeployment } from '../src/plan/plan';
import { parseRegistry } from '../src/registry';

const REPO_DIR = resolve(__dirname, '..');
const WAVES = '1,5%,25%,100%';
const log = (msg: string) => process.stderr.write(`bench:rollout: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function whole(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${v}: expected a whole number ≥ 1`);
  return n;
}

const knobs = {
  servers: whole('BENCH_SERVERS', 20),
  tenantsMax: Math.max(2, whole('BENCH_TENANTS_MAX', 5)),
  concurrency: whole('BENCH_CONCURRENCY', 20),
  baseMb: whole('BENCH_BASE_MB', 100),
  libMb: whole('BENCH_LIB_MB', 60),
  appMb: whole('BENCH_APP_MB', 40),
  keep: process.env.BENCH_KEEP === '1',
};

interface Bench {
  root: string;
  logs: string;
  session: Session;
  engine: Engine;
  env: NodeJS.ProcessEnv;
  registryLog: string;
  fleet: Fleet;
}

/** The engine's environment (engine-up.sh's export lines), for podman build and push. */
function engineEnv(root: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const line of readFileSync(join(root, 'engine', 'env'), 'utf8').split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  return env;
}

/** fleet/big:v1, v2 and crash: the app + base + lib layers + a layer of the version (random bytes). */
function buildImages(b: Pick<Bench, 'root' | 'env'>, registry: string): string {
  const ctx = join(b.root, 'images');
  mkdirSync(ctx, { recursive: true });
  const random = (file: string, mb: number) =>
    execFileSync('sh', ['-c', `head -c ${mb * 1024 * 1024} /dev/urandom > "$1"`, 'sh', file]);
  random(join(ctx, 'base.bin'), knobs.baseMb);
  random(join(ctx, 'lib.bin'), knobs.libMb);
  const repo = `${registry}/fleet/big`;
  for (const v of ['v1', 'v2', 'crash']) {
    const dir = join(ctx, v);
    mkdirSync(join(dir, 'www'), { recursive: true });
    mkdirSync(join(dir, 'bin'), { recursive: true });
    writeFileSync(join(dir, 'www', 'health'), `{"status":"ok","version":"${v}"}\n`);
    if (v === 'crash') {
      writeFileSync(join(dir, 'bin', 'app-start'), '#!/bin/sh\necho "crash: exits at once" >&2\nexit 3\n');
      chmodSync(join(dir, 'bin', 'app-start'), 0o755);
    } else random(join(dir, 'app.bin'), knobs.appMb);
    writeFileSync(
      join(ctx, `Containerfile.${v}`),
      `FROM ${registry}/fleet/app:v1\nCOPY base.bin /data/base.bin\nCOPY lib.bin /data/lib.bin\nCOPY ${v}/ /\n`,
    );
    const podman = (args: string[]) =>
      execFileSync('podman', args, { env: b.env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 900_000 });
    podman(['build', '-q', '--layers', '-f', join(ctx, `Containerfile.${v}`), '-t', `${repo}:${v}`, ctx]);
    podman(['push', '-q', '--tls-verify=false', `${repo}:${v}`]);
  }
  execFileSync('podman', ['rmi', '-f', `${repo}:v2`, `${repo}:crash`], { env: b.env, stdio: 'ignore' });
  return repo;
}

/** What the registry served since `offset`: blob bytes and manifest GETs of fleet/big. */
function served(b: Bench, offset: number): { bytes: number; manifests: number; blobs: number } {
  const text = readFileSync(b.registryLog, 'utf8').slice(offset);
  let bytes = 0;
  let blobs = 0;
  let manifests = 0;
  for (const m of text.matchAll(/"GET \/v2\/fleet\/big\/(blobs|manifests)\/\S+ HTTP\/[\d.]+" 200 (\d+)/g)) {
    if (m[1] === 'blobs') {
      blobs++;
      bytes += Number(m[2]);
    } else manifests++;
  }
  return { bytes, manifests, blobs };
}

const logSize = (b: Bench) => (existsSync(b.registryLog) ? readFileSync(b.registryLog, 'utf8').length : 0);

/** The fleet back on v1 (the floor, untimed), v2 gone from the engine. */
async function reset(b: Bench, label: string): Promise<void> {
  for (const t of b.fleet.targets) rmSync(join(t.dir, '.fleet', 'lock'), { recursive: true, force: true });
  const argv = floorArgv(
    b.fleet,
    join(b.root, 'floor', label),
    'v1',
    knobs.concurrency,
    join(b.logs, `${label}.joblog`),
  );
  await b.session.runAsync(label, argv, { env: floorEnv(b), timeoutMs: 900_000 });
  const n = await onVersion(b.fleet.targets, b.engine.repo, 'v1');
  if (n !== b.fleet.targets.length) throw new Error(`${label}: only ${n}/${b.fleet.targets.length} on v1`);
  execFileSync('podman', ['rmi', '-f', `${b.engine.repo}:v2`], { env: b.env, stdio: 'ignore' });
  await sleep(2000);
}

const floorEnv = (b: Bench) => ({ ...process.env, PARALLEL_HOME: join(b.root, 'parallel') });

function oursArgv(b: Bench, label: string, version: string, extra: string[]): string[] {
  return [
    process.execPath,
    join(REPO_DIR, 'dist/cli.js'),
    'deploy',
    '-r',
    b.fleet.registryFile,
    '--version',
    version,
    '--key',
    b.fleet.key,
    '--concurrency',
    String(knobs.concurrency),
    '--per-server',
    String(knobs.tenantsMax),
    '--report',
    join(b.logs, `${label}-report.json`),
    ...extra,
  ];
}

interface Run {
  wallS: number;
  deployed: number;
  servedMb: number;
  blobs: number;
  manifests: number;
  /** Of the targets' time, the share in their pull step (ours). */
  pullShare?: number;
  /** Pre-pulls done (ours). */
  prePulls?: number;
}

interface OursReport {
  targets: Array<{ durationMs: number; steps: Array<{ step: string; ms: number; ok: boolean }> }>;
  prePulls?: Array<{ status: string }>;
}

async function runOurs(b: Bench, label: string, extra: string[]): Promise<Run> {
  await reset(b, `reset-${label}`);
  const offset = logSize(b);
  log(`${label}: deploying v2 to ${b.fleet.targets.length} targets in waves ${WAVES}`);
  const r = await b.session.runAsync(label, oursArgv(b, label, 'v2', ['--waves', WAVES, ...extra]), {
    env: { ...process.env, NO_COLOR: '1' },
    cwd: REPO_DIR,
    timeoutMs: 1_800_000,
  });
  const s = served(b, offset);
  const report = JSON.parse(readFileSync(join(b.logs, `${label}-report.json`), 'utf8')) as OursReport;
  const sum = (f: (t: OursReport['targets'][number]) => number) =>
    report.targets.reduce((a, t) => a + f(t), 0);
  const pullMs = sum((t) => t.steps.filter((x) => x.step === 'pull').reduce((a, x) => a + x.ms, 0));
  return {
    wallS: r.wallS,
    deployed: await onVersion(b.fleet.targets, b.engine.repo, 'v2'),
    servedMb: s.bytes / 1024 / 1024,
    blobs: s.blobs,
    manifests: s.manifests,
    pullShare: pullMs / sum((t) => t.durationMs),
    prePulls: (report.prePulls ?? []).filter((p) => p.status === 'pulled').length,
  };
}

async function runFloor(b: Bench): Promise<Run> {
  await reset(b, 'reset-floor');
  const offset = logSize(b);
  const plan = planDeployment(
    parseRegistry(readFileSync(b.fleet.registryFile, 'utf8'), b.fleet.registryFile),
    {
      waves: WAVES,
    },
  );
  log(`floor: deploying v2, one parallel run per wave`);
  const t0 = performance.now();
  for (const wave of plan.plan) {
    const ids = new Set(wave.targets.map((t) => t.id));
    const sub: Fleet = { ...b.fleet, targets: b.fleet.targets.filter((t) => ids.has(t.target.id)) };
    const label = `floor-wave-${wave.index}`;
    const argv = floorArgv(
      sub,
      join(b.root, 'floor', label),
      'v2',
      knobs.concurrency,
      join(b.logs, `${label}.joblog`),
    );
    await b.session.runAsync(label, argv, { env: floorEnv(b), timeoutMs: 1_800_000 });
  }
  const wallS = (performance.now() - t0) / 1000;
  const s = served(b, offset);
  return {
    wallS,
    deployed: await onVersion(b.fleet.targets, b.engine.repo, 'v2'),
    servedMb: s.bytes / 1024 / 1024,
    blobs: s.blobs,
    manifests: s.manifests,
  };
}

/** One target deploys the crash-looping release: the time from its switch's end to its rollback's start. */
async function crashLoop(b: Bench): Promise<{ gateS: number; error: string; deadlineS: number }> {
  const target = b.fleet.targets[0]!.target.id;
  const label = 'crash';
  await b.session.runAsync(label, oursArgv(b, label, 'crash', ['--select', `id=${target}`]), {
    env: { ...process.env, NO_COLOR: '1' },
    cwd: REPO_DIR,
    timeoutMs: 600_000,
  });
  const report = JSON.parse(readFileSync(join(b.logs, `${label}-report.json`), 'utf8')) as {
    targets: Array<{ error?: string; steps: Array<{ step: string; ms: number }> }>;
  };
  const t = report.targets[0]!;
  const registry = JSON.parse(readFileSync(b.fleet.registryFile, 'utf8'));
  return {
    gateS: (t.steps.find((s) => s.step === 'health')?.ms ?? NaN) / 1000,
    error: t.error ?? '',
    deadlineS: parseInt(registry.defaults.tenant.health.deadline, 10),
  };
}

function render(b: Bench, runs: Record<string, Run>, crash: Awaited<ReturnType<typeof crashLoop>>): string {
  const n = b.fleet.targets.length;
  const row = (name: string, r: Run) =>
    `| ${name} | ${r.wallS.toFixed(1)} s | ${(r.wallS / runs.ours!.wallS).toFixed(2)}× | ${r.servedMb.toFixed(0)} MiB | ${r.blobs} | ${r.manifests} | ${r.pullShare === undefined ? '–' : `${(r.pullShare * 100).toFixed(0)}%`} | ${r.deployed}/${n} |`;
  const image = knobs.baseMb + knobs.libMb + knobs.appMb;
  const ratio = (a: string, c: string) => runs[a]!.wallS / runs[c]!.wallS;
  return `<!-- bench:rollout begin (written by npm run bench:rollout) -->

## A rollout of realistic images in waves — \`npm run bench:rollout\`

bench:rollout — ${b.fleet.servers.length} real OpenSSH servers × 2–${knobs.tenantsMax} tenants (${n} targets), waves ${WAVES}, concurrency ${knobs.concurrency}; images of ${image} MiB (random bytes: a ${knobs.baseMb} MiB base and a ${knobs.libMb} MiB library layer shared by every version, and a ${knobs.appMb} MiB layer of the version), v1 → v2; ${new Date().toISOString().slice(0, 10)}, node ${process.version}.

| run | wall | vs ours | registry served | blob GETs | manifest GETs (pulls asked) | target time in pull | on v2 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${row('ours (shared pulls + pre-pull)', runs.ours!)}
${row('ours without them', runs['ours-plain']!)}
${row('plain parallel script, per wave', runs.floor!)}

| target | value | |
| --- | ---: | --- |
| ours ≤ 0.6× ours without shared pulls and pre-pull | ${ratio('ours', 'ours-plain').toFixed(2)}× | ${ratio('ours', 'ours-plain') <= 0.6 ? 'met' : 'not met'} |
| ours ≥ 1.5× faster than the plain script | ${(1 / ratio('ours', 'floor')).toFixed(2)}× | ${ratio('ours', 'floor') <= 1 / 1.5 ? 'met' : 'not met'} |
| a crash loop rolled back ≤ 5 s after the switch (deadline ${crash.deadlineS} s) | ${crash.gateS.toFixed(1)} s | ${crash.gateS <= 5 ? 'met' : 'not met'} |

- ${runs.ours!.prePulls} pre-pulls ran in the ours run; the crash-looping release's error: \`${crash.error.slice(0, 160)}\`.
- One podman engine serves every server here: a layer pulled once is in the store for all, so "registry served" is the bytes of the whole fleet, not per server (one copy of the new ${knobs.appMb} MiB layer is the floor for this machine; separate engines would each need their own). Manifest GETs count the pulls each run asked the registry for: with shared pulls one per server and image, plus one per pre-pull (the wave's own pull after a pre-pull only checks the manifest); without, one per target.
- "target time in pull": the targets' pull steps over their whole time, from ours' report (the plain script does not time its steps).
- No soak between waves on this branch: each wave's health gate (2 healthy probes 0.5 s apart) is the only wait.
<!-- bench:rollout end -->
`;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('bench:rollout must run as root (sshd, the deploy user, podman)');
    return 2;
  }
  if (!existsSync(join(REPO_DIR, 'dist/cli.js'))) {
    console.error('dist/cli.js is missing: run `npm run build` first');
    return 2;
  }
  const root = mkdtempSync('/tmp/fd-rollout-');
  chmodSync(root, 0o755);
  const logs = join(root, 'logs');
  mkdirSync(logs);
  const session = new Session(logs, log);
  session.installHandlers();
  session.onCleanup(() =>
    knobs.keep ? log(`kept ${root}`) : rmSync(root, { recursive: true, force: true }),
  );
  try {
    const t0 = performance.now();
    const appEngine = engineUp('podman', session, REPO_DIR, root);
    const env = engineEnv(root);
    log(`building fleet/big:{v1,v2,crash} (${knobs.baseMb + knobs.libMb + knobs.appMb} MiB each)`);
    const repo = buildImages({ root, env }, env.FLEET_E2E_REGISTRY!);
    const engine: Engine = { ...appEngine, repo };
    const fleet = await startFleet(
      root,
      {
        servers: knobs.servers,
        tenants: 2,
        trace: false,
        tenantsOf: (s) => 2 + ((s - 1) % (knobs.tenantsMax - 1)),
      },
      engine,
      session,
    );
    const b: Bench = {
      root,
      logs,
      session,
      engine,
      env,
      registryLog: join(root, 'engine', 'logs', 'registry.log'),
      fleet,
    };
    log(`set up in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${fleet.targets.length} targets`);
    const runs: Record<string, Run> = {};
    runs.ours = await runOurs(b, 'ours', []);
    log(`ours: ${JSON.stringify(runs.ours)}`);
    runs['ours-plain'] = await runOurs(b, 'ours-plain', ['--share-pulls', 'false', '--pre-pull', 'false']);
    log(`ours-plain: ${JSON.stringify(runs['ours-plain'])}`);
    runs.floor = await runFloor(b);
    log(`floor: ${JSON.stringify(runs.floor)}`);
    const crash = await crashLoop(b);
    log(`crash: ${JSON.stringify(crash)}`);
    const md = await formatMarkdown(render(b, runs, crash));
    mkdirSync(join(REPO_DIR, 'bench/results'), { recursive: true });
    writeFileSync(
      join(REPO_DIR, 'bench/results/rollout-latest.json'),
      `${JSON.stringify({ knobs, runs, crash }, null, 2)}\n`,
    );
    writeFileSync(join(REPO_DIR, 'bench/results/rollout-latest.md'), md);
    writeSection(
      join(REPO_DIR, 'docs/PERFORMANCE.md'),
      '<!-- bench:rollout begin',
      '<!-- bench:rollout end -->',
      md.trim(),
    );
    process.stdout.write(md);
    return 0;
  } finally {
    session.cleanupAll();
  }
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    log(e.stack ?? e.message);
    process.exit(1);
  },
);
