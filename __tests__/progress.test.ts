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
  expect(out).toContain('\r\x1b[J');
  expect(out).toContain('wave 1/1 █████░░░░░░░░░░░░░░░ 1/4');
  expect(out).toContain('\x1b[32mdeployed\x1b[39m');
  expect(out).toContain('\x1b[31mfailed\x1b[39m  1.5 s  boom');
  expect(out).toContain('2/4\x1b[31m · 1 failed\x1b[39m');
  expect(out.endsWith('\r\x1b[J')).toBe(true);
});

/** A deploy of 40 targets shown in a terminal of `columns()` columns; what it wrote is in `out`. */
function inTerminal(columns: () => number, onResize: (redraw: () => void) => () => void) {
  const t = { out: '', last: () => t.out.slice(t.out.lastIndexOf('\r') + 1) };
  const p = new Progress({
    write: (x) => (t.out += x),
    tty: true,
    color: false,
    total: 40,
    columns,
    onResize,
  });
  p.onWave({ wave: 1, of: 1, targets: 40, status: 'start' });
  return Object.assign(t, { p });
}

test('in a terminal: the status line is clipped to the width, and redrawn over its wrapped rows on a resize', () => {
  let columns = 120;
  let resize: () => void = () => undefined;
  const t = inTerminal(
    () => columns,
    (redraw) => ((resize = redraw), () => (resize = () => undefined)),
  );
  for (const id of ['eu-1/acme-corporation', 'eu-1/globex-international', 'eu-2/initech-holdings', 'us-1/x'])
    t.p.onStep({ target: id, step: 'pull', status: 'start' });
  expect(t.last()).toBe(
    'wave 1/1 ░░░░░░░░░░░░░░░░░░░░ 0/40 · eu-1/acme-corporation pull 0s, eu-1/globex-international pull 0s, eu-2/initech-ho…',
  );
  columns = 40;
  t.out = '';
  resize();
  // the 119 characters drawn at 120 columns take 3 rows of 40: up 2 rows, clear to the end, draw 39
  expect(t.out.startsWith('\r\x1b[2A\x1b[J')).toBe(true);
  expect(t.last()).toBe('wave 1/1 ░░░░░░░░░░░░░░░░░░░░ 0/40 · e…');
  expect([...t.last()].length).toBe(39);
  t.p.finish();
});

test('in a terminal: a line that comes after a resize but before its signal still clears the wrapped status line', () => {
  let columns = 120;
  const t = inTerminal(
    () => columns,
    () => () => undefined, // the signal never comes in time
  );
  for (const id of ['eu-1/acme-corporation', 'eu-1/globex-international', 'eu-2/initech-holdings'])
    t.p.onStep({ target: id, step: 'pull', status: 'start' });
  columns = 80; // the terminal reflowed the 119 characters drawn at 120 columns onto 2 rows
  t.out = '';
  t.p.onTarget(result('eu-1/acme-corporation', 'deployed') as any);
  expect(t.out.startsWith('\r\x1b[1A\x1b[Jeu-1/acme-corporation  deployed  1.5 s\n')).toBe(true);
  // drawn again for 80 columns; the next clear, at the same width, is of one row
  expect([...t.last()].length).toBe(79);
  t.out = '';
  t.p.finish();
  expect(t.out).toBe('\r\x1b[J');
});

test("in a terminal: the status line shows each target's step and its time so far", () => {
  let out = '';
  let now = 1_000_000;
  const p = new Progress({ write: (t) => (out += t), tty: true, color: false, total: 2, now: () => now });
  p.onWave({ wave: 1, of: 1, targets: 2, status: 'start' });
  p.onStep({ target: 'eu-1/acme', step: 'pull', status: 'start' });
  now += 12_400;
  p.onStep({ target: 'eu-1/acme', step: 'pull', status: 'ok', ms: 12_400 });
  p.onStep({ target: 'eu-1/acme', step: 'health', status: 'start' });
  p.onStep({ target: 'eu-2/globex', step: 'pull', status: 'start' });
  p.finish();
  expect(out).toContain(' · eu-1/acme health 12s, eu-2/globex pull 0s');
});
