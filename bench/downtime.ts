/**
 * npm run bench:downtime — what a deploy costs the tenant's users, in place vs blue-green.
 *
 * The real engine and Compose (the end-to-end stack: engine-up.sh), real OpenSSH, real Caddy and nginx
 * from Debian (each flag-file tenant behind a proxy of its own). The app image (fleet/app:slow1, :slow2)
 * takes BOOT_SECONDS (3) to listen and serves /cgi-bin/slow in 5 s. Six tenants: in place behind Caddy
 * and nginx; blue-green behind Caddy and nginx switched by a flag file (no reload), behind Caddy switched
 * through its admin API (a reload) and behind nginx switched by its upstream file (a reload). While each
 * strategy's tenants go through N consecutive deploys (slow1 ↔ slow2), a bounded
 * load generator on 127.0.0.1 sends through each proxy one /health request at a time on a kept-alive
 * connection and one on a fresh connection (every 10 ms each), and one /cgi-bin/slow request at a time;
 * nothing is retried. Each deploy's reported downtime (`downtimeMs`) is kept beside what the load saw.
 *
 *   FLEET_BENCH_DEPLOYS=3 npm run bench:downtime     # N (default 10)
 *
 * Writes bench/results/downtime-latest.{json,md} and the section of docs/PERFORMANCE.md between its
 * markers. Needs root and /usr/sbin/sshd, like the e2e tests.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deploy } from '../__tests__/helpers/deploy';
import { e2eSkipReason, stackUp, type Stack } from '../__tests__/e2e/stack';
import { startCaddy, startNginx, type Nginx, type RunningProxy } from '../__tests__/e2e/proxies';
import { freePort, handOver } from '../src/testing';
import { parseRegistry } from '../src/registry';
import { loadStream, summarize, type Figures } from './downtime/load';

type Strategy = 'in-place' | 'blue-green';
/** caddy-flag, nginx-flag: the flag-file switch (Caddy's `file` matcher, nginx's `if (-f)`); caddy: the admin API. */
type ProxyKind = 'caddy-flag' | 'caddy' | 'nginx-flag' | 'nginx';
const PROXY_LABEL: Record<ProxyKind, string> = {
  'caddy-flag': 'caddy, flag file',
  caddy: 'caddy, admin API',
  'nginx-flag': 'nginx, flag file',
  nginx: 'nginx, reload',
};
interface Tenant {
  id: string;
  strategy: Strategy;
  proxyKind: ProxyKind;
  dir: string;
  legacy: number;
  proxy: number;
  blue: number;
  green: number;
}

const DEPLOYS = Number(process.env.FLEET_BENCH_DEPLOYS ?? 10);
const VERSIONS = ['slow1', 'slow2'] as const;

interface Bench {
  stack: Stack;
  tenants: Tenant[];
  caddyAdmin: number;
  nginx: Nginx;
  caddy: RunningProxy;
  caddyFlag: RunningProxy;
  nginxFlag: RunningProxy;
}

function registry(b: Bench, tenants: Tenant[], blueGreen: boolean) {
  const raw = {
    servers: [
      {
        ...b.stack.server('dt-1'),
        tenants: tenants.map((t) => ({
          id: t.id,
          path: t.dir,
          compose: { command: 'docker-compose', project: 'dt-{tenant}' },
          images: [{ variable: 'APP_IMAGE', repository: b.stack.repo, service: 'app' }],
          health: {
            port: blueGreen ? t.proxy : t.legacy,
            json: { status: 'ok', version: '{version}' },
            interval: '300ms',
            timeout: '2s',
            deadline: '30s',
            successes: 2,
          },
          ...(blueGreen ? { strategy: blueGreenOf(b, t) } : {}),
          minFreeDiskMb: 1,
        })),
      },
    ],
  };
  return parseRegistry(JSON.stringify(raw), 'downtime-registry.json');
}

function blueGreenOf(b: Bench, t: Tenant) {
  return {
    kind: 'blue-green',
    slots: { blue: { port: t.blue }, green: { port: t.green } },
    drainTimeout: '20s',
    proxy:
      t.proxyKind === 'caddy-flag' || t.proxyKind === 'nginx-flag'
        ? { kind: 'flag-file' }
        : t.proxyKind === 'caddy'
          ? { kind: 'caddy', admin: b.caddyAdmin, route: 'fleet-{tenant}' }
          : {
              kind: 'nginx',
              upstreamFile: upstreamFile(b.stack, t),
              check: b.nginx.check,
              reload: b.nginx.reload,
            },
  };
}

const upstreamFile = (stack: Stack, t: Tenant) => join(stack.root, 'nginx', 'upstreams', `${t.id}.conf`);

async function setUp(): Promise<Bench> {
  const stack = await stackUp('fd-downtime-', 600_000);
  const tenants: Tenant[] = [];
  const kinds = {
    'in-place': ['caddy', 'nginx'],
    'blue-green': ['caddy-flag', 'caddy', 'nginx-flag', 'nginx'],
  } as const;
  for (const strategy of ['in-place', 'blue-green'] as const)
    for (const proxyKind of kinds[strategy]) {
      const id = `${strategy === 'in-place' ? 'ip' : 'bg'}-${proxyKind}`;
      const dir = join(stack.root, 'tenants', id);
      mkdirSync(dir, { recursive: true });
      const [legacy, proxy, blue, green] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      tenants.push({ id, strategy, proxyKind, dir, legacy, proxy, blue, green });
      writeFileSync(
        join(dir, 'docker-compose.yml'),
        'services:\n  app:\n    image: ${APP_IMAGE}\n    network_mode: host\n    environment:\n      APP_PORT: ${APP_PORT}\n',
      );
      writeFileSync(join(dir, '.env'), `APP_IMAGE=${stack.repo}:${VERSIONS[0]}\nAPP_PORT=${legacy}\n`);
    }
  handOver(join(stack.root, 'tenants'));
  const caddyAdmin = await freePort();
  const of = (k: ProxyKind) => tenants.filter((t) => t.proxyKind === k);
  const caddy = await startCaddy(
    join(stack.root, 'caddy'),
    caddyAdmin,
    of('caddy').map((t) => ({ id: `fleet-${t.id}`, listen: t.proxy, upstream: t.legacy })),
  );
  // A Caddy of its own: a switch through the other one's admin API reloads every route it serves.
  const caddyFlag = await startCaddy(
    join(stack.root, 'caddy-flag'),
    await freePort(),
    of('caddy-flag').map((t) => ({
      id: `fleet-${t.id}`,
      listen: t.proxy,
      upstream: t.legacy,
      flags: { dir: t.dir, blue: t.blue, green: t.green },
    })),
  );
  const nginx = await startNginx(
    join(stack.root, 'nginx'),
    of('nginx').map((t) => ({ listen: t.proxy, upstreamFile: upstreamFile(stack, t), upstream: t.legacy })),
  );
  // An nginx of its own too: the other one's reload would reach every site it serves.
  const nginxFlag = await startNginx(
    join(stack.root, 'nginx-flag'),
    of('nginx-flag').map((t) => ({
      listen: t.proxy,
      upstreamFile: upstreamFile(stack, t),
      upstream: t.legacy,
      flags: { dir: t.dir, blue: t.blue, green: t.green },
    })),
  );
  return { stack, tenants, caddyAdmin, caddy, caddyFlag, nginx, nginxFlag };
}

async function mustDeploy(b: Bench, tenants: Tenant[], blueGreen: boolean, version: string) {
  const report = await deploy(registry(b, tenants, blueGreen), b.stack.key, version, {
    options: { commandTimeoutMs: 60_000, pullTimeoutMs: 120_000 },
  });
  const bad = report.targets.filter((r) => r.outcome !== 'deployed');
  if (bad.length > 0)
    throw new Error(`deploy of ${version} failed: ${bad.map((r) => `${r.tenant}: ${r.error}`).join('; ')}`);
  return report.targets;
}

/** N deploys of one strategy's tenants, under load; the load's figures per tenant. */
async function measure(b: Bench, strategy: Strategy, deploys: number) {
  const tenants = b.tenants.filter((t) => t.strategy === strategy);
  const streams = tenants.map((t) => loadStream(t.proxy));
  const started = Date.now();
  const reported = new Map<string, number[]>(tenants.map((t) => [t.id, []]));
  for (let i = 0; i < deploys; i++) {
    const at = new Date().toISOString();
    for (const r of await mustDeploy(b, tenants, strategy === 'blue-green', VERSIONS[(i + 1) % 2]!)) {
      reported.get(r.tenant)!.push(r.downtimeMs ?? NaN);
      console.log(`${at} ${r.tenant}: ${r.steps.map((s) => `${s.step} ${s.ms}`).join(', ')}`);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  const results = await Promise.all(streams.map((s) => s.stop()));
  return tenants.map((t, i) => ({
    tenant: t.id,
    strategy,
    proxy: t.proxyKind,
    seconds,
    reportedMaxMs: Math.max(...reported.get(t.id)!),
    ...summarize(results[i]!),
  }));
}

/** The steady state: the same load for a few seconds with no deploy, to compare p99 with. */
async function steady(b: Bench, ms: number) {
  const streams = b.tenants.map((t) => loadStream(t.proxy));
  await new Promise((r) => setTimeout(r, ms));
  const results = await Promise.all(streams.map((s) => s.stop()));
  return Object.fromEntries(b.tenants.map((t, i) => [t.id, summarize(results[i]!)]));
}

async function main() {
  if (e2eSkipReason) throw new Error(e2eSkipReason);
  const b = await setUp();
  try {
    // Warm-up, not measured: every tenant in place on slow1, then the blue-green ones moved to their slots.
    await mustDeploy(b, b.tenants, false, VERSIONS[0]);
    await mustDeploy(
      b,
      b.tenants.filter((t) => t.strategy === 'blue-green'),
      true,
      VERSIONS[0],
    );
    const base = await steady(b, 6000);
    const rows = [...(await measure(b, 'in-place', DEPLOYS)), ...(await measure(b, 'blue-green', DEPLOYS))];
    const result = { when: new Date().toISOString(), deploys: DEPLOYS, rows, steady: base };
    await report(result);
  } finally {
    b.caddy.stop();
    b.caddyFlag.stop();
    b.nginxFlag.stop();
    b.nginx.stop();
    await b.stack.down();
  }
}

type Row = Figures & {
  tenant: string;
  strategy: Strategy;
  proxy: ProxyKind;
  seconds: number;
  /** The largest downtime the deploys' reports gave (`downtimeMs`). */
  reportedMaxMs: number;
};

function table(rows: Row[], steadyP99: Record<string, number>): string {
  const head =
    '| strategy | proxy | requests sent | failed (conn + 5xx) | of them fresh / kept-alive | reported downtime, max s | p50 ms | p99 ms | max ms | steady p99 ms | slow requests | cut mid-flight |';
  const lines = rows.map(
    (r) =>
      `| ${r.strategy} | ${r.strategy === 'in-place' ? r.proxy : PROXY_LABEL[r.proxy]} | ${r.sent} | ${r.failed} | ${r.failedFresh} / ${r.failedKept} | ${(r.reportedMaxMs / 1000).toFixed(1)} | ${r.p50} | ${r.p99} | ${r.max} | ${steadyP99[r.tenant]} | ${r.slowSent} | ${r.slowCut} |`,
  );
  return [head, '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|', ...lines].join('\n');
}

/** Markdown as prettier writes it, so `prettier --check` passes on what this script regenerates. */
async function formatted(md: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const config = await prettier.resolveConfig('docs/PERFORMANCE.md');
    return await prettier.format(md, { ...config, parser: 'markdown' });
  } catch {
    return md; // prettier is a dev dependency; unformatted Markdown reads the same
  }
}

async function report(result: {
  when: string;
  deploys: number;
  rows: Row[];
  steady: Record<string, Figures>;
}) {
  const steadyP99 = Object.fromEntries(Object.entries(result.steady).map(([k, v]) => [k, v.p99]));
  const md = [
    `${result.deploys} consecutive deploys per strategy (slow1 ↔ slow2, an app that boots in 3 s), ${result.when}.`,
    'Load through each proxy on 127.0.0.1, nothing retried: one /health request at a time on a kept-alive connection and',
    'one on a fresh connection (every 10 ms each), and one 5 s /cgi-bin/slow request at a time. Failed: connection',
    "errors and 5xx, all requests together. Reported downtime: the largest `downtimeMs` of the deploys' reports. Cut",
    'mid-flight: slow requests that failed after more than 1 s in flight (accepted, then dropped); p50/p99/max: the',
    '/health requests.',
    '',
    table(result.rows, steadyP99),
  ].join('\n');
  console.log(`\n${md}\n`);
  for (const r of result.rows)
    if (r.strategy === 'blue-green' && r.failures.length)
      console.log(`${r.tenant} failures:\n  ${r.failures.join('\n  ')}`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/downtime-latest.json', `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync('bench/results/downtime-latest.md', await formatted(`# npm run bench:downtime\n\n${md}\n`));
  const begin = '<!-- BEGIN GENERATED: downtime (npm run bench:downtime) -->';
  const end = '<!-- END GENERATED: downtime -->';
  const doc = readFileSync('docs/PERFORMANCE.md', 'utf8');
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  const section = `${begin}\n${md}\n${end}`;
  const next =
    a >= 0 && b > a
      ? `${doc.slice(0, a)}${section}${doc.slice(b + end.length)}`
      : `${doc.trimEnd()}\n\n## Downtime per deploy: in place vs blue-green\n\n${section}\n`;
  writeFileSync('docs/PERFORMANCE.md', await formatted(next));
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exitCode = 1;
});
