import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cli as run } from './helpers/cli';
import { runBundledCli } from './helpers/run';

const bad = readFileSync('__tests__/fixtures/bad-registry.json', 'utf8');
/** The example fleet (servers/example.json) stands in for the default registry of these tests. */
const EXAMPLE = { FLEET_REGISTRY: 'servers/example.json' };
const cli = (argv: string[], files: Record<string, string> = {}, env: Record<string, string> = {}) =>
  run(argv, files, { ...EXAMPLE, ...env });

describe('fleet-deploy CLI (in process)', () => {
  test('validate: exit 0 and a one-line summary', async () => {
    const r = await cli(['validate', '--registry', 'servers/example.json']);
    expect(r).toEqual({
      code: 0,
      stdout:
        'servers/example.json: valid — 4 servers, 11 tenants in 2 regions (rings: sandbox 2, canary 3, general 6)\n',
      stderr: '',
    });
  });

  test('validate: exit 2 and every problem with FILE:LINE:COL', async () => {
    const r = await cli(['validate', '-r', 'bad.json'], { 'bad.json': bad });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      'error: bad.json:7:15: servers[0].port: 0 must be a port number from 1 to 65535',
      expect.stringMatching(
        /^error: bad.json:11:17: servers\[0\]\.tenants\[0\]\.id: "Acme" is not a valid tenant id/,
      ),
      '2 problems',
      '',
    ]);
  });

  test('the registry comes from --registry, else $FLEET_REGISTRY, else servers/production.json', async () => {
    expect((await cli(['validate'], { 'bad.json': bad }, { FLEET_REGISTRY: 'bad.json' })).stderr).toContain(
      'bad.json:7:15',
    );
    expect(
      (
        await cli(
          ['validate', '-r', 'servers/example.json'],
          { 'bad.json': bad },
          { FLEET_REGISTRY: 'bad.json' },
        )
      ).code,
    ).toBe(0);
    // the default is the person's own registry: the clone ships its example elsewhere (servers/example.json)
    const example = readFileSync('servers/example.json', 'utf8');
    expect((await run(['validate'], { 'servers/production.json': example })).stdout).toMatch(
      /^servers\/production.json: valid/,
    );
    expect(existsSync('servers/production.json')).toBe(false);
  });

  test('a registry nested 8,000 deep: exit 2, naming the file, the place and the depth', async () => {
    const deep = `{"servers": [], "x": ${'['.repeat(7999)}${']'.repeat(7999)}}`;
    const r = await cli(['validate', '-r', 'deep.json'], { 'deep.json': deep });
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'error: deep.json:1:85: the JSON nests 8000 levels deep (arrays and objects inside each other); at most 64 are read (a registry nests about 8 levels: this file is not a registry, or was generated wrongly)\n',
    });
  });

  test('a missing registry file is a configuration error naming the flag', async () => {
    const r = await cli(['plan', '-r', 'missing.json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: --registry: cannot read "missing.json": no such file\n');
  });

  test('plan: a table by default', async () => {
    const r = await cli(['plan', '--waves', '1,5%,25%,100%', '--select', 'region=us']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Plan: 5 targets in 4 waves (select: region=us; waves: 1,5%,25%,100%)');
    expect(r.stdout).toContain(
      'Wave 1 · 1 target · 1 job · 20% done after it\n  TARGET          REGION  RING\n  us-1/demo-pool  us      sandbox\n',
    );
  });

  test('plan --format json and matrix', async () => {
    const json = JSON.parse((await cli(['plan', '-f', 'json', '-w', 'rings'])).stdout);
    expect(json).toMatchObject({ select: '', waves: 'rings', total: 11 });
    expect(json.plan.map((w: any) => w.count)).toEqual([2, 3, 6]);
    const m = JSON.parse((await cli(['plan', '-f', 'matrix', '-s', 'tenant=hooli'])).stdout);
    expect(m).toEqual([{ include: [{ name: 'us-1/hooli', targets: 'us-1/hooli', count: 1, wave: 1 }] }]);
  });

  test.each([
    [['plan', '--format', 'yaml'], 2, '--format: "yaml" is not a format'],
    [['plan', '--waves', '1,5%'], 2, 'the last step must be 100%'],
    [['plan', '--select', 'region=mars'], 2, 'matched no target'],
    [['plan', '--max-per-job', '0'], 2, '--max-per-job: "0" is not a whole number'],
    [['plan', '--bogus'], 2, 'fleet-deploy plan: unknown option --bogus (fleet-deploy help plan)\n'],
    [['deploy-everything'], 2, 'unknown command "deploy-everything"'],
    [[], 2, 'Usage: fleet-deploy <command>'],
  ])('%j exits %i: %s', async (argv, code, words) => {
    const r = await cli(argv);
    expect(r.code).toBe(code);
    expect(r.stdout + r.stderr).toContain(words);
  });

  test.each([
    [['deploy', '--wave', 'rings'], 'fleet-deploy deploy: unknown option --wave; did you mean --waves?'],
    [['deploy', '--dryrun'], 'fleet-deploy deploy: unknown option --dryrun; did you mean --dry-run?'],
    [['deplyo'], 'fleet-deploy: unknown command "deplyo"; did you mean "deploy"?'],
    [['sandbox'], 'fleet-deploy sandbox: say which: up, down or status'],
    [
      ['sandbox', 'stauts'],
      'fleet-deploy sandbox: "stauts" is not up, down or status; did you mean "status"?',
    ],
    [['plan', '--registry'], 'fleet-deploy plan: --registry needs a value'],
    [
      ['validate', 'servers/production.json'],
      'fleet-deploy validate: unexpected argument "servers/production.json"',
    ],
    [['help', 'deplyo'], 'fleet-deploy help: unknown command "deplyo"; did you mean "deploy"?'],
  ])('%j: one line with the nearest word, exit 2', async (argv, line) => {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([expect.stringContaining(line), '']);
  });

  test('hints name the command as the person runs it (io.self)', async () => {
    const { runCli } = await import('../src/cli/main');
    let stderr = '';
    await runCli(['deplyo'], {
      stdout: () => undefined,
      stderr: (t) => (stderr += t),
      readText: async () => '',
      env: {},
      self: 'npx fleet-deploy',
    });
    expect(stderr).toBe(
      'fleet-deploy: unknown command "deplyo"; did you mean "deploy"? (npx fleet-deploy help)\n',
    );
  });

  test("help <command> is the command's usage; help alone lists the commands", async () => {
    expect((await cli(['help', 'plan'])).stdout).toBe((await cli(['plan', '--help'])).stdout);
    const all = await cli(['help']);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('Run "fleet-deploy help <command>"');
  });

  test('completion for bash, zsh and fish comes from the command table', async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await cli(['completion', shell]);
      expect(r.code).toBe(0);
      for (const word of ['deploy', 'rollback', 'sandbox', 'waves', 'max-failure-percent', 'status'])
        expect(r.stdout).toContain(word);
    }
    // bash completes as a person would see it
    const script = (await cli(['completion', 'bash'])).stdout;
    const complete = (...words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `eval "$SCRIPT"; COMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; _fleet_deploy; echo "\${COMPREPLY[*]}"`,
        ],
        { env: { SCRIPT: script, PATH: process.env.PATH }, encoding: 'utf8' },
      ).trim();
    expect(complete('fleet-deploy', 'depl')).toBe('deploy');
    expect(complete('fleet-deploy', 'sandbox', 'st')).toBe('status');
    expect(complete('fleet-deploy', 'deploy', '--max-f')).toBe('--max-failure-percent --max-failures');
    // as the README installs it, from npx: npx fleet-deploy dep<Tab>
    expect(complete('npx', 'fleet')).toBe('fleet-deploy');
    expect(complete('npx', 'fleet-deploy', 'depl')).toBe('deploy');
    expect(complete('npx', 'fleet-deploy', 'sandbox', 'st')).toBe('status');
    expect(complete('npx', 'fleet-deploy', 'deploy', '--max-f')).toBe('--max-failure-percent --max-failures');
    expect((await cli(['completion', 'tcsh'])).stderr).toContain('"tcsh" is not bash, zsh or fish');
  });

  test('--help for the tool and for each command exits 0', async () => {
    expect((await cli(['--help'])).stdout).toMatch(/\n {2}validate +Check a server registry/);
    expect((await cli(['plan', '--help'])).stdout).toContain('--waves SPEC');
    expect((await cli(['validate', '-h'])).stdout).toContain('fleet-deploy validate [--registry FILE]');
  });

  test('an unexpected failure exits 1 with the error', async () => {
    let stderr = '';
    const { runCli } = await import('../src/cli/main');
    const code = await runCli(['validate'], {
      stdout: () => undefined,
      stderr: (t) => (stderr += t),
      readText: async () => '{"servers": []}',
      env: new Proxy(
        {},
        {
          get: (_, key) => {
            if (key === 'FLEET_REGISTRY') throw new Error('boom');
          },
        },
      ),
    });
    expect(code).toBe(1);
    expect(stderr).toBe('fleet-deploy validate failed: boom\n'); // no stack for a person
  });
});

describe('fleet-deploy CLI (the bundled dist/cli.js)', () => {
  test('exit codes 0, 2 and output streams', () => {
    const ok = runBundledCli(['plan', '-w', 'rings', '-f', 'matrix'], EXAMPLE);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toHaveLength(3);
    const badRun = runBundledCli(['validate', '-r', '__tests__/fixtures/bad-registry.json']);
    expect(badRun.code).toBe(2);
    expect(badRun.stderr).toContain('__tests__/fixtures/bad-registry.json:7:15: servers[0].port');
    expect(runBundledCli(['--version']).stdout).toBe(
      `${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`,
    );
  });
});

describe('fleet-deploy deploy (no server needed)', () => {
  test("--dry-run prints each target's exact remote commands and contacts nothing", async () => {
    const r = await cli(['deploy', '--dry-run', '-v', 'v2', '-s', 'tenant=acme-corp|soylent']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Dry run: 2 targets in 1 wave, version v2. Nothing is contacted.');
    expect(r.stdout).toContain('# eu-1/acme-corp  (ssh deploy@203.0.113.10:22)');
    expect(r.stdout).toContain(
      '# us-2/soylent  (ssh deploy@us-2.fleet.example.com:2222 via bastion.fleet.example.com)',
    );
    expect(r.stdout).toContain(
      "[pull] { touch -c -- /srv/openclaw/acme-corp/.fleet/lock 2>/dev/null || :; } && docker pull -q ghcr.io/acme/openclaw:v2 >/dev/null && docker pull -q ghcr.io/acme/safety-wrapper:v2 >/dev/null && docker image inspect --format '{{.Id}}|{{json .RepoDigests}}' ghcr.io/acme/openclaw:v2 ghcr.io/acme/safety-wrapper:v2",
    );
    expect(r.stdout).toContain('&& docker-compose -f docker-compose.yml -p openclaw-soylent up -d');
    expect(r.stdout).toContain(
      '[health] # GET http://127.0.0.1:18790/health (through the SSH connection) every 2000 ms until 3 healthy answers in a row, at most 90000 ms',
    );
  });

  test('--dry-run says what each wave pre-pulls while the wave before it runs and gates; --pre-pull false: nothing; plan says which waves', async () => {
    const args = ['deploy', '--dry-run', '-v', 'v2', '-s', 'tenant=acme-corp|soylent', '--waves', '1,100%'];
    const r = await cli(args);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '== wave 2\n# pre-pull, while wave 1 runs and gates (from its first pull), on us-2 if 1024 MiB are free: ghcr.io/acme/openclaw:v2, ghcr.io/acme/safety-wrapper:v2\n',
    );
    expect((await cli([...args, '--pre-pull', 'false'])).stdout).not.toContain('pre-pull');
    const plan = await cli(['plan', '-s', 'tenant=acme-corp|soylent', '--waves', '1,100%']);
    expect(plan.stdout).toContain(
      'its images pre-pulled on its 1 server while wave 1 runs and gates (deploy --pre-pull-waves all: from wave 1 on; --pre-pull false: not)',
    );
  });

  test('--pre-pull-waves all: every later wave pre-pulls while wave 1 runs and gates; 2: two waves ahead; bad values refused', async () => {
    const args = [
      'deploy',
      '--dry-run',
      '-v',
      'v2',
      '-s',
      'tenant=acme-corp|soylent|initech',
      '--waves',
      '1,2,100%',
    ];
    const beside = (out: string) =>
      [...out.matchAll(/^# pre-pull, while wave (\d) runs and gates/gm)].map((m) => m[1]);
    expect(beside((await cli(args)).stdout)).toEqual(['1', '2']);
    expect(beside((await cli([...args, '--pre-pull-waves', 'all'])).stdout)).toEqual(['1', '1']);
    expect(beside((await cli([...args, '--pre-pull-waves', '2'])).stdout)).toEqual(['1', '1']);
    const bad = await cli([...args, '--pre-pull-waves', 'some']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--pre-pull-waves.*"some" is not a number of waves/);
    expect(bad.stderr).toContain('write a whole number of at least 1, or all');
  });

  test('--dry-run with --versions and a registry login: each image at its version, the password never shown', async () => {
    const digest = `sha256:${'e'.repeat(64)}`;
    const r = await cli(
      [
        'deploy',
        '--dry-run',
        '--versions',
        `OPENCLAW_IMAGE=${digest},SAFETY_WRAPPER_IMAGE=v3`,
        '--registry-host',
        'ghcr.io',
        '--registry-username',
        'bot',
        '-s',
        'tenant=acme-corp',
      ],
      {},
      { FLEET_REGISTRY_PASSWORD: 'hunter2-s3cret' },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `docker pull -q ghcr.io/acme/openclaw@${digest} >/dev/null && docker pull -q ghcr.io/acme/safety-wrapper:v3 >/dev/null`,
    );
    expect(r.stdout).toContain('docker login --username bot --password-stdin ghcr.io');
    expect(r.stdout).toMatch(/\[pull\] .* {2}# stdin: <password on stdin>\n/);
    expect(r.stdout + r.stderr).not.toContain('hunter2-s3cret');
    expect(r.stdout).toContain(`OPENCLAW_IMAGE=ghcr.io/acme/openclaw@${digest}`);
  });

  test.each([
    [['deploy'], '--version: is required (or --versions)'],
    [
      ['deploy', '--versions', 'APP_IMAGE=v2'],
      '--versions: APP_IMAGE is not an image variable of any selected target',
    ],
    [['deploy', '-v', 'v2;reboot'], '--version: "v2;reboot" is neither an image tag nor a digest'],
    [['deploy', '-v', 'v2', '--concurrency', '0'], '--concurrency: "0" is not a whole number of at least 1'],
    [
      ['deploy', '-v', 'v2', '--max-failure-percent', '150'],
      '--max-failure-percent: "150" is not a percentage from 0 to 100',
    ],
    [['deploy', '-v', 'v2', '--lock-wait', 'soon'], '--lock-wait: "soon" is not a duration'],
    [['deploy', '-v', 'v2'], '--key: no SSH private key'],
    [
      ['deploy', '-v', 'v2', '--break-stale-locks', '10m'],
      '--break-stale-locks: 10m could break the lock of a deploy still at work: one may leave its lock untouched for up to 19m (the switch and the health gate of eu-2/initech) (give at least twice that, e.g. 37m)',
    ],
  ])('%j is a configuration error before anything connects: %s', async (argv, words) => {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(words);
  });

  test('a server with no pinned key and no known_hosts entry is refused before anything connects', async () => {
    const reg = JSON.parse(readFileSync('servers/example.json', 'utf8'));
    delete reg.servers[0].hostKey;
    const r = await cli(
      ['deploy', '-r', 'r.json', '-v', 'v2', '-s', 'server=eu-1'],
      { 'r.json': JSON.stringify(reg) },
      { FLEET_SSH_KEY: 'k' },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'servers[0].hostKey: server eu-1 (203.0.113.10:22) has no pinned host key and no known_hosts entry',
    );
    expect(r.stderr).toContain('pin its key: fleet-deploy pin-host-key --server eu-1 (shows its fingerprint');
    const known = await cli(
      ['deploy', '-r', 'r.json', '-v', 'v2', '-s', 'server=eu-1', '--known-hosts', 'kh', '--dry-run'],
      { 'r.json': JSON.stringify(reg), kh: '' },
    );
    expect(known.code).toBe(0);
  });
});
