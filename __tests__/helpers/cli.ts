import { readFile } from 'node:fs/promises';
import { runCli } from '../../src/cli/main';

/** Runs the CLI in-process with captured output; files are read from disk unless given in `files`. */
export async function cli(
  argv: string[],
  files: Record<string, string> = {},
  env: Record<string, string> = {},
) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readText: async (p) => (p in files ? files[p]! : readFile(p, 'utf8')),
    env,
  });
  return { code, stdout, stderr };
}
