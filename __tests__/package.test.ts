/** What `npm pack` ships: the bundle, the actions and the docs, nothing to install beside it. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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
