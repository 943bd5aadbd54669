/**
 * bench:fleet's floor is made of the command builders ours runs (bench/fleet/floor.ts), so it cannot
 * drift from them: every builder's script is in it verbatim, and it deploys: run by sh on this machine
 * with the SANDBOX runtime (the docker double) as `docker`, as a server's session would run it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { floorScript } from '../bench/fleet/floor';
import type { BenchTarget } from '../bench/fleet/servers';
import { parseRegistry, targetsOf } from '../src/registry';
import { pullImages } from '../src/remote/images';
import { prepare } from '../src/remote/prepare';
import { update } from '../src/remote/update';
import { freePort, sandboxRuntimeEnv, stopServices, writeTenantDir } from '../src/testing';
import { ED25519 } from './helpers/keys';

test('the floor script is the builders’ scripts, rolls back to the release in .env, and deploys', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fd-floor-'));
  const session = sandboxRuntimeEnv(join(root, 'server'));
  const port = await freePort();
  try {
    const dir = join(root, 't1');
    writeTenantDir(dir, { title: 'tenant t1', image: 'registry.test/app:v1', port });
    const registry = parseRegistry(
      JSON.stringify({
        defaults: { tenant: { images: [{ variable: 'APP_IMAGE', repository: 'registry.test/app' }] } },
        servers: [
          {
            name: 's1',
            host: '127.0.0.1',
            region: 'eu',
            hostKey: ED25519,
            tenants: [{ id: 't1', path: dir, health: { port } }],
          },
        ],
      }),
      'r.json',
    );
    const target = targetsOf(registry)[0]!;
    const t = { id: 't1', dir, project: 't1', appPort: port, target } as BenchTarget;
    const script = floorScript(t, 'v2');
    const owner = /"token":"(floor-[0-9a-f]+)"/.exec(script)![0];
    expect(script).toContain(
      prepare(target.tenant, { owner: `{"actor":"floor","version":"v2",${owner}}`, leaseS: 3600 }).text,
    );
    expect(script).toContain(pullImages(target.tenant, ['registry.test/app:v2']).text);
    expect(script).toContain(update(target.tenant, { APP_IMAGE: 'registry.test/app:v2' }).text);
    // the rollback goes to the release .env names now
    expect(script).toContain(update(target.tenant, { APP_IMAGE: 'registry.test/app:v1' }).text);
    expect(script).toContain(`health ${port} v1;`);

    const r = spawnSync('sh', ['-s'], { input: script, env: session, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).not.toMatch(/rolling back|failed|not found/);
    expect(r.stdout).toBe('deployed\n');
    expect(r.status).toBe(0);
    expect(readFileSync(join(dir, '.env'), 'utf8')).toContain('\nAPP_IMAGE=registry.test/app:v2\n');
    expect(JSON.parse(readFileSync(join(dir, '.fleet', 'history.jsonl'), 'utf8'))).toEqual({
      actor: 'floor',
      target: 's1/t1',
      outcome: 'deployed',
      from: 'registry.test/app:v1',
      to: 'registry.test/app:v2',
    });
    expect(existsSync(join(dir, '.fleet', 'lock'))).toBe(false);
  } finally {
    stopServices([session.FLEET_SANDBOX_STATE!]);
    rmSync(root, { recursive: true, force: true });
  }
});
