// bench:scale — how fleet-deploy's cost grows with the fleet, on the local SANDBOX fleet.
//
// For each size (default 100, 300 and 1,000 targets; 10 tenants per sandbox server) it brings a sandbox
// up with the shipped CLI, deploys v1 once (which starts every service), then deploys a new version at
// each concurrency (default 10, 30, 100) and measures every deploy:
//   wall time and targets per second; our own CPU time per target and our peak memory (the deploying
//   process's own resource usage, read by a preload at its exit); the whole machine's CPU (/proc/stat)
//   and the sandbox's share of it (the sandbox server process and every command it ran); the sandbox's
//   memory (proportional set size of its server and service processes).
// The baseline is the smallest size at the same concurrency, measured in the same run: "× linear" is
// (wall ÷ baseline wall) ÷ (targets ÷ baseline targets), 1.00 when the cost grows linearly.
// Before each size it checks that the machine can hold it (memory for one service process per target,
// process limits) and says where it stops and why instead of running out.
//
// Usage: npm run bench:scale [-- --sizes 100,300,1000 --concurrency 10,30,100 --tenants 10
//                                 --max-memory MIB --results DIR --out NAME --no-docs]
// Writes DIR/NAME.{json,md} (default bench/results/scale-latest) and, unless --no-docs, the "Scale on the
// sandbox" section of docs/PERFORMANCE.md. About 20 minutes with the defaults on 2 cores.
//
// TypeScript, run by `node --require ./bench/lib/register-ts.cjs bench/scale.ts`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isRunning, servicePids } from '../src/testing';
import { formatMarkdown, writeSection } from './lib/markdown';

const REPO = resolve(__dirname, '..');
const CLI = join(REPO, 'dist', 'cli.js');
const RUSAGE = join(REPO, 'bench', 'lib', 'rusage.mjs');
const CORES = cpus().length;
const MiB = 1024 * 1024;
const HEALTH = { timeout: '5s', deadline: '60s' };

const log = (s: string) => process.stderr.write(`${s}\n`);
const gib = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.round(bytes / MiB)} MiB`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f = (x: number | undefined, d = 1) => (x === undefined ? 'n/a' : x.toFixed(d));

// ---- what was asked ---------------------------------------------------------------------------------------

interface Knobs {
  sizes: number[];
  concurrency: number[];
  tenants: number;
  /** The memory the sandbox may use (bytes): 80% of what the machine has available, or less when asked. */
  maxMemory: number | undefined;
  results: string;
  out: string;
  docs: boolean;
}

function list(text: string, flag: string): number[] {
  const xs = text.split(',').map((s) => Number(s.trim()));
  if (!xs.length || xs.some((x) => !Number.isInteger(x) || x < 1))
    throw new Error(`${flag} "${text}": give whole numbers ≥ 1 separated by commas, e.g. ${flag} 100,300`);
  return xs;
}

/** The knobs from the command line; undefined after printing the help (this file's opening comment). */
function knobs(): Knobs | undefined {
  const { values: o } = parseArgs({
    options: {
      sizes: { type: 'string', default: '100,300,1000' },
      concurrency: { type: 'string', default: '10,30,100' },
      tenants: { type: 'string', default: '10' },
      out: { type: 'string', default: 'scale-latest' },
      results: { type: 'string', default: join(REPO, 'bench', 'results') },
      'max-memory': { type: 'string' },
      'no-docs': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (o.help) {
    const lines = readFileSync(__filename, 'utf8').split('\n');
    const head = lines.slice(
      0,
      lines.findIndex((l) => !l.startsWith('//')),
    );
    console.log(head.join('\n').replace(/^\/\/ ?/gm, ''));
    return undefined;
  }
  return {
    sizes: list(o.sizes, '--sizes').sort((a, b) => a - b),
    concurrency: list(o.concurrency, '--concurrency').sort((a, b) => a - b),
    tenants: list(o.tenants, '--tenants')[0]!,
    maxMemory: o['max-memory'] === undefined ? undefined : list(o['max-memory'], '--max-memory')[0]! * MiB,
    results: resolve(o.results),
    out: o.out,
    docs: !o['no-docs'],
  };
}

// ---- what the machine says ------------------------------------------------------------------------------

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds every process on the machine has spent (user, nice, system, irq, softirq, steal). */
function machineCpuS(): number {
  const x = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (x[0]! + x[1]! + x[2]! + x[5]! + x[6]! + (x[7] ?? 0)) / CLK_TCK;
}

function meminfo(): Record<string, number> {
  const m: Record<string, number> = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const x = /^(\w+):\s+(\d+) kB/.exec(line);
    if (x) m[x[1]!] = Number(x[2]) * 1024;
  }
  return m;
}

/** A process's /proc/PID/stat: its name and CPU times; undefined once gone. */
function stat(pid: number | string): { name: string; cpu: number[] } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      name: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')),
      // utime, stime, cutime, cstime (fields 14-17 of proc(5))
      cpu: rest.slice(11, 15).map((x) => Number(x) / CLK_TCK),
    };
  } catch {
    return undefined;
  }
}

/** A process's CPU seconds: its own, and that of the children it has waited for (and theirs). */
function procCpuS(pid: number): { own: number; children: number } {
  const st = stat(pid);
  return st ? { own: st.cpu[0]! + st.cpu[1]!, children: st.cpu[2]! + st.cpu[3]! } : { own: 0, children: 0 };
}

type ProcessCpu = Map<string, { name: string; s: number }>;

/** CPU seconds of every process alive now, by PID, with its name (kernel threads included). */
function processCpu(): ProcessCpu {
  const m: ProcessCpu = new Map();
  for (const pid of readdirSync('/proc')) {
    const st = /^\d+$/.test(pid) ? stat(pid) : undefined;
    if (st) m.set(pid, { name: st.name, s: st.cpu[0]! + st.cpu[1]! });
  }
  return m;
}

/**
 * Where the rest of the machine's CPU went during a run: the processes alive at both ends that are not
 * ours or the sandbox's (kernel threads, daemons), the biggest first.
 */
function othersBusy(before: ProcessCpu, after: ProcessCpu, exclude: Set<string>) {
  const by = new Map<string, number>();
  for (const [pid, a] of after) {
    const b = before.get(pid);
    if (!b || b.name !== a.name || exclude.has(pid) || a.s - b.s <= 0) continue;
    by.set(a.name, (by.get(a.name) ?? 0) + a.s - b.s);
  }
  return [...by]
    .sort((x, y) => y[1] - x[1])
    .slice(0, 3)
    .map(([name, s]) => ({ name, cpuS: s }));
}

/** Proportional set size (bytes): the memory a process really costs, its shared pages divided among sharers. */
function pss(pid: number): number | undefined {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]) * 1024;
  } catch {
    return undefined;
  }
}

const processLimit =
  Number(spawnSync('sh', ['-c', 'ulimit -u'], { encoding: 'utf8' }).stdout.trim()) || Infinity;
const processesNow = () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;

// ---- the sandbox, through the shipped CLI ---------------------------------------------------------------

interface Sandbox {
  dir: string;
  targets: number;
  servers: number;
  registry: string;
  key: string;
  pid: number;
  keep?: boolean;
}

function cli(args: readonly string[]): void {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0)
    throw new Error(`fleet-deploy ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
}

/** The services of every sandbox server (each server's runtime keeps its own state). */
function sandboxServicePids(dir: string): number[] {
  const root = join(dir, 'servers');
  return readdirSync(root).flatMap((server) => servicePids(join(root, server, '.sandbox-runtime')));
}

/** A sandbox of `servers` × `tenants` up, with a health gate for a machine under load. */
function up(targets: number, servers: number, tenants: number): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), `fd-scale-${targets}-`));
  cli(['sandbox', 'up', '--dir', dir, '--servers', String(servers), '--tenants', String(tenants)]);
  const sb: Sandbox = {
    dir,
    targets,
    servers,
    registry: join(dir, 'registry.json'),
    key: join(dir, 'client_key'),
    pid: Number(readFileSync(join(dir, 'sandbox.pid'), 'utf8')),
  };
  // The sandbox's own gate (1 s per probe, 4 s in all) suits the demo on an idle machine; with a hundred
  // deploys at once on two cores a service can take longer than that to start and answer.
  const reg = JSON.parse(readFileSync(sb.registry, 'utf8')) as {
    defaults: { tenant: { health: Record<string, unknown> } };
  };
  Object.assign(reg.defaults.tenant.health, HEALTH);
  writeFileSync(sb.registry, JSON.stringify(reg, null, 2));
  return sb;
}

async function down(sb: Sandbox): Promise<void> {
  const pids = [sb.pid, ...sandboxServicePids(sb.dir)];
  cli(['sandbox', 'down', '--dir', sb.dir]);
  for (let i = 0; i < 100 && pids.some(isRunning); i++) await sleep(100);
  const left = pids.filter(isRunning);
  if (left.length)
    throw new Error(`sandbox down left ${left.length} processes running: ${left.slice(0, 10).join(' ')}`);
  if (sb.keep) log(`  kept ${sb.dir} (its logs and reports) for a look at what failed`);
  else rmSync(sb.dir, { recursive: true, force: true });
}

interface Run {
  targets: number;
  servers: number;
  concurrency: number;
  version: string;
  wallS: number;
  targetsPerS: number;
  oursCpuS: number;
  oursCpuMsPerTarget: number;
  oursPeakRssMiB: number;
  machineCpuS: number;
  machineCpuMsPerTarget: number;
  sandboxCpuMsPerTarget: number;
  busy: number;
  sshServerBusy: number;
  othersMsPerTarget: Array<{ name: string; ms: number }>;
  targetMedianS: number;
  targetP95S: number;
  wallVsLinear?: number;
  oursCpuVsLinear?: number;
}

/** The deploy running now, to stop (by its PID) on an interrupt. */
let deploying: ChildProcess | undefined;

/** The deploying process's exit code, run under the rusage preload with its output in `log`. */
function deployProcess(
  sb: Sandbox,
  version: string,
  concurrency: number,
  tenants: number,
  files: DeployFiles,
) {
  const out = openSync(files.log, 'w');
  const args = [
    '--import',
    RUSAGE,
    CLI,
    'deploy',
    '-r',
    sb.registry,
    '--key',
    sb.key,
    '-v',
    version,
    '--concurrency',
    String(concurrency),
    '--per-server',
    String(tenants),
    '--report',
    files.report,
  ];
  return new Promise<number | null>((done, fail) => {
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', out, out],
      env: { ...process.env, BENCH_RUSAGE_FILE: files.rusage, NO_COLOR: '1' },
    });
    deploying = child;
    child.on('error', fail);
    child.on('exit', (c) => done(c));
  }).finally(() => {
    deploying = undefined;
    closeSync(out);
  });
}

interface DeployFiles {
  report: string;
  rusage: string;
  log: string;
}

/** One deploy by the shipped CLI, measured. */
async function deploy(sb: Sandbox, version: string, concurrency: number, tenants: number): Promise<Run> {
  const tag = `${version}-c${concurrency}`;
  const files = {
    report: join(sb.dir, `report-${tag}.json`),
    rusage: join(sb.dir, `rusage-${tag}.json`),
    log: join(sb.dir, `deploy-${tag}.log`),
  };
  const procs0 = processCpu();
  const cpu0 = machineCpuS();
  const serve0 = procCpuS(sb.pid);
  const t0 = process.hrtime.bigint();
  const code = await deployProcess(sb, version, concurrency, tenants, files);
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const machineS = machineCpuS() - cpu0;
  const others = othersBusy(procs0, processCpu(), new Set([String(sb.pid), String(process.pid)]));
  const serve1 = procCpuS(sb.pid);
  const ru = JSON.parse(readFileSync(files.rusage, 'utf8')) as {
    userUs: number;
    systemUs: number;
    maxRssKiB: number;
  };
  const rep = JSON.parse(readFileSync(files.report, 'utf8')) as {
    totals: { deployed: number; unchanged: number };
    targets: Array<{ durationMs: number }>;
  };
  const ok = rep.totals.deployed + rep.totals.unchanged;
  if (code !== 0 || ok !== sb.targets)
    throw new Error(
      `deploy ${version} at concurrency ${concurrency}: exit ${code}, ${ok}/${sb.targets} deployed (${files.log})`,
    );
  const oursS = (ru.userUs + ru.systemUs) / 1e6;
  const sandboxS = serve1.own - serve0.own + serve1.children - serve0.children;
  const durations = rep.targets.map((t) => t.durationMs).sort((a, b) => a - b);
  return {
    targets: sb.targets,
    servers: sb.servers,
    concurrency,
    version,
    wallS,
    targetsPerS: sb.targets / wallS,
    oursCpuS: oursS,
    oursCpuMsPerTarget: (oursS * 1000) / sb.targets,
    oursPeakRssMiB: ru.maxRssKiB / 1024,
    machineCpuS: machineS,
    machineCpuMsPerTarget: (machineS * 1000) / sb.targets,
    sandboxCpuMsPerTarget: (sandboxS * 1000) / sb.targets,
    busy: machineS / (wallS * CORES),
    sshServerBusy: (serve1.own - serve0.own) / wallS,
    othersMsPerTarget: others.map((o) => ({ name: o.name, ms: (o.cpuS * 1000) / sb.targets })),
    targetMedianS: durations[Math.floor(durations.length / 2)]! / 1000,
    targetP95S: durations[Math.min(durations.length - 1, Math.floor(durations.length * 0.95))]! / 1000,
  };
}

// ---- the run ----------------------------------------------------------------------------------------------

interface Size {
  targets: number;
  servers: number;
  upS: number;
  servicesMiB: number;
  serverMiB: number;
  perTargetMiB: number;
}

interface Stop {
  at: number;
  why: string;
}

/** What the whole run measured. */
interface Measured {
  runs: Run[];
  first: Run[];
  sizes: Size[];
  stop?: Stop;
  /** the sandbox's memory per target, measured at the first size */
  perTargetBytes?: number;
}

/** Why the machine cannot hold `targets` sandbox targets, if it cannot. */
function cannotHold(k: Knobs, targets: number, perTargetBytes: number | undefined): Stop | undefined {
  const available = meminfo().MemAvailable!;
  const budget = Math.min(0.8 * available, k.maxMemory ?? Infinity);
  // One service process per target stays up after the deploy; a deploy adds one short-lived process per
  // remote command in flight. Before the first size is measured, assume 16 MiB per target.
  const needBytes = targets * (perTargetBytes ?? 16 * MiB);
  if (needBytes > budget)
    return {
      at: targets,
      why: `memory: ${targets} sandbox targets need about ${gib(needBytes)} (${((perTargetBytes ?? 16 * MiB) / MiB).toFixed(1)} MiB each, ${perTargetBytes ? 'measured' : 'assumed'}), more than ${k.maxMemory !== undefined && k.maxMemory < 0.8 * available ? `the ${gib(k.maxMemory)} allowed by --max-memory` : `80% of the ${gib(available)} available`}`,
    };
  const processes = processesNow() + targets + 4 * Math.max(...k.concurrency);
  if (processes > 0.9 * processLimit)
    return {
      at: targets,
      why: `processes: about ${processes} needed, the limit (ulimit -u) is ${processLimit}`,
    };
  return undefined;
}

/** One size: v1 everywhere, then a new version at each concurrency; the sandbox's memory after. */
async function measureSize(k: Knobs, sb: Sandbox, upS: number, m: Measured): Promise<void> {
  const v1 = await deploy(sb, 'v1', Math.max(...k.concurrency), k.tenants);
  m.first.push(v1);
  log(`  v1 (starts ${sb.targets} services), concurrency ${v1.concurrency}: ${v1.wallS.toFixed(1)} s`);
  let n = 2;
  for (const c of k.concurrency) {
    const r = await deploy(sb, `v${n++}`, c, k.tenants);
    m.runs.push(r);
    log(
      `  ${r.version} at concurrency ${c}: ${r.wallS.toFixed(1)} s, ${r.targetsPerS.toFixed(1)} targets/s, ours ${r.oursCpuMsPerTarget.toFixed(1)} ms CPU/target, peak ${r.oursPeakRssMiB.toFixed(0)} MiB; machine busy ${(r.busy * 100).toFixed(0)}%, sandbox SSH server ${(r.sshServerBusy * 100).toFixed(0)}%`,
    );
  }
  const services = sandboxServicePids(sb.dir).filter(isRunning);
  if (services.length !== sb.targets)
    throw new Error(`${services.length} of ${sb.targets} sandbox services are running after the deploys`);
  const servicesBytes = services.reduce((s, p) => s + (pss(p) ?? 0), 0);
  const serverBytes = pss(sb.pid) ?? 0;
  m.perTargetBytes = (servicesBytes + serverBytes) / sb.targets;
  m.sizes.push({
    targets: sb.targets,
    servers: sb.servers,
    upS,
    servicesMiB: servicesBytes / MiB,
    serverMiB: serverBytes / MiB,
    perTargetMiB: m.perTargetBytes / MiB,
  });
  log(
    `  sandbox memory: services ${(servicesBytes / MiB).toFixed(0)} MiB, SSH server process ${(serverBytes / MiB).toFixed(0)} MiB (${(m.perTargetBytes / MiB).toFixed(1)} MiB per target)`,
  );
}

/** Every size in turn, each on a fresh sandbox, until the machine cannot hold the next. */
async function measureAll(k: Knobs): Promise<Measured> {
  const m: Measured = { runs: [], first: [], sizes: [] };
  let live: Sandbox | undefined; // the sandbox up now, to tear down on an interrupt
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      log(`${sig}: tearing the sandbox down`);
      deploying?.kill('SIGKILL'); // it would wait for the servers the teardown stops
      if (live) {
        spawnSync(process.execPath, [CLI, 'sandbox', 'down', '--dir', live.dir], { stdio: 'inherit' });
        rmSync(live.dir, { recursive: true, force: true });
      }
      process.exit(130);
    });
  for (const n of k.sizes) {
    const servers = Math.ceil(n / k.tenants);
    const targets = servers * k.tenants;
    m.stop = cannotHold(k, targets, m.perTargetBytes);
    if (m.stop) {
      log(`stopping before ${targets} targets — ${m.stop.why}`);
      break;
    }
    const t0 = Date.now();
    const sb = up(targets, servers, k.tenants);
    live = sb;
    const upS = (Date.now() - t0) / 1000;
    log(`\n${targets} targets: sandbox of ${servers} servers up in ${upS.toFixed(1)} s`);
    try {
      await measureSize(k, sb, upS, m);
    } catch (e) {
      sb.keep = true;
      throw e;
    } finally {
      await down(sb);
      live = undefined;
    }
  }
  return m;
}

// ---- report -----------------------------------------------------------------------------------------------

const HEADER = [
  'targets',
  'concurrency',
  'wall',
  'targets/s',
  'wall × linear',
  'ours CPU/target',
  'ours CPU × linear',
  'ours peak memory',
  'sandbox CPU/target',
  'machine CPU/target',
  'machine busy',
  'SSH server busy',
  'target median / p95',
];

/** The table's rows; each run gets its growth against the smallest size at its concurrency. */
function rowsOf(k: Knobs, runs: Run[]): string[][] {
  const smallest = Math.ceil(k.sizes[0]! / k.tenants) * k.tenants;
  return runs.map((r) => {
    const b = runs.find((x) => x.concurrency === r.concurrency && x.targets === smallest);
    r.wallVsLinear = b ? r.wallS / b.wallS / (r.targets / b.targets) : undefined;
    r.oursCpuVsLinear = b ? r.oursCpuS / b.oursCpuS / (r.targets / b.targets) : undefined;
    return [
      String(r.targets),
      String(r.concurrency),
      `${f(r.wallS)} s`,
      f(r.targetsPerS),
      `${f(r.wallVsLinear, 2)}×`,
      `${f(r.oursCpuMsPerTarget)} ms`,
      `${f(r.oursCpuVsLinear, 2)}×`,
      `${f(r.oursPeakRssMiB, 0)} MiB`,
      `${f(r.sandboxCpuMsPerTarget, 0)} ms`,
      `${f(r.machineCpuMsPerTarget, 0)} ms`,
      `${f(r.busy * 100, 0)}%`,
      `${f(r.sshServerBusy * 100, 0)}%`,
      `${f(r.targetMedianS)} / ${f(r.targetP95S)} s`,
    ];
  });
}

/** Where it stops and why: the machine's CPU (every sandbox server shares these cores) and its memory. */
function findingsOf(k: Knobs, m: Measured, holds: number | undefined, memAvail: number): string[] {
  const { runs, sizes, stop, perTargetBytes } = m;
  const best = runs.reduce<Run | undefined>(
    (a, r) => (!a || r.targetsPerS > a.targetsPerS ? r : a),
    undefined,
  );
  const biggest = runs.filter((r) => r.targets === Math.max(...runs.map((x) => x.targets)));
  const findings: string[] = [];
  if (best) {
    const cap = (CORES * 1000) / best.machineCpuMsPerTarget;
    const rest = best.machineCpuMsPerTarget - best.sandboxCpuMsPerTarget - best.oursCpuMsPerTarget;
    findings.push(
      `Throughput: the best run made ${f(best.targetsPerS)} targets/s (${best.targets} targets at concurrency ${best.concurrency}, machine busy ${f(best.busy * 100, 0)}%). There each target cost this machine ${f(best.machineCpuMsPerTarget, 0)} ms of CPU — ${f(best.sandboxCpuMsPerTarget, 0)} ms in the sandbox (a node process per docker call, the shells, the SSH server), ${f(best.oursCpuMsPerTarget)} ms in fleet-deploy (${f((best.oursCpuMsPerTarget / best.machineCpuMsPerTarget) * 100, 0)}%), ${f(rest, 0)} ms elsewhere (the services starting, the kernel) — so ${CORES} cores allow at most about ${f(cap)} targets/s. ${best.busy >= 0.85 ? 'It is at that limit: the machine stops on CPU, nearly all of it spent standing in for servers; past that, more concurrency only makes each target wait longer (see the median target time).' : 'It is below that limit: more concurrency would still go faster.'}`,
    );
  }
  const biggestSlow = biggest.find((r) => r.concurrency === Math.min(...biggest.map((x) => x.concurrency)));
  const smallSlow = runs.find(
    (r) => r.targets === runs[0]!.targets && r.concurrency === biggestSlow?.concurrency,
  );
  if (biggestSlow && smallSlow && biggestSlow !== smallSlow) {
    const grew = biggestSlow.machineCpuMsPerTarget - smallSlow.machineCpuMsPerTarget;
    const top = biggestSlow.othersMsPerTarget[0];
    if (grew > 0.1 * smallSlow.machineCpuMsPerTarget)
      findings.push(
        `The machine's CPU per target grew from ${f(smallSlow.machineCpuMsPerTarget, 0)} ms at ${smallSlow.targets} targets to ${f(biggestSlow.machineCpuMsPerTarget, 0)} ms at ${biggestSlow.targets} (concurrency ${biggestSlow.concurrency}) while ours and the sandbox's did not${top ? `; the biggest other consumer in that run: ${top.name} with ${f(top.ms, 0)} ms per target${/^kdamond/.test(top.name) ? " (the kernel's DAMON memory monitor, which this VM runs: its work grows with the memory the sandbox's services hold)" : ''}` : ''}.`,
      );
  }
  if (biggest.length && runs[0]!.targets !== biggest[0]!.targets)
    findings.push(
      `fleet-deploy itself at ${biggest[0]!.targets} targets: ${biggest.map((r) => `${f(r.oursCpuMsPerTarget)} ms CPU per target (${f(r.oursCpuVsLinear, 2)}× linear) at concurrency ${r.concurrency}`).join(', ')}; peak memory of the deploying process ${f(Math.max(...biggest.map((r) => r.oursPeakRssMiB)), 0)} MiB, against ${f(Math.max(...runs.filter((r) => r.targets === runs[0]!.targets).map((r) => r.oursPeakRssMiB)), 0)} MiB at ${runs[0]!.targets} targets.`,
    );
  if (perTargetBytes)
    findings.push(
      `Memory: a sandbox target costs about ${f(perTargetBytes / MiB)} MiB (its service process's proportional set size plus its share of the SSH server), so ${k.maxMemory !== undefined && k.maxMemory < 0.8 * memAvail ? `the ${gib(k.maxMemory)} allowed by --max-memory hold` : `80% of this machine's ${gib(memAvail)} available holds`} about ${holds} targets${stop ? `; the run stopped before ${stop.at} targets: ${stop.why}` : `; every size asked for ran (the largest, ${Math.max(...sizes.map((s) => s.targets))} targets, used ${f(sizes.at(-1)!.servicesMiB + sizes.at(-1)!.serverMiB, 0)} MiB)`}.`,
    );
  else if (stop) findings.push(`The run stopped before ${stop.at} targets: ${stop.why}.`);
  return findings;
}

const table = (head: readonly string[], body: readonly string[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '--:').join('|')}|`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

interface Code {
  gitHead: string;
  distHash: string;
  memTotal: number;
}

function markdown(k: Knobs, m: Measured, code: Code, rows: string[][], findings: string[]): string {
  const date = new Date().toISOString().slice(0, 10);
  return [
    '## Scale on the sandbox — `npm run bench:scale`',
    '',
    `Deploys a new version to ${k.sizes.join(', ')} SANDBOX targets (${k.tenants} tenants per sandbox server: real SSH endpoints, services as local processes) at concurrency ${k.concurrency.join(', ')}, with the shipped CLI, one process per deploy; each size on a fresh sandbox that first got v1 everywhere; health gate: 2 healthy answers in a row, every 250 ms, ${HEALTH.timeout} per probe, ${HEALTH.deadline} at most. Baseline: the ${m.runs[0]?.targets ?? k.sizes[0]}-target run at the same concurrency, in the same run. ${CORES} cores, ${(code.memTotal / 2 ** 30).toFixed(1)} GiB, node ${process.version} (${date}, git ${code.gitHead}, dist ${code.distHash}).`,
    '',
    table(HEADER, rows),
    '',
    ...findings.map((x) => `- ${x}`),
    `- wall × linear: (wall ÷ baseline wall) ÷ (targets ÷ baseline targets), 1.00× when the wall time grows linearly with the targets at a given concurrency; ours CPU × linear, the same for our CPU time. ours: user+sys and peak resident memory of the deploying process (its own resource usage at exit). sandbox CPU: the sandbox's SSH server process and everything it ran (shells, the sandbox runtime), from /proc; machine CPU: every process, from /proc/stat; machine busy: machine CPU ÷ (wall × ${CORES} cores). target median / p95: one target's time from start to done.`,
    `- Sandbox memory per size: ${m.sizes.map((s) => `${s.targets} targets ${f(s.servicesMiB + s.serverMiB, 0)} MiB`).join(', ')}. Sandbox up (keys, directories, registry, servers): ${m.sizes.map((s) => `${f(s.upS)} s`).join(', ')}. The first deploy (v1, which starts every service): ${m.first.map((r) => `${r.targets} targets ${f(r.wallS)} s`).join(', ')}.`,
    '',
  ].join('\n');
}

/** Writes DIR/NAME.{md,json} and, unless --no-docs, the section of docs/PERFORMANCE.md. */
async function report(k: Knobs, m: Measured, code: Code): Promise<void> {
  const rows = rowsOf(k, m.runs);
  const memAvail = meminfo().MemAvailable!;
  const holds = m.perTargetBytes
    ? Math.floor(Math.min(0.8 * memAvail, k.maxMemory ?? Infinity) / m.perTargetBytes)
    : undefined;
  const formatted = await formatMarkdown(
    markdown(k, m, code, rows, findingsOf(k, m, holds, memAvail)),
    join(REPO, 'docs', 'PERFORMANCE.md'),
  );
  mkdirSync(k.results, { recursive: true });
  writeFileSync(join(k.results, `${k.out}.md`), formatted);
  const { runs, first, sizes, stop, perTargetBytes } = m;
  const machine = { cores: CORES, memTotalBytes: code.memTotal, node: process.version };
  writeFileSync(
    join(k.results, `${k.out}.json`),
    `${JSON.stringify({ date: new Date().toISOString(), machine, code: { gitHead: code.gitHead, distIndexSha256: code.distHash }, tenantsPerServer: k.tenants, sizes, first, runs, stop, perTargetMiB: perTargetBytes && perTargetBytes / MiB, holds }, null, 2)}\n`,
  );
  if (k.docs) {
    const begin = '<!-- bench:scale begin (written by npm run bench:scale) -->';
    const end = '<!-- bench:scale end -->';
    writeSection(
      join(REPO, 'docs', 'PERFORMANCE.md'),
      begin,
      end,
      `${begin}\n\n${formatted.trim()}\n\n${end}`,
    );
    log(`\nwrote docs/PERFORMANCE.md (scale section)`);
  }
  console.log(`\n${formatted}`);
  log(`wrote ${join(k.results, `${k.out}.json`)} and ${k.out}.md`);
}

async function main(): Promise<void> {
  const k = knobs();
  if (!k) return;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  if (process.platform !== 'linux') throw new Error('bench:scale reads /proc: it runs on Linux');
  // ours' code cache (src/cli/code-cache.ts) in a directory of this run, removed at its end
  const cacheRoot = mkdtempSync(join(tmpdir(), 'fd-scale-cache-'));
  process.env.XDG_CACHE_HOME = cacheRoot;
  process.on('exit', () => rmSync(cacheRoot, { recursive: true, force: true }));
  const code: Code = {
    gitHead: spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO,
      encoding: 'utf8',
    }).stdout.trim(),
    distHash: createHash('sha256')
      .update(readFileSync(join(REPO, 'dist', 'index.js')))
      .digest('hex')
      .slice(0, 12),
    memTotal: meminfo().MemTotal!,
  };
  log(
    `bench:scale — sizes ${k.sizes.join(', ')} targets (${k.tenants} tenants per sandbox server), concurrency ${k.concurrency.join(', ')}; ${CORES} cores, ${(code.memTotal / 2 ** 30).toFixed(1)} GiB, node ${process.version}, git ${code.gitHead}`,
  );
  const m = await measureAll(k);
  await report(k, m, code);
  process.exit(m.stop && !m.runs.length ? 1 : 0);
}

main().catch((e: Error) => {
  process.stderr.write(`bench:scale failed: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
