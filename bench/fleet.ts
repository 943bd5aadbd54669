// npm run bench:fleet — deploys v2 to a real fleet of S sshd "servers" × T tenants on this machine, at
// concurrency C, three ways from the same script on the same fleet, each from v1:
//   ours     node dist/cli.js deploy … --concurrency C --per-server T (one SSH connection per server)
//   floor    the same remote commands (built by the builders of src/remote/) as one POSIX sh script per target,
//            `ssh host sh -s`, under GNU `parallel -j C` (one ssh connection per target): the fastest a
//            plain script goes (bench/fleet/floor.ts)
//   ansible  ansible-playbook (Debian's ansible-core), the same steps as shell tasks, forks = C
// and prints wall time (ratio to the floor), the controller's CPU (user+sys of the process and its
// children, from /usr/bin/time) and SSH handshakes per server ("Accepted publickey" lines in each sshd's
// log during that run). Every "server" shares this machine's CPU, so the remote work sets the floor.
//
// Engine: BENCH_ENGINE=podman (default when it works) brings up the real podman stack of the end-to-end
// tests (__tests__/e2e/engine-up.sh: podman's Docker API, a registry, images fleet/app:v1,v2,bad), one
// engine shared by every server, each tenant its own compose project and APP_PORT (host networking),
// docker-compose 1.29 as the compose command, DOCKER_HOST given to sessions by sshd's SetEnv.
// BENCH_ENGINE=sandbox uses the sandbox runtime double (dist/sandbox/runtime.js as `docker`).
//
// Root required (sshd, the deploy user `fleetdeploy`, podman). Knobs: BENCH_SERVERS (20), BENCH_TENANTS
// (2), BENCH_CONCURRENCY (20), BENCH_ENGINE (podman|sandbox), BENCH_RUN_TIMEOUT_S (900), BENCH_REPEAT (1:
// rounds of all runs; each tool is reported by its fastest run, because other work on a shared machine
// only ever adds time — the JSON keeps every run).
// Diagnostics: BENCH_ONLY picks runs and their order (default "ours,floor,ansible"), BENCH_TRACE=1 times
// every remote docker / docker-compose call (wrappers first on the sessions' PATH), BENCH_KEEP=1 keeps the
// temp dir and its logs, BENCH_OUT names the result files (default fleet-latest), BENCH_CPU_PROF=DIR
// writes a V8 CPU profile of ours into DIR (node --cpu-prof: its CPU figures then include the profiler;
// V8 samples on wall time), BENCH_PERF=DIR records ours with `perf record -e cpu-clock` into DIR/LABEL.data
// (samples on CPU time; JavaScript frames named through node --perf-basic-prof's /tmp/perf-PID.map).
// Ours' first deploy of the build, before the rounds, writes the code cache the rounds start from; it is
// measured and shown apart ("ours, first run").
// Writes bench/results/fleet-latest.json and bench/results/fleet-latest.md, and (a whole run: no BENCH_ONLY,
// BENCH_OUT, BENCH_TRACE or profiler) its section of docs/PERFORMANCE.md.
//
// TypeScript, run by `node --require ./bench/lib/register-ts.cjs bench/fleet.ts` (see that file); the
// servers, tenants, ports and processes come from the fleet fixture the tests use (src/testing).
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEPLOY_USER, ensureDeployUser, SSHD } from '../src/testing';
import { Session, tryRun } from './lib/session';
import { setUpAnsible, type Ansible } from './fleet/ansible';
import { engineUp, type Engine } from './fleet/engine';
import { floorArgv } from './fleet/floor';
import { readKnobs, type Knobs, type RunName } from './fleet/knobs';
import { machineCpuS, onVersion, traceOffsets, traceSince, waitQuiet } from './fleet/measure';
import { formatMarkdown, writeSection } from './lib/markdown';
import {
  fastestOf,
  markdown,
  succeeded,
  text,
  writeResults,
  type Report,
  type RunResult,
  type StepCost,
} from './fleet/report';
import { acceptedCount, startFleet, type Fleet } from './fleet/servers';

const REPO_DIR = resolve(__dirname, '..');
const log = (msg: string) => process.stderr.write(`bench:fleet: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Installs what the chosen runs need (apt-get, quietly). */
function ensurePackages(knobs: Knobs): void {
  const want: Record<string, string> = {
    '/usr/bin/time': 'time',
    [SSHD]: 'openssh-server',
    curl: 'curl',
    ...(knobs.runs.includes('floor') ? { parallel: 'parallel' } : {}),
    ...(knobs.runs.includes('ansible') ? { 'ansible-playbook': 'ansible-core' } : {}),
  };
  const missing = Object.entries(want)
    .filter(([bin]) => tryRun('sh', ['-c', `command -v ${bin}`]).status !== 0)
    .map(([, pkg]) => pkg);
  if (!missing.length) return;
  log(`installing ${missing.join(' ')} (apt-get, quietly)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = [
    'install',
    '-y',
    '-qq',
    '--no-install-recommends',
    '-o',
    'DPkg::Lock::Timeout=300',
    ...missing,
  ];
  if (tryRun('apt-get', apt, { env, timeoutMs: 900_000 }).status === 0) return;
  tryRun('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000 });
  const r = tryRun('apt-get', apt, { env, timeoutMs: 900_000 });
  if (r.status !== 0)
    throw new Error(`apt-get install ${missing.join(' ')} failed: ${r.stderr.slice(-1000)}`);
}

/** The bundle measured (it may be rebuilt while this runs: each run records the one it started with). */
const distHashOf = () =>
  createHash('sha256')
    .update(readFileSync(join(REPO_DIR, 'dist/index.js')))
    .digest('hex')
    .slice(0, 12);

/** Everything a run needs: the fleet, its engine, the tools' command lines. */
interface Bench {
  knobs: Knobs;
  session: Session;
  root: string;
  logs: string;
  engine: Engine;
  fleet: Fleet;
  ansible?: Ansible;
}

/** Ours' deploy of v2 to the fleet (`extra`: more flags), as a person runs it. */
const oursDeploy = (b: Bench, ...extra: string[]): string[] => [
  join(REPO_DIR, 'dist/cli.js'),
  'deploy',
  '-r',
  b.fleet.registryFile,
  '--version',
  'v2',
  '--key',
  b.fleet.key,
  '--concurrency',
  String(b.knobs.concurrency),
  '--per-server',
  String(b.knobs.tenants),
  ...extra,
];

/** A measured run of ours, under the profilers the diagnostics ask for. */
function oursArgv(b: Bench, label: string): string[] {
  const prof = process.env.BENCH_CPU_PROF;
  const perf = process.env.BENCH_PERF;
  if (perf) mkdirSync(perf, { recursive: true });
  return [
    ...(perf
      ? ['perf', 'record', '-e', 'cpu-clock', '-F', '4000', '-g', '-o', join(perf, `${label}.data`), '--']
      : []),
    process.execPath,
    ...(perf ? ['--perf-basic-prof', '--interpreted-frames-native-stack'] : []),
    ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []),
    ...oursDeploy(b, '--report', join(b.logs, `${label}-report.json`)),
  ];
}

const floorEnv = (b: Bench) => ({ ...process.env, PARALLEL_HOME: join(b.root, 'parallel') });

/** A floor deploy of `version` to every target, its scripts written from the fleet's state now. */
const floorOf = (b: Bench, version: string, label: string) =>
  floorArgv(
    b.fleet,
    join(b.root, 'floor', label),
    version,
    b.knobs.concurrency,
    join(b.logs, `${label}.joblog`),
  );

function commandOf(b: Bench, name: RunName, label: string): { argv: string[]; env: NodeJS.ProcessEnv } {
  if (name === 'ours') return { argv: oursArgv(b, label), env: { ...process.env, NO_COLOR: '1' } };
  if (name === 'floor') return { argv: floorOf(b, 'v2', label), env: floorEnv(b) };
  return { argv: b.ansible!.argv, env: b.ansible!.env };
}

/** What ours runs per target (from --dry-run, which validates the registry too). */
async function oursCommands(b: Bench): Promise<Report['oursCommands']> {
  // without the code cache: on Node 22.8+ it is one for every subcommand, and ours' first run is measured cold
  const dry = await b.session.runAsync('ours-dry-run', [process.execPath, ...oursDeploy(b, '--dry-run')], {
    cwd: REPO_DIR,
    env: { ...process.env, FLEET_DEPLOY_CODE_CACHE: '0' },
    timeoutMs: 60_000,
  });
  if (dry.code !== 0) throw new Error(`ours --dry-run failed: ${readFileSync(dry.err, 'utf8').slice(-1500)}`);
  const firstTarget = readFileSync(dry.out, 'utf8').split(/\n# /)[1] ?? '';
  return firstTarget
    .split('\n')
    .filter((l) => /^\[[^\]]+\] /.test(l))
    .map((l) => ({ step: /^\[([^\]]+)\]/.exec(l)![1]!, remote: !/^\[[^\]]+\] #/.test(l) }));
}

/** Brings every target to `version` with the floor (untimed); one more pass for stragglers. */
async function bringTo(b: Bench, version: string, why: string): Promise<void> {
  const { targets } = b.fleet;
  let n = 0;
  let err = '';
  for (let pass = 1; pass <= 2 && n !== targets.length; pass++) {
    const label = `reset-${why}${pass > 1 ? '-again' : ''}`;
    for (const t of targets) rmSync(join(t.dir, '.fleet', 'lock'), { recursive: true, force: true });
    const t0 = performance.now();
    const r = await b.session.runAsync(label, floorOf(b, version, label), {
      env: floorEnv(b),
      timeoutMs: 600_000,
    });
    n = await onVersion(targets, b.engine.repo, version);
    err = `parallel exit ${r.code}; last errors:\n  ${readFileSync(r.err, 'utf8').trim().split('\n').slice(-15).join('\n  ')}`;
    log(
      `${why}: ${n}/${targets.length} targets on ${version} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
  if (n !== targets.length)
    throw new Error(`could not bring the fleet to ${version} (${n}/${targets.length}, ${err})`);
}

/** Adds ours' --report to the step costs and returns the targets it did not deploy, with their errors. */
function readOursReport(file: string, steps: Record<string, StepCost>): string[] {
  const report = JSON.parse(readFileSync(file, 'utf8')) as {
    targets?: Array<{
      id: string;
      outcome: string;
      error?: string;
      durationMs: number;
      steps?: Array<{ step: string; ms: number }>;
    }>;
  };
  const add = (name: string, ms: number) => {
    const e = (steps[name] ??= { n: 0, totalMs: 0, maxMs: 0 });
    e.n++;
    e.totalMs += ms;
    e.maxMs = Math.max(e.maxMs, ms);
  };
  for (const t of report.targets ?? []) {
    for (const s of t.steps ?? []) add(s.step, s.ms);
    add('(whole target)', t.durationMs);
  }
  return (report.targets ?? [])
    .filter((t) => t.outcome !== 'deployed')
    .slice(0, 5)
    .map((t) => `${t.id}: ${t.outcome}: ${t.error ?? ''}`);
}

/** One timed run of one tool, from v1 to v2. */
async function measure(
  b: Bench,
  name: RunName,
  label: string,
  round: number,
  steps: Record<string, StepCost>,
): Promise<RunResult> {
  const { servers, targets } = b.fleet;
  b.engine.dropImage('v2'); // every run pulls v2 from the registry
  await sleep(2000); // let the reset's containers settle
  const busyBefore = await waitQuiet(label);
  const before = servers.map(acceptedCount);
  const cpu0 = machineCpuS();
  const eng0 = b.engine.cpuS();
  const trace0 = b.knobs.trace ? traceOffsets(servers) : undefined;
  const dist = distHashOf(); // node loads the bundle at its start
  log(`${label}: deploying v2 to ${targets.length} targets at concurrency ${b.knobs.concurrency}`);
  const { argv, env } = commandOf(b, name, label);
  const r = await b.session.runAsync(label, argv, {
    env,
    cwd: REPO_DIR,
    timeoutMs: b.knobs.runTimeoutMs,
    time: true,
  });
  const machine = machineCpuS() - cpu0;
  const engineCpuS = eng0 === undefined ? undefined : b.engine.cpuS()! - eng0;
  if (name === 'ansible') b.ansible!.closeControlMasters();
  await sleep(500); // sshd writes its log lines as connections end
  const perServer = servers.map((s, k) => acceptedCount(s) - before[k]!);
  const report = join(b.logs, `${label}-report.json`);
  return {
    round,
    dist,
    wallS: r.wallS,
    cpuS: r.cpuS,
    cpuMsPerTarget: r.cpuS !== undefined ? (r.cpuS * 1000) / targets.length : undefined,
    machineCpuS: machine,
    busyBefore,
    engineCpuS,
    ...(trace0 ? { trace: traceSince(servers, trace0) } : {}),
    exitCode: r.code,
    timedOut: r.timedOut,
    deployed: await onVersion(targets, b.engine.repo, 'v2'),
    handshakes: {
      perServer,
      min: Math.min(...perServer),
      max: Math.max(...perServer),
      total: perServer.reduce((a, x) => a + x, 0),
    },
    ...(name === 'ours' && existsSync(report) ? { failures: readOursReport(report, steps) } : {}),
  };
}

function logRun(b: Bench, label: string, r: RunResult): void {
  const n = b.fleet.targets.length;
  log(
    `${label}: ${r.wallS.toFixed(1)} s wall, ${r.cpuS?.toFixed(2)} s CPU, exit ${r.exitCode}, ${r.deployed}/${n} on v2, handshakes/server ${r.handshakes.min}–${r.handshakes.max}`,
  );
  if (r.exitCode !== 0 || r.deployed !== n)
    log(
      `${label} did not deploy everything: see ${join(b.logs, label)}.{out,err}${b.knobs.keep ? '' : ' (BENCH_KEEP=1 keeps them)'}`,
    );
}

/** Every round of every run; each tool reported by its fastest. */
async function runAll(b: Bench): Promise<Pick<Report, 'results' | 'oursSteps' | 'oursFirst'>> {
  const { runs, repeat } = b.knobs;
  const oursSteps: Record<string, StepCost> = {};
  const rounds = Object.fromEntries(runs.map((n) => [n, [] as RunResult[]]));
  await bringTo(b, 'v1', 'initial');
  // ours' first deploy of this build writes the code cache the rounds start from: measured, apart
  const oursFirst = runs.includes('ours') ? await measure(b, 'ours', 'ours-first', 0, {}) : undefined;
  if (oursFirst) {
    logRun(b, 'ours-first', oursFirst);
    const cache = join(process.env.XDG_CACHE_HOME!, 'fleet-deploy');
    if (!existsSync(cache) || readdirSync(cache).length === 0)
      log('WARNING: ours wrote no code cache: the rounds compile its bundle as the first run did');
  }
  for (let round = 1; round <= repeat; round++)
    for (const name of runs) {
      const label = repeat > 1 ? `${name}#${round}` : name;
      if (oursFirst || name !== runs[0] || round > 1) await bringTo(b, 'v1', `before-${label}`);
      const result = await measure(b, name, label, round, oursSteps);
      rounds[name]!.push(result);
      logRun(b, label, result);
    }
  return { results: Object.fromEntries(runs.map((n) => [n, fastestOf(rounds[n]!)])), oursSteps, oursFirst };
}

/** The temp dir everything lives in, removed at clean-up unless BENCH_KEEP=1. */
function tempRoot(knobs: Knobs): { root: string; logs: string; session: Session } {
  const root = mkdtempSync('/tmp/fd-fleet-');
  chmodSync(root, 0o755);
  const logs = join(root, 'logs');
  mkdirSync(logs);
  // ours' code cache (src/cli/code-cache.ts) in the run's own directory (it must exist: the command makes
  // nothing in an XDG_CACHE_HOME that is not there), written by ours' first deploy (runAll)
  process.env.XDG_CACHE_HOME = join(root, 'cache');
  mkdirSync(process.env.XDG_CACHE_HOME, { mode: 0o700 });
  const session = new Session(logs, log);
  session.installHandlers();
  session.onCleanup(() => {
    if (knobs.keep) log(`kept ${root} (BENCH_KEEP=1)`);
    else rmSync(root, { recursive: true, force: true });
  });
  return { root, logs, session };
}

async function setUp(knobs: Knobs): Promise<Bench> {
  const { root, logs, session } = tempRoot(knobs);
  const t0 = performance.now();
  const engine = engineUp(knobs.engine, session, REPO_DIR, root);
  const fleet = await startFleet(root, knobs, engine, session);
  const b: Bench = { knobs, session, root, logs, engine, fleet };
  if (knobs.runs.includes('ansible')) {
    b.ansible = setUpAnsible(join(root, 'ansible'), fleet, engine, knobs.concurrency);
    session.onCleanup(b.ansible.closeControlMasters);
  }
  log(
    `fleet: ${knobs.servers} sshd × ${knobs.tenants} tenants, engine ${engine.kind}, set up in ${((performance.now() - t0) / 1000).toFixed(1)} s; registry ${fleet.registryFile}`,
  );
  return b;
}

async function main(): Promise<number> {
  const knobs = readKnobs();
  if (process.getuid?.() !== 0) {
    console.error(
      `bench:fleet must run as root (it starts sshd, creates the user ${DEPLOY_USER} and runs podman)`,
    );
    return 2;
  }
  if (!existsSync(join(REPO_DIR, 'dist/cli.js'))) {
    console.error('dist/cli.js is missing: run `npm run build` first');
    return 2;
  }
  ensurePackages(knobs);
  ensureDeployUser();
  const distHash = distHashOf();
  const gitHead = tryRun('git', ['-C', REPO_DIR, 'rev-parse', '--short', 'HEAD']).stdout?.trim() ?? '';
  const b = await setUp(knobs);
  let report: Report;
  try {
    const commands = await oursCommands(b);
    const { results, oursSteps, oursFirst } = await runAll(b);
    report = {
      knobs,
      engine: b.engine.kind,
      results,
      ...(oursFirst ? { oursFirst } : {}),
      oursCommands: commands,
      oursSteps,
      ansibleVersion: b.ansible?.version ?? 'n/a',
      gitHead,
      distHash,
    };
  } finally {
    b.session.cleanupAll();
  }
  console.log(text(report));
  const now = distHashOf();
  if (now !== distHash) log(`WARNING: dist/index.js changed during the benchmark (${distHash} → ${now})`);
  writeResults(join(REPO_DIR, 'bench', 'results'), report);
  log(`wrote bench/results/${knobs.out}.json and bench/results/${knobs.out}.md`);
  const profiled = process.env.BENCH_CPU_PROF || process.env.BENCH_PERF; // their CPU figures include the profiler
  if (!process.env.BENCH_OUT && !process.env.BENCH_ONLY && !knobs.trace && !profiled) {
    const begin = '<!-- bench:fleet begin (written by npm run bench:fleet) -->';
    const end = '<!-- bench:fleet end -->';
    const md = (await formatMarkdown(markdown(report).replace(/^## .*/, '### The latest whole run'))).trim();
    writeSection(join(REPO_DIR, 'docs/PERFORMANCE.md'), begin, end, `${begin}\n\n${md}\n\n${end}`);
    log('wrote its section of docs/PERFORMANCE.md');
  }
  return knobs.runs.every((n) => succeeded(report.results[n], knobs.targets)) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    log((e as Error).stack ?? String(e));
    process.exit(1);
  },
);
