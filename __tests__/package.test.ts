/** What `npm pack` ships: the bundle, the actions and the docs, nothing to install beside it. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asDeployUser, ensureDeployUser, handOver } from '../src/testing';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));

test('npm pack: the bundle, stubs, actions and schema; no sources, tests or dependencies', () => {
  const [info] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  );
  const files: string[] = info.files.map((f: { path: string }) => f.path);
  for (const f of [
    'dist/cli.js',
    'dist/cli.bundle.js',
    'dist/index.js',
    'dist/sandbox/runtime.js',
    'action.yml',
    'actions/deploy/action.yml',
    'servers/registry.schema.json',
    'README.md',
  ])
    expect(files).toContain(f);
  expect(files.filter((f) => /^(src|__tests__|__fixtures__|bench|\.ci|node_modules)\//.test(f))).toEqual([]);
  expect(pkg.dependencies).toBeUndefined();
  // ssh2's Windows Pageant helper: the tool never asks ssh2 for Pageant, so the build leaves it out
  expect(files.filter((f) => f.endsWith('.exe'))).toEqual([]);
  expect(info.size).toBeLessThan(2_000_000);
});

test('the bin is the bundled CLI, runnable by node alone', () => {
  expect(pkg.bin).toEqual({ 'fleet-deploy': 'dist/cli.js' });
  expect(readFileSync('dist/cli.js', 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  expect(pkg.engines.node).toBe('>=20');
  expect(execFileSync(process.execPath, ['dist/cli.js', '--version'], { encoding: 'utf8' })).toBe(
    `${pkg.version}\n`,
  );
});

describe('the packed package, run the way the README says: npx, an empty directory, a non-root user', () => {
  const root = mkdtempSync(join(tmpdir(), 'fd-pack-'));
  const work = join(root, 'empty');
  let tarball: string;
  beforeAll(() => {
    ensureDeployUser();
    mkdirSync(work);
    const [info] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', root], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    );
    tarball = join(root, info.filename);
    handOver(root);
  }, 60_000);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** `npx fleet-deploy …` with the tarball standing in for the registry's package (nothing else to fetch). */
  const npx = (...args: string[]) => {
    try {
      return {
        code: 0,
        out: asDeployUser(['npx', '--yes', `--package=${tarball}`, 'fleet-deploy', ...args], {
          cwd: work,
          env: { HOME: root, npm_config_cache: join(root, 'npm-cache'), npm_config_update_notifier: 'false' },
          timeoutMs: 120_000,
        }),
      };
    } catch (e) {
      const err = e as { status: number; stdout: string; stderr: string };
      return { code: err.status, out: `${err.stdout}${err.stderr}` };
    }
  };

  test('--version, help, and hints that run as printed (npx fleet-deploy …)', () => {
    expect(npx('--version')).toEqual({ code: 0, out: `${pkg.version}\n` });
    expect(npx('help').out).toContain('Usage: npx fleet-deploy <command> [options]');
    const typo = npx('deplyo');
    expect(typo.code).toBe(2);
    expect(typo.out).toBe(
      'fleet-deploy: unknown command "deplyo"; did you mean "deploy"? (npx fleet-deploy help)\n',
    );
  }, 120_000);

  test('the sandbox comes up from the installed package, with hints that work, and goes down', () => {
    const dir = join(root, 'sandbox');
    const up = npx('sandbox', 'up', '--dir', dir, '--servers', '1', '--tenants', '1');
    try {
      expect(up.out).toContain(
        `Try: npx fleet-deploy deploy -r ${dir}/registry.json --key ${dir}/client_key --version v1`,
      );
      expect(up.code).toBe(0);
      const deployed = npx(
        'deploy',
        '-r',
        `${dir}/registry.json`,
        '--key',
        `${dir}/client_key`,
        '--version',
        'v1',
      );
      expect(deployed.out).toContain('1 target: 1 deployed');
    } finally {
      expect(npx('sandbox', 'down', '--dir', dir).out).toMatch(
        /^Sandbox servers stopped; 1 service stopped\.\n$/,
      );
    }
  }, 180_000);
});
