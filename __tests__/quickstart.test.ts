/**
 * The README's quick start, exactly as printed, as a new user runs it: its `sh` block is read from
 * README.md (so this test breaks when the README changes), and each command line is typed into bash in a
 * pseudo-terminal 80 columns wide (tmux), as a non-root user with an empty home directory, once from a
 * clone (a copy of the repository's tracked files and its built dist/) and once from the packed tarball
 * (`npm pack`, installed where `npx fleet-deploy` finds it), both at once.
 *
 * The servers are a sandbox fleet (`sandbox up`: real SSH endpoints on 127.0.0.1). Two substitutions, and
 * only these, stand between the README and this test: the documentation addresses 203.0.113.10 and
 * 203.0.113.11 become the sandbox servers' 127.0.0.1:PORT; and what the README tells the person to edit
 * after `init` / `add-server` (the health port init could not know) is edited as they would. The tenant
 * paths /srv/app/acme and /srv/app/globex are real: each form runs in its own mount namespace where /srv is
 * a directory of this test (bind-mounted), holding the Compose project a server would already have.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEPLOY_USER, ensureDeployUser, freePort, handOver } from '../src/testing';
import { writeTenantDir } from '../src/sandbox/tenants';

const isRoot = process.getuid?.() === 0;
const haveTmux = spawnSync('tmux', ['-V']).status === 0;
const canRun = isRoot && haveTmux && existsSync('/srv') && existsSync('dist/cli.js');
const describeQuickStart = canRun ? describe : describe.skip;
if (!canRun)
  console.warn('skipped: the quick start test needs root (a user and a mount namespace), tmux, dist/');

/** The command lines of the README's quick start block, in order (comments and blank lines left out). */
function quickStartSteps(readme: string): string[] {
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  return block.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
}

/** The one substitution in the commands: the README's documentation addresses → the sandbox servers. */
const PLACEHOLDER_ADDRESSES = ['203.0.113.10', '203.0.113.11'] as const;

const TENANTS = ['acme', 'globex'] as const;
const PATH = `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;

interface Form {
  name: 'clone' | 'tarball';
  dir: string;
  /** Where the person types the commands. */
  cwd: string;
  /** The tool's bundle in this form (to start the sandbox fleet the steps deploy to). */
  cli: string;
  socket: string;
  sandbox: string;
  /** APP_PORT of each tenant's service, the health port the person fills in. */
  ports: Record<(typeof TENANTS)[number], number>;
}

const sh = (script: string, cwd: string, env: Record<string, string> = {}) =>
  execFileSync('bash', ['-c', script], {
    cwd,
    env: { PATH, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

describeQuickStart('the README quick start, as printed, at 80 columns', () => {
  const root = mkdtempSync(join(tmpdir(), 'fd-quickstart-'));
  const forms: Form[] = [];
  afterAll(() => {
    for (const f of forms) {
      spawnSync('tmux', ['-S', f.socket, 'kill-server']); // our own tmux server, on our own socket
      spawnSync(process.execPath, [f.cli, 'sandbox', 'down', '--dir', f.sandbox], { env: { PATH } });
    }
    rmSync(root, { recursive: true, force: true });
  });

  async function prepare(name: Form['name'], tarball: string): Promise<Form> {
    const dir = join(root, name);
    mkdirSync(join(dir, 'home'), { recursive: true });
    let cwd: string;
    let cli: string;
    if (name === 'clone') {
      // a clone: the tracked files, and dist/ as built (the lead commits it rebuilt)
      cwd = join(dir, 'fleet-deploy');
      mkdirSync(cwd);
      sh(
        `git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$D" && tar -cf - dist | tar -xf - -C "$D"`,
        process.cwd(),
        { D: cwd },
      );
      cli = join(cwd, 'dist/cli.js');
    } else {
      // the published package: installed into the directory, where `npx fleet-deploy` finds it
      cwd = join(dir, 'work');
      mkdirSync(cwd);
      // (a package.json of its own: npm installs into the nearest project, which must be this one)
      writeFileSync(join(cwd, 'package.json'), '{"private": true}\n');
      sh(`npm install --offline --no-audit --no-fund --ignore-scripts "$T" >/dev/null`, cwd, {
        T: tarball,
        HOME: join(root, 'npm-home'),
        npm_config_cache: join(root, 'npm-cache'),
        npm_config_update_notifier: 'false',
      });
      cli = join(cwd, 'node_modules/fleet-deploy/dist/cli.js');
    }
    // what the servers already run: one Compose project each, found by init --discover
    const ports = { acme: await freePort(), globex: await freePort() };
    for (const t of TENANTS)
      writeTenantDir(join(dir, 'srv/app', t), {
        title: `${t}, as the server runs it`,
        image: `ghcr.io/${t}/app:v1.4.1`,
        port: ports[t],
      });
    const form: Form = {
      name,
      dir,
      cwd,
      cli,
      socket: join(dir, 'tmux.sock'),
      sandbox: join(dir, 'sandbox'),
      ports,
    };
    writeFileSync(join(dir, 'tmux.conf'), 'set -g history-limit 100000\n');
    handOver(dir);
    // in a mount namespace of its own: /srv is this form's directory; the sandbox fleet and the terminal
    // (and so every command typed) live there, as the non-root user
    const user = (...argv: string[]) =>
      ['runuser', '-u', DEPLOY_USER, '--', 'env', '-i', `HOME=${join(dir, 'home')}`, `PATH=${PATH}`, ...argv]
        .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
        .join(' ');
    const start = [
      'set -e',
      `mount --bind '${join(dir, 'srv')}' /srv`,
      `${user(process.execPath, cli, 'sandbox', 'up', '--dir', form.sandbox, '--servers', '2', '--tenants', '1')} >'${dir}/sandbox-up.log' 2>&1`,
      user(
        'TERM=xterm-256color',
        `FLEET_SSH_KEY=${form.sandbox}/client_key`,
        'npm_config_update_notifier=false',
        'PROMPT_COMMAND=echo "@@exit $?"',
        'tmux',
        '-S',
        form.socket,
        '-f',
        join(dir, 'tmux.conf'),
        'new-session',
        '-d',
        '-x',
        '80',
        '-y',
        '50',
        '-c',
        cwd,
        'bash --norc --noprofile',
      ),
    ].join('\n');
    forms.push(form);
    execFileSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', start], { stdio: 'pipe' });
    return form;
  }

  /** Types each step as printed (but for the addresses), answers init's question, edits what it says. */
  async function runSteps(form: Form, steps: readonly string[]): Promise<string> {
    const tmux = (...args: string[]) =>
      execFileSync('tmux', ['-S', form.socket, ...args], { encoding: 'utf8' });
    const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', '0');
    const exits = () => [...screen().matchAll(/^@@exit (\d+)$/gm)].map((m) => Number(m[1]));
    const servers = JSON.parse(readFileSync(join(form.sandbox, 'registry.json'), 'utf8')).servers as Array<{
      port: number;
    }>;
    const address = new Map(PLACEHOLDER_ADDRESSES.map((a, i) => [a, `127.0.0.1:${servers[i]!.port}`]));
    const registry = join(form.cwd, 'servers/production.json');
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    while (exits().length < 1) await sleep(100); // the first prompt
    let answered = 0; // init's and add-server's questions answered so far
    for (const [i, step] of steps.entries()) {
      const typed = step.replace(/203\.0\.113\.1[01]/g, (a) =>
        address.get(a as (typeof PLACEHOLDER_ADDRESSES)[number])!,
      );
      tmux('send-keys', '-t', '0', '-l', typed);
      tmux('send-keys', '-t', '0', 'Enter');
      for (let waited = 0; exits().length < i + 2; waited += 200) {
        if (waited > 240_000)
          throw new Error(`${form.name}: step ${i + 1} did not end: ${step}\n${screen()}`);
        const asked = (screen().match(/Pin this key for eu-\d\? \[y\/N\] /g) ?? []).length;
        if (asked > answered) {
          tmux('send-keys', '-t', '0', '-l', 'y'); // the person compared the fingerprint
          tmux('send-keys', '-t', '0', 'Enter');
          answered = asked;
        }
        await sleep(200);
      }
      expect([form.name, step, exits()[i + 1]]).toEqual([form.name, step, 0]);
      // the README: "edit the health port … init could not know": the person does, after init/add-server
      if (/ (init|add-server) /.test(step)) {
        const file = JSON.parse(readFileSync(registry, 'utf8'));
        for (const s of file.servers)
          for (const t of s.tenants) t.health.port = form.ports[t.id as (typeof TENANTS)[number]];
        writeFileSync(registry, JSON.stringify(file, null, 2));
      }
    }
    return screen();
  }

  test('from a clone and from the packed tarball, every step exits 0 and deploys', async () => {
    const steps = quickStartSteps(readFileSync('README.md', 'utf8'));
    for (const a of PLACEHOLDER_ADDRESSES) expect(steps.filter((s) => s.includes(a))).toHaveLength(1);
    ensureDeployUser();
    const [info] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', root], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    );
    const tarball = join(root, info.filename);
    chmodSync(root, 0o755); // the user's way in to its own directories below
    const prepared = [await prepare('clone', tarball), await prepare('tarball', tarball)];
    const screens = await Promise.all(prepared.map((f) => runSteps(f, steps)));
    for (const screen of screens) {
      expect(screen).toContain('Wrote servers/production.json: 1 server(s), 1 tenant(s).');
      expect(screen).toMatch(/^eu-1\/acme +deployed /m);
      expect(screen).toMatch(/^eu-2\/globex +deployed /m);
      expect(screen).toContain('Added eu-2 to servers/production.json.');
    }
  }, 600_000);
});
