#!/usr/bin/env node
// npm run bench:fleet — deploys v2 to a real fleet of S sshd "servers" × T tenants on this machine, at
// concurrency C, three ways from the same script on the same fleet, each from v1:
//   ours     node dist/cli.js deploy … --concurrency C --per-server T (one SSH connection per server)
//   floor    the same remote steps as one hand-written POSIX sh script per target, `ssh host sh -s`,
//            under GNU `parallel -j C` (one ssh connection per target): the fastest a plain script goes
//   ansible  ansible-playbook (Debian's ansible-core), the same steps as shell/command tasks, forks = C
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
// Root required (sshd, a dedicated login user `fleetdeploy`, podman). Knobs: BENCH_SERVERS (20),
// BENCH_TENANTS (2), BENCH_CONCURRENCY (20), BENCH_ENGINE (podman|sandbox), BENCH_RUN_TIMEOUT_S (900),
// BENCH_REPEAT (1: rounds of all runs; each tool is reported by its fastest run, because other work on a
// shared machine only ever adds time — the JSON keeps every run).
// Diagnostics: BENCH_ONLY picks runs and their order (default "ours,floor,ansible"; "floor+" is the floor
// script plus the remote commands ours runs and a plain script does not), BENCH_TRACE=1 times every remote
// docker / docker-compose call (wrappers first on the sessions' PATH), BENCH_KEEP=1 keeps the temp dir
// and its logs, BENCH_OUT names the result files (default fleet-latest).
// Writes bench/results/fleet-latest.json and bench/results/fleet-latest.md (for docs/PERFORMANCE.md).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const int = (name, dflt, min = 1) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${v}: expected a whole number ≥ ${min}`);
  return n;
};
const SERVERS = int('BENCH_SERVERS', 20);
const TENANTS = int('BENCH_TENANTS', 2);
const CONCURRENCY = int('BENCH_CONCURRENCY', 20);
const RUN_TIMEOUT_MS = int('BENCH_RUN_TIMEOUT_S', 900) * 1000;
const REPEAT = int('BENCH_REPEAT', 1); // rounds of all runs; each tool's fastest run is reported
const ENGINE_WANTED = process.env.BENCH_ENGINE || 'auto';
const ONLY = (process.env.BENCH_ONLY || 'ours,floor,ansible').split(',').map((s) => s.trim());
const KEEP = process.env.BENCH_KEEP === '1';
const OUT = process.env.BENCH_OUT || 'fleet-latest'; // bench/results/OUT.json and OUT.md
if (!/^[\w.-]+$/.test(OUT)) throw new Error(`BENCH_OUT=${OUT}: a file name without directories`);
const TARGETS = SERVERS * TENANTS;
const USER = 'fleetdeploy';
const SSHD = '/usr/sbin/sshd';
const TIME = '/usr/bin/time';
const HEALTH = { interval: 0.5, timeout: 2, deadline: 60, successes: 2 };
// "floor+" (diagnostic, not run by default): the floor script plus the remote commands ours runs and
// the floor does not (as of f549b4b: compose lookup, docker ps by project label + inspect, history tail,
// image inspect after the pull). Keep it in step with src/remote/commands.ts by hand.
const RUNS = ONLY.filter(
  (r, k) => ['ours', 'floor', 'ansible', 'floor+'].includes(r) && ONLY.indexOf(r) === k,
);
const TRACE = process.env.BENCH_TRACE === '1';
if (!['auto', 'podman', 'sandbox'].includes(ENGINE_WANTED))
  throw new Error(`BENCH_ENGINE=${ENGINE_WANTED}: expected podman or sandbox`);

const log = (msg) => process.stderr.write(`bench:fleet: ${msg}\n`);
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A command that must succeed (bounded). Returns stdout. */
function run(cmd, args, { timeoutMs = 60_000, env, input, cwd, allowFail = false } = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    env: env ?? process.env,
    input,
    cwd,
    maxBuffer: 64 << 20,
  });
  if (!allowFail && (r.error || r.status !== 0))
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}): ${(r.stderr || r.stdout || '').trim().slice(-2000)}`,
    );
  return allowFail ? r : r.stdout;
}
const asUser = (argv, opts = {}) =>
  run(
    'runuser',
    ['-u', USER, '--', 'env', ...Object.entries(opts.envVars ?? {}).map(([k, v]) => `${k}=${v}`), ...argv],
    opts,
  );

// ---------------------------------------------------------------------------------------------------
// Clean-up: everything started is recorded here and stopped synchronously (so it also works from a
// signal handler or an uncaught exception), each step bounded.
// ---------------------------------------------------------------------------------------------------
const cleanups = [];
const active = new Set(); // running children (each its own process group)
let cleanedUp = false;
function cleanupAll() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const child of active) killGroup(child, 'SIGKILL');
  for (const fn of cleanups.reverse()) {
    try {
      fn();
    } catch (e) {
      log(`clean-up step failed: ${e.message}`);
    }
  }
}
function killGroup(child, signal = 'SIGTERM') {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return !/^\S+ \S+ Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, 'x'));
  } catch {
    return false;
  }
};
function stopPid(pid, ms = 3000) {
  if (!pid || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < ms / 50 && alive(pid); i++) sleepSync(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    cleanupAll();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}
process.on('uncaughtException', (e) => {
  log(`uncaught: ${e.stack ?? e}`);
  cleanupAll();
  process.exit(1);
});
process.on('unhandledRejection', (e) => {
  log(`unhandled: ${e?.stack ?? e}`);
  cleanupAll();
  process.exit(1);
});
process.on('exit', cleanupAll); // synchronous, so it also runs after a failed top-level await

/** A child run asynchronously in its own process group, bounded; optional /usr/bin/time around it. */
function runAsync(
  label,
  argv,
  { env = process.env, cwd = REPO_DIR, timeoutMs = RUN_TIMEOUT_MS, time = false } = {},
) {
  const timeFile = join(LOGS, `${label}.time`);
  const out = openSync(join(LOGS, `${label}.out`), 'w');
  const err = openSync(join(LOGS, `${label}.err`), 'w');
  const full = time ? [TIME, '-f', '%e %U %S', '-o', timeFile, '--', ...argv] : argv;
  return new Promise((resolveP) => {
    const t0 = performance.now();
    const child = spawn(full[0], full.slice(1), { env, cwd, stdio: ['ignore', out, err], detached: true });
    active.add(child);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      log(`${label}: no end after ${timeoutMs / 1000} s, killing it`);
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child, 'SIGKILL'), 5000).unref();
    }, timeoutMs);
    const done = (code) => {
      const wallS = (performance.now() - t0) / 1000;
      clearTimeout(timer);
      active.delete(child);
      closeSync(out);
      closeSync(err);
      let cpuS;
      if (time && existsSync(timeFile)) {
        const last = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
        if (last.length === 3 && last.every(Number.isFinite)) cpuS = last[1] + last[2];
      }
      resolveP({
        code,
        timedOut,
        wallS,
        cpuS,
        out: join(LOGS, `${label}.out`),
        err: join(LOGS, `${label}.err`),
      });
    };
    child.on('error', (e) => {
      writeFileSync(join(LOGS, `${label}.spawn-error`), e.message);
      done(-1);
    });
    child.on('close', (code) => done(code));
  });
}

/** Total CPU seconds the whole machine spent (all processes: controller, sshd, shells, engine, apps). */
function machineCpuS() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = user+nice+system+irq+softirq (steal is the
  // hypervisor's, not ours)
  return (f[0] + f[1] + f[2] + f[5] + f[6]) / 100;
}

/** CPU seconds of the engine's daemons (podman API service, registry) and their reaped children. */
function engineCpuS() {
  if (engine !== 'podman') return undefined;
  let sum = 0;
  for (const f of ['podman.pid', 'registry.pid']) {
    try {
      const pid = readFileSync(join(ENGINE_DIR, f), 'utf8').trim();
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ')
        .map(Number);
      // after "(comm) ": state=0 … utime=11 stime=12 cutime=13 cstime=14
      sum += (st[11] + st[12] + st[13] + st[14]) / 100;
    } catch {
      // not running
    }
  }
  return sum;
}

/** The docker / docker-compose calls traced since `offsets` (BENCH_TRACE=1): count and CPU by verb. */
function traceSince(offsets) {
  const byVerb = {};
  servers.forEach((srv, k) => {
    const file = join(srv.dir, 'trace.log');
    if (!existsSync(file)) return;
    const text = readFileSync(file, 'utf8').slice(offsets[k]);
    for (const line of text.split('\n')) {
      const m = /^([\d.]+) ([\d.]+) ([\d.]+) (\S+)(.*)$/.exec(line);
      if (!m) continue;
      const tool = m[4].split('/').at(-1);
      const words = m[5].trim().split(/\s+/);
      const verb = [];
      for (let i = 0; i < words.length && verb.length < 2; i++) {
        const w = words[i];
        if (['-f', '-p', '--format', '--file', '--project-name'].includes(w)) i++;
        else if (w.startsWith('-')) continue;
        else if (verb.length === 0) verb.push(w);
        else if (['image', 'container', 'compose'].includes(verb[0])) verb.push(w);
        else break;
      }
      const key = `${tool} ${verb.join(' ')}`;
      const e = (byVerb[key] ??= { n: 0, cpuS: 0, wallS: 0 });
      e.n++;
      e.cpuS += Number(m[2]) + Number(m[3]);
      e.wallS += Number(m[1]);
    }
  });
  return byVerb;
}
const traceOffsets = () =>
  servers.map((srv) =>
    existsSync(join(srv.dir, 'trace.log')) ? readFileSync(join(srv.dir, 'trace.log'), 'utf8').length : 0,
  );

/**
 * Waits (at most 60 s) until the machine is quiet — under 15% of one core busy over a second — so that
 * no other work (a build, a test run) shares the CPU with the run. Returns the last busy fraction.
 */
async function waitQuiet(name) {
  let busy = 1;
  for (let i = 0; i < 30; i++) {
    const c0 = machineCpuS();
    await sleep(1000);
    busy = machineCpuS() - c0;
    if (busy < 0.15) return busy;
    if (i === 0)
      log(
        `${name}: the machine is busy (${Math.round(busy * 100)}% of a core), waiting for it to quiet down`,
      );
    await sleep(1000);
  }
  log(`${name}: WARNING: the machine stayed busy (${Math.round(busy * 100)}% of a core); measuring anyway`);
  return busy;
}

/**
 * A free port below the kernel's ephemeral range (where outgoing connections and other programs' port-0
 * listeners land), so that nothing else running on the machine takes it between now and its use.
 */
const [EPHEMERAL_LOW] = (() => {
  try {
    return readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  } catch {
    return [32768];
  }
})();
const PORT_LOW = Math.max(10_000, EPHEMERAL_LOW - 12_000);
const PORT_HIGH = Math.max(PORT_LOW + 2000, EPHEMERAL_LOW - 1);
let nextPort = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW - 1000));
const portsGiven = new Set();
async function freePort() {
  for (let i = 0; i < PORT_HIGH - PORT_LOW; i++) {
    const port = nextPort++;
    if (nextPort >= PORT_HIGH) nextPort = PORT_LOW;
    if (portsGiven.has(port)) continue;
    const free = await new Promise((resolveP) => {
      const s = createServer();
      s.once('error', () => resolveP(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolveP(true)));
    });
    if (free) {
      portsGiven.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${PORT_LOW}..${PORT_HIGH}`);
}
async function waitForBanner(port) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((r) => {
      const s = connect(port, '127.0.0.1');
      const t = setTimeout(() => (s.destroy(), r(false)), 200);
      s.once('data', (d) => (clearTimeout(t), s.destroy(), r(d.toString().startsWith('SSH-'))));
      s.once('error', () => (clearTimeout(t), r(false)));
    });
    if (ok) return true;
    await sleep(100);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------
// Preconditions and packages.
// ---------------------------------------------------------------------------------------------------
if (process.getuid?.() !== 0) {
  console.error(
    'bench:fleet must run as root (it starts sshd, creates the user fleetdeploy and runs podman)',
  );
  process.exit(2);
}
if (!existsSync(join(REPO_DIR, 'dist/cli.js'))) {
  console.error('dist/cli.js is missing: run `npm run build` first');
  process.exit(2);
}
function ensurePackages() {
  const want = {
    parallel: 'parallel',
    'ansible-playbook': 'ansible-core',
    [TIME]: 'time',
    [SSHD]: 'openssh-server',
    curl: 'curl',
  };
  const missing = Object.entries(want)
    .filter(([bin]) => run('sh', ['-c', `command -v ${bin}`], { allowFail: true }).status !== 0)
    .map(([, pkg]) => pkg);
  if (!missing.length) return;
  log(`installing ${missing.join(' ')} (apt-get, quietly)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    run(
      'apt-get',
      ['install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', ...missing],
      {
        env,
        timeoutMs: 900_000,
        allowFail: true,
      },
    );
  if (install().status !== 0) {
    run('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000, allowFail: true });
    const r = install();
    if (r.status !== 0)
      throw new Error(`apt-get install ${missing.join(' ')} failed: ${r.stderr.slice(-1000)}`);
  }
}
ensurePackages();
function ensureDeployUser() {
  if (run('id', [USER], { allowFail: true }).status === 0) return;
  run('useradd', ['-m', '-s', '/bin/bash', USER]);
  run('usermod', ['-p', '*', USER]); // unlocked for key login, no password
}
ensureDeployUser();
const USER_GROUP = run('id', ['-gn', USER]).trim();

// ---------------------------------------------------------------------------------------------------
// The fleet.
// ---------------------------------------------------------------------------------------------------
// The bundle measured (it may be rebuilt while this runs: each run records the one it started with).
const distHashOf = () =>
  createHash('sha256')
    .update(readFileSync(join(REPO_DIR, 'dist/index.js')))
    .digest('hex')
    .slice(0, 12);
const distHash = distHashOf();
const gitHead = run('git', ['-C', REPO_DIR, 'rev-parse', '--short', 'HEAD'], {
  allowFail: true,
}).stdout?.trim();
const ROOT = mkdtempSync('/tmp/fd-fleet-');
chmodSync(ROOT, 0o755);
const LOGS = join(ROOT, 'logs');
mkdirSync(LOGS);
cleanups.push(() => {
  if (KEEP) log(`kept ${ROOT} (BENCH_KEEP=1)`);
  else rmSync(ROOT, { recursive: true, force: true });
});
const KEY = join(ROOT, 'id_ed25519');
run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fleet-deploy-bench', '-f', KEY]);
chmodSync(KEY, 0o600);
const PUBKEY = readFileSync(`${KEY}.pub`, 'utf8').trim();
mkdirSync('/run/sshd', { recursive: true });

const t0Setup = performance.now();
/** Every server: { name, port, dir, log, pid, hostKey } */
const servers = [];
/** Every target: { server, id, dir, project, appPort } */
const targets = [];

let engine; // 'podman' | 'sandbox'
let engineEnv = {}; // from engine-up.sh
let REPO; // image repository (no tag)
const ENGINE_DIR = join(ROOT, 'engine');

function engineUp() {
  log('bringing up the podman stack (engine-up.sh)');
  const r = run('bash', [join(REPO_DIR, '__tests__/e2e/engine-up.sh'), ENGINE_DIR], {
    timeoutMs: 900_000,
    allowFail: true,
  });
  // Whatever happened, engine-down is the way back.
  cleanups.push(() => {
    log('engine-down.sh --purge');
    const d = run('bash', [join(REPO_DIR, '__tests__/e2e/engine-down.sh'), '--purge', ENGINE_DIR], {
      timeoutMs: 180_000,
      allowFail: true,
    });
    if (d.status !== 0) log(`engine-down failed: ${(d.stderr || '').trim().slice(-500)}`);
  });
  if (r.status !== 0)
    throw new Error(`engine-up.sh failed: ${(r.stderr || r.error?.message || '').trim().slice(-1500)}`);
  for (const line of r.stdout.split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) engineEnv[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
  }
  const sock = engineEnv.DOCKER_HOST.replace(/^unix:\/\//, '');
  // The deploy user reaches the engine through a group that owns the socket (like the docker group).
  run('chgrp', [USER_GROUP, sock]);
  chmodSync(sock, 0o660);
  for (let d = dirname(sock); d.startsWith(ROOT); d = dirname(d)) chmodSync(d, 0o755);
  asUser(['docker', 'version', '--format', '{{.Server.Version}}'], {
    envVars: { DOCKER_HOST: engineEnv.DOCKER_HOST },
    timeoutMs: 30_000,
  });
  REPO = `${engineEnv.FLEET_E2E_REGISTRY}/fleet/app`;
}

if (ENGINE_WANTED === 'podman' || ENGINE_WANTED === 'auto') {
  try {
    engineUp();
    engine = 'podman';
  } catch (e) {
    if (ENGINE_WANTED === 'podman') {
      cleanupAll();
      throw e;
    }
    log(`podman does not work here (${e.message.split('\n')[0]}); using the sandbox runtime`);
  }
}
if (!engine) {
  engine = 'sandbox';
  REPO = 'registry.test/acme/app';
}
const COMPOSE = engine === 'podman' ? 'docker-compose' : 'docker compose';
const dockerEnv = engine === 'podman' ? { ...process.env, DOCKER_HOST: engineEnv.DOCKER_HOST } : undefined;

async function startSshd(name) {
  const dir = join(ROOT, 'srv', name);
  mkdirSync(dir, { recursive: true });
  chmodSync(join(ROOT, 'srv'), 0o755);
  chmodSync(dir, 0o755);
  const hostKeyFile = join(dir, 'host_ed25519');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', hostKeyFile]);
  writeFileSync(join(dir, 'authorized_keys'), `${PUBKEY}\n`);
  chmodSync(join(dir, 'authorized_keys'), 0o644);
  let setEnv;
  if (engine === 'podman')
    setEnv = { DOCKER_HOST: engineEnv.DOCKER_HOST, PATH: '/usr/local/bin:/usr/bin:/bin' };
  else {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const runtime = join(bin, 'sandbox-runtime.js');
    copyFileSync(join(REPO_DIR, 'dist/sandbox/runtime.js'), runtime);
    writeFileSync(join(bin, 'docker'), `#!/bin/sh\nexec ${process.execPath} ${runtime} "$@"\n`);
    chmodSync(join(bin, 'docker'), 0o755);
    mkdirSync(join(dir, 'sandbox'));
    run('chown', [`${USER}:`, join(dir, 'sandbox')]);
    setEnv = { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`, FLEET_SANDBOX_STATE: join(dir, 'sandbox') };
  }
  if (TRACE) {
    // Diagnostics: every docker / docker-compose call on this server is timed into trace/NAME.log.
    const traceBin = join(dir, 'trace-bin');
    mkdirSync(traceBin);
    for (const tool of ['docker', 'docker-compose']) {
      const real = run('sh', ['-c', `PATH=${setEnv.PATH}; command -v ${tool}`], {
        allowFail: true,
      }).stdout?.trim();
      if (!real) continue;
      writeFileSync(
        join(traceBin, tool),
        `#!/bin/sh\nexec ${TIME} -a -o "$FLEET_TRACE_LOG" -f '%e %U %S %C' ${real} "$@"\n`,
      );
      chmodSync(join(traceBin, tool), 0o755);
    }
    const traceLog = join(dir, 'trace.log');
    writeFileSync(traceLog, '');
    run('chown', [`${USER}:`, traceLog]);
    setEnv = { ...setEnv, PATH: `${traceBin}:${setEnv.PATH}`, FLEET_TRACE_LOG: traceLog };
  }
  const logFile = join(dir, 'sshd.log');
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await freePort();
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKeyFile}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'UsePAM no',
        'StrictModes no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        `AllowUsers ${USER}`,
        'LogLevel VERBOSE',
        'MaxSessions 30',
        'MaxStartups 100',
        `SetEnv ${Object.entries(setEnv)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
        '',
      ].join('\n'),
    );
    const fd = openSync(logFile, 'a');
    const child = spawn(SSHD, ['-D', '-e', '-f', config], {
      stdio: ['ignore', 'ignore', fd],
      detached: true,
    });
    closeSync(fd);
    child.unref();
    const pid = child.pid;
    cleanups.push(() => stopPid(pid));
    if (await waitForBanner(port)) {
      const hostKey = readFileSync(`${hostKeyFile}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
      return { name, port, dir, log: logFile, pid, hostKey };
    }
    stopPid(pid, 500);
  }
  throw new Error(
    `sshd ${name} did not start; see ${logFile}: ${readFileSync(logFile, 'utf8').slice(-1000)}`,
  );
}

const usedAppPorts = new Set();
for (let s = 1; s <= SERVERS; s++) {
  const srv = await startSshd(`srv-${s}`);
  servers.push(srv);
  for (let i = 1; i <= TENANTS; i++) {
    const id = `t${s}-${i}`;
    const dir = join(srv.dir, 'tenants', id);
    mkdirSync(dir, { recursive: true });
    let appPort;
    do appPort = await freePort();
    while (usedAppPorts.has(appPort));
    usedAppPorts.add(appPort);
    writeFileSync(
      join(dir, 'docker-compose.yml'),
      [
        'services:',
        '  app:',
        '    image: ${APP_IMAGE}',
        '    network_mode: host',
        '    environment:',
        '      APP_PORT: ${APP_PORT}',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, '.env'),
      `# tenant ${id}\nAPP_IMAGE=${REPO}:v1\nAPP_PORT=${appPort}\nSECRET_TOKEN=keep-me\n`,
    );
    targets.push({ server: srv, id, dir, project: `app-${id}`, appPort });
  }
  run('chown', ['-R', `${USER}:`, join(srv.dir, 'tenants')]);
}
if (engine === 'sandbox') {
  cleanups.push(() => {
    for (const srv of servers) {
      const projects = join(srv.dir, 'sandbox', 'projects');
      if (!existsSync(projects)) continue;
      for (const f of readdirSync(projects).filter((x) => x.endsWith('.json'))) {
        try {
          stopPid(JSON.parse(readFileSync(join(projects, f), 'utf8')).pid, 2000);
        } catch {
          // gone or unreadable
        }
      }
    }
  });
}

// known_hosts for ssh and Ansible; the registry pins the same keys.
const KNOWN_HOSTS = join(ROOT, 'known_hosts');
writeFileSync(KNOWN_HOSTS, servers.map((s) => `[127.0.0.1]:${s.port} ${s.hostKey}`).join('\n') + '\n');

// The registry.
const REGISTRY_FILE = join(ROOT, 'registry.json');
const registry = {
  defaults: {
    tenant: {
      compose: { file: 'docker-compose.yml', command: COMPOSE, project: 'app-{tenant}' },
      images: [{ variable: 'APP_IMAGE', repository: REPO }],
      health: {
        path: '/health',
        json: { version: '{version}' },
        interval: '500ms',
        timeout: '2s',
        deadline: '60s',
        successes: 2,
      },
      minFreeDiskMb: 1,
    },
  },
  servers: servers.map((s, k) => ({
    name: s.name,
    host: '127.0.0.1',
    port: s.port,
    user: USER,
    hostKey: s.hostKey,
    region: k % 2 ? 'us' : 'eu',
    tenants: targets
      .filter((t) => t.server === s)
      .map((t) => ({ id: t.id, path: t.dir, health: { port: t.appPort } })),
  })),
};
writeFileSync(REGISTRY_FILE, JSON.stringify(registry, null, 2));

// ---------------------------------------------------------------------------------------------------
// The floor: one POSIX sh script per target, the same remote steps as fleet-deploy (src/remote/commands.ts):
// check the files, take the lock (atomic mkdir), read .env, pull, switch .env atomically (awk, cp -p, mv),
// compose up -d, poll the health endpoint until 2 consecutive answers carry the version (within the
// deadline), roll back (switch + up + health) on failure, append history, remove the lock.
// Everything is in functions and `main` runs last with stdin from /dev/null: the script itself arrives on
// stdin (`sh -s`), so no command can eat the rest of it.
// ---------------------------------------------------------------------------------------------------
const HEALTH_SH = (portExpr, wantExpr) => `ok=0; end=$(( $(date +%s) + ${HEALTH.deadline} ))
while :; do
  if curl -fsS --max-time ${HEALTH.timeout} "http://127.0.0.1:${portExpr}/health" 2>/dev/null | grep -q "\\"version\\": *\\"${wantExpr}\\""; then
    ok=$((ok + 1)); [ "$ok" -ge ${HEALTH.successes} ] && break
  else
    ok=0
  fi
  [ "$(date +%s)" -lt "$end" ] || exit 1
  sleep ${HEALTH.interval}
done`;
const SWITCH_SH = (refExpr) =>
  `cp -p .env .env.fleet-new && awk -v ref="${refExpr}" '/^(export[ \\t]+)?APP_IMAGE=/ { print "APP_IMAGE=" ref; seen = 1; next } { print } END { if (!seen) print "APP_IMAGE=" ref }' .env > .env.fleet-new && mv -f .env.fleet-new .env`;
const FLOOR_SH = `#!/bin/sh
# floor.sh DIR PROJECT APP_PORT VERSION REPOSITORY COMPOSE(+ for space) [extra]: one target's deploy.
# With "extra" it also runs the commands fleet-deploy runs and a plain script does not need (diagnostic).
set -u
health() ( port=$1 want=$2
${HEALTH_SH('$port', '$want')}
)
switch() { ${SWITCH_SH('$1')}; }
history() {
  printf '{"time":"%s","actor":"floor","target":"%s","outcome":"%s","from":"%s","to":"%s"}\\n' \\
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$project" "$1" "$prev" "$next" >> .fleet/history.jsonl
}
main() {
  dir=$1 project=$2 port=$3 version=$4 repo=$5 compose=$(printf '%s' "$6" | tr + ' ')
  cd "$dir" 2>/dev/null || exit 10
  test -f docker-compose.yml || exit 11
  test -f .env || exit 13
  df -Pk . | awk 'NR==2 {print "free_kb=" $4}'
  mkdir -p .fleet
  mkdir .fleet/lock 2>/dev/null || { echo "locked: $(cat .fleet/lock/owner 2>/dev/null)" >&2; exit 20; }
  printf '{"actor":"floor","version":"%s","pid":%s}\\n' "$version" "$$" > .fleet/lock/owner
  prev=$(grep -E '^(export[[:space:]]+)?APP_IMAGE=' .env | head -n 1 | sed 's/^[^=]*=//')
  next=$repo:$version
  if [ "\${7:-}" = extra ]; then
    command -v \${compose%% *} >/dev/null 2>&1 || exit 12
    ids=$(docker ps -q --filter "label=com.docker.compose.project=$project") || exit 1
    if [ -n "$ids" ]; then docker inspect --format '{{.Image}}' $ids >/dev/null || exit 1; fi
    tail -n 200 .fleet/history.jsonl >/dev/null 2>&1
  fi
  if ! docker pull -q "$next" >/dev/null; then
    history failed; rm -rf .fleet/lock; echo "pull of $next failed" >&2; exit 30
  fi
  if [ "\${7:-}" = extra ]; then docker image inspect --format '{{.Id}}' "$next" >/dev/null; fi
  outcome=deployed
  if ! switch "$next"; then
    rm -f .env.fleet-new; history failed; rm -rf .fleet/lock; exit 31
  fi
  if ! { $compose -p "$project" up -d && health "$port" "$version"; }; then
    echo "$next is not healthy: rolling back to $prev" >&2
    outcome=rolled-back
    { switch "$prev" && $compose -p "$project" up -d && health "$port" "\${prev##*:}"; } || outcome=failed
  fi
  history "$outcome"
  rm -rf .fleet/lock
  echo "$outcome"
  [ "$outcome" = deployed ]
}
main "$@" </dev/null
`;
const FLOOR_FILE = join(ROOT, 'floor.sh');
writeFileSync(FLOOR_FILE, FLOOR_SH);
const TARGETS_TSV = join(ROOT, 'targets.tsv');
writeFileSync(
  TARGETS_TSV,
  targets.map((t) => [t.server.port, t.dir, t.project, t.appPort].join('\t')).join('\n') + '\n',
);
const SSH_OPTS = [
  '-F',
  '/dev/null',
  '-i',
  KEY,
  '-o',
  'IdentitiesOnly=yes',
  '-o',
  'BatchMode=yes',
  '-o',
  `UserKnownHostsFile=${KNOWN_HOSTS}`,
  '-o',
  'StrictHostKeyChecking=yes',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'ConnectTimeout=20',
];
const floorArgv = (version, jobs, label, extra = false) => [
  'parallel',
  '--will-cite',
  '-j',
  String(jobs),
  '--colsep',
  '\t',
  '--joblog',
  join(LOGS, `${label}.joblog`),
  '-a',
  TARGETS_TSV,
  'ssh',
  ...SSH_OPTS,
  '-p',
  '{1}',
  `${USER}@127.0.0.1`,
  'sh',
  '-s',
  '--',
  '{2}',
  '{3}',
  '{4}',
  version,
  REPO,
  COMPOSE.replace(' ', '+'),
  ...(extra ? ['extra'] : []),
  '<',
  FLOOR_FILE,
];

// ---------------------------------------------------------------------------------------------------
// Ansible: an inventory of the servers (tenants as host variables), a playbook with the same steps as
// shell/command tasks looped over the host's tenants, forks = C. Tuned the way its docs recommend for
// speed: pipelining on, SSH ControlPersist (its default), no fact gathering, a fixed Python interpreter.
// ---------------------------------------------------------------------------------------------------
const ANSIBLE_DIR = join(ROOT, 'ansible');
mkdirSync(join(ANSIBLE_DIR, 'cp'), { recursive: true });
mkdirSync(join(ANSIBLE_DIR, 'tmp'), { recursive: true });
const inventory = {
  all: {
    children: {
      fleet: {
        hosts: Object.fromEntries(
          servers.map((s) => [
            s.name,
            {
              ansible_host: '127.0.0.1',
              ansible_port: s.port,
              ansible_user: USER,
              ansible_ssh_private_key_file: KEY,
              ansible_python_interpreter: '/usr/bin/python3',
              tenants: targets
                .filter((t) => t.server === s)
                .map((t) => ({ id: t.id, dir: t.dir, project: t.project, port: t.appPort })),
            },
          ]),
        ),
      },
    },
  },
};
writeFileSync(join(ANSIBLE_DIR, 'inventory.yml'), JSON.stringify(inventory, null, 1)); // JSON is YAML
writeFileSync(
  join(ANSIBLE_DIR, 'ansible.cfg'),
  `[defaults]
inventory = ${join(ANSIBLE_DIR, 'inventory.yml')}
forks = ${CONCURRENCY}
host_key_checking = True
gathering = explicit
retry_files_enabled = False
local_tmp = ${join(ANSIBLE_DIR, 'tmp')}
interpreter_python = /usr/bin/python3
nocolor = True
deprecation_warnings = False

[ssh_connection]
pipelining = True
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=${KNOWN_HOSTS} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
control_path_dir = ${join(ANSIBLE_DIR, 'cp')}
`,
);
const indent = (text, n) =>
  text
    .split('\n')
    .map((l) => (l ? ' '.repeat(n) + l : l))
    .join('\n');
const task = (name, body, extra = '') => `    - name: ${name}
      shell: |
${indent(body, 8)}
      args: { chdir: "{{ t.dir }}" }
      loop: "{{ tenants }}"
      loop_control: { loop_var: t, index_var: i, label: "{{ t.id }}" }
${extra ? indent(extra, 6) + '\n' : ''}`;
const FAILED = '(up.results[i] is failed) or (health.results[i] is failed)';
const PLAYBOOK = `# The same remote steps as bench/floor.sh (and fleet-deploy), one task per step, looped over tenants.
- name: deploy {{ version }}
  hosts: fleet
  gather_facts: false
  vars:
    repo: ${REPO}
    compose: ${COMPOSE}
  tasks:
${task('preflight', 'test -f docker-compose.yml && test -f .env && df -Pk . | awk \'NR==2 {print "free_kb=" $4}\'', 'changed_when: false')}
${task('lock', `mkdir -p .fleet && mkdir .fleet/lock && printf '%s\\n' '{"actor":"ansible","version":"{{ version }}"}' > .fleet/lock/owner`)}
${task('read current', "grep -E '^(export[[:space:]]+)?APP_IMAGE=' .env | head -n 1 | sed 's/^[^=]*=//'", 'register: current\nchanged_when: false')}
${task('pull', 'docker pull -q {{ repo }}:{{ version }} >/dev/null')}
${task('switch .env', SWITCH_SH('{{ repo }}:{{ version }}'))}
${task('compose up', '{{ compose }} -p {{ t.project }} up -d', 'register: up\nignore_errors: true')}
${task('health', `port={{ t.port }} want={{ version }}\n${HEALTH_SH('$port', '$want')}`, 'register: health\nwhen: up.results[i] is succeeded\nignore_errors: true')}
${task(
  'roll back',
  `prev={{ current.results[i].stdout | quote }}\n${SWITCH_SH('$prev')}\n{{ compose }} -p {{ t.project }} up -d\nport={{ t.port }} want=\${prev##*:}\n${HEALTH_SH('$port', '$want')}`,
  `register: rollback\nwhen: ${FAILED}\nignore_errors: true`,
)}
${task(
  'history',
  `printf '{"time":"%s","actor":"ansible","target":"%s","outcome":"%s","from":"%s","to":"%s"}\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" {{ t.project }} {{ ('failed' if (rollback.results[i] is failed) else 'rolled-back') if (${FAILED}) else 'deployed' }} {{ current.results[i].stdout | quote }} {{ repo }}:{{ version }} >> .fleet/history.jsonl`,
)}
${task('unlock', 'rm -rf .fleet/lock')}
    - name: outcome
      fail: { msg: "{{ t.id }} was not deployed" }
      loop: "{{ tenants }}"
      loop_control: { loop_var: t, index_var: i, label: "{{ t.id }}" }
      when: ${FAILED}
`;
writeFileSync(join(ANSIBLE_DIR, 'deploy.yml'), PLAYBOOK);
const ansibleEnv = {
  ...process.env,
  ANSIBLE_CONFIG: join(ANSIBLE_DIR, 'ansible.cfg'),
  ANSIBLE_HOME: ANSIBLE_DIR,
  ANSIBLE_NOCOLOR: '1',
};
const ANSIBLE_VERSION =
  /core ([\d.]+)/.exec(
    run('ansible-playbook', ['--version'], { env: ansibleEnv, allowFail: true, timeoutMs: 30_000 }).stdout ??
      '',
  )?.[1] ?? '?';
const floorEnv = { ...process.env, PARALLEL_HOME: join(ROOT, 'parallel') };
function closeControlMasters() {
  const cp = join(ANSIBLE_DIR, 'cp');
  if (!existsSync(cp)) return;
  for (const f of readdirSync(cp)) {
    run('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(cp, f)}`, '-O', 'exit', 'x'], {
      timeoutMs: 5000,
      allowFail: true,
    });
  }
}
cleanups.push(closeControlMasters);

// ---------------------------------------------------------------------------------------------------
// State checks, reset, handshake counting.
// ---------------------------------------------------------------------------------------------------
const acceptedCount = (srv) =>
  existsSync(srv.log) ? (readFileSync(srv.log, 'utf8').match(/Accepted publickey for /g) ?? []).length : 0;

async function healthOf(t) {
  try {
    const r = await fetch(`http://127.0.0.1:${t.appPort}/health`, { signal: AbortSignal.timeout(2000) });
    return JSON.parse(await r.text()).version;
  } catch {
    return 'down';
  }
}
/** How many targets run `version` (health answers it, .env holds it, no lock left). */
async function onVersion(version) {
  const states = await Promise.all(
    targets.map(async (t) => {
      const env = readFileSync(join(t.dir, '.env'), 'utf8');
      const ok =
        (await healthOf(t)) === version &&
        env.includes(`APP_IMAGE=${REPO}:${version}\n`) &&
        env.includes('SECRET_TOKEN=keep-me') &&
        !existsSync(join(t.dir, '.fleet', 'lock'));
      return ok;
    }),
  );
  return states.filter(Boolean).length;
}
function dropImage(version) {
  if (engine !== 'podman') return;
  run('docker', ['image', 'rm', `${REPO}:${version}`], {
    env: dockerEnv,
    timeoutMs: 60_000,
    allowFail: true,
  });
}
/** Brings every target to `version` with the floor script (untimed); one more pass for stragglers. */
async function bringTo(version, why) {
  let n = 0;
  let r;
  for (let pass = 1; pass <= 2 && n !== TARGETS; pass++) {
    const label = `reset-${why}${pass > 1 ? '-again' : ''}`;
    for (const t of targets) rmSync(join(t.dir, '.fleet', 'lock'), { recursive: true, force: true });
    const t0 = performance.now();
    r = await runAsync(label, floorArgv(version, CONCURRENCY, label), { env: floorEnv, timeoutMs: 600_000 });
    n = await onVersion(version);
    log(`${why}: ${n}/${TARGETS} targets on ${version} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  if (n !== TARGETS) {
    const failed = readFileSync(r.err, 'utf8').trim().split('\n').slice(-15).join('\n  ');
    throw new Error(
      `could not bring the fleet to ${version} (${n}/${TARGETS}, parallel exit ${r.code}); last errors:\n  ${failed}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// The runs.
// ---------------------------------------------------------------------------------------------------
const results = {};
const oursSteps = {};
let oursCommands;
const ARGV = {
  ours: (label = 'ours') => [
    process.execPath,
    join(REPO_DIR, 'dist/cli.js'),
    'deploy',
    '-r',
    REGISTRY_FILE,
    '--version',
    'v2',
    '--key',
    KEY,
    '--concurrency',
    String(CONCURRENCY),
    '--per-server',
    String(TENANTS),
    '--report',
    join(LOGS, `${label}-report.json`),
  ],
  floor: (label) => floorArgv('v2', CONCURRENCY, label),
  'floor+': (label) => floorArgv('v2', CONCURRENCY, label, true),
  ansible: () => ['ansible-playbook', join(ANSIBLE_DIR, 'deploy.yml'), '-e', 'version=v2'],
};
const ENV = {
  ours: { ...process.env, NO_COLOR: '1' },
  floor: floorEnv,
  'floor+': floorEnv,
  ansible: ansibleEnv,
};

try {
  log(
    `fleet: ${SERVERS} sshd × ${TENANTS} tenants, engine ${engine}, set up in ${((performance.now() - t0Setup) / 1000).toFixed(1)} s; registry ${REGISTRY_FILE}`,
  );
  // What ours will run per target (validates the registry, too).
  const dry = await runAsync('ours-dry-run', [...ARGV.ours().slice(0, -2), '--dry-run'], {
    timeoutMs: 60_000,
  });
  if (dry.code !== 0) throw new Error(`ours --dry-run failed: ${readFileSync(dry.err, 'utf8').slice(-1500)}`);
  const dryText = readFileSync(dry.out, 'utf8');
  const firstTarget = dryText.split(/\n# /)[1] ?? '';
  oursCommands = firstTarget
    .split('\n')
    .filter((l) => /^\[[^\]]+\] /.test(l))
    .map((l) => ({ step: /^\[([^\]]+)\]/.exec(l)[1], remote: !/^\[[^\]]+\] #/.test(l) }));

  await bringTo('v1', 'initial');
  const rounds = Object.fromEntries(RUNS.map((n) => [n, []]));
  for (let round = 1; round <= REPEAT; round++)
    for (const name of RUNS) {
      const label = REPEAT > 1 ? `${name}#${round}` : name;
      if (name !== RUNS[0] || round > 1) await bringTo('v1', `before-${label}`);
      dropImage('v2'); // every run pulls v2 from the registry
      await sleep(2000); // let the reset's containers settle
      const busyBefore = await waitQuiet(label);
      const before = servers.map(acceptedCount);
      const cpu0 = machineCpuS();
      const eng0 = engineCpuS();
      const trace0 = TRACE ? traceOffsets() : undefined;
      const runDist = distHashOf(); // node loads the bundle at its start
      log(`${label}: deploying v2 to ${TARGETS} targets at concurrency ${CONCURRENCY}`);
      const r = await runAsync(label, ARGV[name](label), { env: ENV[name], time: true });
      const machine = machineCpuS() - cpu0;
      const engineCpu = eng0 === undefined ? undefined : engineCpuS() - eng0;
      if (name === 'ansible') closeControlMasters();
      await sleep(500); // sshd writes its log lines as connections end
      const handshakes = servers.map((s, k) => acceptedCount(s) - before[k]);
      const deployed = await onVersion('v2');
      const result = {
        round,
        dist: runDist,
        wallS: r.wallS,
        cpuS: r.cpuS,
        cpuMsPerTarget: r.cpuS !== undefined ? (r.cpuS * 1000) / TARGETS : undefined,
        machineCpuS: machine,
        busyBefore,
        engineCpuS: engineCpu,
        ...(TRACE ? { trace: traceSince(trace0) } : {}),
        exitCode: r.code,
        timedOut: r.timedOut,
        deployed,
        handshakes: {
          perServer: handshakes,
          min: Math.min(...handshakes),
          max: Math.max(...handshakes),
          total: handshakes.reduce((a, b) => a + b, 0),
        },
      };
      rounds[name].push(result);
      log(
        `${label}: ${r.wallS.toFixed(1)} s wall, ${r.cpuS?.toFixed(2)} s CPU, exit ${r.code}, ${deployed}/${TARGETS} on v2, handshakes/server ${result.handshakes.min}–${result.handshakes.max}`,
      );
      if (r.code !== 0 || deployed !== TARGETS)
        log(
          `${label} did not deploy everything: see ${r.out} and ${r.err}${KEEP ? '' : ' (BENCH_KEEP=1 keeps them)'}`,
        );
      if (name === 'ours' && existsSync(join(LOGS, `${label}-report.json`))) {
        const report = JSON.parse(readFileSync(join(LOGS, `${label}-report.json`), 'utf8'));
        for (const t of report.targets ?? []) {
          for (const s of t.steps ?? []) {
            const e = (oursSteps[s.step] ??= { n: 0, totalMs: 0, maxMs: 0 });
            e.n++;
            e.totalMs += s.ms;
            e.maxMs = Math.max(e.maxMs, s.ms);
          }
          const e = (oursSteps['(whole target)'] ??= { n: 0, totalMs: 0, maxMs: 0 });
          e.n++;
          e.totalMs += t.durationMs;
          e.maxMs = Math.max(e.maxMs, t.durationMs);
        }
        // Keep the failures' messages, they explain a MISSED target.
        result.failures = (report.targets ?? [])
          .filter((t) => t.outcome !== 'deployed')
          .slice(0, 5)
          .map((t) => `${t.id}: ${t.outcome}: ${t.error ?? ''}`);
      }
    }
  // Each tool's figures are those of its fastest run (anything else running on the machine only adds
  // time); every run is kept in the JSON, and the handshake and deploy checks must hold in all of them.
  for (const name of RUNS) {
    const all = rounds[name];
    const fastest = [...all].sort((a, b) => a.wallS - b.wallS)[0];
    results[name] = {
      ...fastest,
      handshakes: {
        ...fastest.handshakes,
        min: Math.min(...all.map((x) => x.handshakes.min)),
        max: Math.max(...all.map((x) => x.handshakes.max)),
      },
      deployed: Math.min(...all.map((x) => x.deployed)),
      exitCode: all.find((x) => x.exitCode !== 0)?.exitCode ?? 0,
      ...(all.length > 1
        ? { runs: all.map(({ trace: _t, ...x }) => x), wallsS: all.map((x) => x.wallS) }
        : {}),
    };
  }
} finally {
  cleanupAll();
}

// ---------------------------------------------------------------------------------------------------
// The table, the targets, the files.
// ---------------------------------------------------------------------------------------------------
const f1 = (x, unit = '') => (x === undefined || Number.isNaN(x) ? 'n/a' : `${x.toFixed(1)}${unit}`);
const f2 = (x, unit = '') => (x === undefined || Number.isNaN(x) ? 'n/a' : `${x.toFixed(2)}${unit}`);
const ours = results.ours;
const floor = results.floor;
const ansible = results.ansible;
const ok = (r) => r && r.exitCode === 0 && r.deployed === TARGETS;
const check = (name, value, met, available = true) => ({
  name,
  value,
  result: !available ? 'n/a' : met ? 'met' : 'MISSED',
});
const hsText = (r) =>
  r
    ? r.handshakes.min === r.handshakes.max
      ? `${r.handshakes.min}`
      : `${r.handshakes.min}–${r.handshakes.max}`
    : 'n/a';
const targetsChecks = [
  check(
    'ours wall ≤ 1.05× the floor',
    ours && floor ? `${(ours.wallS / floor.wallS).toFixed(2)}×` : 'n/a',
    ours && floor && ours.wallS <= 1.05 * floor.wallS && ok(ours),
    !!(ours && floor),
  ),
  check(
    'ours ≥ 1.4× faster than Ansible',
    ours && ansible ? `${(ansible.wallS / ours.wallS).toFixed(2)}×` : 'n/a',
    ours && ansible && ansible.wallS >= 1.4 * ours.wallS && ok(ours),
    !!(ours && ansible),
  ),
  check(
    'ours CPU ≤ 50 ms per target',
    ours ? f1(ours.cpuMsPerTarget, ' ms') : 'n/a',
    ours && ours.cpuMsPerTarget <= 50,
    !!ours,
  ),
  check(
    "ours CPU ≥ 10× less than Ansible's controller",
    ours && ansible ? `${(ansible.cpuS / ours.cpuS).toFixed(1)}×` : 'n/a',
    ours && ansible && ansible.cpuS >= 10 * ours.cpuS,
    !!(ours && ansible),
  ),
  check(
    'exactly 1 SSH handshake per server (ours)',
    hsText(ours),
    ours && ours.handshakes.min === 1 && ours.handshakes.max === 1,
    !!ours,
  ),
];

const header = `bench:fleet — ${SERVERS} servers × ${TENANTS} tenants = ${TARGETS} targets, concurrency ${CONCURRENCY}, engine ${engine}${engine === 'podman' ? ' (podman + registry + docker-compose 1.29)' : ' (sandbox runtime double)'}, ${cpus().length} cores, node ${process.version}${REPEAT > 1 ? `, fastest of ${REPEAT} rounds` : ''}`;
const rows = RUNS.map((name) => {
  const r = results[name];
  if (!r) return [name, 'not run', '', '', '', '', '', '', ''];
  return [
    name,
    f1(r.wallS, ' s'),
    floor ? `${(r.wallS / floor.wallS).toFixed(2)}×` : 'n/a',
    f2(r.cpuS, ' s'),
    f1(r.cpuMsPerTarget, ' ms'),
    f1(r.machineCpuS, ' s'),
    f1(r.engineCpuS, ' s'),
    hsText(r),
    `${r.deployed}/${TARGETS}${r.exitCode === 0 ? '' : ` (exit ${r.timedOut ? 'timeout' : r.exitCode})`}`,
  ];
});
const cols = [
  'run',
  'wall',
  '× floor',
  'CPU (controller)',
  'CPU/target',
  'CPU (machine)',
  'CPU (engine)',
  'handshakes/server',
  'on v2',
];
const widths = cols.map((c, k) => Math.max(c.length, ...rows.map((r) => String(r[k]).length)));
const line = (cells) =>
  cells.map((c, k) => (k === 0 ? String(c).padEnd(widths[k]) : String(c).padStart(widths[k]))).join('  ');
const tableText = [line(cols), ...rows.map(line)].join('\n');
const tw = Math.max(...targetsChecks.map((t) => t.name.length));
const vw = Math.max(...targetsChecks.map((t) => t.value.length));
const targetsText = targetsChecks
  .map((t) => `${t.name.padEnd(tw)}  ${t.value.padStart(vw)}  ${t.result}`)
  .join('\n');
const stepsText = Object.keys(oursSteps).length
  ? Object.entries(oursSteps)
      .map(
        ([step, e]) =>
          `  ${step.padEnd(16)} ${String(e.n).padStart(4)} × mean ${f2(e.totalMs / e.n / 1000, ' s').padStart(8)}  max ${f2(e.maxMs / 1000, ' s')}`,
      )
      .join('\n')
  : '';
const remoteCount = oursCommands?.filter((c) => c.remote).length;
const notes = [
  'wall: the whole process, from start to exit.',
  'CPU (controller): user+sys of the process and its children (/usr/bin/time): node for ours; parallel, its shells and one ssh client per target for the floor; ansible-playbook and its worker forks for Ansible.',
  'CPU (machine): every process on this machine during the run (sshd, shells, docker/compose, the engine, the apps), from /proc/stat; CPU (engine): the podman API service and the registry.',
  `Every "server" shares this machine's ${cpus().length} cores, so no run can take less than CPU (machine) / ${cpus().length}.`,
  'handshakes: "Accepted publickey" lines in each sshd\'s log during the run.',
  `floor: one POSIX sh script per target (FLOOR_SH in bench/fleet.mjs) over \`ssh host sh -s\`, under \`parallel -j ${CONCURRENCY}\`.`,
  `ansible: ansible-core ${ANSIBLE_VERSION}, forks ${CONCURRENCY}, pipelining, ControlPersist 60s, no facts; one shell task per step, looped over the host's tenants.`,
];
let out = `${header}\n\n${tableText}\n\ntargets\n${targetsText}\n`;
if (oursCommands)
  out += `\nours per target: ${remoteCount} remote commands (${oursCommands
    .filter((c) => c.remote)
    .map((c) => c.step)
    .join(
      ', ',
    )}) + health probes over forwarded channels, on 1 connection per server; the floor: 1 ssh session running 1 script\n`;
if (stepsText) out += `ours, where a target's time goes (from --report):\n${stepsText}\n`;
const busy = RUNS.filter((n) => results[n]?.busyBefore >= 0.15);
if (busy.length)
  out += `\nWARNING: the machine was busy with other work before ${busy.join(', ')}: those figures are not comparable\n`;
if (TRACE) {
  out +=
    '\nremote docker / docker-compose calls per run (BENCH_TRACE=1; client CPU only, the engine is extra):\n';
  for (const name of RUNS) {
    const tr = results[name]?.trace;
    if (!tr) continue;
    out += `  ${name}\n`;
    for (const [verb, e] of Object.entries(tr).sort((a, b) => b[1].cpuS - a[1].cpuS))
      out += `    ${verb.padEnd(28)} ${String(e.n).padStart(4)} calls (${(e.n / TARGETS).toFixed(1)}/target)  CPU ${f1(e.cpuS, ' s').padStart(7)}  (${Math.round((e.cpuS * 1000) / e.n)} ms each)\n`;
  }
}
if (ours?.failures?.length)
  out += `ours, targets not deployed:\n${ours.failures.map((f) => `  ${f}`).join('\n')}\n`;
out += `\n${notes.map((n) => `- ${n}`).join('\n')}\n`;
console.log(out);

const resultsDir = join(REPO_DIR, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const distHashNow = distHashOf();
if (distHashNow !== distHash)
  log(`WARNING: dist/index.js changed during the benchmark (${distHash} → ${distHashNow})`);
writeFileSync(
  join(resultsDir, `${OUT}.json`),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      machine: { cores: cpus().length, node: process.version },
      code: { gitHead, distIndexSha256: distHash },
      fleet: {
        servers: SERVERS,
        tenantsPerServer: TENANTS,
        targets: TARGETS,
        concurrency: CONCURRENCY,
        engine,
      },
      runs: results,
      ours: { remoteCommandsPerTarget: remoteCount, commands: oursCommands, steps: oursSteps },
      targets: targetsChecks,
    },
    null,
    2,
  )}\n`,
);
const md = [
  `## Fleet deploy — \`npm run bench:fleet\``,
  '',
  `${SERVERS} sshd servers × ${TENANTS} tenants = ${TARGETS} targets on one ${cpus().length}-core machine, engine ${engine}, v1 → v2 at concurrency ${CONCURRENCY}; each run starts from v1${REPEAT > 1 ? `; each tool's fastest of ${REPEAT} rounds` : ''} (${new Date().toISOString().slice(0, 10)}, git ${gitHead}, dist ${results.ours?.dist ?? distHash}).`,
  '',
  `| run | wall | × floor | CPU (controller) | CPU / target | CPU (machine) | CPU (engine) | handshakes / server | on v2 |`,
  `|---|--:|--:|--:|--:|--:|--:|--:|--:|`,
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
  ...(oursCommands
    ? [
        `ours per target: ${remoteCount} remote commands (${oursCommands
          .filter((c) => c.remote)
          .map((c) => c.step)
          .join(
            ', ',
          )}) plus health probes through the SSH connection, on one connection per server; the floor: one ssh session per target running one script.`,
        '',
      ]
    : []),
  '| target | value | |',
  '|---|--:|---|',
  ...targetsChecks.map((t) => `| ${t.name} | ${t.value} | ${t.result} |`),
  '',
  ...notes.map((n) => `- ${n}`),
  '',
].join('\n');
writeFileSync(join(resultsDir, `${OUT}.md`), md);
log(`wrote bench/results/${OUT}.json and bench/results/${OUT}.md`);
process.exit(RUNS.every((n) => ok(results[n])) ? 0 : 1);
