/**
 * What a person sees in a terminal 80 columns wide (tmux gives a real pseudo-terminal): the live status
 * line of a deploy never wraps and leaves no stale copy behind; and a pipe closed early (`| head`) ends the
 * command quietly, exit 0, no stack. The bundled CLI, as a person runs it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { syntheticRegistry } from '../src/sandbox/synthetic';

const haveTmux = spawnSync('tmux', ['-V']).status === 0;
const describeTmux = haveTmux ? describe : describe.skip;
if (!haveTmux) console.warn('skipped: the terminal tests need tmux (npm run setup as root installs it)');

const cli = resolve('dist/cli.js');

/** The one child process of `pid` (from /proc: field 4 of stat is the parent's PID). */
function childOf(pid: number): number {
  const children = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false; // gone since the listing
      }
    });
  expect(children).toHaveLength(1);
  return Number(children[0]);
}
let root: string;
beforeAll(() => (root = mkdtempSync(join(tmpdir(), 'fd-term-'))));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describeTmux('a deploy in a terminal 80 columns wide', () => {
  const socket = () => join(root, 'tmux.sock');
  const tmux = (...args: string[]) => execFileSync('tmux', ['-S', socket(), ...args], { encoding: 'utf8' });
  afterAll(() => {
    spawnSync('tmux', ['-S', socket(), 'kill-server']); // our own server, on our own socket
    spawnSync(process.execPath, [cli, 'sandbox', 'down', '--dir', join(root, 'sb')]);
  });

  test('the status line fits, follows a resize, and leaves no stale line', async () => {
    const sb = join(root, 'sb');
    const up = spawnSync(
      process.execPath,
      [cli, 'sandbox', 'up', '--dir', sb, '--servers', '2', '--tenants', '6'],
      {
        encoding: 'utf8',
      },
    );
    expect(up.status).toBe(0);
    const command = `${process.execPath} ${cli} deploy -r ${sb}/registry.json --key ${sb}/client_key --version v1 --concurrency 6; echo "@@exit $?"`;
    tmux('new-session', '-d', '-x', '120', '-y', '50', '-s', 'fd', command);
    tmux('set-option', '-t', 'fd', 'remain-on-exit', 'on');
    const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', 'fd');
    // narrow the terminal while the deploy runs, once the first target is done and the others wait on
    // their gates: the status line is redrawn for 80 columns. The command is stopped across the resize
    // and for longer than its once-a-second redraw, so on waking that redraw is due before the resize
    // signal is handled — as on a loaded machine, where a redraw can fall between the two.
    while (!/ deployed /.test(screen())) await new Promise((r) => setTimeout(r, 50));
    const shell = tmux('display-message', '-p', '-t', 'fd', '#{pane_pid}').trim();
    const node = childOf(Number(shell));
    process.kill(node, 'SIGSTOP');
    try {
      tmux('resize-window', '-t', 'fd', '-x', '80', '-y', '50');
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      process.kill(node, 'SIGCONT');
    }
    while (!screen().includes('@@exit')) await new Promise((r) => setTimeout(r, 100));
    const lines = tmux('capture-pane', '-p', '-S', '-', '-t', 'fd').split('\n');
    expect(lines.filter((l) => l.includes('@@exit'))).toEqual(['@@exit 0']);
    // the status line is gone at the end: no copy of it in the scrollback, whole or wrapped
    expect(lines.filter((l) => /wave 1\/1 |[█░]{3}/.test(l))).toEqual([]);
    expect(lines.filter((l) => /^sandbox-\d\/tenant-\d-\d+ +deployed /.test(l))).toHaveLength(12);
    expect(lines.filter((l) => [...l].length > 80)).toEqual([]);
  }, 120_000);
});

test('| head: the command ends quietly, exit 0, no stack', () => {
  // a plan of 2,000 targets: far more than a pipe buffer, so the writer meets the closed pipe
  const registry = join(root, 'big.json');
  writeFileSync(registry, JSON.stringify(syntheticRegistry({ servers: 40, tenantsPerServer: 50 })));
  const r = spawnSync(
    'bash',
    ['-c', `set -o pipefail; ${process.execPath} ${cli} plan -r ${registry} --json | head -n 3`],
    {
      encoding: 'utf8',
    },
  );
  expect(r.stderr).toBe('');
  expect(r.stdout.split('\n')).toHaveLength(4);
  expect(r.status).toBe(0);
});
