import { readFile, writeFile } from 'node:fs/promises';
import { runCli } from '../../src/cli/main';

/** Runs the CLI in-process with captured output; files are read from disk unless given in `files`. */
export async function cli(
  argv: string[],
  files: Record<string, string> = {},
  env: Record<string, string> = {},
  /** Answers to the questions the CLI asks (as if typed at a terminal), in order. */
  answers?: string[],
) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readText: async (p) => (p in files ? files[p]! : readFile(p, 'utf8')),
    writeText: (p, t) => writeFile(p, t),
    env,
    ...(answers ? { ask: async (q: string) => ((stderr += q), answers.shift() ?? '') } : {}),
  });
  return { code, stdout, stderr };
}
