/**
 * What `plan --diff` prints (src/files/changes.ts), from a real repository read by shipFiles and the
 * server's files as src/remote/files-read.ts parses them: a diff per changed file, nothing for an
 * unchanged one, a secret variable's value (new or old) never shown, identical changes grouped across
 * targets, server text stripped of terminal control.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileChanges, groupChanges, renderChanges, type FileChange } from '../src/files/changes';
import { shipFiles } from '../src/files/local';
import { parseRegistry, targetsOf, type Target } from '../src/registry';
import { parseShippedFiles, type ServerFile } from '../src/remote/files-read';

const COMPOSE = 'services:\n  app:\n    image: ${APP_IMAGE}\n';
const COMPOSE_NEW = `${COMPOSE}  worker:\n    image: \${APP_IMAGE}\n`;
const DB = 'tenant: {tenant}\npassword: {DB_PASSWORD}\nurl: postgres://app:{DB_PASSWORD}@db/{tenant}\n';

let repo: string;
let targets: Target[];
const SECRET = 'n3w-s3cret-value';
const OLD_SECRET = '0ld-s3cret-value';

beforeAll(() => {
  repo = mkdtempSync(join(tmpdir(), 'fd-changes-'));
  mkdirSync(join(repo, 'deploy'));
  writeFileSync(join(repo, 'deploy', 'docker-compose.yml'), COMPOSE_NEW);
  writeFileSync(join(repo, 'deploy', 'db.yml'), DB);
  const tenant = (id: string) => ({ id, path: `/srv/${id}`, health: { port: 8000 + id.length } });
  const registry = parseRegistry(
    JSON.stringify({
      defaults: {
        tenant: {
          images: [{ variable: 'APP_IMAGE', repository: 'registry.test/app' }],
          files: {
            ship: [
              { from: 'deploy/docker-compose.yml', to: 'docker-compose.yml' },
              { from: 'deploy/db.yml', to: 'config/db.yml', template: true },
            ],
            variables: { DB_PASSWORD: { env: 'DB_PASSWORD' } },
          },
        },
      },
      servers: [1, 2, 3].map((n) => ({
        name: `s${n}`,
        host: `s${n}.test`,
        region: 'eu',
        tenants: [tenant(`acme-${n}`), tenant(`globex-${n}`)],
      })),
    }),
    'reg.json',
  );
  targets = targetsOf(registry);
});

afterAll(() => rmSync(repo, { recursive: true, force: true }));

const file = (text: string): ServerFile => ({ kind: 'file', bytes: Buffer.from(text) });
const ship = () => shipFiles(targets, { root: repo, env: { DB_PASSWORD: SECRET } });
const filled = (tenant: string, password: string) =>
  DB.replaceAll('{tenant}', tenant).replaceAll('{DB_PASSWORD}', password);

test('a changed compose file: its unified diff; an unchanged file: nothing', () => {
  const { releases, secrets } = ship();
  const t = targets[0]!;
  const server = new Map([
    ['docker-compose.yml', file(COMPOSE)],
    ['config/db.yml', file(filled('acme-1', SECRET))],
  ]);
  expect(fileChanges(t.tenant, releases.get(t.id)!, server, secrets)).toEqual([
    {
      path: 'docker-compose.yml',
      text: [
        '--- server/docker-compose.yml',
        '+++ release/docker-compose.yml',
        '@@ -1,3 +1,5 @@',
        ' services:',
        '   app:',
        '     image: ${APP_IMAGE}',
        '+  worker:',
        '+    image: ${APP_IMAGE}',
        '',
      ].join('\n'),
    },
  ]);
});

test("a secret variable's value never appears: not the new one, not the one on the server, not in a removed line", () => {
  const { releases, secrets } = ship();
  const t = targets[0]!;
  // a rotated secret in lines of the same shape: no change shown, only that secret values differ
  const rotated = fileChanges(
    t.tenant,
    releases.get(t.id)!,
    new Map([
      ['docker-compose.yml', file(COMPOSE_NEW)],
      ['config/db.yml', file(filled('acme-1', OLD_SECRET))],
    ]),
    secrets,
  );
  expect(rotated).toEqual([
    { path: 'config/db.yml', text: 'config/db.yml: differs only in values of secret variables (‹redacted›)' },
  ]);
  // a new file, and an old one whose lines have another shape (the old secret in a line the new file lacks)
  const reshaped = fileChanges(
    t.tenant,
    releases.get(t.id)!,
    new Map([
      ['docker-compose.yml', file(COMPOSE)],
      ['config/db.yml', file(`tenant: acme-1\npass=${OLD_SECRET}\n`)],
    ]),
    secrets,
  );
  const added = fileChanges(t.tenant, releases.get(t.id)!, new Map(), secrets);
  const all = [...reshaped, ...added].map((c) => c.text).join('\n');
  expect(all).not.toContain(SECRET);
  expect(all).not.toContain(OLD_SECRET);
  expect(all).toContain('+password: ‹redacted›');
  expect(all).toContain('+url: postgres://app:‹redacted›@db/acme-1');
  expect(all).toContain(
    '-‹a line of the server’s file, hidden: this file is templated with secret variables›',
  );
  expect(all).toContain('--- /dev/null');
});

test('identical changes grouped across targets; per-tenant ones apart; rendered without terminal control', () => {
  const { releases, secrets } = ship();
  const changes = targets.map((t): [string, FileChange[]] => [
    t.id,
    fileChanges(
      t.tenant,
      releases.get(t.id)!,
      new Map([
        // the globex tenants' compose files have a line with an escape sequence planted in it
        [
          'docker-compose.yml',
          file(t.tenant.id.startsWith('acme') ? COMPOSE : `${COMPOSE}# \x1b]0;pwned\x07\n`),
        ],
        ['config/db.yml', file(filled(t.tenant.id, SECRET))],
      ]),
      secrets,
    ),
  ]);
  const groups = groupChanges(changes);
  expect(groups.map((g) => [g.change.path, g.targets])).toEqual([
    ['docker-compose.yml', ['s1/acme-1', 's2/acme-2', 's3/acme-3']],
    ['docker-compose.yml', ['s1/globex-1', 's2/globex-2', 's3/globex-3']],
  ]);
  const many = groupChanges(
    Array.from({ length: 37 }, (_, i) => [`s/t${i}`, changes[0]![1]] as [string, FileChange[]]),
  );
  const text = renderChanges([...many, ...groups.slice(1)], {
    unchanged: ['s9/y'],
    unread: [['s9/x', 'boom \x1b[2J']],
  });
  expect(text.split('\n')[0]).toBe('Files: 2 distinct changes on 40 targets; 1 unchanged; 1 not read');
  expect(text).toContain(
    '== docker-compose.yml — same change on 37 targets: s/t0, s/t1, s/t2, s/t3, s/t4 and 32 more\n--- server/',
  );
  expect(text).toContain(
    '== docker-compose.yml — same change on 3 targets: s1/globex-1, s2/globex-2, s3/globex-3',
  );
  expect(text).toContain('\n-# \n'); // the OSC sequence (a window title) removed whole
  expect(text).not.toContain('\x1b');
  expect(text).toContain('not read: s9/x: boom');
  expect(text).toContain('unchanged: s9/y');
});

test('a per-tenant file changed the same way on every target: one group, the tenant standing as {tenant}', () => {
  const { releases, secrets } = ship();
  const changes = targets.map((t): [string, FileChange[]] => [
    t.id,
    fileChanges(
      t.tenant,
      releases.get(t.id)!,
      new Map([
        ['docker-compose.yml', file(COMPOSE_NEW)],
        // the url line is new in this release, on every tenant
        ['config/db.yml', file(filled(t.tenant.id, SECRET).replace(/^url: .*\n/m, ''))],
      ]),
      secrets,
      { tenant: t.tenant.id, server: t.server.name },
    ),
  ]);
  const groups = groupChanges(changes);
  expect(groups).toHaveLength(1);
  expect(groups[0]!.targets).toHaveLength(6);
  const text = renderChanges(groups, { unchanged: [], unread: [] });
  expect(text).toContain(
    [
      '== config/db.yml — same change on 6 targets: s1/acme-1, s1/globex-1, s2/acme-2, s2/globex-2, s3/acme-3 and 1 more ' +
        '({tenant} and {server} stand for each target’s)',
      '--- server/config/db.yml',
      '+++ release/config/db.yml',
      '@@ -1,2 +1,3 @@',
      ' tenant: {tenant}',
      ' password: ‹redacted›',
      '+url: postgres://app:‹redacted›@db/{tenant}',
    ].join('\n'),
  );
  // one target alone: its own names
  expect(renderChanges(groupChanges(changes.slice(0, 1)), { unchanged: [], unread: [] })).toContain(
    ' tenant: acme-1\n',
  );
});

test("the server's answer: only plain relative paths and base64 kept; a file the last release installed shows as removed", () => {
  const parsed = parseShippedFiles(
    [
      '@@file docker-compose.yml 4',
      Buffer.from('a: 1').toString('base64'),
      '@@file ../etc/passwd 3',
      'eDEK',
      '@@file old.yml 2',
      'not base64!',
      '@@link config',
      '@@big huge.bin 999999999',
      '@@absent gone.yml',
      '@@file stale.yml 2',
      Buffer.from('x\n').toString('base64'),
    ].join('\n'),
  );
  expect([...parsed.keys()]).toEqual(['docker-compose.yml', 'config', 'huge.bin', 'gone.yml', 'stale.yml']);
  const { releases, secrets } = ship();
  const t = targets[0]!;
  const changes = fileChanges(t.tenant, releases.get(t.id)!, parsed, secrets);
  expect(changes.find((c) => c.path === 'stale.yml')?.text).toBe(
    '--- server/stale.yml\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n',
  );
  expect(changes.find((c) => c.path === 'huge.bin')?.text).toBe(
    'huge.bin: removed (the last release installed it)',
  );
});
