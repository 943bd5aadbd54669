// npm run bench:status — `fleet-deploy status` of 40 targets on 20 real sshd "servers" (2 tenants each,
// their stacks on the SANDBOX runtime, the docker double), beside a plain loop of
// `ssh … docker ps --filter label=…` per target, run in the same script on the same fleet:
//   ours   runCli(['status', …]) in this process (the source, transpiled): one connection per server,
//          --concurrency servers at once; per tenant one inspection and one health probe
//   loop   for each target in turn: ssh (a new connection) and `docker ps` of its Compose project
// and prints wall time (best of BENCH_REPEAT rounds, default 3), SSH handshakes per server
// ("Accepted publickey" lines in each sshd's log during the run) and the ratios; writes its figures into
// docs/PERFORMANCE.md between the bench:status markers. Root required (sshd, the deploy user).
// Knobs: BENCH_SERVERS (20), BENCH_TENANTS (2), BENCH_CONCURRENCY (8), BENCH_REPEAT (3).
//
// TypeScript, run by `node --require ./bench/lib/register-ts.cjs bench/status.ts`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli } from '../src/cli/main';
import {
  asDeployUser,
  DEPLOY_USER,
  ensureDeployUser,
  freePort,
  handOver,
  makeKeyPair,
  sandboxRuntimeEnv,
  startOpenSsh,
  stopServices,
  writeTenantDir,
  type OpenSsh,
} from '../src/testing';

const REPO = resolve(__dirname, '..');
const RUNTIME = join(REPO, 'dist/sandbox/runtime.js');
const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const SERVERS = knob('BENCH_SERVERS', 20);
const TENANTS = knob('BENCH_TENANTS', 2);
const CONCURRENCY = knob('BENCH_CONCURRENCY', 8);
const REPEAT = knob('BENCH_REPEAT', 3);
const log = (msg: string) => process.stderr.write(`bench:status: ${msg}\n`);

interface Server {
  name: string;
  sshd: OpenSsh;
  state: string;
  tenants: Array<{ id: string; dir: string; port: number }>;
}

async function startFleet(root: string, publicKey: string): Promise<Server[]> {
  const servers: Server[] = [];
  for (let s = 1; s <= SERVERS; s++) {
    const name = `srv-${s}`;
    const dir = join(root, name);
    const env = sandboxRuntimeEnv(dir, RUNTIME);
    const sshd = await startOpenSsh({ dir, user: DEPLOY_USER, authorizedKey: publicKey, env });
    const tenants = [];
    for (let i = 1; i <= TENANTS; i++) {
      const id = `t${s}-${i}`;
      const tdir = join(root, 'tenants', name, id);
      const port = await freePort();
      writeTenantDir(tdir, { title: id, image: 'registry.test/acme/app:v1', port });
      tenants.push({ id, dir: tdir, port });
    }
    servers.push({ name, sshd, state: env.FLEET_SANDBOX_STATE!, tenants });
  }
  handOver(root);
  for (const s of servers)
    for (const t of s.tenants)
      asDeployUser([process.execPath, RUNTIME, 'compose', 'up', '-d'], {
        cwd: t.dir,
        env: { FLEET_SANDBOX_STATE: s.state },
      });
  return servers;
}

function registryOf(servers: readonly Server[]): string {
  return JSON.stringify({
    defaults: {
      tenant: {
        images: [{ variable: 'APP_IMAGE', repository: 'registry.test/acme/app' }],
        health: { path: '/health', json: { status: 'ok' } },
      },
    },
    servers: servers.map((s) => ({
      name: s.name,
      host: '127.0.0.1',
      port: s.sshd.port,
      user: DEPLOY_USER,
      hostKey: s.sshd.hostKey,
      region: 'local',
      tenants: s.tenants.map((t) => ({ id: t.id, path: t.dir, health: { port: t.port } })),
    })),
  });
}

/** Wall time of `fn` and the handshakes each server saw meanwhile. */
async function measure(servers: readonly Server[], fn: () => Promise<void> | void) {
  const before = servers.map((s) => s.sshd.handshakes());
  const t0 = process.hrtime.bigint();
  await fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, handshakes: servers.map((s, i) => s.sshd.handshakes() - before[i]!) };
}

async function ours(registry: string, key: string): Promise<void> {
  let out = '';
  const code = await runCli(
    ['status', '--format', 'json', '-r', registry, '--key', key, '--concurrency', String(CONCURRENCY)],
    {
      stdout: (t) => (out += t),
      stderr: () => undefined,
      readText: async (p) => readFileSync(p, 'utf8'),
      env: {},
    },
  );
  const statuses = JSON.parse(out) as Array<{ state: string }>;
  if (code !== 0 || statuses.filter((s) => s.state === 'running').length !== SERVERS * TENANTS)
    throw new Error(`status exited ${code}: ${out.slice(0, 2000)}`);
}

function loop(servers: readonly Server[], key: string): void {
  for (const s of servers)
    for (const t of s.tenants) {
      const r = spawnSync(
        'ssh',
        [
          ...['-i', key, '-p', String(s.sshd.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no'],
          ...['-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', `${DEPLOY_USER}@127.0.0.1`],
          `docker ps --filter label=com.docker.compose.project=${t.id}`,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      if (r.status !== 0 || !r.stdout.trim()) throw new Error(`ssh … docker ps failed: ${r.stderr}`);
    }
}

function section(o: { ours: number; loop: number; oursShakes: number[]; loopShakes: number[] }): string {
  const targets = SERVERS * TENANTS;
  const perServer = (h: number[]) =>
    h.every((n) => n === h[0]) ? String(h[0]) : `${Math.min(...h)}–${Math.max(...h)}`;
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return [
    '<!-- bench:status begin (written by npm run bench:status) -->',
    '',
    '## Fleet status — `npm run bench:status`',
    '',
    `\`fleet-deploy status\` of ${targets} targets on ${SERVERS} real sshd servers (${TENANTS} tenants each, stacks on the SANDBOX runtime), at --concurrency ${CONCURRENCY}, beside a plain loop of \`ssh … docker ps --filter label=…\` per target in the same script; best of ${REPEAT} rounds. ${cpus().length} cores, node ${process.version} (${new Date().toISOString().slice(0, 10)}).`,
    '',
    '| run | what it reads per target | wall | per target | SSH handshakes per server |',
    '| --- | --- | ---: | ---: | ---: |',
    `| fleet-deploy status | .env, every container's state, image, digest, config hash and health, the lock, the history's tail, one health probe | ${s(o.ours)} | ${(o.ours / targets).toFixed(0)} ms | ${perServer(o.oursShakes)} |`,
    `| ssh … docker ps loop | the running containers' IDs | ${s(o.loop)} | ${(o.loop / targets).toFixed(0)} ms | ${perServer(o.loopShakes)} |`,
    '',
    `- status took ${(o.ours / o.loop).toFixed(2)}× the loop's time (the loop ${(o.loop / o.ours).toFixed(1)}× status's) while reading far more: one connection per server (its tenants' inspections on it, ${CONCURRENCY} servers at once) against one connection per target, one after another.`,
    '- Every "server" shares this machine\'s CPU; each `docker` call of the sandbox runtime is a node process, so both runs pay for the engine double the same way.',
    '',
    '<!-- bench:status end -->',
  ].join('\n');
}

function writeSection(text: string): void {
  const file = join(REPO, 'docs/PERFORMANCE.md');
  const doc = readFileSync(file, 'utf8');
  const begin = doc.indexOf('<!-- bench:status begin');
  const end = doc.indexOf('<!-- bench:status end -->');
  const next =
    begin >= 0 && end > begin
      ? doc.slice(0, begin) + text + doc.slice(end + '<!-- bench:status end -->'.length)
      : `${doc.trimEnd()}\n\n${text}\n`;
  writeFileSync(file, next);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: it starts sshd servers and a deploy user');
  ensureDeployUser();
  const root = mkdtempSync(join(tmpdir(), 'fd-bench-status-'));
  let servers: Server[] = [];
  try {
    const key = makeKeyPair(join(root, 'client_ed25519'), 'bench-status');
    log(`starting ${SERVERS} sshd × ${TENANTS} tenants`);
    servers = await startFleet(root, key.publicKey);
    const registry = join(root, 'registry.json');
    writeFileSync(registry, registryOf(servers));
    const best = { ours: Infinity, loop: Infinity, oursShakes: [] as number[], loopShakes: [] as number[] };
    for (let round = 1; round <= REPEAT; round++) {
      const a = await measure(servers, () => ours(registry, key.file));
      if (a.handshakes.some((n) => n !== 1))
        throw new Error(`status made ${a.handshakes.join(', ')} SSH handshakes per server, not 1 each`);
      const b = await measure(servers, () => loop(servers, key.file));
      log(`round ${round}: status ${a.ms.toFixed(0)} ms, loop ${b.ms.toFixed(0)} ms`);
      if (a.ms < best.ours) Object.assign(best, { ours: a.ms, oursShakes: a.handshakes });
      if (b.ms < best.loop) Object.assign(best, { loop: b.ms, loopShakes: b.handshakes });
    }
    const text = section(best);
    process.stdout.write(`${text}\n`);
    writeSection(text);
  } finally {
    for (const s of servers) s.sshd.stop();
    stopServices(servers.map((s) => s.state));
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench:status failed: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
