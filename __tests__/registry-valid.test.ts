import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRegistry, targetsOf } from '../src/registry';
import { fingerprintOf, parseHostKey } from '../src/registry/hostkey';
import { syntheticRegistry } from '../src/sandbox/synthetic';
import { baseRegistry, tenant } from './helpers/registry';

const production = readFileSync('servers/example.json', 'utf8');

describe('servers/example.json', () => {
  const registry = parseRegistry(production, 'servers/example.json');
  const targets = targetsOf(registry);

  test('is a realistic fleet: 3+ servers in 2 regions, 8+ tenants, three rings', () => {
    expect(registry.servers.length).toBeGreaterThanOrEqual(3);
    expect(new Set(registry.servers.map((s) => s.region)).size).toBeGreaterThanOrEqual(2);
    expect(targets.length).toBeGreaterThanOrEqual(8);
    expect(new Set(targets.map((t) => t.tenant.ring))).toEqual(new Set(['sandbox', 'canary', 'general']));
  });

  test('defaults, server tenantDefaults and tenant values merge, most specific first', () => {
    const byId = Object.fromEntries(targets.map((t) => [t.tenant.id, t]));
    const acme = byId['acme-corp']!;
    expect(acme.tenant.path).toBe('/srv/openclaw/acme-corp');
    expect(acme.tenant.compose).toEqual({
      files: ['docker-compose.yml'],
      command: 'docker compose',
      project: 'openclaw-acme-corp',
    });
    expect(acme.tenant.health).toMatchObject({
      port: 18790,
      path: '/health',
      intervalMs: 2000,
      timeoutMs: 3000,
      deadlineMs: 90000,
      successes: 3,
    });
    expect(acme.labels).toEqual({ provider: 'netcup', tier: 'enterprise' });
    expect(byId['initech']!.tenant.health.deadlineMs).toBe(180000);
    expect(byId['initech']!.tenant.compose.files).toEqual(['docker-compose.yml', 'docker-compose.prod.yml']);
    expect(byId['soylent']!.tenant.compose.command).toBe('docker-compose');
    expect(byId['tyrell']!.tenant.path).toBe('/opt/tyrell/stack');
    expect(byId['tyrell']!.tenant.health.url).toBe('https://tyrell.example.com/health');
    expect(byId['tyrell']!.tenant.health.port).toBeUndefined();
    expect(byId['widget-inc']!.tenant.ring).toBe('general');
    const us2 = registry.servers.find((s) => s.name === 'us-2')!;
    expect(us2.port).toBe(2222);
    expect(us2.jump).toMatchObject({ host: 'bastion.fleet.example.com', port: 22, user: 'jump' });
  });

  test('pinned keys give the fingerprints ssh-keygen prints', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fd-keys-'));
    const keys = registry.servers.flatMap((s) => s.hostKeys).filter((k) => k.type);
    expect(keys.length).toBeGreaterThanOrEqual(3);
    const raw = JSON.parse(production)
      .servers.flatMap((s: any) => [s.hostKey].flat())
      .filter((k: string) => !k.startsWith('SHA256:'));
    raw.forEach((line: string, i: number) => {
      writeFileSync(join(dir, `k${i}.pub`), `${line}\n`);
      const printed = execFileSync('ssh-keygen', ['-lf', join(dir, `k${i}.pub`)], { encoding: 'utf8' }).split(
        ' ',
      )[1];
      expect(parseHostKey(line)).toMatchObject({ fingerprint: printed });
    });
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('resolution', () => {
  test('templating fills {tenant}, {server}, {region} and {ring}', () => {
    const r = baseRegistry();
    r.defaults = {
      tenant: { path: '/srv/{region}/{server}/{ring}/{tenant}', compose: { project: '{server}-{tenant}' } },
    };
    delete r.servers[0].tenants[0].path;
    r.servers[0].tenants[0].ring = 'canary';
    const t = targetsOf(parseRegistry(JSON.stringify(r), 'r.json'))[0]!;
    expect(t.tenant.path).toBe('/srv/eu/eu-1/canary/acme');
    expect(t.tenant.compose.project).toBe('eu-1-acme');
  });

  test('server and tenant defaults: SSH user deploy, port 22, compose defaults, ring = last ring', () => {
    const r = baseRegistry();
    r.rings = ['early', 'late'];
    const reg = parseRegistry(JSON.stringify(r), 'r.json');
    const t = targetsOf(reg)[0]!;
    expect(t.server).toMatchObject({ user: 'deploy', port: 22, hostKeys: [] });
    expect(t.tenant.compose).toEqual({ files: ['docker-compose.yml'], command: 'docker compose' });
    expect(t.tenant.ring).toBe('late');
    expect(t.tenant.health).toEqual({
      port: 8080,
      path: '/health',
      expectStatus: 200,
      intervalMs: 2000,
      timeoutMs: 5000,
      deadlineMs: 120000,
      successes: 3,
      containerHealth: false,
    });
  });

  test('a list in a tenant replaces the list in defaults', () => {
    const r = baseRegistry();
    r.defaults = {
      tenant: {
        images: [
          { variable: 'A', repository: 'x/a' },
          { variable: 'B', repository: 'x/b' },
        ],
      },
    };
    const t = targetsOf(parseRegistry(JSON.stringify(r), 'r.json'))[0]!;
    expect(t.tenant.images).toEqual([{ variable: 'APP_IMAGE', repository: 'ghcr.io/acme/app' }]);
  });

  test('several tenants share a server with their own paths and ports', () => {
    const r = baseRegistry();
    r.servers[0].tenants.push(tenant('globex', 8081), tenant('initech', 8082));
    const targets = targetsOf(parseRegistry(JSON.stringify(r), 'r.json'));
    expect(targets.map((t) => t.id)).toEqual(['eu-1/acme', 'eu-1/globex', 'eu-1/initech']);
  });

  test('a fingerprint-pinned key is kept as the fingerprint', () => {
    const blob = Buffer.from('hello');
    const r = baseRegistry();
    r.servers[0].hostKey = fingerprintOf(blob);
    const reg = parseRegistry(JSON.stringify(r), 'r.json');
    expect(reg.servers[0]!.hostKeys).toEqual([{ fingerprint: fingerprintOf(blob) }]);
  });

  test('10,000 tenants parse', () => {
    const reg = parseRegistry(
      JSON.stringify(syntheticRegistry({ servers: 1250, tenantsPerServer: 8 })),
      'big.json',
    );
    expect(targetsOf(reg)).toHaveLength(10000);
  });
});
