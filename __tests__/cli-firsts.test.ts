/**
 * What a new user meets in the first minutes, tried as one: `init` refusing an existing file
 * before it asks or connects, an empty $FLEET_REGISTRY, `-v`, `--json` everywhere, "did you mean" for
 * registry keys, `sandbox status` with no sandbox. In process; nothing here connects anywhere.
 */
import { createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { cli } from './helpers/cli';
import { asStarted, runCli } from '../src/cli/main';
import { VERSION } from '../src/version';

const example = readFileSync('servers/example.json', 'utf8');

describe('init and an existing registry', () => {
  let server: Server;
  let connections = 0;
  let port = 0;
  beforeAll(async () => {
    server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('an existing file is refused before any question or connection, naming add-server', async () => {
    const answers = ['y'];
    const r = await cli(
      ['init', '--server', `eu-1=deploy@127.0.0.1:${port}`, '--tenant', 'acme:/srv/app/acme', '--discover'],
      { 'servers/production.json': example },
      {},
      answers,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: --registry: servers/production.json exists already (add to it: fleet-deploy add-server / add-tenant; or write another file: -r FILE)\n',
    );
    expect(answers).toEqual(['y']); // never asked
    expect(connections).toBe(0); // never connected
  });

  test('the clone ships no registry at the default path (its example is servers/example.json)', async () => {
    const r = await cli(['validate'], {}, {});
    expect(r.stderr).toContain('cannot read "servers/production.json": no such file');
    expect((await cli(['validate', '-r', 'servers/example.json'])).code).toBe(0);
  });
});

test('FLEET_REGISTRY= (empty) means the default registry', async () => {
  const r = await cli(['validate'], { 'servers/production.json': example }, { FLEET_REGISTRY: '' });
  expect(r.stdout).toMatch(/^servers\/production.json: valid/);
  expect(r.code).toBe(0);
});

test('-v prints the version, as --version and -V do', async () => {
  for (const flag of ['-v', '-V', '--version'])
    expect(await cli([flag])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
});

test('--json is one flag for every command that prints data: status, history and plan take it too', async () => {
  for (const command of ['status', 'history', 'plan', 'deploy', 'rollback']) {
    const r = await cli(['help', command]);
    expect(r.stdout).toMatch(/--json /);
  }
  const plan = await cli(['plan', '-r', 'servers/example.json', '--json']);
  expect(JSON.parse(plan.stdout).total).toBe(11);
  // status --json is parsed (it then needs a key; the registry's servers are documentation addresses)
  const status = await cli(['status', '-r', 'servers/example.json', '--json'], {}, {});
  expect(status.stderr).not.toContain('unknown option');
  const bad = await cli(['status', '-r', 'servers/example.json', '--format', 'yaml']);
  expect(bad.stderr).toBe('error: --format: "yaml" is not a format (use table or json, or --json)\n');
});

test('registry keys get "did you mean" for a longer word too: hostname → host', async () => {
  const reg = JSON.parse(example);
  reg.servers[0].hostname = reg.servers[0].host;
  const r = await cli(['validate', '-r', 'r.json'], { 'r.json': JSON.stringify(reg, null, 2) });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(
    'servers[0].hostname: unknown key "hostname" (did you mean "host"? valid keys here:',
  );
});

test('sandbox status with no sandbox: a message and exit 0', async () => {
  let stdout = '';
  const code = await runCli(['sandbox', 'status', '--dir', '/nonexistent/fd-sandbox'], {
    stdout: (t) => (stdout += t),
    stderr: () => undefined,
    readText: async () => '',
    env: {},
    self: 'npx fleet-deploy',
  });
  expect(stdout).toBe(
    'No sandbox running in /nonexistent/fd-sandbox (start one: npx fleet-deploy sandbox up).\n',
  );
  expect(code).toBe(0);
});

test('help sandbox says which tags do what, missing-* included, naming the tool as started', async () => {
  let stdout = '';
  await runCli(['help', 'sandbox'], {
    stdout: (t) => (stdout += t),
    stderr: () => undefined,
    readText: async () => '',
    env: {},
    self: 'npx fleet-deploy',
  });
  const flat = stdout.replace(/\s+/g, ' '); // (wrapped to the width)
  expect(flat).toContain('missing-* fails to pull (manifest unknown)');
  expect(flat).toMatch(/broken-\* and bad-\* answer HTTP 500/);
  expect(stdout).toContain(
    '  npx fleet-deploy deploy -r DIR/registry.json --key DIR/client_key --version v1',
  );
  expect(stdout).not.toMatch(/(?<!npx )fleet-deploy deploy/);
});

test('hints name the tool as started: a lock message from the engine reads "npx fleet-deploy unlock"', () => {
  let stderr = '';
  const io = asStarted({
    stdout: () => undefined,
    stderr: (t) => (stderr += t),
    readText: async () => '',
    env: {},
    self: 'npx fleet-deploy',
  });
  io.stderr(
    "eu-1/acme: locked; release it: fleet-deploy unlock --select 'id=eu-1/acme'; npx fleet-deploy help\n",
  );
  expect(stderr).toBe(
    "eu-1/acme: locked; release it: npx fleet-deploy unlock --select 'id=eu-1/acme'; npx fleet-deploy help\n",
  );
});

describe('help fits the terminal: 80 columns when not a terminal, hanging indents', () => {
  const help = async (argv: string[], columns?: number) => {
    let stdout = '';
    await runCli(argv, {
      stdout: (t) => (stdout += t),
      stderr: () => undefined,
      readText: async () => '',
      env: {},
      self: 'npx fleet-deploy',
      ...(columns ? { columns: () => columns } : {}),
    });
    return stdout;
  };
  test.each([['help'], ['help', 'deploy'], ['help', 'init'], ['deploy', '--help'], ['help', 'status']])(
    '%j: no line over 80 columns, under npx too',
    async (...argv) => {
      const lines = (await help(argv)).split('\n');
      expect(lines.filter((l) => [...l].length > 80)).toEqual([]);
    },
  );
  test("an option's description continues under its column; a wider terminal gets longer lines", async () => {
    const text = await help(['help', 'deploy']);
    const at = text.split('\n').findIndex((l) => /^ +--max-failure-percent /.test(l));
    const column = /^( +--max-failure-percent \S+ +)/.exec(text.split('\n')[at]!)![1]!.length;
    expect(text.split('\n')[at + 1]).toMatch(new RegExp(`^ {${column}}\\S`));
    const wide = (await help(['help', 'deploy'], 160)).split('\n');
    expect(Math.max(...wide.map((l) => l.length))).toBeGreaterThan(80);
    expect(wide.filter((l) => l.length > 160)).toEqual([]);
  });
});
