/**
 * The demo stops when asked, at three points of its story, and leaves nothing behind: no process of its
 * sandbox (servers, services) and no temp directory. Stopped by Ctrl-C (SIGINT) while the sandbox comes
 * up, by SIGTERM (`timeout`, `kill`) in the middle of a deploy, and by its reader going away (`| head`)
 * later on. The bundled CLI, as a person runs it; each point is found in its output, not by a timer.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRunning } from '../src/testing';
import { commandEnv } from './helpers/run';

function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!isRunning(Number(pid))) continue;
      const seen =
        readFileSync(`/proc/${pid}/cmdline`, 'utf8') + readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (seen.includes(text)) found.push(Number(pid));
    } catch {
      // gone, or another user's
    }
  }
  return found;
}

type Stop = 'SIGINT' | 'SIGTERM' | 'close stdout';

async function demoStoppedAt(marker: string, how: Stop) {
  const tmp = mkdtempSync(join(tmpdir(), 'fd-demo-stop-'));
  const child = spawn(process.execPath, ['dist/cli.js', 'demo'], {
    env: commandEnv({ HOME: tmp, TMPDIR: tmp }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stopped = false;
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (stopped || !out.includes(marker)) return;
      stopped = true;
      if (how === 'close stdout') child.stdout.destroy();
      else child.kill(how);
      resolve();
    });
  });
  const code = await exited;
  const left = { processes: processesMentioning(tmp), files: readdirSync(tmp) };
  rmSync(tmp, { recursive: true, force: true });
  return { code, out, err, left };
}

test.each([
  ['1. A sandbox fleet', 'SIGINT', 130],
  ['2. Deploy v1', 'SIGTERM', 143],
  ['4. The same rollout', 'close stdout', 0],
] as const)(
  'stopped at "%s" by %s: exit %i, sandbox torn down, nothing left',
  async (marker, how, exitCode) => {
    const r = await demoStoppedAt(marker, how);
    expect(r.left).toEqual({ processes: [], files: [] });
    expect(r.code).toBe(exitCode);
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
    if (how !== 'close stdout') {
      expect(r.err).toContain(`demo stopped (${how}): tearing the sandbox down`);
      expect(r.out).toMatch(/9\. Torn down: sandbox servers stopped/);
      expect(r.out).not.toContain('6. A manual rollback');
    }
  },
  60_000,
);
