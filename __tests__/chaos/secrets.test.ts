/**
 * Secrets, over real sshd with sandbox tenants: the bundled CLI and deploy action run with a known,
 * passphrase-encrypted private key, its passphrase, a registry password and generated tokens; everything
 * they print or write (stdout, stderr, job summary, outputs, JSON reports) and what they leave on the
 * server (history, locks) is scanned for every secret, its base64 and each line of the key: zero bytes.
 * `.env` and backup archives stay 0600 through deploy, rollback, backup and restore.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { haveSshd } from '../../src/testing';
import { runBundledAction } from '../helpers/run';
import { startFleet, type TestFleet } from '../helpers/testfleet';
import { envVersion } from './lib/fleet';
import { scenario } from './lib/record';

const describeSshd = haveSshd ? describe : describe.skip;
const token = (label: string) => `${label}-${randomBytes(18).toString('hex')}`;

/** Every form of a secret a leak could take: the value, its base64, and each line of a multi-line one. */
function forms(secret: string): string[] {
  const lines = secret
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 8 && !l.startsWith('-----'));
  const all = [secret.trim(), ...lines];
  return [...new Set([...all, ...all.map((s) => Buffer.from(s).toString('base64'))])];
}

/** How many bytes of `text` are occurrences of any of the forms. */
function secretBytes(text: string, needles: string[]): { bytes: number; found: string[] } {
  let bytes = 0;
  const found: string[] = [];
  for (const n of needles) {
    const hits = text.split(n).length - 1;
    if (hits) found.push(n.slice(0, 12));
    bytes += hits * n.length;
  }
  return { bytes, found };
}

/** The files a tenant's deploys leave on the server besides .env and the backup archives (which hold it). */
function serverTexts(dir: string): string[] {
  const fleetDir = join(dir, '.fleet');
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'backups') walk(p);
      } else out.push(`${p}\n${readFileSync(p, 'utf8')}`);
    }
  };
  if (existsSync(fleetDir)) walk(fleetDir);
  return out;
}

/** What the runner shows of an action's stdout: it consumes `::add-mask::` commands (the masking itself). */
const runnerShows = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n');

const modeOf = (p: string) => (statSync(p).mode & 0o777).toString(8);

describeSshd('secrets', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 2, startWith: 'v1' });
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop(); // removes the root, the keys with it
  });

  scenario(
    'secrets',
    'a known key, its passphrase, a registry password and tokens through every output',
    'zero bytes of any secret (nor its base64, nor a line of the key) in stdout, stderr, summaries, reports, annotations, history or locks',
    async () => {
      const passphrase = token('pass');
      const registryPassword = token('regpw');
      const githubToken = `ghp_${randomBytes(18).toString('hex')}`;
      const plainKey = fleet.key.privateKey;
      const keyFile = join(fleet.root, 'encrypted_ed25519');
      writeFileSync(keyFile, plainKey, { mode: 0o600 });
      execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', passphrase, '-f', keyFile]);
      const encryptedKey = readFileSync(keyFile, 'utf8');
      // the server side's secrets: the tenant's registry login and token, in its .env
      for (const t of fleet.tenants)
        appendFileSync(
          join(t.dir, '.env'),
          `REGISTRY_PASSWORD=${registryPassword}\nAPI_TOKEN=${githubToken}\n`,
        );
      const secrets = [plainKey, encryptedKey, passphrase, registryPassword, githubToken];
      const needles = secrets.flatMap(forms);

      const registry = join(fleet.root, 'registry.json');
      const env = {
        PATH: process.env.PATH ?? '',
        USER: 'op',
        FLEET_SSH_KEY_FILE: keyFile,
        FLEET_SSH_PASSPHRASE: passphrase,
        GITHUB_TOKEN: githubToken,
        REGISTRY_PASSWORD: registryPassword,
        FLEET_DEPLOY_TOKEN: token('deploy'),
      };
      needles.push(...forms(env.FLEET_DEPLOY_TOKEN));
      const captured: string[] = [];
      const cli = (...args: string[]) => {
        const r = spawnSync(process.execPath, ['dist/cli.js', ...args, '-r', registry], {
          env,
          encoding: 'utf8',
          timeout: 90_000,
        });
        captured.push(r.stdout ?? '', r.stderr ?? '');
        return r;
      };
      const modes: string[] = [];
      const checkModes = (after: string) => {
        for (const t of fleet.tenants) {
          const m = modeOf(join(t.dir, '.env'));
          if (m !== '600') modes.push(`${after}: ${t.id}/.env ${m}`);
          const backups = join(t.dir, '.fleet', 'backups');
          if (existsSync(backups))
            for (const f of readdirSync(backups).filter((f) => f.endsWith('.tar.gz'))) {
              const bm = modeOf(join(backups, f));
              if (bm !== '600') modes.push(`${after}: ${t.id} backup ${f} ${bm}`);
            }
        }
      };
      for (const t of fleet.tenants) chmodSync(join(t.dir, '.env'), 0o600);

      const reportFile = join(fleet.root, 'report.json');
      expect(cli('deploy', '--version', 'v2', '--report', reportFile, '--lock-wait', '5s').status).toBe(0);
      captured.push(readFileSync(reportFile, 'utf8'));
      checkModes('deploy');
      expect(cli('deploy', '--version', 'v3', '--json').status).toBe(0);
      // a failing deploy prints errors from the server: the missing image's pull
      expect(cli('deploy', '--version', 'missing-v9', '--pull-attempts', '1').status).toBe(1);
      expect(cli('rollback', '--json').status).toBe(0);
      checkModes('rollback');
      expect(cli('backup', '--format', 'json').status).toBe(0);
      checkModes('backup');
      const t0 = fleet.tenants[0]!;
      const listed = cli('backups', '--format', 'json', '--select', `id=${t0.server}/${t0.id}`);
      const id = /"id":\s*"([^"]+)"/.exec(listed.stdout)?.[1];
      expect(id).toBeDefined();
      expect(cli('restore', '--backup', id!, '--select', `id=${t0.server}/${t0.id}`, '--up').status).toBe(0);
      checkModes('restore');
      for (const cmd of [['status'], ['history'], ['unlock', '--force']]) cli(...cmd);

      // the bundled deploy action: the plain key as the ssh-key input, the token in the environment
      const action = runBundledAction(
        'dist/actions/deploy.js',
        { 'ssh-key': plainKey, registry, version: 'v4', 'lock-wait': '5s' },
        { GITHUB_TOKEN: githubToken, REGISTRY_PASSWORD: registryPassword, GITHUB_ACTOR: 'ci' },
        90_000,
      );
      captured.push(
        runnerShows(action.stdout),
        action.stderr,
        action.summary,
        JSON.stringify(action.outputs),
      );
      captured.push(JSON.stringify(action.state));
      expect(action.code).toBe(0);
      const failing = runBundledAction(
        'dist/actions/deploy.js',
        { 'ssh-key': plainKey, registry, version: 'missing-v8', 'pull-attempts': '1' },
        { GITHUB_TOKEN: githubToken },
        90_000,
      );
      captured.push(
        runnerShows(failing.stdout),
        failing.stderr,
        failing.summary,
        JSON.stringify(failing.outputs),
      );
      expect(failing.code).toBe(1);
      checkModes('action deploy');
      for (const t of fleet.tenants) captured.push(...serverTexts(t.dir));

      const scan = secretBytes(captured.join('\n'), needles);
      const where = captured
        .map((text, i) => ({ i, hit: secretBytes(text, needles).found, head: text.slice(0, 300) }))
        .filter((c) => c.hit.length);
      expect(where).toEqual([]);
      expect(modes).toEqual([]);
      // the .env still holds the secrets (nothing lost) and names the last good release
      expect(fleet.env(t0)).toContain(`REGISTRY_PASSWORD=${registryPassword}`);
      expect(envVersion(t0.dir)).toBe('v4');
      return {
        measured: `0 secret bytes in ${captured.length} captured outputs; .env and backups 0600 through deploy, rollback, backup and restore`,
        cases: needles.length,
        secretBytes: scan.bytes,
        detail: `${captured.join('').length} bytes scanned`,
      };
    },
    240_000,
  );
});
