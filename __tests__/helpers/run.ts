import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Parses a GITHUB_OUTPUT file as the runner writes it (name<<DELIMITER … DELIMITER). */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i]!);
    if (!m) continue;
    const value: string[] = [];
    while (++i < lines.length && lines[i] !== m[2]) value.push(lines[i]!);
    out[m[1]!] = value.join('\n');
  }
  return out;
}

/** The runner directories made by this test file, removed after it (they are read until its last test). */
const made: string[] = [];
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The environment the runner gives an action: INPUT_* variables and its command files. */
export function actionEnv(inputs: Record<string, string>, extra: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fd-action-'));
  made.push(dir);
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    GITHUB_STATE: join(dir, 'state'),
    RUNNER_TEMP: dir,
  };
  for (const [k, f] of Object.entries(files)) if (k !== 'RUNNER_TEMP') writeFileSync(f, '');
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...files, ...extra };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
  return {
    env,
    outputs: () => parseOutputFile(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    state: () => parseOutputFile(readFileSync(files.GITHUB_STATE, 'utf8')),
    summary: () => readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
  };
}

/** Runs a bundled action entry as the runner does: INPUT_* variables and GITHUB_OUTPUT/GITHUB_STEP_SUMMARY files. */
export function runBundledAction(
  entry: string,
  inputs: Record<string, string>,
  extra: Record<string, string> = {},
  timeout = 20_000,
) {
  const a = actionEnv(inputs, extra);
  const r = spawnSync(process.execPath, [entry], { env: a.env, encoding: 'utf8', timeout });
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    outputs: a.outputs(),
    state: a.state(),
    summary: a.summary(),
  };
}

/**
 * The environment a test gives the command: PATH, and the code cache's directory of this test run
 * (helpers/code-cache-setup.cjs: kept out of the HOME a test gives the command), then `env`.
 */
export function commandEnv(env: Record<string, string> = {}): Record<string, string> {
  const cache = process.env.XDG_CACHE_HOME;
  return { PATH: process.env.PATH ?? '', ...(cache ? { XDG_CACHE_HOME: cache } : {}), ...env };
}

export function runBundledCli(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000) {
  const r = spawnSync(process.execPath, ['dist/cli.js', ...args], {
    env: commandEnv(env),
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
