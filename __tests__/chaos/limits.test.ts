/**
 * The server's own limits, over real sshd with sandbox tenants: a full disk on the tenant's path (a small
 * tmpfs the test mounts and unmounts), a compose file that fails to parse, an image missing from the
 * registry, a registry that answers 500 or hangs. Each gives a clear error, and the tenant stays up on its
 * old release (its health still answers v1).
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haveSshd } from '../../src/testing';
import { deploy } from '../helpers/deploy';
import { startFleet, type TestFleet, type TestTenant } from '../helpers/testfleet';
import { stateOf } from './lib/fleet';
import { scenario } from './lib/record';

const describeSshd = haveSshd ? describe : describe.skip;
const isRoot = process.getuid?.() === 0;

/** The stand-in registry's answer to the `docker` double's question before each pull. */
type RegistryMode = 'ok' | '500' | 'hang';

/**
 * A test double in front of the SANDBOX runtime on the server's PATH, as `docker`: before a pull it asks
 * the stand-in registry (and fails as docker does when that answers an error, or waits while it hangs);
 * before a compose command it parses the compose file as docker compose does. Then the runtime.
 */
function dockerDouble(registryUrl: string, shim: string): string {
  const runtime = readFileSync(shim, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('exec '))!;
  return `#!/bin/sh
# a test double of the docker CLI: a registry check and a compose-file parse in front of the SANDBOX runtime
if [ "$1" = pull ]; then
  code=$(curl -s -o /dev/null -w '%{http_code}' ${registryUrl}/v2/)
  if [ "$code" != 200 ]; then
    echo "Error response from daemon: received unexpected HTTP status: $code Internal Server Error" >&2
    exit 1
  fi
fi
if [ "$1" = compose ] && [ "$2" != version ] && [ -f docker-compose.yml ]; then
  python3 -c 'import yaml; yaml.safe_load(open("docker-compose.yml"))' 2>/dev/null || {
    echo "yaml: while parsing docker-compose.yml: the file is not valid YAML" >&2
    exit 15
  }
fi
${runtime}
`;
}

describeSshd('server limits', () => {
  let fleet: TestFleet;
  let registry: Server;
  let mode: RegistryMode = 'ok';
  const sockets = new Set<Socket>();
  const select = (t: TestTenant) => `id=${t.server}/${t.id}`;
  const run = (t: TestTenant, version: string) =>
    deploy(fleet.registry, fleet.key, version, {
      select: select(t),
      options: { pullTimeoutMs: 3000, pullAttempts: 1, commandTimeoutMs: 10_000, recoveryWindowMs: 3000 },
    }).then((r) => r.targets[0]!);

  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 4, startWith: 'v1' });
    registry = createServer((_req, res) => {
      if (mode === 'hang') return; // never answers
      res.writeHead(mode === 'ok' ? 200 : 500).end();
    });
    registry.on('connection', (s) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    const port = (registry.address() as { port: number }).port;
    const shim = join(fleet.sshds.get('srv-1')!.dir, 'bin', 'docker');
    writeFileSync(shim, dockerDouble(`http://127.0.0.1:${port}`, shim));
    chmodSync(shim, 0o755);
  }, 60_000);
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => registry?.close(r));
    await fleet?.stop();
  });

  /** The tenant after a failed deploy: still v1 in .env, health answering v1, no lock. */
  async function expectStillV1(t: TestTenant) {
    const s = stateOf(t);
    expect(s.env).toBe('v1');
    expect(s.locked).toBe(false);
    expect(await fleet.health(t)).toContain('"version":"v1"');
  }

  const asRoot = isRoot ? scenario : (name: string) => test.skip(name, () => undefined);
  asRoot(
    'server limits',
    "full disk on the tenant's path (a 2 MiB tmpfs, filled)",
    'the deploy refuses before changing anything, saying how much space is free; the tenant stays up on v1',
    async () => {
      const t = fleet.tenants[0]!;
      const copy = mkdtempSync(join(fleet.root, 'disk-'));
      const saved = join(copy, 'tenant'); // the tenant's files, its directory's owner and mode with them
      cpSync(t.dir, saved, { recursive: true, preserveTimestamps: true });
      execFileSync('cp', ['-a', `${t.dir}/.`, saved]);
      const owner = `uid=${statSync(t.dir).uid},gid=${statSync(t.dir).gid}`;
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=2m,mode=0755,${owner}`, 'fd-chaos-disk', t.dir]);
      try {
        execFileSync('cp', ['-a', `${saved}/.`, t.dir]);
        try {
          execFileSync('dd', ['if=/dev/zero', `of=${join(t.dir, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
        } catch {
          // ENOSPC: the disk is full, as meant
        }
        const r = await run(t, 'v2');
        expect(r.outcome).toBe('failed');
        expect(r.error).toMatch(
          /cannot write the deploy lock .*\(0 MiB free\): is the disk full\? Nothing was changed/,
        );
        await expectStillV1(t);
        return {
          measured:
            'failed at prepare: cannot write the deploy lock (0 MiB free), nothing changed; v1 still answers',
          faults: 1,
        };
      } finally {
        execFileSync('umount', [t.dir]);
        rmSync(copy, { recursive: true, force: true });
      }
    },
  );

  scenario(
    'server limits',
    'a compose file that fails to parse',
    'a clear error naming the compose file; the tenant stays up on v1',
    async () => {
      const t = fleet.tenants[1]!;
      const file = join(t.dir, 'docker-compose.yml');
      const good = readFileSync(file, 'utf8');
      writeFileSync(file, `${good}\n  : [unclosed\n`);
      try {
        const r = await run(t, 'v2');
        expect(r.outcome).toBe('failed');
        expect(r.error).toContain('do not parse');
        expect(r.error).toContain('docker-compose.yml');
        await expectStillV1(t);
        return {
          measured:
            'failed at the update before .env changed, naming the file compose could not parse; v1 still answers',
          faults: 1,
        };
      } finally {
        writeFileSync(file, good);
      }
    },
  );

  scenario(
    'server limits',
    'an image missing from the registry',
    'the pull fails naming the image; nothing switched; the tenant stays up on v1',
    async () => {
      const t = fleet.tenants[2]!;
      const r = await run(t, 'missing-v2');
      expect(r.outcome).toBe('failed');
      expect(r.error).toContain('missing-v2');
      await expectStillV1(t);
      return {
        measured: 'failed at pull naming the image; .env v1, v1 still answers, lock released',
        faults: 1,
      };
    },
  );

  scenario(
    'server limits',
    'a registry that answers 500, then one that hangs',
    'the pull fails with the registry error, or at the pull timeout; the tenant stays up on v1',
    async () => {
      const t = fleet.tenants[3]!;
      mode = '500';
      const r500 = await run(t, 'v2');
      expect(r500.outcome).toBe('failed');
      expect(r500.error).toContain('500');
      await expectStillV1(t);
      mode = 'hang';
      try {
        const rHang = await run(t, 'v3');
        expect(rHang.outcome).toBe('failed');
        expect(rHang.error).toMatch(/pull.*(timed out|timeout)|no answer/i);
        await expectStillV1(t);
      } finally {
        mode = 'ok';
        for (const s of sockets) s.destroy(); // the hung pulls' requests
      }
      return {
        measured:
          "failed with the registry's 500; failed at the 3 s pull timeout when it hung; v1 still answers",
        faults: 2,
      };
    },
  );
});
