/**
 * Files shipped with a release (issue 25) end to end on the REAL engine: podman's Docker API, Debian's
 * docker-compose 1.29, a real registry and real sshd (stack.ts). One tenant whose compose file and policy
 * bundle come from a repository: a release that adds a service ships its compose file and passes its
 * gate; a release whose gate fails is rolled back to the previous files (byte for byte) and images; a
 * files-only release (same version, one service's settings changed) restarts only that service; the same
 * release again is unchanged and sends hashes only.
 *
 * Needs root and /usr/sbin/sshd (skipped otherwise); the engine state is torn down in afterAll.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shipFiles } from '../../src/files/local';
import { parseRegistry, targetsOf, type Registry } from '../../src/registry';
import { freePort, handOver } from '../../src/testing';
import { deploy } from '../helpers/deploy';
import { e2eSkipReason, stackUp, type Stack } from './stack';

if (e2eSkipReason) console.warn(e2eSkipReason);
const describeE2e = e2eSkipReason ? describe.skip : describe;

const APP = [
  'services:',
  '  app:',
  '    image: ${APP_IMAGE}',
  '    network_mode: host',
  '    restart: unless-stopped',
  '    environment:',
  '      APP_PORT: ${APP_PORT}',
  '',
].join('\n');
const worker = (note: string) =>
  [
    '  worker:',
    '    image: ${APP_IMAGE}',
    '    network_mode: host',
    '    stop_grace_period: 1s',
    '    command: ["/bin/busybox", "sleep", "3600"]',
    '    environment:',
    `      NOTE: "${note} for {tenant}"`,
    '',
  ].join('\n');

describeE2e('e2e: release files on the real engine', () => {
  let stack: Stack;
  let registry: Registry;
  let repo: string;
  let dir: string;
  let port: number;
  const project = 'relf-acme';

  const put = (path: string, text: string) => writeFileSync(join(repo, path), text);
  const onServer = (path: string) => readFileSync(join(dir, path), 'utf8');
  const files = () => shipFiles(targetsOf(registry), { root: repo, env: {} }).releases;
  const containers = () =>
    Object.fromEntries(
      stack
        .running(project)
        .map((id) => [
          stack.docker(['inspect', '--format', '{{index .Config.Labels "com.docker.compose.service"}}', id]),
          id,
        ]),
    );
  const image = () => stack.docker(['inspect', '--format', '{{.Config.Image}}', containers().app!]);
  const run = (version: string) =>
    deploy(registry, stack.key, version, { options: { files: files() } }).then((r) => r.targets[0]!);

  beforeAll(async () => {
    stack = await stackUp('fd-relf-', 280_000);
    repo = join(stack.root, 'repo');
    mkdirSync(join(repo, 'policy'), { recursive: true });
    dir = join(stack.root, 'tenants', 'acme');
    mkdirSync(dir, { recursive: true });
    port = await freePort();
    // what setup-server --compose-source left: the first compose file and the .env
    writeFileSync(join(dir, 'docker-compose.yml'), APP);
    writeFileSync(join(dir, '.env'), `APP_IMAGE=${stack.repo}:v1\nAPP_PORT=${port}\n`);
    handOver(join(stack.root, 'tenants'));
    const raw = {
      servers: [
        {
          ...stack.server('relf-1'),
          tenants: [
            {
              id: 'acme',
              path: dir,
              compose: { command: 'docker-compose', project },
              images: [{ variable: 'APP_IMAGE', repository: stack.repo }],
              health: {
                port,
                json: { status: 'ok', version: '{version}' },
                interval: '300ms',
                timeout: '2s',
                deadline: '6s',
                successes: 2,
              },
              minFreeDiskMb: 1,
              files: {
                ship: [
                  { from: 'docker-compose.yml', to: 'docker-compose.yml', template: true },
                  { from: 'policy/', to: 'config/policy/' },
                ],
              },
            },
          ],
        },
      ],
    };
    registry = parseRegistry(JSON.stringify(raw), join(stack.root, 'registry.json'));
  }, 300_000);

  afterAll(async () => stack?.down(), 120_000);

  test('v1 with its files, then v2 adding a service: its compose file and policy shipped, gate passed, history has the hashes', async () => {
    put('docker-compose.yml', APP);
    put('policy/base.rego', 'package base # 1\n');
    expect((await run('v1')).outcome).toBe('deployed');
    put('docker-compose.yml', APP + worker('one'));
    put('policy/base.rego', 'package base # 2\n');
    const r = await run('v2');
    expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
    expect(r.steps.map((s) => s.step)).toEqual([
      'connect',
      'prepare',
      'pull',
      'files',
      'install files',
      'update',
      'health',
      'finish',
    ]);
    expect(onServer('docker-compose.yml')).toBe(APP + worker('one').replace('{tenant}', 'acme'));
    expect(onServer('config/policy/base.rego')).toBe('package base # 2\n');
    expect(Object.keys(containers()).sort()).toEqual(['app', 'worker']);
    expect(image()).toBe(`${stack.repo}:v2`);
    const history = onServer('.fleet/history.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(Object.keys(history.at(-1).files).sort()).toEqual([
      'config/policy/base.rego',
      'docker-compose.yml',
    ]);
    expect(history.at(-1).fromFiles['docker-compose.yml']).toBe(history.at(-2).files['docker-compose.yml']);
  }, 120_000);

  test('a release whose gate fails: rolled back to the previous files, byte for byte, and images', async () => {
    const compose = onServer('docker-compose.yml');
    const policy = onServer('config/policy/base.rego');
    const before = containers();
    put('docker-compose.yml', APP + worker('three'));
    put('policy/base.rego', 'package base # 3\n');
    put('policy/extra.rego', 'package extra\n');
    const r = await run('bad');
    expect(r.outcome).toBe('rolled-back');
    expect(r.error).toMatch(/^health gate failed/);
    expect(readFileSync(join(dir, 'docker-compose.yml'))).toEqual(Buffer.from(compose));
    expect(readFileSync(join(dir, 'config/policy/base.rego'))).toEqual(Buffer.from(policy));
    expect(() => onServer('config/policy/extra.rego')).toThrow(/ENOENT/);
    expect(image()).toBe(`${stack.repo}:v2`);
    expect(Object.keys(containers()).sort()).toEqual(['app', 'worker']);
    expect(containers().app).not.toBe(before.app); // the rollback replaced the failed release's containers
  }, 120_000);

  test('a files-only release (same version, the worker changed): only the worker is restarted; then unchanged', async () => {
    put('docker-compose.yml', APP + worker('four'));
    put('policy/base.rego', 'package base # 2\n');
    rmSync(join(repo, 'policy/extra.rego'));
    const before = containers();
    const r = await run('v2');
    expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
    expect(r.steps.find((s) => s.step === 'files')?.detail).toMatch(/^1 of 2 files change, 1 sent/);
    const after = containers();
    expect(after.app).toBe(before.app);
    expect(after.worker).not.toBe(before.worker);
    const again = await run('v2');
    expect(again.outcome).toBe('unchanged');
    expect(again.steps.find((s) => s.step === 'files')?.detail).toBe('2 files unchanged (hashes only sent)');
  }, 120_000);

  test('`rollback` goes back to v1 with the files v1 ran with, from the history (their bytes kept on the server)', async () => {
    const r = (await deploy(registry, stack.key, 'v1', { options: { rollback: {} } })).targets[0]!;
    expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
    expect(r.steps.find((s) => s.step === 'files')?.detail).toMatch(/^2 of 2 files change, 0 sent/);
    expect(readFileSync(join(dir, 'docker-compose.yml'))).toEqual(Buffer.from(APP));
    expect(onServer('config/policy/base.rego')).toBe('package base # 1\n');
    expect(r.steps.find((s) => s.step === 'install files')?.detail).toBe(
      '2 files in place, containers of worker removed (no longer in the compose files)',
    );
    expect(Object.keys(containers())).toEqual(['app']);
    expect(image()).toBe(`${stack.repo}:v1`);
  }, 120_000);
});
