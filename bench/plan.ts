// npm run bench:plan — how fast planning is, measured on the shipped bundle (dist/), each figure beside a
// baseline run the same way on the same machine:
//   1. load + validate + plan 10,000 targets into wave matrices, in process   vs  JSON.parse + stringify of the same file
//   2. the same through the CLI, a whole process (`fleet-deploy plan -f matrix`)   vs  `node -e` reading and printing the file
//   3. cold start of the bundle to its first output (`fleet-deploy --version`)    vs  bare `node` printing one byte
// Targets (issue 2): (1) under 1 s, (3) under 300 ms.
//
// TypeScript, run by `node --require ./bench/lib/register-ts.cjs bench/plan.ts`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { median } from './lib/stats';

const REPO = resolve(__dirname, '..');
/** The bundle, not the source: what users run. */
const dist = createRequire(__filename)(join(REPO, 'dist', 'index.js')) as typeof import('../src/index');
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const TARGETS = 10_000;
const WAVES = '1,5%,25%,100%';

const ms = (x: number) => `${x.toFixed(1)} ms`;

function inProcess(file: string): number {
  const t0 = performance.now();
  const registry = dist.parseRegistry(readFileSync(file, 'utf8'), file);
  const plan = dist.planDeployment(registry, { waves: WAVES });
  const out = JSON.stringify(dist.matrices(plan));
  const t1 = performance.now();
  if (plan.total !== TARGETS || out.length < 1000) throw new Error('bad plan');
  return t1 - t0;
}

function baselineInProcess(file: string): number {
  const t0 = performance.now();
  const out = JSON.stringify(JSON.parse(readFileSync(file, 'utf8')));
  const t1 = performance.now();
  if (out.length < 1000) throw new Error('bad baseline');
  return t1 - t0;
}

interface Timing {
  /** the whole process, ms */
  wall: number;
  /** to its first byte of stdout, ms */
  first: number;
}

/** Wall time of a node process, and the time to its first byte of stdout. */
function run(args: readonly string[]): Promise<Timing> {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    let first: number | undefined;
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', () => (first ??= performance.now() - t0));
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0
        ? done({ wall: performance.now() - t0, first: first ?? NaN })
        : fail(new Error(`${args.join(' ')} exited ${code}`)),
    );
  });
}

async function medianOf(args: readonly string[], key: keyof Timing): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) xs.push((await run(args))[key]);
  return median(xs);
}

type Row = [name: string, ours: number, baseline: number, target: number];

async function measure(file: string): Promise<Row[]> {
  const firstCold = inProcess(file);
  const warm = median(Array.from({ length: RUNS }, () => inProcess(file)));
  const base = median(Array.from({ length: RUNS }, () => baselineInProcess(file)));
  const cli = await medianOf(['dist/cli.js', 'plan', '-r', file, '-w', WAVES, '-f', 'matrix'], 'wall');
  const cliBase = await medianOf(
    [
      '-e',
      `process.stdout.write(JSON.stringify(JSON.parse(require('fs').readFileSync(${JSON.stringify(file)}, 'utf8'))))`,
    ],
    'wall',
  );
  const cold = await medianOf(['dist/cli.js', '--version'], 'first');
  const coldBase = await medianOf(['-e', "process.stdout.write('x')"], 'first');
  return [
    ['plan 10,000 targets, in process (first run)', firstCold, base, 1000],
    ['plan 10,000 targets, in process (median)', warm, base, 1000],
    ['plan 10,000 targets, CLI process', cli, cliBase, 1000],
    ['cold start to first output', cold, coldBase, 300],
  ];
}

function print(rows: readonly Row[]): void {
  console.log(
    `bench:plan — ${TARGETS.toLocaleString('en-US')} targets, waves ${WAVES}, median of ${RUNS} runs, node ${process.version}\n`,
  );
  console.log(
    `${'measure'.padEnd(46)}${'ours'.padStart(11)}${'baseline'.padStart(11)}${'ratio'.padStart(8)}  target`,
  );
  for (const [name, ours, baseline, target] of rows) {
    console.log(
      `${name.padEnd(46)}${ms(ours).padStart(11)}${ms(baseline).padStart(11)}${`${(ours / baseline).toFixed(1)}×`.padStart(8)}  < ${target} ms ${ours < target ? 'met' : 'MISSED'}`,
    );
  }
  console.log(
    '\nbaselines: JSON.parse + JSON.stringify of the same registry (in process, and as `node -e`); bare node printing one byte',
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fd-bench-'));
  // the command's code cache (src/cli/code-cache.ts) in this run's directory: written by the first CLI
  // process, used by the rest, as on a user's machine after the first start
  process.env.XDG_CACHE_HOME = dir;
  try {
    const file = join(dir, 'fleet-10000.json');
    const registry = dist.syntheticRegistry({ servers: TARGETS / 8, tenantsPerServer: 8 });
    writeFileSync(file, JSON.stringify(registry, null, 2));
    print(await measure(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench:plan failed: ${e.stack ?? e.message}\n`);
  process.exitCode = 1;
});
