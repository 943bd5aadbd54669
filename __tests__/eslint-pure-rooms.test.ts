/**
 * eslint's rule for the pure rooms (docs/architecture.md): a file there that imports an I/O module or the
 * GitHub toolkit fails the lint, however the module is spelled (`fs`, `node:fs/promises`, `child_process`,
 * `node:child_process`, …). Linted as text under each pure room's path, with the repository's own config.
 */
import { ESLint } from 'eslint';

const MODULES = [
  '@actions/core',
  'node-ssh',
  'ssh2',
  'fs',
  'node:fs',
  'node:fs/promises',
  'net',
  'node:net',
  'child_process',
  'node:child_process',
];
const ROOMS = ['registry', 'plan', 'report', 'remote', 'deploy', 'health', 'analysis', 'proxy', 'fleet'];

const eslint = new ESLint({ cwd: process.cwd() });

async function restricted(file: string, module: string): Promise<boolean> {
  const [r] = await eslint.lintText(`import * as m from '${module}';\nexport const x = m;\n`, {
    filePath: file,
  });
  return r!.messages.some((m) => m.ruleId === 'no-restricted-imports');
}

test.each(ROOMS.map((room) => `src/${room}/probe.ts`).concat('src/ports.ts'))(
  '%s may import no I/O module',
  async (file) => {
    const allowed: string[] = [];
    for (const module of MODULES) if (!(await restricted(file, module))) allowed.push(module);
    expect(allowed).toEqual([]);
  },
  30_000,
);

test('an edge may (the rule is not everywhere)', async () => {
  expect(await restricted('src/ssh/probe.ts', 'node:child_process')).toBe(false);
});
