import { Progress } from '../src/cli/progress';

const result = (id: string, outcome: any, error?: string) => ({
  id,
  server: 's',
  tenant: 't',
  region: 'r',
  ring: 'g',
  wave: 1,
  outcome,
  steps: [],
  startedAt: '',
  durationMs: 1500,
  ...(error ? { error } : {}),
});

test('in a log: one line per step and per target, no escape codes', () => {
  let out = '';
  const p = new Progress({ write: (t) => (out += t), tty: false, color: false, total: 2 });
  p.onWave({ wave: 1, of: 2, targets: 2, status: 'start' });
  p.onStep({ target: 'a/x', step: 'prepare', status: 'start' });
  p.onStep({ target: 'a/x', step: 'prepare', status: 'ok', ms: 400, detail: 'running v1' });
  p.onStep({ target: 'a/x', step: 'health', status: 'fail', ms: 9000, detail: 'health gate failed' });
  p.onTarget(result('a/x', 'rolled-back', 'health gate failed') as any);
  p.finish();
  expect(out).toBe(
    '── wave 1 of 2: 2 targets\na/x  prepare  ok  0.4 s  running v1\na/x  health  FAILED  9.0 s  health gate failed\na/x  rolled-back  1.5 s  health gate failed\n',
  );
  expect(out.includes('\x1b')).toBe(false);
});

test('in a terminal: a live status line with a bar and counts, redrawn in place, coloured outcomes', () => {
  let out = '';
  const p = new Progress({ write: (t) => (out += t), tty: true, color: true, total: 4 });
  p.onWave({ wave: 1, of: 1, targets: 4, status: 'start' });
  p.onStep({ target: 'a/x', step: 'pull', status: 'start' });
  p.onTarget(result('a/x', 'deployed') as any);
  p.onTarget(result('a/y', 'failed', 'boom') as any);
  p.finish();
  expect(out).toContain('\r\x1b[2K');
  expect(out).toContain('wave 1/1 █████░░░░░░░░░░░░░░░ 1/4');
  expect(out).toContain('\x1b[32mdeployed\x1b[0m');
  expect(out).toContain('\x1b[31mfailed\x1b[0m  1.5 s  boom');
  expect(out).toContain('2/4\x1b[31m · 1 failed\x1b[0m');
  expect(out.endsWith('\r\x1b[2K')).toBe(true);
});
