// npm run bench:files — what files shipped with a release (issue 25) cost, each figure beside a baseline
// run the same way in the same process:
//   1. `deploy --dry-run` of 10,000 targets that ship 21 files each (a compose file and 18 policy files
//      the same for all, 2 config files templated per tenant)  vs  the same plan without files; and its
//      two parts on their own: reading + hashing the files (each distinct content hashed once) and
//      rendering the dry run's file lines, each against planning the same registry without files.
//   2. bytes sent to one real OpenSSH server (src/testing's fixture, as the deploy user) for one tenant's
//      21 files: a first release, the same files again (hashes only), and a release where all changed;
//      counted as the transport sends them (script text + stdin).
// Targets (issue 25): (1) under 1 s; (2) a release whose files did not change sends hashes only (no
// file content, no stdin). Writes its figures into docs/PERFORMANCE.md between the bench:files markers.
// Part 2 needs root (sshd, the deploy user) and docker-compose (the staged compose file is parsed).
//
// TypeScript, run by `node --require ./bench/lib/register-ts.cjs bench/files.ts`.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli } from '../src/cli/main';
import { TargetFiles } from '../src/deploy/files';
import type { Release } from '../src/deploy/result';
import { TargetShell } from '../src/deploy/shell';
import { shipFiles } from '../src/files/local';
import { fileChanges, groupChanges, renderChanges } from '../src/files/changes';
import { FilesPreview } from '../src/files/preview';
import { planDeployment } from '../src/plan/plan';
import { systemClock, type Transport } from '../src/ports';
import { parseRegistry, targetsOf, type Target } from '../src/registry';
import type { ServerFile } from '../src/remote/files-read';
import { syntheticRegistry } from '../src/sandbox/synthetic';
import { SshConnector } from '../src/ssh/transport';
import { handOver, haveSshd } from '../src/testing';
import { makeClientKey, startSshd } from '../__tests__/helpers/sshd';
import { formatMarkdown, writeSection } from './lib/markdown';
import { median } from './lib/stats';

const REPO = resolve(__dirname, '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TARGETS = 10_000;
const WAVES = '1,5%,25%,100%';
const POLICY_FILES = 18;
const BEGIN = '<!-- bench:files begin (written by npm run bench:files) -->';
const END = '<!-- bench:files end -->';
const log = (msg: string) => process.stderr.write(`bench:files: ${msg}\n`);

const ms = (x: number) => `${x.toFixed(0)} ms`;
const time = (f: () => void) => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};

const COMPOSE = 'services:\n  app:\n    image: ${APP_IMAGE}\n    network_mode: host\n';

/** The caller's repository: a compose file, 18 policy files, 2 files templated per tenant. */
function writeRepo(repo: string, generation: string): void {
  mkdirSync(join(repo, 'deploy'), { recursive: true });
  mkdirSync(join(repo, 'policy'), { recursive: true });
  mkdirSync(join(repo, 'config'), { recursive: true });
  writeFileSync(join(repo, 'deploy', 'docker-compose.yml'), `${COMPOSE}# ${generation}\n`);
  for (let i = 0; i < POLICY_FILES; i++)
    writeFileSync(
      join(repo, 'policy', `rule-${String(i).padStart(2, '0')}.rego`),
      `package rule${i}\n# ${generation}\n${'allow { input.user.role == "admin" }\n'.repeat(40)}`,
    );
  writeFileSync(join(repo, 'config', 'tenant.yml'), `tenant: {tenant}\nregion: {region}\n# ${generation}\n`);
  writeFileSync(join(repo, 'config', 'ring.yml'), `ring: {ring}\nserver: {server}\n# ${generation}\n`);
}

const SHIP = [
  { from: 'deploy/docker-compose.yml', to: 'docker-compose.yml' },
  { from: 'policy/', to: 'config/policy/' },
  { from: 'config/tenant.yml', to: 'config/tenant.yml', template: true },
  { from: 'config/ring.yml', to: 'config/ring.yml', template: true },
];

type Row = [name: string, ours: number, baseline: number, baselineName: string];

async function dryRun(file: string, repo: string): Promise<number> {
  let bytes = 0;
  let head = '';
  const t0 = performance.now();
  const code = await runCli(['deploy', '--dry-run', '-r', file, '--version', 'v2', '-w', WAVES], {
    stdout: (t) => {
      bytes += t.length;
      if (head.length < 500) head += t;
    },
    stderr: () => undefined,
    readText: async (p) => readFileSync(p, 'utf8'),
    env: { GITHUB_WORKSPACE: repo },
  });
  const t = performance.now() - t0;
  if (code !== 0 || bytes < 10_000) throw new Error(`deploy --dry-run exited ${code}: ${head.slice(0, 500)}`);
  return t;
}

/**
 * What `plan --diff` does locally once the servers answered: every target's servers hold the previous
 * release (the compose file one line shorter, each tenant.yml without its region line, the rest the same);
 * diff, group and render. Returns the output's lines and groups.
 */
function diffAll(
  targets: readonly Target[],
  shipped: ReturnType<typeof shipFiles>,
): { lines: number; groups: number } {
  const servers = targets.map((t) => {
    const release = shipped.releases.get(t.id)!;
    const files = new Map<string, ServerFile>();
    for (const e of release.entries) {
      let text = Buffer.from(release.contents.get(e.sha256)!).toString('utf8');
      if (e.to === 'docker-compose.yml') text = COMPOSE;
      if (e.to === 'config/tenant.yml') text = text.replace(/^region: .*\n/m, '');
      files.set(e.to, { kind: 'file', bytes: Buffer.from(text) });
    }
    return files;
  });
  const t0 = performance.now();
  const changes = targets.map(
    (t, i) =>
      [
        t.id,
        fileChanges(t.tenant, shipped.releases.get(t.id)!, servers[i]!, [], {
          tenant: t.tenant.id,
          server: t.server.name,
        }),
      ] as const,
  );
  const groups = groupChanges(changes);
  const text = renderChanges(groups, { unchanged: [], unread: [] });
  diffMs.push(performance.now() - t0);
  return { lines: text.split('\n').length, groups: groups.length };
}
const diffMs: number[] = [];

async function planFigures(
  dir: string,
): Promise<{ rows: Row[]; distinct: number; lines: number; diff: { lines: number; groups: number } }> {
  const repo = join(dir, 'repo');
  writeRepo(repo, 'v1');
  const bare = syntheticRegistry({ servers: TARGETS / 8, tenantsPerServer: 8 });
  const withFiles = {
    ...bare,
    defaults: { ...bare.defaults, tenant: { ...bare.defaults!.tenant, files: { ship: SHIP } } },
  };
  const plain = join(dir, 'plain.json');
  const shipping = join(dir, 'files.json');
  writeFileSync(plain, JSON.stringify(bare, null, 2));
  writeFileSync(shipping, JSON.stringify(withFiles, null, 2));
  const registry = parseRegistry(readFileSync(shipping, 'utf8'), shipping);
  const targets = targetsOf(registry);
  if (targets.length !== TARGETS) throw new Error(`${targets.length} targets`);
  const planOnly = () =>
    time(() => planDeployment(parseRegistry(readFileSync(plain, 'utf8'), plain), { waves: WAVES }));
  let shipped = shipFiles(targets, { root: repo, env: {} });
  const hash = () => time(() => (shipped = shipFiles(targets, { root: repo, env: {} })));
  let lines = 0;
  const render = () =>
    time(() => {
      const preview = new FilesPreview();
      lines = 0;
      for (const t of targets) lines += preview.lines(t.id, shipped.releases.get(t.id)).length;
    });
  const sample = {
    plain: [] as number[],
    files: [] as number[],
    plan: [] as number[],
    hash: [] as number[],
    render: [] as number[],
  };
  for (let i = 0; i < RUNS; i++) {
    // side by side: each round runs the baseline and ours one after the other
    // (in turn first and second: neither gets the other's garbage every time)
    for (const which of i % 2 ? (['files', 'plain'] as const) : (['plain', 'files'] as const))
      sample[which].push(await dryRun(which === 'plain' ? plain : shipping, repo));
    sample.plan.push(planOnly());
    sample.hash.push(hash());
    sample.render.push(render());
  }
  const diff = diffAll(targets, shipped);
  for (let i = 1; i < RUNS; i++) diffAll(targets, shipped);
  const distinct = new Set([...shipped.releases.values()].flatMap((r) => [...r.contents.keys()])).size;
  const plan = median(sample.plan);
  return {
    rows: [
      [
        '`deploy --dry-run`, 10,000 targets × 21 files',
        median(sample.files),
        median(sample.plain),
        'the same without files',
      ],
      ['read + hash the files (each distinct once)', median(sample.hash), plan, 'load + plan without files'],
      ["render the dry run's file lines", median(sample.render), plan, 'load + plan without files'],
      ["`plan --diff`'s local part: diff, group, render", median(diffMs), plan, 'load + plan without files'],
    ],
    distinct,
    lines,
    diff,
  };
}

interface Sent {
  script: number;
  stdin: number;
  execs: number;
}

async function bytesFigures(dir: string): Promise<Array<[string, Sent, string]>> {
  const root = join(dir, 'ssh');
  mkdirSync(root);
  chmodSync(dir, 0o711);
  chmodSync(root, 0o711);
  const key = makeClientKey(join(root, 'client'));
  const sshd = await startSshd('files', root, key, { PATH: '/usr/bin:/bin' });
  const repo = join(root, 'repo');
  const tenantDir = join(root, 'tenant');
  mkdirSync(tenantDir);
  writeFileSync(join(tenantDir, '.env'), 'APP_IMAGE=registry.test/acme/app:v1\n');
  handOver(sshd.dir);
  handOver(tenantDir);
  let transport: Transport | undefined;
  try {
    writeRepo(repo, 'v1');
    const registry = parseRegistry(
      JSON.stringify({
        servers: [
          {
            ...{
              name: 'files-1',
              host: '127.0.0.1',
              port: sshd.port,
              user: sshd.user,
              hostKey: sshd.hostKey,
            },
            region: 'local',
            tenants: [
              {
                id: 'acme',
                path: tenantDir,
                compose: { command: 'docker-compose', project: 'bench-files-acme' },
                images: [{ variable: 'APP_IMAGE', repository: 'registry.test/acme/app' }],
                health: { port: 1 },
                files: { ship: SHIP },
              },
            ],
          },
        ],
      }),
      'bench.json',
    );
    const target = targetsOf(registry)[0]!;
    const sent: Sent = { script: 0, stdin: 0, execs: 0 };
    const real = await new SshConnector({ privateKey: key.privateKey }).connect(target.server);
    transport = real;
    const counting = new Proxy(real, {
      get: (t, p) =>
        p === 'exec'
          ? (script: { text: string }, o?: { stdin?: string }) => {
              sent.script += Buffer.byteLength(script.text);
              sent.stdin += Buffer.byteLength(o?.stdin ?? '');
              sent.execs++;
              return t.exec(script as never, o as never);
            }
          : (t as unknown as Record<string | symbol, unknown>)[p],
    });
    const shell = new TargetShell({ transport: async () => counting }, 30_000, systemClock);
    const release = async (): Promise<[Sent, string]> => {
      Object.assign(sent, { script: 0, stdin: 0, execs: 0 });
      const files = new TargetFiles(
        target.tenant,
        shipFiles([target], { root: repo, env: {} }).releases.get(target.id)!,
        shell,
        30_000,
      );
      const none = (): Release => ({ refs: {}, imageIds: [], digests: [] });
      const detail = await files.check(none(), none());
      if (files.changed) await files.install();
      return [{ ...sent }, detail];
    };
    const out: Array<[string, Sent, string]> = [];
    const first = await release();
    out.push(['first release (all 21 files new)', ...first]);
    const same = await release();
    out.push(['next release, files unchanged', ...same]);
    writeRepo(repo, 'v2');
    const changed = await release();
    out.push(['next release, all 21 files changed', ...changed]);
    return out;
  } finally {
    await transport?.close?.();
    await sshd.stop();
  }
}

async function markdown(
  plan: Awaited<ReturnType<typeof planFigures>>,
  bytes: Array<[string, Sent, string]> | string,
): Promise<string> {
  const cpus = availableParallelism();
  const kib = (n: number) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`);
  const own = plan.rows[1]![1] + plan.rows[2]![1];
  const unchanged = typeof bytes === 'string' ? undefined : bytes[1]![1];
  const md = [
    BEGIN,
    '',
    '## Files shipped with a release — `npm run bench:files`',
    '',
    `bench:files — ${TARGETS.toLocaleString('en-US')} targets (1,250 servers × 8 tenants), waves ${WAVES}, each shipping 21 files (a compose file and ${POLICY_FILES} policy files the same for all, 2 templated per tenant); median of ${RUNS} rounds, baseline and ours side by side in each; load average ${loadavg()[0]!.toFixed(1)} on ${cpus} cores at the end (a shared machine: the ratios hold better than the times); ${new Date().toISOString().slice(0, 10)}, node ${process.version}.`,
    '',
    '| measure | ours | baseline | ratio | baseline is |',
    '| --- | ---: | ---: | ---: | --- |',
    ...plan.rows.map(
      ([name, ours, base, what]) =>
        `| ${name} | ${ms(ours)} | ${ms(base)} | ${(ours / base).toFixed(2)}× | ${what} |`,
    ),
    '',
    `- ${plan.distinct.toLocaleString('en-US')} distinct contents over ${(TARGETS * 21).toLocaleString('en-US')} shipped files: the ${POLICY_FILES + 1} shared files are read and hashed once, each templated result once; the dry run prints ${plan.lines.toLocaleString('en-US')} file lines (each distinct file once, the rest refer to the first target that listed them).`,
    `- \`plan --diff\`'s local part: every target's server holding the previous release (its compose file one line shorter, each tenant.yml without its region line), the 10,000 targets' diffs come to ${plan.diff.groups} groups, ${plan.diff.lines} lines of output (the per-tenant file grouped with \`{tenant}\` standing for each target's id); reading the servers (one connection each) is not in this figure.`,
    "- The whole dry run also prints every target's commands (about 70 MB for 10,000 targets); the time files add to it is about the next two rows together (the bench counts the output's bytes rather than keeping them: kept, 70 MB of strings made both runs 2–4× slower).",
    '',
    'Bytes sent to one real OpenSSH server for one tenant (script text + stdin, as the transport sends them):',
    '',
    ...(typeof bytes === 'string'
      ? [bytes]
      : [
          '| release | script | stdin | total | commands | the files step said |',
          '| --- | ---: | ---: | ---: | ---: | --- |',
          ...bytes.map(
            ([name, s, detail]) =>
              `| ${name} | ${kib(s.script)} | ${kib(s.stdin)} | ${kib(s.script + s.stdin)} | ${s.execs} | ${detail} |`,
          ),
        ]),
    '',
    '| target | value | |',
    '| --- | ---: | --- |',
    `| the files' part of a 10,000-target plan (read + hash + render) under 1 s | ${ms(own)} | ${own < 1000 ? 'met' : 'not met'} |`,
    unchanged
      ? `| unchanged files: hashes only (no stdin) | ${kib(unchanged.script + unchanged.stdin)} | ${unchanged.stdin === 0 ? 'met' : 'not met'} |`
      : '| unchanged files: hashes only (no stdin) | – | not measured |',
    '',
    END,
  ].join('\n');
  return formatMarkdown(md);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fd-bench-files-'));
  try {
    log(`planning ${TARGETS} targets, ${RUNS} rounds`);
    const plan = await planFigures(dir);
    for (const [name, ours, base] of plan.rows)
      log(`${name}: ${ms(ours)} vs ${ms(base)} (${(ours / base).toFixed(2)}×)`);
    let bytes: Array<[string, Sent, string]> | string;
    if (haveSshd && process.getuid?.() === 0) {
      log('bytes sent over a real sshd');
      bytes = await bytesFigures(dir);
      for (const [name, s, detail] of bytes)
        log(`${name}: script ${s.script} B, stdin ${s.stdin} B, ${s.execs} commands — ${detail}`);
    } else bytes = '(not measured: needs root and sshd)';
    const md = await markdown(plan, bytes);
    process.stdout.write(md);
    if (!process.env.BENCH_NO_WRITE)
      writeSection(join(REPO, 'docs/PERFORMANCE.md'), BEGIN, END, md.trimEnd());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench:files failed: ${e.stack ?? e.message}\n`);
  process.exitCode = 1;
});
