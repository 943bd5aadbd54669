import { readFileSync } from 'node:fs';
import { ConfigurationError } from '../src/errors';
import { cutJobs, matrices, MAX_MATRIX_JOBS, orderTargets, planDeployment, planJson } from '../src/plan/plan';
import { parseSelection, selectTargets } from '../src/plan/select';
import { parseWaveSpec, waveEnvironments, waveSizes } from '../src/plan/waves';
import { parseRegistry, targetsOf } from '../src/registry';
import { wildcardMatch } from '../src/wildcard';
import { fleet } from './helpers/fleet';
import { baseRegistry } from './helpers/registry';

const production = parseRegistry(readFileSync('servers/example.json', 'utf8'), 'servers/example.json');
const all = targetsOf(production);
const ids = (ts: ReadonlyArray<{ id: string }>) => ts.map((t) => t.id);

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigurationError) return e.message;
    throw e;
  }
  throw new Error('expected a ConfigurationError');
}

describe('selection', () => {
  test.each([
    ['', 11],
    ['all', 11],
    ['*', 11],
    ['region=eu', 6],
    ['region=eu,ring!=sandbox', 5],
    ['ring=canary|sandbox', 5],
    ['tenant=acme-corp', 1],
    ['tenant=*-inc|globex', 2],
    ['server=us-*', 5],
    ['id=eu-1/acme-corp', 1],
    ['tier=enterprise', 5],
    ['label.provider=hetzner', 5],
    ['provider=netcup, tier != internal', 4],
    ['tier!=enterprise', 6],
  ])('%j selects %i', (expr, n) => {
    expect(selectTargets(all, expr)).toHaveLength(n);
  });

  test('keeps the given order and each clause narrows', () => {
    expect(ids(selectTargets(all, 'region=us,ring=canary'))).toEqual(['us-1/umbrella']);
  });

  test('an unknown key names the key, suggests the closest and lists keys', () => {
    const msg = configError(() => parseSelection('tier=enterprise,regoin=eu', all));
    expect(msg).toContain('unknown key "regoin"');
    expect(msg).toContain('did you mean "region"');
    expect(msg).toContain('labels: provider, tier');
  });

  test('a malformed clause or value says how to write one', () => {
    expect(configError(() => parseSelection('region', all))).toContain('is not a clause');
    expect(configError(() => parseSelection('region=eu;reboot', all))).toContain('"eu;reboot"');
  });

  test('a selection that matches nothing says which clause and what exists', () => {
    const msg = configError(() => selectTargets(all, 'region=eu,ring=nope'));
    expect(msg).toContain('matched no target');
    expect(msg).toContain('"region=eu" alone matches 6 of 11');
    expect(msg).toContain('"ring=nope" alone matches 0 of 11 (values: canary, general, sandbox)');
  });

  test('a label absent from a target matches != and not =', () => {
    const withLabel = all.filter((t) => t.labels.tier !== undefined).length;
    expect(withLabel).toBe(all.length);
    const reg = fleet(10);
    const ts = targetsOf(reg).map((t, i) => (i === 0 ? { ...t, labels: {} } : t));
    expect(selectTargets(ts, 'tier!=enterprise').map((t) => t.id)).toContain(ts[0]!.id);
    expect(selectTargets(ts, 'tier=enterprise|standard').map((t) => t.id)).not.toContain(ts[0]!.id);
  });
});

describe('wildcards', () => {
  test('"*" matches any run and "?" one character, exactly as a regular expression (every pattern and text over a, b)', () => {
    const words = (alphabet: string, max: number): string[] =>
      max === 0 ? [''] : ['', ...words(alphabet, max - 1).flatMap((w) => [...alphabet].map((c) => c + w))];
    const texts = [...new Set(words('ab', 5))];
    const patterns = [...new Set(words('ab*?', 4))];
    for (const p of patterns) {
      const reference = new RegExp(`^${p.replaceAll('*', '.*').replaceAll('?', '.')}$`); // test oracle on tiny inputs only
      for (const t of texts) expect([p, t, wildcardMatch(p, t)]).toEqual([p, t, reference.test(t)]);
    }
  });

  test('a pattern that makes a backtracking matcher run for minutes is answered at once', () => {
    // ids of 127 characters: "^.*a.*a.*a.*a.*a.*a.*a.*c$" takes hours on them; the matcher one pass
    const reg = baseRegistry();
    reg.servers[0].name = 'a'.repeat(63);
    reg.servers[0].tenants[0].id = 'a'.repeat(63);
    const ts = targetsOf(parseRegistry(JSON.stringify(reg), 'reg.json'));
    expect(configError(() => selectTargets(ts, 'id=*a*a*a*a*a*a*a*c'))).toContain('matched no target');
    expect(selectTargets(ts, 'id=*a*a*a*a*a*a*a*a')).toHaveLength(1);
  });
});

describe('wave arithmetic', () => {
  const steps = (spec: string) => {
    const s = parseWaveSpec(spec);
    if (s.kind !== 'steps') throw new Error('not steps');
    return s.steps;
  };

  test.each([
    // [total, spec, sizes]
    [1, '1,5%,25%,100%', [1]],
    [3, '1,5%,25%,100%', [1, 1, 1]],
    [4, '1,5%,25%,100%', [1, 1, 1, 1]],
    [10, '1,5%,25%,100%', [1, 1, 1, 7]],
    [20, '1,5%,25%,100%', [1, 1, 3, 15]],
    [100, '1,5%,25%,100%', [1, 4, 20, 75]],
    [1000, '1,5%,25%,100%', [1, 49, 200, 750]],
    [10000, '1,5%,25%,100%', [1, 499, 2000, 7500]],
    [10000, '5%,25%,100%', [500, 2000, 7500]],
    [7, '50%,100%', [4, 3]],
    [3, '33%,66%,100%', [1, 1, 1]],
    [3, '34%,100%', [2, 1]],
    [5, '10,100%', [5]],
    [5, '2,2,100%', [2, 1, 2]],
    [9, '100%', [9]],
    [1001, '0.1%,100%', [2, 999]],
  ])('%i targets with %j → %j', (total, spec, sizes) => {
    const got = waveSizes(total, steps(spec));
    expect(got).toEqual(sizes);
    expect(got.reduce((a, b) => a + b, 0)).toBe(total);
    expect(got.every((n) => n >= 1)).toBe(true);
  });

  test('"all" and "" are one wave; "rings" cuts by ring', () => {
    expect(parseWaveSpec('all')).toEqual({ kind: 'steps', steps: [{ percent: 100 }] });
    expect(parseWaveSpec('')).toEqual({ kind: 'steps', steps: [{ percent: 100 }] });
    expect(parseWaveSpec('rings')).toEqual({ kind: 'rings' });
  });

  test.each([
    ['1,5%', 'the last step must be 100%'],
    ['0,100%', 'must be at least 1'],
    ['0%,100%', 'is not a share'],
    ['150%', 'is not a share'],
    ['25%,5%,100%', 'never shrink'],
    ['10,5,100%', 'never shrink'],
    ['1,five,100%', 'neither a count'],
    ['-1,100%', 'neither a count'],
  ])('%j is rejected: %s', (spec, words) => {
    const msg = configError(() => parseWaveSpec(spec));
    expect(msg).toContain(words);
    expect(msg).toContain('--waves');
    expect(msg).toContain(JSON.stringify(spec));
  });
});

describe('order and plan', () => {
  test('rings first, then round-robin across servers', () => {
    expect(ids(orderTargets(all, production.rings))).toEqual([
      'eu-1/internal-qa',
      'us-1/demo-pool',
      'eu-1/acme-corp',
      'eu-2/startup-xyz',
      'us-1/umbrella',
      'eu-1/widget-inc',
      'eu-2/globex',
      'us-1/hooli',
      'us-2/soylent',
      'eu-2/initech',
      'us-2/tyrell',
    ]);
  });

  test('one target: one wave of one job', () => {
    const plan = planDeployment(production, { select: 'tenant=hooli', waves: '1,5%,25%,100%' });
    expect(plan.plan).toHaveLength(1);
    expect(plan.plan[0]!.jobs).toEqual([{ name: 'us-1/hooli', targets: ['us-1/hooli'] }]);
  });

  test('three targets with 1,5%,25%,100%: three waves of one, no empty wave', () => {
    const plan = planDeployment(production, { select: 'ring=canary', waves: '1,5%,25%,100%' });
    expect(plan.plan.map((w) => ids(w.targets))).toEqual([
      ['eu-1/acme-corp'],
      ['eu-2/startup-xyz'],
      ['us-1/umbrella'],
    ]);
  });

  test('by ring: one wave per ring that has targets, in ring order', () => {
    const plan = planDeployment(production, { select: 'ring!=canary', waves: 'rings' });
    expect(plan.plan.map((w) => [...new Set(w.targets.map((t) => t.tenant.ring))])).toEqual([
      ['sandbox'],
      ['general'],
    ]);
  });

  test('every selected target is in exactly one wave and one job', () => {
    const reg = fleet(1000);
    const plan = planDeployment(reg, { waves: '1,5%,25%,100%', maxPerJob: 3 });
    const inWaves = plan.plan.flatMap((w) => ids(w.targets));
    const inJobs = plan.plan.flatMap((w) => w.jobs.flatMap((j) => j.targets));
    expect(new Set(inWaves).size).toBe(1000);
    expect([...inJobs].sort()).toEqual([...inWaves].sort());
    // Waves of 1, 49, 200 and 750 targets on 125 servers: a server's tenants in a wave share one job, and
    // servers with few of them are packed up to 3 targets a job; the last wave has 6 on every server.
    expect(plan.plan.map((w) => w.jobs.length)).toEqual([1, 20, 78, 125]);
  });

  test('deterministic: the same input gives the same plan', () => {
    const a = planDeployment(fleet(500), { waves: '5%,100%', select: 'tier=enterprise' });
    const b = planDeployment(fleet(500), { waves: '5%,100%', select: 'tier=enterprise' });
    expect(JSON.stringify(matrices(a))).toBe(JSON.stringify(matrices(b)));
  });

  test('10,000 targets: waves of at most 256 jobs, no server in two jobs of a wave', () => {
    const plan = planDeployment(fleet(10000), { waves: '1,5%,25%,100%' });
    expect(plan.plan.map((w) => w.targets.length)).toEqual([1, 499, 2000, 7500]);
    for (const w of plan.plan) {
      expect(w.jobs.length).toBeLessThanOrEqual(MAX_MATRIX_JOBS);
      expect(maxJobsOnOneServer(w.jobs)).toBe(1);
      // Jobs are whole servers' shares spread evenly: sizes differ by less than two servers' tenants.
      const sizes = w.jobs.map((j) => j.targets.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThan(16);
    }
    expect(plan.plan[3]!.jobs.length).toBeGreaterThan(240);
  });
});

/** The most jobs of one wave that deploy to the same server. */
function maxJobsOnOneServer(jobs: ReadonlyArray<{ targets: readonly string[] }>): number {
  const perServer = new Map<string, number>();
  for (const j of jobs)
    for (const server of new Set(j.targets.map((id) => id.split('/')[0]!)))
      perServer.set(server, (perServer.get(server) ?? 0) + 1);
  return Math.max(...perServer.values());
}

describe('per-server limits across matrix jobs', () => {
  const targets = (n: number) => targetsOf(fleet(n));
  test("by default a server's tenants in a wave share one job, named after the server", () => {
    const jobs = cutJobs(2, targets(64), 1);
    expect(jobs).toHaveLength(8);
    expect(maxJobsOnOneServer(jobs)).toBe(1);
    expect(jobs[0]!.name).toMatch(/^wave 2 · [a-z]+-\d+ · 8 targets$/);
  });
  test('max-jobs-per-server caps, and max-per-job still splits, a large server', () => {
    const jobs = cutJobs(1, targets(64), 2, 3);
    expect(maxJobsOnOneServer(jobs)).toBe(3);
    expect(jobs).toHaveLength(24);
    expect(jobs.map((j) => j.targets.length).sort()).toEqual(
      [...Array(8).fill(2), ...Array(16).fill(3)].sort(),
    );
  });
  test('small servers are packed together up to max-per-job', () => {
    const jobs = cutJobs(1, targetsOf(fleet(40, 1)), 10);
    expect(jobs).toHaveLength(4);
    expect(jobs[0]!.name).toBe('wave 1 · 1-10 of 40');
  });
  test('the plan says how jobs are cut', () => {
    const plan = planDeployment(fleet(64), { maxJobsPerServer: 2 });
    expect(planJson(plan)).toMatchObject({
      maxPerJob: 1,
      maxJobsPerServer: 2,
      plan: [{ jobs: 16, servers: 8 }],
    });
  });
  test('max-jobs-per-server must be a whole number of at least 1', () => {
    expect(configError(() => planDeployment(production, { maxJobsPerServer: 0.5 }))).toContain(
      '--max-jobs-per-server',
    );
  });
});

describe('sharding at the 256-job limit', () => {
  const targets = (n: number) => targetsOf(fleet(n));
  // With as many jobs per server as it has tenants, as before the per-server cap.
  test('256 targets: 256 jobs of one', () => {
    const jobs = cutJobs(1, targets(256), 1, 8);
    expect(jobs).toHaveLength(256);
    expect(jobs.every((j) => j.targets.length === 1)).toBe(true);
  });
  test('257 targets: 256 jobs, one of them with two', () => {
    const jobs = cutJobs(1, targets(257), 1, 8);
    expect(jobs).toHaveLength(256);
    expect(jobs.map((j) => j.targets.length).sort()).toEqual([...Array(255).fill(1), 2]);
    expect(jobs[0]!.name).toBe('wave 1 · ap-03 · 2 targets');
  });
  test('max-per-job packs targets of one server together', () => {
    const jobs = cutJobs(1, targets(64), 8);
    expect(jobs).toHaveLength(8);
    for (const j of jobs) expect(new Set(j.targets.map((id) => id.split('/')[0])).size).toBe(1);
  });
  test('a wave of zero targets has no job', () => expect(cutJobs(1, [], 1)).toEqual([]));
  test('max-per-job must be a whole number of at least 1', () => {
    expect(configError(() => planDeployment(production, { maxPerJob: 0 }))).toContain('--max-per-job');
  });
});

describe('an environment per wave', () => {
  test('the Nth name for wave N, the last for every later wave; empty: the one environment', () => {
    expect(waveEnvironments('canary, production', 'x', 4, 'w')).toEqual([
      'canary',
      'production',
      'production',
      'production',
    ]);
    expect(waveEnvironments('', 'production', 2, 'w')).toEqual(['production', 'production']);
    expect(waveEnvironments('a,b,c', 'x', 1, 'w')).toEqual(['a']);
  });
  test('an empty name is an error that names the input', () => {
    expect(
      configError(() => waveEnvironments('canary,,production', 'x', 3, 'input "wave-environments"')),
    ).toContain('input "wave-environments": "canary,,production": name 2 is empty');
  });
});
