#!/usr/bin/env node
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
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(REPO, 'dist', 'cli.js');
const RUSAGE = join(REPO, 'bench', 'lib', 'rusage.mjs');
const CORES = cpus().length;
const MiB = 1024 * 1024;

const { values: opts } = parseArgs({
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
if (opts.help) {
  const lines = readFileSync(fileURLToPath(import.meta.url), 'utf8')
    .split('\n')
    .slice(1);
  console.log(
    lines
      .slice(
        0,
        lines.findIndex((l) => !l.startsWith('//')),
      )
      .join('\n')
      .replace(/^\/\/ ?/gm, ''),
  );
  process.exit(0);
}
const list = (text, flag) => {
  const xs = text.split(',').map((s) => Number(s.trim()));
  if (!xs.length || xs.some((x) => !Number.isInteger(x) || x < 1))
    throw new Error(`${flag} "${text}": give whole numbers ≥ 1 separated by commas, e.g. ${flag} 100,300`);
  return xs;
};
const SIZES = list(opts.sizes, '--sizes').sort((a, b) => a - b);
const CONCURRENCY = list(opts.concurrency, '--concurrency').sort((a, b) => a - b);
const TENANTS = list(opts.tenants, '--tenants')[0];
// The memory the sandbox may use: 80% of what the machine has available, or less when asked (MiB).
const MAX_MEMORY =
  opts['max-memory'] === undefined ? undefined : list(opts['max-memory'], '--max-memory')[0] * 1024 * 1024;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
if (process.platform !== 'linux') throw new Error('bench:scale reads /proc: it runs on Linux');

const HEALTH = { timeout: '5s', deadline: '60s' };
const log = (s) => process.stderr.write(`${s}\n`);
const gib = (bytes) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.round(bytes / MiB)} MiB`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

// ---- what the machine says ------------------------------------------------------------------------------

/** CPU seconds every process on the machine has spent (user, nice, system, irq, softirq, steal). */
function machineCpuS() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / CLK_TCK;
}

function meminfo() {
  const m = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const x = /^(\w+):\s+(\d+) kB/.exec(line);
    if (x) m[x[1]] = Number(x[2]) * 1024;
  }
  return m;
}

/** A process's /proc/PID/stat: its name, state and the numeric fields after them; undefined once gone. */
function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      name: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')),
      state: rest[0],
      // utime, stime, cutime, cstime (fields 14-17 of proc(5))
      cpu: rest.slice(11, 15).map((x) => Number(x) / CLK_TCK),
    };
  } catch {
    return undefined;
  }
}

/** A process's CPU seconds: its own, and that of the children it has waited for (and theirs). */
function procCpuS(pid) {
  const st = stat(pid);
  return st ? { own: st.cpu[0] + st.cpu[1], children: st.cpu[2] + st.cpu[3] } : { own: 0, children: 0 };
}

/** CPU seconds of every process alive now, by PID, with its name (kernel threads included). */
function processCpu() {
  const m = new Map();
  for (const pid of readdirSync('/proc')) {
    const st = /^\d+$/.test(pid) && stat(pid);
    if (st) m.set(pid, { name: st.name, s: st.cpu[0] + st.cpu[1] });
  }
  return m;
}

/**
 * Where the rest of the machine's CPU went during a run: the processes alive at both ends that are not
 * ours or the sandbox's (kernel threads, daemons), the biggest first.
 */
function othersBusy(before, after, exclude) {
  const by = new Map();
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
function pss(pid) {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))[1]) * 1024;
  } catch {
    return undefined;
  }
}

function running(pid) {
  const st = stat(pid);
  return Boolean(st) && st.state !== 'Z';
}

const processLimit =
  Number(spawnSync('sh', ['-c', 'ulimit -u'], { encoding: 'utf8' }).stdout.trim()) || Infinity;
const processesNow = () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;

// ---- the sandbox, through the shipped CLI ---------------------------------------------------------------

function cli(args, extra = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB, ...extra });
  if (r.status !== 0)
    throw new Error(`fleet-deploy ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return r;
}

function servicePids(dir) {
  const root = join(dir, 'servers');
  const pids = [];
  for (const server of readdirSync(root)) {
    const projects = join(root, server, '.sandbox-runtime', 'projects');
    if (!existsSync(projects)) continue;
    for (const f of readdirSync(projects))
      if (f.endsWith('.json')) pids.push(JSON.parse(readFileSync(join(projects, f), 'utf8')).pid);
  }
  return pids;
}

/** One deploy by the shipped CLI, measured. */
async function deploy(sb, version, concurrency) {
  const tag = `${version}-c${concurrency}`;
  const report = join(sb.dir, `report-${tag}.json`);
  const rusage = join(sb.dir, `rusage-${tag}.json`);
  const out = openSync(join(sb.dir, `deploy-${tag}.log`), 'w');
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
    String(TENANTS),
    '--report',
    report,
  ];
  const procs0 = processCpu();
  const cpu0 = machineCpuS();
  const serve0 = procCpuS(sb.pid);
  const t0 = process.hrtime.bigint();
  const code = await new Promise((done, fail) => {
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', out, out],
      env: { ...process.env, BENCH_RUSAGE_FILE: rusage, NO_COLOR: '1' },
    });
    child.on('error', fail);
    child.on('exit', (c) => done(c));
  });
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const machineS = machineCpuS() - cpu0;
  const others = othersBusy(procs0, processCpu(), new Set([String(sb.pid), String(process.pid)]));
  const serve1 = procCpuS(sb.pid);
  closeSync(out);
  const ru = JSON.parse(readFileSync(rusage, 'utf8'));
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  const ok = rep.totals.deployed + rep.totals.unchanged;
  if (code !== 0 || ok !== sb.targets)
    throw new Error(
      `deploy ${version} at concurrency ${concurrency}: exit ${code}, ${ok}/${sb.targets} deployed (${join(sb.dir, `deploy-${tag}.log`)})`,
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
    targetMedianS: durations[Math.floor(durations.length / 2)] / 1000,
    targetP95S: durations[Math.min(durations.length - 1, Math.floor(durations.length * 0.95))] / 1000,
  };
}

// ---- the run ----------------------------------------------------------------------------------------------

const gitHead = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
  cwd: REPO,
  encoding: 'utf8',
}).stdout.trim();
const distHash = createHash('sha256')
  .update(readFileSync(join(REPO, 'dist', 'index.js')))
  .digest('hex')
  .slice(0, 12);
const mem0 = meminfo();
log(
  `bench:scale — sizes ${SIZES.join(', ')} targets (${TENANTS} tenants per sandbox server), concurrency ${CONCURRENCY.join(', ')}; ${CORES} cores, ${(mem0.MemTotal / 2 ** 30).toFixed(1)} GiB, node ${process.version}, git ${gitHead}`,
);

const runs = [];
const first = [];
const sizes = [];
let stop; // { at, why }
let perTargetBytes; // the sandbox's memory per target, measured at the first size
let live; // the sandbox up now, to tear down on an interrupt

async function down(sb) {
  const pids = [sb.pid, ...servicePids(sb.dir)];
  cli(['sandbox', 'down', '--dir', sb.dir]);
  for (let i = 0; i < 100 && pids.some(running); i++) await sleep(100);
  const left = pids.filter(running);
  if (left.length)
    throw new Error(`sandbox down left ${left.length} processes running: ${left.slice(0, 10).join(' ')}`);
  if (sb.keep) log(`  kept ${sb.dir} (its logs and reports) for a look at what failed`);
  else rmSync(sb.dir, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM'])
  process.once(sig, () => {
    log(`${sig}: tearing the sandbox down`);
    if (live) spawnSync(process.execPath, [CLI, 'sandbox', 'down', '--dir', live.dir], { stdio: 'inherit' });
    process.exit(130);
  });

for (const n of SIZES) {
  const servers = Math.ceil(n / TENANTS);
  const targets = servers * TENANTS;
  const available = meminfo().MemAvailable;
  const budget = Math.min(0.8 * available, MAX_MEMORY ?? Infinity);
  // One service process per target stays up after the deploy; a deploy adds one short-lived process per
  // remote command in flight. Before the first size is measured, assume 16 MiB per target.
  const needBytes = targets * (perTargetBytes ?? 16 * MiB);
  if (needBytes > budget) {
    stop = {
      at: targets,
      why: `memory: ${targets} sandbox targets need about ${gib(needBytes)} (${((perTargetBytes ?? 16 * MiB) / MiB).toFixed(1)} MiB each, ${perTargetBytes ? 'measured' : 'assumed'}), more than ${MAX_MEMORY !== undefined && MAX_MEMORY < 0.8 * available ? `the ${gib(MAX_MEMORY)} allowed by --max-memory` : `80% of the ${gib(available)} available`}`,
    };
    log(`stopping before ${targets} targets — ${stop.why}`);
    break;
  }
  const processes = processesNow() + targets + 4 * Math.max(...CONCURRENCY);
  if (processes > 0.9 * processLimit) {
    stop = {
      at: targets,
      why: `processes: about ${processes} needed, the limit (ulimit -u) is ${processLimit}`,
    };
    log(`stopping before ${targets} targets — ${stop.why}`);
    break;
  }

  const dir = mkdtempSync(join(tmpdir(), `fd-scale-${targets}-`));
  const t0 = Date.now();
  cli(['sandbox', 'up', '--dir', dir, '--servers', String(servers), '--tenants', String(TENANTS)]);
  const sb = {
    dir,
    targets,
    servers,
    registry: join(dir, 'registry.json'),
    key: join(dir, 'client_key'),
    pid: Number(readFileSync(join(dir, 'sandbox.pid'), 'utf8')),
  };
  live = sb;
  const upS = (Date.now() - t0) / 1000;
  // The sandbox's own gate (1 s per probe, 4 s in all) suits the demo on an idle machine; with a hundred
  // deploys at once on two cores a service can take longer than that to start and answer.
  const reg = JSON.parse(readFileSync(sb.registry, 'utf8'));
  Object.assign(reg.defaults.tenant.health, HEALTH);
  writeFileSync(sb.registry, JSON.stringify(reg, null, 2));
  log(`\n${targets} targets: sandbox of ${servers} servers up in ${upS.toFixed(1)} s`);
  try {
    const v1 = await deploy(sb, 'v1', Math.max(...CONCURRENCY));
    first.push(v1);
    log(`  v1 (starts ${targets} services), concurrency ${v1.concurrency}: ${v1.wallS.toFixed(1)} s`);
    let k = 2;
    for (const c of CONCURRENCY) {
      const r = await deploy(sb, `v${k++}`, c);
      runs.push(r);
      log(
        `  ${r.version} at concurrency ${c}: ${r.wallS.toFixed(1)} s, ${r.targetsPerS.toFixed(1)} targets/s, ours ${r.oursCpuMsPerTarget.toFixed(1)} ms CPU/target, peak ${r.oursPeakRssMiB.toFixed(0)} MiB; machine busy ${(r.busy * 100).toFixed(0)}%, sandbox SSH server ${(r.sshServerBusy * 100).toFixed(0)}%`,
      );
    }
    const services = servicePids(dir).filter(running);
    if (services.length !== targets)
      throw new Error(`${services.length} of ${targets} sandbox services are running after the deploys`);
    const servicesBytes = services.reduce((s, p) => s + (pss(p) ?? 0), 0);
    const serverBytes = pss(sb.pid) ?? 0;
    perTargetBytes = (servicesBytes + serverBytes) / targets;
    sizes.push({
      targets,
      servers,
      upS,
      servicesMiB: servicesBytes / MiB,
      serverMiB: serverBytes / MiB,
      perTargetMiB: perTargetBytes / MiB,
    });
    log(
      `  sandbox memory: services ${(servicesBytes / MiB).toFixed(0)} MiB, SSH server process ${(serverBytes / MiB).toFixed(0)} MiB (${(perTargetBytes / MiB).toFixed(1)} MiB per target)`,
    );
  } catch (e) {
    sb.keep = true;
    throw e;
  } finally {
    await down(sb);
    live = undefined;
  }
}

// ---- report -----------------------------------------------------------------------------------------------

const base = (c) =>
  runs.find(
    (r) => r.concurrency === c && r.targets === SIZES.map((s) => Math.ceil(s / TENANTS) * TENANTS)[0],
  );
const f = (x, d = 1) => (x === undefined ? 'n/a' : x.toFixed(d));
const rows = runs.map((r) => {
  const b = base(r.concurrency);
  const growth = b ? r.wallS / b.wallS / (r.targets / b.targets) : undefined;
  const cpuGrowth = b ? r.oursCpuS / b.oursCpuS / (r.targets / b.targets) : undefined;
  r.wallVsLinear = growth;
  r.oursCpuVsLinear = cpuGrowth;
  return [
    String(r.targets),
    String(r.concurrency),
    `${f(r.wallS)} s`,
    f(r.targetsPerS),
    `${f(growth, 2)}×`,
    `${f(r.oursCpuMsPerTarget)} ms`,
    `${f(cpuGrowth, 2)}×`,
    `${f(r.oursPeakRssMiB, 0)} MiB`,
    `${f(r.sandboxCpuMsPerTarget, 0)} ms`,
    `${f(r.machineCpuMsPerTarget, 0)} ms`,
    `${f(r.busy * 100, 0)}%`,
    `${f(r.sshServerBusy * 100, 0)}%`,
    `${f(r.targetMedianS)} / ${f(r.targetP95S)} s`,
  ];
});
const header = [
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

// Where it stops and why: the machine's CPU (every sandbox server shares these cores) and its memory.
const best = runs.reduce((a, r) => (!a || r.targetsPerS > a.targetsPerS ? r : a), undefined);
const biggest = runs.filter((r) => r.targets === Math.max(...runs.map((x) => x.targets)));
const memAvail = meminfo().MemAvailable;
const holds = perTargetBytes
  ? Math.floor(Math.min(0.8 * memAvail, MAX_MEMORY ?? Infinity) / perTargetBytes)
  : undefined;
const findings = [];
if (best) {
  const cap = (CORES * 1000) / best.machineCpuMsPerTarget;
  const rest = best.machineCpuMsPerTarget - best.sandboxCpuMsPerTarget - best.oursCpuMsPerTarget;
  findings.push(
    `Throughput: the best run made ${f(best.targetsPerS)} targets/s (${best.targets} targets at concurrency ${best.concurrency}, machine busy ${f(best.busy * 100, 0)}%). There each target cost this machine ${f(best.machineCpuMsPerTarget, 0)} ms of CPU — ${f(best.sandboxCpuMsPerTarget, 0)} ms in the sandbox (a node process per docker call, the shells, the SSH server), ${f(best.oursCpuMsPerTarget)} ms in fleet-deploy (${f((best.oursCpuMsPerTarget / best.machineCpuMsPerTarget) * 100, 0)}%), ${f(rest, 0)} ms elsewhere (the services starting, the kernel) — so ${CORES} cores allow at most about ${f(cap)} targets/s. ${best.busy >= 0.85 ? 'It is at that limit: the machine stops on CPU, nearly all of it spent standing in for servers; past that, more concurrency only makes each target wait longer (see the median target time).' : 'It is below that limit: more concurrency would still go faster.'}`,
  );
}
const biggestSlow = biggest.find((r) => r.concurrency === Math.min(...biggest.map((x) => x.concurrency)));
const smallSlow = runs.find(
  (r) => r.targets === runs[0].targets && r.concurrency === biggestSlow?.concurrency,
);
if (biggestSlow && smallSlow && biggestSlow !== smallSlow) {
  const grew = biggestSlow.machineCpuMsPerTarget - smallSlow.machineCpuMsPerTarget;
  const top = biggestSlow.othersMsPerTarget[0];
  if (grew > 0.1 * smallSlow.machineCpuMsPerTarget)
    findings.push(
      `The machine's CPU per target grew from ${f(smallSlow.machineCpuMsPerTarget, 0)} ms at ${smallSlow.targets} targets to ${f(biggestSlow.machineCpuMsPerTarget, 0)} ms at ${biggestSlow.targets} (concurrency ${biggestSlow.concurrency}) while ours and the sandbox's did not${top ? `; the biggest other consumer in that run: ${top.name} with ${f(top.ms, 0)} ms per target${/^kdamond/.test(top.name) ? " (the kernel's DAMON memory monitor, which this VM runs: its work grows with the memory the sandbox's services hold)" : ''}` : ''}.`,
    );
}
if (biggest.length && runs[0].targets !== biggest[0].targets)
  findings.push(
    `fleet-deploy itself at ${biggest[0].targets} targets: ${biggest.map((r) => `${f(r.oursCpuMsPerTarget)} ms CPU per target (${f(r.oursCpuVsLinear, 2)}× linear) at concurrency ${r.concurrency}`).join(', ')}; peak memory of the deploying process ${f(Math.max(...biggest.map((r) => r.oursPeakRssMiB)), 0)} MiB, against ${f(Math.max(...runs.filter((r) => r.targets === runs[0].targets).map((r) => r.oursPeakRssMiB)), 0)} MiB at ${runs[0].targets} targets.`,
  );
if (perTargetBytes)
  findings.push(
    `Memory: a sandbox target costs about ${f(perTargetBytes / MiB)} MiB (its service process's proportional set size plus its share of the SSH server), so ${MAX_MEMORY !== undefined && MAX_MEMORY < 0.8 * memAvail ? `the ${gib(MAX_MEMORY)} allowed by --max-memory hold` : `80% of this machine's ${gib(memAvail)} available holds`} about ${holds} targets${stop ? `; the run stopped before ${stop.at} targets: ${stop.why}` : `; every size asked for ran (the largest, ${Math.max(...sizes.map((s) => s.targets))} targets, used ${f(sizes.at(-1).servicesMiB + sizes.at(-1).serverMiB, 0)} MiB)`}.`,
  );
else if (stop) findings.push(`The run stopped before ${stop.at} targets: ${stop.why}.`);

const table = (head, body) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '--:').join('|')}|`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

const date = new Date().toISOString().slice(0, 10);
const md = [
  '## Scale on the sandbox — `npm run bench:scale`',
  '',
  `Deploys a new version to ${SIZES.join(', ')} SANDBOX targets (${TENANTS} tenants per sandbox server: real SSH endpoints, services as local processes) at concurrency ${CONCURRENCY.join(', ')}, with the shipped CLI, one process per deploy; each size on a fresh sandbox that first got v1 everywhere; health gate: 2 healthy answers in a row, every 250 ms, ${HEALTH.timeout} per probe, ${HEALTH.deadline} at most. Baseline: the ${runs[0]?.targets ?? SIZES[0]}-target run at the same concurrency, in the same run. ${CORES} cores, ${(mem0.MemTotal / 2 ** 30).toFixed(1)} GiB, node ${process.version} (${date}, git ${gitHead}, dist ${distHash}).`,
  '',
  table(header, rows),
  '',
  ...findings.map((x) => `- ${x}`),
  `- wall × linear: (wall ÷ baseline wall) ÷ (targets ÷ baseline targets), 1.00× when the wall time grows linearly with the targets at a given concurrency; ours CPU × linear, the same for our CPU time. ours: user+sys and peak resident memory of the deploying process (its own resource usage at exit). sandbox CPU: the sandbox's SSH server process and everything it ran (shells, the sandbox runtime), from /proc; machine CPU: every process, from /proc/stat; machine busy: machine CPU ÷ (wall × ${CORES} cores). target median / p95: one target's time from start to done.`,
  `- Sandbox memory per size: ${sizes.map((s) => `${s.targets} targets ${f(s.servicesMiB + s.serverMiB, 0)} MiB`).join(', ')}. Sandbox up (keys, directories, registry, servers): ${sizes.map((s) => `${f(s.upS)} s`).join(', ')}. The first deploy (v1, which starts every service): ${first.map((r) => `${r.targets} targets ${f(r.wallS)} s`).join(', ')}.`,
  '',
].join('\n');

let formatted = md;
try {
  const prettier = await import('prettier');
  formatted = await prettier.format(md, {
    ...(await prettier.resolveConfig(join(REPO, 'docs', 'PERFORMANCE.md'))),
    parser: 'markdown',
  });
} catch {
  // prettier is a dev dependency; unformatted Markdown reads the same
}
const resultsDir = resolve(opts.results);
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, `${opts.out}.md`), formatted);
writeFileSync(
  join(resultsDir, `${opts.out}.json`),
  `${JSON.stringify({ date: new Date().toISOString(), machine: { cores: CORES, memTotalBytes: mem0.MemTotal, node: process.version }, code: { gitHead, distIndexSha256: distHash }, tenantsPerServer: TENANTS, sizes, first, runs, stop, perTargetMiB: perTargetBytes && perTargetBytes / MiB, holds }, null, 2)}\n`,
);
if (!opts['no-docs']) {
  const docs = join(REPO, 'docs', 'PERFORMANCE.md');
  const text = readFileSync(docs, 'utf8');
  const begin = '<!-- bench:scale begin (written by npm run bench:scale) -->';
  const end = '<!-- bench:scale end -->';
  const section = `${begin}\n\n${formatted.trim()}\n\n${end}`;
  const at = text.indexOf(begin);
  writeFileSync(
    docs,
    at >= 0
      ? `${text.slice(0, at)}${section}${text.slice(text.indexOf(end) + end.length)}`
      : `${text.trimEnd()}\n\n${section}\n`,
  );
  log(`\nwrote docs/PERFORMANCE.md (scale section)`);
}
console.log(`\n${formatted}`);
log(`wrote ${join(resultsDir, `${opts.out}.json`)} and ${opts.out}.md`);
process.exit(stop && !runs.length ? 1 : 0);
