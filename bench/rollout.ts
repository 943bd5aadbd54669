// npm run bench:rollout — a rollout of realistic images in waves, on real servers' engines, four ways:
//   ours        node dist/cli.js deploy --waves 1,5%,25%,100% (shared pulls and pre-pull on: the defaults)
//   ours-plain  the same with --share-pulls false --pre-pull false (each target pulls for itself, when
//               its turn comes)
//   floor       the plain parallel script of bench:fleet (bench/fleet/floor.ts: per target pull, switch,
//               up, gate, from the same builders), one `parallel` run per wave
//   ansible     the playbook of bench:fleet (bench/fleet/ansible.ts), one `ansible-playbook` run per wave
//               (when ansible-playbook is installed: `apt-get install -y ansible-core`)
// Every way soaks BENCH_SOAK_S (10) between waves: ours and ours-plain by the registry's rollout.analysis
// (one command check, `true`, at the start and the end of the soak), the floor and Ansible by a sleep.
// Then one crash-looping release deployed to one target by ours: the time from its switch to its rollback.
//
// Servers as real ones are: each server has its own container engine (a podman API service with its own
// storage and socket, bench/rollout/engines.ts; DOCKER_HOST per server through sshd's SetEnv), and
// reaches the registry through its own link of BENCH_LINK_MBIT (100) Mbit/s (a rate-limited TCP proxy on
// 127.0.0.1, bench/lib/links.ts, named as the registry's mirror in that engine's registries.conf). So a
// layer one server pulled is not in another's store, and a server's pulls share its link. What each
// server pulled is counted on its link.
//
// Images (built here with podman, pushed to the local registry): fleet/big:vN = the busybox app of the e2e
// tests + a base layer (BENCH_BASE_MB, default 100) + a library layer (BENCH_LIB_MB, 60) + a layer of the
// version (BENCH_APP_MB, 40), all of random (incompressible) bytes; consecutive versions share every layer
// but the last, as real images do. Each server's engine gets v1 before the runs (links unlimited); before
// each run the fleet is brought back to v1 and v2 removed from every engine, so each run pulls v2's layer.
//
// Fleet: BENCH_SERVERS (20) real OpenSSH servers with 2 to BENCH_TENANTS_MAX (5) tenants each (2, 3, 4, 5,
// 2, …). Each engine's store holds about 250 MiB and its service about 40 MiB of memory.
//
// Root required. Knobs: BENCH_SERVERS, BENCH_TENANTS_MAX, BENCH_CONCURRENCY (20), BENCH_SOAK_S,
// BENCH_LINK_MBIT, BENCH_BASE_MB, BENCH_LIB_MB, BENCH_APP_MB, BENCH_ONLY (runs, in order; default
// "ours,ours-plain,floor,ansible,crash"; develop with e.g. BENCH_SERVERS=3 BENCH_ONLY=ours), BENCH_KEEP=1
// (keep the temp dir), BENCH_OUT (the result files' name, default rollout-latest). Writes
// bench/results/rollout-latest.{json,md} and, for a whole run without BENCH_ONLY and BENCH_OUT, its section
// of docs/PERFORMANCE.md.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Session, tryRun } from './lib/session';
import { Links } from './lib/links';
import { formatMarkdown, writeSection } from './lib/markdown';
import { setUpAnsible } from './fleet/ansible';
import { engineUp, type Engine } from './fleet/engine';
import { floorArgv } from './fleet/floor';
import { machineCpuS, onVersion } from './fleet/measure';
import { startFleet, type Fleet } from './fleet/servers';
import { dropFrom, pullInto, startEngine, type ServerEngine } from './rollout/engines';
import { planDeployment } from '../src/plan/plan';
import { parseRegistry } from '../src/registry';
import { median } from './lib/stats';

const REPO_DIR = resolve(__dirname, '..');
const WAVES = '1,5%,25%,100%';
const RUNS = ['ours', 'ours-plain', 'floor', 'ansible', 'crash'] as const;
type RunName = (typeof RUNS)[number];
const log = (msg: string) => process.stderr.write(`bench:rollout: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

function whole(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${v}: expected a whole number ≥ 1`);
  return n;
}

function runsOf(v: string | undefined): RunName[] {
  if (!v) return [...RUNS];
  const names = v.split(',').map((x) => x.trim());
  const bad = names.filter((x) => !(RUNS as readonly string[]).includes(x));
  if (bad.length)
    throw new Error(`BENCH_ONLY=${v}: unknown run ${bad.join(', ')}; use some of ${RUNS.join(',')}`);
  return names as RunName[];
}

const knobs = {
  servers: whole('BENCH_SERVERS', 20),
  tenantsMax: Math.max(2, whole('BENCH_TENANTS_MAX', 5)),
  concurrency: whole('BENCH_CONCURRENCY', 20),
  soakS: whole('BENCH_SOAK_S', 10),
  linkMbit: whole('BENCH_LINK_MBIT', 100),
  baseMb: whole('BENCH_BASE_MB', 100),
  libMb: whole('BENCH_LIB_MB', 60),
  appMb: whole('BENCH_APP_MB', 40),
  runs: runsOf(process.env.BENCH_ONLY),
  keep: process.env.BENCH_KEEP === '1',
  out: process.env.BENCH_OUT || 'rollout-latest',
};
const hasAnsible = () => tryRun('sh', ['-c', 'command -v ansible-playbook']).status === 0;

interface Bench {
  root: string;
  logs: string;
  session: Session;
  engine: Engine;
  env: NodeJS.ProcessEnv;
  registryLog: string;
  fleet: Fleet;
  engines: ServerEngine[];
  links: Links;
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
    execFileSync('sh', ['-c', `head -c ${mb * MiB} /dev/urandom > "$1"`, 'sh', file]);
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

/** Manifest GETs of fleet/big the registry served since `offset`: the pulls asked for. */
function manifestGets(b: Bench, offset: number): number {
  const text = readFileSync(b.registryLog, 'utf8').slice(offset);
  return [...text.matchAll(/"GET \/v2\/fleet\/big\/manifests\/\S+ HTTP\/[\d.]+" 200 /g)].length;
}

const logSize = (b: Bench) => (existsSync(b.registryLog) ? readFileSync(b.registryLog, 'utf8').length : 0);

/** The fleet back on v1 (the floor, untimed), v2 gone from every engine. */
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
  for (const e of b.engines) dropFrom(e, `${b.engine.repo}:v2`);
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
  /** Bytes each server's link delivered during the run. */
  perServerMb: number[];
  manifests: number;
  /** Of the wall time, the share in which some server's link was transferring. */
  linkBusy: number;
  /** Machine CPU (all processes) during the run, in cores on average. */
  machineCores: number;
  /** Of the targets' time, the share in their pull step (ours). */
  pullShare?: number;
  /** Pre-pulls done (ours). */
  prePulls?: number;
  /** Where the time went, wave by wave (ours). */
  waves?: WaveTimes[];
}

interface OursReport {
  targets: Array<{
    wave: number;
    startedAt: string;
    durationMs: number;
    steps: Array<{ step: string; ms: number; ok: boolean }>;
  }>;
  prePulls?: Array<{ status: string }>;
}

/** One wave of ours' run: its span, the gap before it (soak and analysis) and its steps' medians. */
interface WaveTimes {
  wave: number;
  targets: number;
  /** From the wave's first target's start to its last target's end. */
  spanS: number;
  /** From the previous wave's last end to this wave's first start. */
  gapS: number;
  /** Median and longest of each step over the wave's targets, in seconds. */
  steps: Record<string, { median: number; max: number }>;
}

/** ours' report, wave by wave. */
function waveTimes(report: OursReport): WaveTimes[] {
  const out: WaveTimes[] = [];
  let lastEnd: number | undefined;
  for (const wave of [...new Set(report.targets.map((t) => t.wave))].sort((a, b) => a - b)) {
    const ts = report.targets.filter((t) => t.wave === wave && t.steps.length > 0);
    if (!ts.length) continue;
    const start = Math.min(...ts.map((t) => Date.parse(t.startedAt)));
    const end = Math.max(...ts.map((t) => Date.parse(t.startedAt) + t.durationMs));
    const steps: WaveTimes['steps'] = {};
    for (const name of [...new Set(ts.flatMap((t) => t.steps.map((x) => x.step)))]) {
      const ms = ts.map((t) => t.steps.filter((x) => x.step === name).reduce((a, x) => a + x.ms, 0));
      steps[name] = { median: median(ms) / 1000, max: Math.max(...ms) / 1000 };
    }
    out.push({
      wave,
      targets: ts.length,
      spanS: (end - start) / 1000,
      gapS: lastEnd === undefined ? 0 : (start - lastEnd) / 1000,
      steps,
    });
    lastEnd = end;
  }
  return out;
}

/** Runs `body` (the timed part) and measures what the fleet pulled and the machine spent meanwhile. */
async function measured(b: Bench, label: string, body: () => Promise<number>): Promise<Run> {
  await reset(b, `reset-${label}`);
  const offset = logSize(b);
  const bytes0 = b.links.counts();
  const cpu0 = machineCpuS();
  const t0 = performance.now();
  const wallS = await body();
  const t1 = performance.now();
  const cpu = machineCpuS() - cpu0;
  return {
    wallS,
    deployed: await onVersion(b.fleet.targets, b.engine.repo, 'v2'),
    perServerMb: b.links.counts().map((n, k) => (n - bytes0[k]!) / MiB),
    manifests: manifestGets(b, offset),
    linkBusy: b.links.busyShare(t0, t1),
    machineCores: cpu / ((t1 - t0) / 1000),
  };
}

async function runOurs(b: Bench, label: string, extra: string[]): Promise<Run> {
  const r = await measured(b, label, async () => {
    log(`${label}: deploying v2 to ${b.fleet.targets.length} targets in waves ${WAVES}`);
    const t = await b.session.runAsync(label, oursArgv(b, label, 'v2', ['--waves', WAVES, ...extra]), {
      env: { ...process.env, NO_COLOR: '1' },
      cwd: REPO_DIR,
      timeoutMs: 1_800_000,
    });
    return t.wallS;
  });
  const report = JSON.parse(readFileSync(join(b.logs, `${label}-report.json`), 'utf8')) as OursReport;
  const sum = (f: (t: OursReport['targets'][number]) => number) =>
    report.targets.reduce((a, t) => a + f(t), 0);
  const pullMs = sum((t) => t.steps.filter((x) => x.step === 'pull').reduce((a, x) => a + x.ms, 0));
  return {
    ...r,
    pullShare: pullMs / sum((t) => t.durationMs),
    prePulls: (report.prePulls ?? []).filter((p) => p.status === 'pulled').length,
    waves: waveTimes(report),
  };
}

/** The floor or Ansible: one run per wave, the soak slept between waves. */
async function runPerWave(b: Bench, name: 'floor' | 'ansible'): Promise<Run> {
  const plan = planDeployment(
    parseRegistry(readFileSync(b.fleet.registryFile, 'utf8'), b.fleet.registryFile),
    { waves: WAVES },
  );
  return measured(b, name, async () => {
    log(`${name}: deploying v2, one run per wave, ${knobs.soakS} s soak between waves`);
    const t0 = performance.now();
    for (const wave of plan.plan) {
      const ids = new Set(wave.targets.map((t) => t.id));
      const targets = b.fleet.targets.filter((t) => ids.has(t.target.id));
      const sub: Fleet = {
        ...b.fleet,
        targets,
        servers: b.fleet.servers.filter((s) => targets.some((t) => t.server === s)),
      };
      const label = `${name}-wave-${wave.index}`;
      const dir = join(b.root, name, label);
      if (name === 'floor') {
        const argv = floorArgv(sub, dir, 'v2', knobs.concurrency, join(b.logs, `${label}.joblog`));
        await b.session.runAsync(label, argv, { env: floorEnv(b), timeoutMs: 1_800_000 });
      } else {
        const ansible = setUpAnsible(dir, sub, b.engine, knobs.concurrency);
        await b.session.runAsync(label, ansible.argv, { env: ansible.env, timeoutMs: 1_800_000 });
        ansible.closeControlMasters();
      }
      if (wave.index < plan.plan.length) await sleep(knobs.soakS * 1000);
    }
    return (performance.now() - t0) / 1000;
  });
}

/**
 * When the engine of server `e` saw container `id` (a prefix) die first: its events log (podman's "died"
 * event), in ms since the epoch.
 */
function firstExitMs(e: ServerEngine, id: string): number {
  const events = readFileSync(join(e.dir, 'logs', 'events.log'), 'utf8').split('\n');
  for (const line of events) {
    if (!line.includes('"died"') || !line.includes(id)) continue;
    const m = /"Time":"([^"]+)"/.exec(line);
    if (m) return Date.parse(m[1]!.replace(/(\.\d{3})\d*/, '$1'));
  }
  return NaN;
}

/**
 * One target deploys the crash-looping release: its health gate's time, and the time from its container's
 * first exit (the engine's events) to the start of its rollback (the report's steps, end to end).
 */
async function crashLoop(
  b: Bench,
): Promise<{ gateS: number; exitToRollbackS: number; error: string; deadlineS: number }> {
  const first = b.fleet.targets[0]!;
  const label = 'crash';
  await b.session.runAsync(label, oursArgv(b, label, 'crash', ['--select', `id=${first.target.id}`]), {
    env: { ...process.env, NO_COLOR: '1' },
    cwd: REPO_DIR,
    timeoutMs: 600_000,
  });
  const report = JSON.parse(readFileSync(join(b.logs, `${label}-report.json`), 'utf8')) as {
    targets: Array<{ error?: string; startedAt: string; steps: Array<{ step: string; ms: number }> }>;
  };
  const t = report.targets[0]!;
  const before = t.steps.slice(
    0,
    Math.max(
      0,
      t.steps.findIndex((s) => s.step === 'rollback'),
    ),
  );
  const rollbackAt = Date.parse(t.startedAt) + before.reduce((a, s) => a + s.ms, 0);
  const id = /container ([0-9a-f]{12})/.exec(t.error ?? '')?.[1] ?? '?';
  const engine = b.engines[b.fleet.servers.indexOf(first.server)]!;
  const registry = JSON.parse(readFileSync(b.fleet.registryFile, 'utf8'));
  return {
    gateS: (t.steps.find((s) => s.step === 'health')?.ms ?? NaN) / 1000,
    exitToRollbackS: (rollbackAt - firstExitMs(engine, id)) / 1000,
    error: t.error ?? '',
    deadlineS: parseInt(registry.defaults.tenant.health.deadline, 10),
  };
}

type Crash = Awaited<ReturnType<typeof crashLoop>>;

const NAMES: Record<Exclude<RunName, 'crash'>, string> = {
  ours: 'ours (shared pulls + pre-pull)',
  'ours-plain': 'ours without them',
  floor: 'plain parallel script, per wave',
  ansible: 'Ansible, per wave',
};

/** ours and ours without shared pulls and pre-pull, wave by wave: the span, the gap, the steps. */
function waveRows(runs: Partial<Record<RunName, Run>>): string[] {
  const steps = ['prepare', 'pull', 'update', 'health', 'finish'];
  const cell = (w: WaveTimes, step: string) =>
    w.steps[step] ? `${w.steps[step]!.median.toFixed(1)} / ${w.steps[step]!.max.toFixed(1)} s` : '–';
  return (['ours', 'ours-plain'] as const).flatMap((k) =>
    (runs[k]?.waves ?? []).map(
      (w) =>
        `| ${k === 'ours' ? 'ours' : 'without'} | ${w.wave} | ${w.targets} | ${w.gapS.toFixed(1)} s | ` +
        `${w.spanS.toFixed(1)} s | ${steps.map((x) => cell(w, x)).join(' | ')} |`,
    ),
  );
}

function targetRows(runs: Partial<Record<RunName, Run>>, crash: Crash | undefined): string[] {
  const rows: string[] = [];
  const { ours, floor } = runs;
  const plain = runs['ours-plain'];
  const row = (what: string, value: string, met: boolean) =>
    rows.push(`| ${what} | ${value} | ${met ? 'met' : 'not met'} |`);
  if (ours && plain)
    row(
      'ours ≤ 0.6× ours without shared pulls and pre-pull',
      `${(ours.wallS / plain.wallS).toFixed(2)}×`,
      ours.wallS / plain.wallS <= 0.6,
    );
  if (ours && floor)
    row(
      'ours ≥ 1.5× faster than the plain script',
      `${(floor.wallS / ours.wallS).toFixed(2)}×`,
      floor.wallS / ours.wallS >= 1.5,
    );
  if (ours && runs.ansible)
    row(
      'ours faster than Ansible (no target set)',
      `${(runs.ansible.wallS / ours.wallS).toFixed(2)}×`,
      runs.ansible.wallS > ours.wallS,
    );
  if (ours) {
    const most = Math.max(...ours.perServerMb);
    row(
      `bytes pulled per server ≤ one copy of the new layer (${knobs.appMb} MiB + manifests)`,
      `${most.toFixed(1)} MiB at most`,
      most <= knobs.appMb * 1.05,
    );
  }
  if (crash)
    row(
      `a crash loop rolled back ≤ 5 s after its first exit (health deadline ${crash.deadlineS} s)`,
      `${crash.exitToRollbackS.toFixed(1)} s (gate ${crash.gateS.toFixed(1)} s)`,
      crash.exitToRollbackS <= 5,
    );
  return rows;
}

function render(b: Bench, runs: Partial<Record<RunName, Run>>, crash: Crash | undefined): string {
  const n = b.fleet.targets.length;
  const base = runs.ours ?? Object.values(runs)[0]!;
  const mb = (xs: number[]) =>
    `${(xs.reduce((a, x) => a + x, 0) / xs.length).toFixed(1)} / ${Math.max(...xs).toFixed(1)} MiB`;
  const pct = (x: number | undefined) => (x === undefined ? '–' : `${(x * 100).toFixed(0)}%`);
  const row = (name: string, r: Run) =>
    `| ${name} | ${r.wallS.toFixed(1)} s | ${(r.wallS / base.wallS).toFixed(2)}× | ${mb(r.perServerMb)} | ${r.manifests} | ${pct(r.linkBusy)} | ${pct(r.pullShare)} | ${r.machineCores.toFixed(2)} | ${r.deployed}/${n} |`;
  const image = knobs.baseMb + knobs.libMb + knobs.appMb;
  const table = (Object.keys(NAMES) as Array<keyof typeof NAMES>)
    .filter((k) => runs[k])
    .map((k) => row(NAMES[k], runs[k]!));
  const ansibleNote = runs.ansible
    ? ''
    : hasAnsible()
      ? '\n- Ansible was not part of this run (BENCH_ONLY).'
      : '\n- Ansible is not installed here; `apt-get install -y ansible-core` adds its run.';
  return `<!-- bench:rollout begin (written by npm run bench:rollout) -->

## A rollout of realistic images in waves — \`npm run bench:rollout\`

bench:rollout — ${b.fleet.servers.length} real OpenSSH servers × 2–${knobs.tenantsMax} tenants (${n} targets), each server its own podman engine and store and its own ${knobs.linkMbit} Mbit/s link to the registry; waves ${WAVES}, ${knobs.soakS} s soak between waves, concurrency ${knobs.concurrency}; images of ${image} MiB (random bytes: a ${knobs.baseMb} MiB base and a ${knobs.libMb} MiB library layer shared by every version, and a ${knobs.appMb} MiB layer of the version), v1 → v2; ${new Date().toISOString().slice(0, 10)}, node ${process.version}.

| run | wall | vs ours | pulled per server (mean / most) | manifest GETs (pulls asked) | wall time pulling | target time in pull | machine CPU (cores) | on v2 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${table.join('\n')}

| target | value | |
| --- | ---: | --- |
${targetRows(runs, crash).join('\n')}

Where the time went, wave by wave (from the reports; a step's median / longest over the wave's targets):

| run | wave | targets | gap before it | wave's span | prepare | pull | update (compose up) | health | finish |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${waveRows(runs).join('\n')}

- ${runs.ours?.prePulls ?? 0} pre-pulls ran in the ours run${crash ? `; the crash-looping release's error: \`${crash.error.slice(0, 160)}\`` : ''}.
- "pulled per server": the bytes each server's link delivered during the run (layers and manifests); one copy of the new layer is ${knobs.appMb} MiB. Manifest GETs count the pulls each run asked the registry for: with shared pulls one per server and image, plus one per pre-pull; without, one per target.
- "wall time pulling": the share of the run's wall time in which some server's link was transferring (100 ms slots); with pre-pull most of it overlaps a soak, without it every target waits for it. "target time in pull": the targets' pull steps over their whole time, from ours' report (the scripts do not time their steps).
- "machine CPU": every process on this machine during the run, in cores on average (2 cores, shared with other work).
- The floor and Ansible sleep the same soak between waves as ours' analysis does.${ansibleNote}
<!-- bench:rollout end -->
`;
}

/** Per server: its link, its engine (v1 in its store); the fleet on those engines. */
async function setUp(root: string, session: Session): Promise<Omit<Bench, 'logs'>> {
  const appEngine = engineUp('podman', session, REPO_DIR, root);
  const env = engineEnv(root);
  log(`building fleet/big:{v1,v2,crash} (${knobs.baseMb + knobs.libMb + knobs.appMb} MiB each)`);
  const registry = env.FLEET_E2E_REGISTRY!;
  const repo = buildImages({ root, env }, registry);
  const engine: Engine = { ...appEngine, repo };
  const links = new Links(Number(registry.split(':')[1]));
  session.onCleanup(() => links.close());
  await links.open(knobs.servers);
  log(`starting ${knobs.servers} engines, each pulling v1 (links unlimited)`);
  const engines: ServerEngine[] = [];
  mkdirSync(join(root, 'e'));
  for (let s = 0; s < knobs.servers; s++)
    engines.push(await startEngine(join(root, 'e', String(s + 1)), registry, links.links[s]!.port, session));
  for (let s = 0; s < engines.length; s += 4)
    await Promise.all(engines.slice(s, s + 4).map((e) => pullInto(e, `${repo}:v1`)));
  links.rate = (knobs.linkMbit * 1_000_000) / 8;
  const fleet = await startFleet(
    root,
    {
      servers: knobs.servers,
      tenants: 2,
      trace: false,
      tenantsOf: (s) => 2 + ((s - 1) % (knobs.tenantsMax - 1)),
      engineOf: (s) => ({ ...engine, sessionEnv: { DOCKER_HOST: engines[s - 1]!.dockerHost } }),
    },
    engine,
    session,
  );
  // The soak between waves: one command check at its start and its end.
  const text = JSON.parse(readFileSync(fleet.registryFile, 'utf8'));
  const soak = `${knobs.soakS}s`;
  text.rollout = { analysis: { soak, interval: soak, checks: [{ name: 'soak', command: 'true' }] } };
  writeFileSync(fleet.registryFile, JSON.stringify(text, null, 2));
  return {
    root,
    session,
    engine,
    env,
    registryLog: join(root, 'engine', 'logs', 'registry.log'),
    fleet,
    engines,
    links,
  };
}

async function runAll(b: Bench): Promise<{ runs: Partial<Record<RunName, Run>>; crash?: Crash }> {
  const runs: Partial<Record<RunName, Run>> = {};
  let crash: Crash | undefined;
  for (const name of knobs.runs) {
    if (name === 'ours') runs.ours = await runOurs(b, 'ours', []);
    else if (name === 'ours-plain')
      runs['ours-plain'] = await runOurs(b, 'ours-plain', ['--share-pulls', 'false', '--pre-pull', 'false']);
    else if (name === 'floor') runs.floor = await runPerWave(b, 'floor');
    else if (name === 'ansible') {
      if (hasAnsible()) runs.ansible = await runPerWave(b, 'ansible');
      else log('ansible-playbook is not installed: no Ansible run (apt-get install -y ansible-core)');
    } else crash = await crashLoop(b);
    log(`${name}: ${JSON.stringify(name === 'crash' ? crash : runs[name])}`);
  }
  return { runs, crash };
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
  // ours' code cache (src/cli/code-cache.ts) in the run's own directory, removed with it (it must exist:
  // the command makes nothing in an XDG_CACHE_HOME that is not there)
  process.env.XDG_CACHE_HOME = join(root, 'cache');
  mkdirSync(process.env.XDG_CACHE_HOME, { mode: 0o700 });
  const session = new Session(logs, log);
  session.installHandlers();
  session.onCleanup(() =>
    knobs.keep ? log(`kept ${root}`) : rmSync(root, { recursive: true, force: true }),
  );
  try {
    const t0 = performance.now();
    const b: Bench = { ...(await setUp(root, session)), logs };
    log(`set up in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${b.fleet.targets.length} targets`);
    const { runs, crash } = await runAll(b);
    const md = await formatMarkdown(render(b, runs, crash));
    mkdirSync(join(REPO_DIR, 'bench/results'), { recursive: true });
    writeFileSync(
      join(REPO_DIR, `bench/results/${knobs.out}.json`),
      `${JSON.stringify({ knobs, runs, crash }, null, 2)}\n`,
    );
    writeFileSync(join(REPO_DIR, `bench/results/${knobs.out}.md`), md);
    if (!process.env.BENCH_ONLY && !process.env.BENCH_OUT)
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
