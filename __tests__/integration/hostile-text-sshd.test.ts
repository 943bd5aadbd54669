/**
 * What a server sends back is printed safe, over real sshd: a hook's stderr, a lock's owner and a
 * history line that carry workflow commands ("::warning …", "##[error]"), terminal escapes (clear screen,
 * window title) and bidi overrides reach the CLI's output and the bundled deploy action's log neutralised.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli';
import { runBundledAction } from '../helpers/run';
import { handOver, haveSshd } from '../../src/testing';
import { startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;
const Z = '\u200b';

/** Server text an attacker controls: a forged command per line, and escapes in between. */
const hostile = (who: string) =>
  `::warning file=${who}::forged\n\x1b[2J\x1b]0;pwned\x07##[error]${who}-old-style\n  ::set-output name=x::${who}\n\u202eevil`;

/** No forged command begins a line, no escape or bidi override is left, and the text itself is there. */
function expectNeutralised(log: string, who: string) {
  const lines = log.split('\n');
  expect(lines.filter((l) => /^\s*::(warning file=|set-output)/.test(l))).toEqual([]);
  expect(log).not.toContain('##[error]');
  expect(log).not.toMatch(/[\x1b\x07\u202e]/); // eslint-disable-line no-control-regex
  expect(log).toContain(`::warning file=${who}::forged`); // shown, as text
  expect(log).toContain(`#${Z}#[error]${who}-old-style`);
}

describeSshd('server text reaches every log neutralised', () => {
  let fleet: TestFleet;
  let keyFile: string;
  beforeAll(async () => {
    fleet = await startFleet({
      servers: 1,
      tenantsPerServer: 3,
      startWith: 'v1',
      edit: (r) => {
        // t1-1: a hook whose stderr is hostile
        r.servers[0].tenants[0].hooks = { preDeploy: ['cat hostile.txt >&2; exit 1'] };
      },
    });
    writeFileSync(join(fleet.tenants[0]!.dir, 'hostile.txt'), hostile('hook'));
    keyFile = join(fleet.root, 'client_ed25519');
    // t1-2: held by a "deploy" whose owner text is hostile
    const lock = join(fleet.tenants[1]!.dir, '.fleet', 'lock');
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'owner'), `${hostile('lock')}\n`);
    // t1-3: a history line with hostile fields
    const state = join(fleet.tenants[2]!.dir, '.fleet');
    mkdirSync(state, { recursive: true });
    writeFileSync(
      join(state, 'history.jsonl'),
      `${JSON.stringify({ time: '2024-01-01T00:00:00Z', actor: hostile('actor'), outcome: 'deployed', from: 'v0', to: 'v1', error: hostile('history') })}\n`,
    );
    handOver(fleet.root);
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
    if (fleet) rmSync(fleet.root, { recursive: true, force: true });
  });

  test('the CLI: progress, the report table and the history table', async () => {
    const registry = join(fleet.root, 'registry.json');
    const run = await cli([
      'deploy',
      '-r',
      registry,
      '-v',
      'v2',
      '--key',
      keyFile,
      '--lock-wait',
      '1s',
      '-s',
      'tenant=t1-1|t1-2',
    ]);
    expect(run.code).toBe(1);
    const out = run.stderr + run.stdout;
    expectNeutralised(out, 'hook');
    expectNeutralised(out, 'lock');
    const history = await cli(['history', '-r', registry, '--key', keyFile, '-s', 'tenant=t1-3']);
    expect(history.code).toBe(0);
    expectNeutralised(history.stdout, 'actor');
    expectNeutralised(history.stdout, 'history');
  }, 60_000);

  test('the deploy action: its log (stdout, where the runner reads commands)', () => {
    const r = runBundledAction(
      'dist/actions/deploy.js',
      {
        registry: join(fleet.root, 'registry.json'),
        version: 'v2',
        targets: 'srv-1/t1-1 srv-1/t1-2',
        'ssh-key': fleet.key.privateKey,
        'lock-wait': '1s',
      },
      {},
      60_000,
    );
    expect(r.code).toBe(1);
    expectNeutralised(r.stdout, 'hook');
    expectNeutralised(r.stdout, 'lock');
    // the action's own commands still work
    expect(r.stdout).toContain('::group::srv-1/t1-1: failed');
    expect(r.stdout).toMatch(/^::error title=fleet-deploy%3A srv-1\/t1-1 failed::/m);
  }, 60_000);
});
