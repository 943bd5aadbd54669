/**
 * Concurrency, over real sshd with sandbox tenants: another writer appending to .env while deploys
 * switch it loses nothing; two deploys to one target (one waits, then fails naming the holder; the final
 * state is one whole deploy); a deploy killed with SIGTERM and with SIGKILL at each step leaves a
 * consistent state, and `fleet-deploy unlock` recovers what SIGKILL left.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deploy } from '../helpers/deploy';
import { DEPLOY_USER, haveSshd, stopProcesses } from '../../src/testing';
import { startFleet, type TestFleet } from '../helpers/testfleet';
import { envVersion, stateOf } from './lib/fleet';
import { scenario } from './lib/record';

const describeSshd = haveSshd ? describe : describe.skip;

/** Another writer: numbered appends to .env about every 2 ms until a file `stop` appears. */
const APPENDER = `i=0; while [ ! -e stop ]; do echo "EXTRA_$i=x" >> .env; i=$((i+1)); sleep 0.002; done; echo $i > count`;

describeSshd('concurrency', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 2, startWith: 'v1' });
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
    if (fleet) rmSync(fleet.root, { recursive: true, force: true });
  });

  scenario(
    'concurrency',
    'another writer appends to .env during switches',
    'every appended line survives the switch (or the switch refuses and says why)',
    async () => {
      const t = fleet.tenants[0]!;
      // the other writer: an append a few milliseconds apart, numbered, until told to stop
      // (as the deploy user, as a server's other tool would be)
      const writer = spawn('runuser', ['-u', DEPLOY_USER, '--', 'sh', '-c', APPENDER], {
        cwd: t.dir,
        stdio: 'ignore',
      });
      const outcomes: string[] = [];
      try {
        for (const v of ['v2', 'v3', 'v4', 'v5', 'v6', 'v7']) {
          const r = (await deploy(fleet.registry, fleet.key, v)).targets[0]!;
          outcomes.push(r.outcome === 'deployed' ? 'deployed' : `${r.outcome}: ${r.error}`);
        }
      } finally {
        writeFileSync(join(t.dir, 'stop'), '');
        await new Promise((r) => writer.once('exit', r));
        stopProcesses([writer.pid!]);
      }
      const count = Number(readFileSync(join(t.dir, 'count'), 'utf8'));
      const env = readFileSync(join(t.dir, '.env'), 'utf8');
      const missing = [...Array(count).keys()].filter((i) => !env.includes(`\nEXTRA_${i}=x\n`));
      rmSync(join(t.dir, 'stop'));
      rmSync(join(t.dir, 'count'));
      const refused = outcomes.filter((o) => o !== 'deployed');
      for (const o of refused) expect(o).toMatch(/changing/);
      expect(missing).toEqual([]);
      expect(envVersion(t.dir)).toMatch(/^v[2-7]$/);
      expect(stateOf(t).locked).toBe(false);
      return {
        measured: 'no appended line lost across 6 switches',
        detail: `${count} appends; ${6 - refused.length} switched, ${refused.length} refused`,
      };
    },
  );
});
