/**
 * `fleet-deploy init`, `add-server` and `add-tenant` against real OpenSSH servers: the host key fetched
 * and its fingerprint shown, pinned only with consent, the Compose projects and image variables
 * discovered on the server, and a registry that validates and deploys. Services run on the SANDBOX
 * container runtime (a test double of the docker CLI).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprintOf } from '../../src/registry/hostkey';
import { freePort, haveSshd } from '../../src/testing';
import { SshConnector } from '../../src/ssh/transport';
import { cli } from '../helpers/cli';
import { REPO, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;
if (!haveSshd) console.warn('skipped: the init tests need /usr/sbin/sshd (npm run setup as root)');

const fingerprint = (line: string) => fingerprintOf(Buffer.from(line.split(' ')[1]!, 'base64'));

describeSshd('init against real sshd', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 2, tenantsPerServer: 1, startWith: 'v1' });
  });
  afterAll(async () => fleet?.stop());

  const spec = (name: string) => {
    const s = fleet.sshds.get(name)!;
    return `${name}=${s.user}@127.0.0.1:${s.port}`;
  };
  const tenant = (i: number) => `${fleet.tenants[i]!.id}:${fleet.tenants[i]!.dir}`;

  test('without consent the key is shown and not pinned; a wrong --accept-host-key pins nothing', async () => {
    const file = join(fleet.root, 'no-consent.json');
    const r = await cli(['init', '-r', file, '--server', spec('srv-1'), '--tenant', tenant(0)], {}, {}, [
      'n',
    ]);
    expect(r.code).toBe(0);
    const fp = fingerprint(fleet.sshds.get('srv-1')!.hostKey);
    expect(r.stderr).toContain(
      `srv-1 (127.0.0.1:${fleet.sshds.get('srv-1')!.port}) offers ssh-ed25519 ${fp}`,
    );
    expect(r.stderr).toContain('Pin this key for srv-1? [y/N] ');
    expect(r.stderr).toContain(`Not pinned.`);
    expect(JSON.parse(readFileSync(file, 'utf8')).servers[0].hostKey).toBeUndefined();

    const wrong = await cli([
      'init',
      '-r',
      join(fleet.root, 'wrong.json'),
      '--server',
      spec('srv-1'),
      '--tenant',
      tenant(0),
      '--accept-host-key',
      'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(`--accept-host-key: srv-1 offered ${fp}, not SHA256:AAAA`);
  });

  test('init --discover with the fingerprint accepted: a registry that validates and deploys; add-server adds the second', async () => {
    const file = join(fleet.root, 'fleet.json');
    const key = ['--key', fleet.key.file];
    const r = await cli([
      'init',
      '-r',
      file,
      '--server',
      spec('srv-1'),
      '--tenant',
      tenant(0),
      '--region',
      'eu',
      '--discover',
      '--accept-host-key',
      fingerprint(fleet.sshds.get('srv-1')!.hostKey),
      ...key,
    ]);
    expect(r.stderr).toContain(`found ${fleet.tenants[0]!.dir} (docker-compose.yml): APP_IMAGE=${REPO}:v1`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Wrote ${file}: 1 server(s), 1 tenant(s).`);
    const written = JSON.parse(readFileSync(file, 'utf8'));
    expect(written.servers[0]).toMatchObject({
      name: 'srv-1',
      hostKey: fleet.sshds.get('srv-1')!.hostKey,
      region: 'eu',
      tenants: [
        { id: 't1-1', path: fleet.tenants[0]!.dir, images: [{ variable: 'APP_IMAGE', repository: REPO }] },
      ],
    });
    // validate flags what init could not know, on its line, until it is edited
    expect(written.placeholders).toEqual({ 'servers[0].tenants[0].health.port': 8080 });
    const unedited = await cli(['validate', '-r', file]);
    expect(unedited.code).toBe(2);
    expect(unedited.stderr).toMatch(
      new RegExp(
        `^error: ${file}:\\d+:\\d+: servers\\[0\\]\\.tenants\\[0\\]\\.health\\.port: 8080 is a placeholder init wrote: it could not know this value \\(set the port the tenant's health check answers on`,
      ),
    );

    // what the person edits next: the health port the tool could not know
    written.servers[0].tenants[0].health.port = fleet.tenants[0]!.port;
    writeFileSync(file, JSON.stringify(written, null, 2));
    expect((await cli(['validate', '-r', file])).code).toBe(0);
    const deployed = await cli(['deploy', '-r', file, '--version', 'v2', ...key]);
    expect(deployed.stdout).toMatch(/srv-1\/t1-1 .* deployed /);
    expect(deployed.code).toBe(0);

    const added = await cli([
      'add-server',
      '-r',
      file,
      '--server',
      spec('srv-2'),
      '--tenant',
      tenant(1),
      '--region',
      'us',
      '--discover',
      '--accept-host-key',
      fingerprint(fleet.sshds.get('srv-2')!.hostKey),
      ...key,
    ]);
    expect(added.code).toBe(0);
    const two = JSON.parse(readFileSync(file, 'utf8'));
    expect(two.servers.map((s: { name: string }) => s.name)).toEqual(['srv-1', 'srv-2']);
    two.servers[1].tenants[0].health.port = fleet.tenants[1]!.port;
    writeFileSync(file, JSON.stringify(two, null, 2));
    const second = await cli(['deploy', '-r', file, '--version', 'v2', '--select', 'server=srv-2', ...key]);
    expect(second.stdout).toMatch(/srv-2\/t2-1 .* deployed /);

    const tenantAdded = await cli(['add-tenant', '-r', file, '--tenant', 'srv-1/extra:/srv/app/extra']);
    expect(tenantAdded.code).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8')).servers[0].tenants[1]).toMatchObject({
      id: 'extra',
      path: '/srv/app/extra',
    });
  }, 60_000);

  test('pin-host-key: an unpinned server of the registry is pinned after its fingerprint is shown; a rebuilt one re-pinned', async () => {
    const file = join(fleet.root, 'unpinned.json');
    const fp = fingerprint(fleet.sshds.get('srv-1')!.hostKey);
    const init = await cli(['init', '-r', file, '--server', spec('srv-1'), '--tenant', tenant(0)], {}, {}, [
      'n',
    ]);
    // (the placeholders edited, as the person would: port and image)
    const edited = JSON.parse(readFileSync(file, 'utf8'));
    edited.servers[0].tenants[0].health.port = fleet.tenants[0]!.port;
    edited.defaults.tenant.images[0].repository = REPO;
    writeFileSync(file, JSON.stringify(edited, null, 2));
    expect(init.stderr).toContain(
      `Not pinned. Once you have compared it: fleet-deploy pin-host-key --server srv-1 -r ${file} --accept-host-key ${fp}\n`,
    );
    // validate says so; add-server of the same server points to the command
    const validate = await cli(['validate', '-r', file]);
    expect(validate.stderr).toBe(
      'warning: srv-1 has no pinned host key: deploys refuse it unless a known_hosts text has its key; pin it: fleet-deploy pin-host-key --server srv-1\n',
    );
    const again = await cli(['add-server', '-r', file, '--server', spec('srv-1'), '--yes']);
    expect(again.stderr).toContain('srv-1 is in');
    expect(again.stderr).toContain('to pin or re-pin its host key: fleet-deploy pin-host-key --server srv-1');
    // no consent: nothing written, exit 1
    const no = await cli(['pin-host-key', '-r', file, '--server', 'srv-1'], {}, {}, ['n']);
    expect(no.code).toBe(1);
    expect(JSON.parse(readFileSync(file, 'utf8')).servers[0].hostKey).toBeUndefined();
    // consent at the prompt: pinned
    const yes = await cli(['pin-host-key', '-r', file, '--server', 'srv-1'], {}, {}, ['y']);
    expect(yes.stderr).toContain(`offers ssh-ed25519 ${fp}`);
    expect(yes.stdout).toBe(`Pinned srv-1's key (${fp}) in ${file}.\n`);
    expect(yes.code).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8')).servers[0].hostKey).toBe(fleet.sshds.get('srv-1')!.hostKey);
    expect((await cli(['validate', '-r', file])).stderr).toBe('');
    expect((await cli(['pin-host-key', '-r', file, '--server', 'srv-1'])).stdout).toContain('already pinned');
    // the server "rebuilt": the file pins another key; re-pinned only with the fingerprint now offered
    const rebuilt = JSON.parse(readFileSync(file, 'utf8'));
    rebuilt.servers[0].hostKey = fleet.sshds.get('srv-2')!.hostKey;
    writeFileSync(file, JSON.stringify(rebuilt, null, 2));
    const wrong = await cli([
      'pin-host-key',
      '-r',
      file,
      '--server',
      'srv-1',
      '--accept-host-key',
      fingerprint(fleet.sshds.get('srv-2')!.hostKey),
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('now offers another key');
    const repin = await cli(['pin-host-key', '-r', file, '--server', 'srv-1', '--accept-host-key', fp]);
    expect(repin.code).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8')).servers[0].hostKey).toBe(fleet.sshds.get('srv-1')!.hostKey);
    expect((await cli(['pin-host-key', '-r', file, '--server', 'nope'])).stderr).toContain(
      '"nope" is not in',
    );
  }, 60_000);

  test("a health port nothing listens on: OpenSSH's empty refusal said as what it means", async () => {
    const closed = await freePort();
    const transport = await new SshConnector({ privateKey: fleet.key.privateKey }).connect(
      fleet.registry.servers[0]!,
    );
    try {
      await expect(transport.get(closed, '/health', 5000)).rejects.toThrow(
        new RegExp(`^nothing listens on 127\\.0\\.0\\.1:${closed} on srv-1 — check health\\.port`),
      );
    } finally {
      await transport.close();
    }
  });

  test('init never overwrites a registry', async () => {
    const file = join(fleet.root, 'exists.json');
    writeFileSync(file, '{}');
    const r = await cli(['init', '-r', file, '--server', spec('srv-1'), '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('exists already');
  });
});
