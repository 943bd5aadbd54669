/**
 * `fleet-deploy plan --diff` over a real OpenSSH server, as the deploy user (the release-files-sshd
 * fixture): two tenants on one server with the same compose change show it once, grouped; a config file
 * templated with a secret variable shows its change without the secret's value (new or on the server);
 * a file the last release installed and this one no longer ships shows as removed; the tenant
 * directories are left exactly as they were (read-only: no file written, no time touched).
 */
import { chmodSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli';
import { handOver, haveSshd } from '../../src/testing';
import { makeClientKey, startSshd, tempRoot, type ClientKey, type TestSshd } from '../helpers/sshd';

const describeSshd = haveSshd && process.getuid?.() === 0 ? describe : describe.skip;

const COMPOSE_V1 = 'services:\n  app:\n    image: ${APP_IMAGE}\n    network_mode: host\n';
const COMPOSE_V2 = `${COMPOSE_V1}  worker:\n    image: \${APP_IMAGE}\n    command: ["sleep", "3600"]\n`;
const SECRET = 'pl4n-diff-new-secret';
const OLD_SECRET = 'pl4n-diff-old-secret';

/** Every entry under `dir` with its size and modification time: what "left as it was" is checked by. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const s = statSync(p);
      out.push(`${p} ${s.size} ${s.mtimeMs} ${s.mode}`);
      if (s.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

describeSshd('plan --diff over real sshd', () => {
  let root: string;
  let key: ClientKey;
  let sshd: TestSshd;
  let registry: string;
  let repo: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    root = tempRoot('fd-plandiff-');
    chmodSync(root, 0o711);
    key = makeClientKey(join(root, 'client'));
    sshd = await startSshd('plandiff', root, key, { PATH: '/usr/bin:/bin' });
    handOver(sshd.dir);
    repo = join(root, 'repo');
    mkdirSync(join(repo, 'deploy'), { recursive: true });
    writeFileSync(join(repo, 'deploy', 'docker-compose.yml'), COMPOSE_V2);
    writeFileSync(join(repo, 'deploy', 'db.env'), 'TENANT={tenant}\nDB_PASSWORD={DB_PASSWORD}\n');
    const tenants = ['acme', 'globex'].map((id) => {
      const dir = join(root, id);
      dirs.push(dir);
      mkdirSync(join(dir, '.fleet', 'files'), { recursive: true });
      writeFileSync(join(dir, 'docker-compose.yml'), COMPOSE_V1);
      // globex's has one more line, holding the old secret in a shape the new file no longer has
      const extra = id === 'globex' ? `DB_PASSWORD_OLD=${OLD_SECRET}\n` : '';
      writeFileSync(join(dir, 'db.env'), `TENANT=${id}\nDB_PASSWORD=${OLD_SECRET}\n${extra}`);
      writeFileSync(join(dir, 'legacy.conf'), 'legacy: true\n');
      writeFileSync(join(dir, '.env'), 'APP_IMAGE=registry.test/acme/app:v1\n');
      // what the last release installed: these three files
      writeFileSync(
        join(dir, '.fleet', 'files', 'current'),
        ['docker-compose.yml', 'db.env', 'legacy.conf'].map((p) => `${'0'.repeat(64)} 644 ${p}\n`).join(''),
      );
      handOver(dir);
      return {
        id,
        path: dir,
        compose: { command: 'docker-compose', project: `pd-${id}` },
        health: { port: id === 'acme' ? 1 : 2 },
      };
    });
    registry = join(root, 'registry.json');
    writeFileSync(
      registry,
      JSON.stringify({
        defaults: {
          tenant: {
            images: [{ variable: 'APP_IMAGE', repository: 'registry.test/acme/app' }],
            files: {
              ship: [
                { from: 'deploy/docker-compose.yml', to: 'docker-compose.yml' },
                { from: 'deploy/db.env', to: 'db.env', template: true },
              ],
              variables: { DB_PASSWORD: { env: 'PD_DB_PASSWORD' } },
            },
          },
        },
        servers: [
          {
            name: 'pd-1',
            host: '127.0.0.1',
            port: sshd.port,
            user: sshd.user,
            hostKey: sshd.hostKey,
            region: 'local',
            tenants,
          },
        ],
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('grouped diffs, secrets redacted, removed files shown, nothing on the server changed', async () => {
    const before = dirs.flatMap(snapshot);
    const r = await cli(
      ['plan', '--diff', '-r', registry, '--key', key.file],
      {},
      {
        GITHUB_WORKSPACE: repo,
        PD_DB_PASSWORD: SECRET,
      },
    );
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain('Files: 4 distinct changes on 2 targets; 0 unchanged; 0 not read');
    expect(out).toContain(
      [
        '== docker-compose.yml — same change on 2 targets: pd-1/acme, pd-1/globex',
        '--- server/docker-compose.yml',
        '+++ release/docker-compose.yml',
        '@@ -2,3 +2,6 @@',
        '   app:',
        '     image: ${APP_IMAGE}',
        '     network_mode: host',
        '+  worker:',
        '+    image: ${APP_IMAGE}',
        '+    command: ["sleep", "3600"]',
      ].join('\n'),
    );
    // per tenant (its id is in the file): one group each, the secret rotation not shown as a value
    expect(out).toContain(
      '== db.env — on pd-1/acme\ndb.env: differs only in values of secret variables (‹redacted›)',
    );
    expect(out).toContain(
      [
        '== db.env — on pd-1/globex',
        '--- server/db.env',
        '+++ release/db.env',
        '@@ -1,3 +1,2 @@',
        ' TENANT=globex',
        ' DB_PASSWORD=‹redacted›',
        '-‹a line of the server’s file, hidden: this file is templated with secret variables›',
      ].join('\n'),
    );
    expect(out).toContain(
      '== legacy.conf — same change on 2 targets: pd-1/acme, pd-1/globex\n--- server/legacy.conf\n+++ /dev/null\n@@ -1 +0,0 @@\n-legacy: true',
    );
    expect(out + r.stderr).not.toContain(SECRET);
    expect(out + r.stderr).not.toContain(OLD_SECRET);
    expect(dirs.flatMap(snapshot)).toEqual(before);
  });
});
