/**
 * bench:scale at a tiny size, so the benchmark cannot rot between runs: it deploys over a real sandbox,
 * reads its figures from the processes it measured, stops where the memory allowed runs out (and says
 * so), and leaves no sandbox behind. The figures themselves belong to `npm run bench:scale`, not here.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Run {
  targets: number;
  concurrency: number;
  version: string;
  wallS: number;
  oursCpuMsPerTarget: number;
  oursPeakRssMiB: number;
  machineCpuMsPerTarget: number;
}

/** The results folder goes after the test, passed or not. */
let leftovers: string[] = [];
const afterTestRemove = (dir: string) => leftovers.push(dir);
afterEach(() => {
  for (const dir of leftovers) rmSync(dir, { recursive: true, force: true });
  leftovers = [];
});

test('bench:scale measures each size and concurrency, then stops where memory runs out', () => {
  const results = mkdtempSync(join(tmpdir(), 'fd-bench-scale-'));
  afterTestRemove(results);
  const before = readdirSync(tmpdir()).filter((d) => d.startsWith('fd-scale-'));
  const r = spawnSync(
    process.execPath,
    [
      '--require',
      './bench/lib/register-ts.cjs',
      'bench/scale.ts',
      '--sizes',
      '4,200',
      '--concurrency',
      '2,4',
      '--tenants',
      '2',
      '--max-memory',
      '200',
      '--no-docs',
      '--results',
      results,
      '--out',
      'scale',
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.status).toBe(0);
  const out = JSON.parse(readFileSync(join(results, 'scale.json'), 'utf8')) as {
    runs: Run[];
    first: Run[];
    stop: { at: number; why: string };
    sizes: Array<{ targets: number; perTargetMiB: number }>;
  };
  expect(out.first.map((x) => [x.targets, x.version])).toEqual([[4, 'v1']]);
  expect(out.runs.map((x) => [x.targets, x.concurrency, x.version])).toEqual([
    [4, 2, 'v2'],
    [4, 4, 'v3'],
  ]);
  for (const run of out.runs) {
    expect(run.wallS).toBeGreaterThan(0);
    expect(run.oursCpuMsPerTarget).toBeGreaterThan(0);
    expect(run.oursPeakRssMiB).toBeGreaterThan(10);
    expect(run.machineCpuMsPerTarget).toBeGreaterThan(run.oursCpuMsPerTarget);
  }
  // 4 targets measured, then 200 × that per-target memory is more than the 200 MiB allowed
  expect(out.sizes.map((s) => s.targets)).toEqual([4]);
  expect(out.sizes[0]!.perTargetMiB).toBeGreaterThan(1);
  expect(out.stop.at).toBe(200);
  expect(out.stop.why).toMatch(
    /^memory: 200 sandbox targets need about .* \(.* MiB each, measured\), more than the 200 MiB allowed by --max-memory$/,
  );
  const md = readFileSync(join(results, 'scale.md'), 'utf8');
  expect(md).toContain('## Scale on the sandbox');
  expect(md).toMatch(/\| +4 \| +2 \| +[\d.]+ s \|/);
  expect(md).toContain('the run stopped before 200 targets');
  // the sandbox it brought up is gone (the script also checks that no process of it is left)
  expect(readdirSync(tmpdir()).filter((d) => d.startsWith('fd-scale-') && !before.includes(d))).toEqual([]);
}, 150_000);
