/**
 * A first deploy whose health port is wrong (init's placeholder, say) over real sshd: the gate says that
 * nothing listens there, and the rollback's gate — the release before was never seen on that port either —
 * probes for one round instead of waiting its whole deadline again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRegistry } from '../../src/registry';
import { freePort, haveSshd } from '../../src/testing';
import { deploy } from '../helpers/deploy';
import { startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;

describeSshd('a first deploy to a health port nothing listens on', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await startFleet({
      servers: 1,
      tenantsPerServer: 1,
      startWith: 'v1',
      health: { deadline: '3s' },
    });
  });
  afterAll(async () => fleet?.stop());

  test('says so, and the rollback gate checks one round (1.45 s), not the 3 s deadline again', async () => {
    const closed = await freePort();
    const file = join(fleet.root, 'registry.json');
    const raw = JSON.parse(readFileSync(file, 'utf8'));
    raw.servers[0].tenants[0].health.port = closed;
    const report = await deploy(parseRegistry(JSON.stringify(raw), file), fleet.key, 'v2');
    const r = report.targets[0]!;
    expect(r.error).toContain(
      `not healthy within 3 s (last: nothing listens on 127.0.0.1:${closed} on srv-1 — check health.port`,
    );
    const rollbackGate = JSON.stringify(r.steps.find((s) => s.step === 'rollback health'));
    // one round: the probe's timeout (1 s) and an interval (150 ms) per success wanted (2) and one more
    expect(rollbackGate).toContain('not healthy within 1.45 s');
  }, 60_000);
});
