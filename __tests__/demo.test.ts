/**
 * `fleet-deploy demo`, the README's first command, as a user runs it: the bundled CLI, no TTY. It must
 * show every act of the story (its figures come from the deploys it makes, so they are checked as such)
 * and leave no process of its sandbox behind.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRunning } from '../src/testing';
import { runBundledCli } from './helpers/run';

/** Running processes (not zombies) whose command line or environment mentions `text`. */
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

test('the demo tells the whole story and tears everything down', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fd-demo-test-'));
  const r = runBundledCli(['demo'], { HOME: tmp, TMPDIR: tmp }, 150_000);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const out = r.stdout;
  expect(out).not.toContain('\x1b['); // no colour without a terminal

  // the first heading opens the output: no blank line before it
  expect(out.startsWith('1. ')).toBe(true);
  const act = (n: number) =>
    out.slice(out.indexOf(`${n === 1 ? '' : '\n'}${n}. `), out.indexOf(`\n${n + 1}. `));
  expect(act(1)).toMatch(/sandbox-1\/tenant-1-1 +sandbox +eu/);
  expect(act(2)).toContain('9 deployed in');
  expect(act(2)).toContain('(3 handshakes)');
  // budget 0: the bad tenant is rolled back and wave 3 never starts
  expect(act(3)).toMatch(/sandbox-1\/tenant-1-2 +rolled-back .* health gate failed: .*HTTP 500/);
  expect(act(3).match(/ skipped /g)).toHaveLength(5);
  expect(act(3)).toContain(
    'wave 2 exceeded the failure budget: 1 of 4 targets failed or rolled back (25.0% > 0%)',
  );
  // budget 30%: the same failure, and the rollout goes on
  expect(act(4)).toContain('── wave 3 of 3: 5 targets');
  expect(act(4)).toContain('9 targets: 5 deployed, 3 unchanged, 1 rolled-back');
  expect(
    act(5)
      .match(/^ +\S+Z +(\S+) +(\S+ → \S+)$/gm)
      ?.map((l) => l.trim().split(/ +/).slice(1).join(' ')),
  ).toEqual(['deployed v0 → v1', 'rolled-back v1 → v2', 'rolled-back v1 → v2']);
  expect(act(6)).toContain('sandbox-2/tenant-2-1: rolled back v2 → v1');
  // analysis between waves: the silent release stops at the first ring and is rolled back; v5 soaks and goes on
  const [silent, healthy] = act(7).split('\n   v5,');
  expect(silent).toMatch(
    /analysis after wave 1: failed, 1 measurement\(s\) in [\d.]+ s, last: HTTP 200 \{"tenants":1,"silent":1,"dropPercent":100\}/,
  );
  expect(silent).toContain('0 deployed, 1 rolled back, 8 skipped — stopped');
  expect(healthy).toMatch(
    /analysis after wave 1: successful, 3 measurement\(s\) in 2\.\d s, last: HTTP 200 \{"tenants":1,"silent":0,"dropPercent":0\}/,
  );
  expect(healthy).toMatch(/analysis after wave 2: successful, 3 measurement\(s\)/);
  expect(healthy).toContain('9 deployed, 0 rolled back, 0 skipped\n');
  // a rollout under load through the tenant's sandbox proxy: errors in place, none blue-green
  const inPlace = /in place {3}\(v3\): (\d+) requests, (\d+) failed/.exec(act(8));
  const blueGreen = /blue-green \(v4\): (\d+) requests, (\d+) failed/.exec(act(8));
  expect(Number(inPlace?.[2])).toBeGreaterThan(0);
  expect(Number(blueGreen?.[1])).toBeGreaterThan(0);
  expect(blueGreen?.[2]).toBe('0');
  expect(out).toMatch(/9\. Torn down: sandbox servers stopped, 9 services stopped\. Demo took [\d.]+ s\./);
  expect(processesMentioning(tmp)).toEqual([]);
  expect(readdirSync(tmp)).toEqual([]); // the demo's own temp directory is gone too
  rmSync(tmp, { recursive: true, force: true });
}, 180_000);
