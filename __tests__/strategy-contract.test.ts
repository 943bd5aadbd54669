/**
 * The contract every release strategy keeps, run against each kind of `Strategy` (registry/model.ts's
 * STRATEGY_KINDS, which the union's kinds must match to compile): the schema accepts the kind, the
 * registry resolves it, `strategyFor` builds its strategy, which gives `prepare` its reads, the dry run its
 * preview of each step, and `status` its inspection and reading of it. And what it must do with the
 * release a deploy asks for: each image named in `versions` at its own version, the others at `version`,
 * the release's version the first image's. A strategy that drops `versions` fails here (blue-green did:
 * `deploy --versions` and per-image rollbacks deployed the one version to blue-green tenants).
 */
import { defaultStepLimits } from '../src/settings';
import { formatPath } from '../src/errors';
import { parseRegistry, targetsOf } from '../src/registry';
import { STRATEGY_KINDS, type StrategyKind } from '../src/registry/model';
import { strategy as strategySchema } from '../src/registry/schema';
import { strategyFor } from '../src/deploy/strategies';
import { dryRunCommands } from '../src/deploy/dry-run';
import { parseInspection } from '../src/remote/status';
import { targetStatus } from '../src/fleet/status';
import { slotsText } from '../src/report/status-table';
import { baseRegistry, problemsOf } from './helpers/registry';

const images = [
  { variable: 'APP_IMAGE', repository: 'ghcr.io/acme/app' },
  { variable: 'WORKER_IMAGE', repository: 'ghcr.io/acme/worker' },
];

const commands = { deploy: 'deploy "$FLEET_VERSION"', current: 'cat VERSION' };

/** Per kind: its registry entry, and what `status` reads from an inspection of a tenant that runs v3. */
const kinds: Record<StrategyKind, { entry: Record<string, unknown>; inspection: string; status: object }> = {
  'in-place': {
    entry: {},
    inspection: '@@env\nAPP_IMAGE=ghcr.io/acme/app:v3\n@@history\n@@end',
    status: { version: 'v3', containers: [] },
  },
  commands: {
    entry: { strategy: { kind: 'commands', ...commands } },
    inspection: '@@current\nv3\n@@history\n@@end',
    status: { version: 'v3', state: 'running' },
  },
  'blue-green': {
    entry: {
      compose: { project: 'acme' },
      strategy: {
        kind: 'blue-green',
        slots: { blue: { port: 8081 }, green: { port: 8082 } },
        proxy: { kind: 'caddy' },
      },
    },
    inspection: [
      '@@env\nAPP_IMAGE=ghcr.io/acme/app:v3',
      '@@active\ngreen',
      '@@slotenv blue\nAPP_IMAGE=ghcr.io/acme/app:v2',
      '@@slotcontainers blue',
      '@@slotenv green\nAPP_IMAGE=ghcr.io/acme/app:v3',
      `@@slotcontainers green\n/acme-green-app-1|running|sha256:${'a'.repeat(64)}||healthy`,
      '@@history\n@@end',
    ].join('\n'),
    status: {
      version: 'v3',
      containers: [{ name: 'acme-green-app-1', state: 'running', image: `sha256:${'a'.repeat(64)}` }],
      slots: {
        live: 'green',
        blue: { version: 'v2', state: 'missing' },
        green: { version: 'v3', state: 'running' },
      },
    },
  },
};

function targetOf(kind: StrategyKind) {
  const r = baseRegistry();
  Object.assign(r.servers[0].tenants[0], { images }, kinds[kind].entry);
  return targetsOf(parseRegistry(JSON.stringify(r), 'reg.json'))[0]!;
}

const strategyOf = (kind: StrategyKind) => strategyFor(targetOf(kind));

describe('every kind of strategy', () => {
  test("the kinds are the registry schema's, and each has its case here", () => {
    const inSchema = strategySchema.options.map((o) => o.shape.kind.value);
    expect([...inSchema].sort()).toEqual([...STRATEGY_KINDS].sort());
    expect(Object.keys(kinds).sort()).toEqual([...STRATEGY_KINDS].sort());
  });

  describe.each(STRATEGY_KINDS)('%s', (kind) => {
    test('the registry resolves it, and strategyFor builds its strategy', () => {
      expect(targetOf(kind).tenant.strategy.kind).toBe(kind);
      expect(() => strategyOf(kind)).not.toThrow();
    });

    test("prepare's reads and the dry run's preview of every step it owns", () => {
      const s = strategyOf(kind);
      expect(s.prepareReads().state.length).toBeGreaterThan(0);
      const next = s.release({ version: 'v1', versions: {} });
      const preview = s.preview(next);
      expect(preview.switch.text).not.toBe('');
      const steps = dryRunCommands(targetOf(kind), { version: 'v1' }).map((c) => c.step);
      expect(steps).toEqual(expect.arrayContaining(['prepare', s.switchStep, 'finish']));
      if (s.fetch) expect(preview.fetch?.text).toBeTruthy(); // a strategy that pulls shows its pull
      if (s.promote) expect(preview.promote?.length).toBeGreaterThan(0);
      if (s.retire) expect(preview.retire?.length).toBeGreaterThan(0);
    });

    test("the dry run's container health check is the strategy's (blue-green: the slot it gates)", () => {
      const target = targetOf(kind);
      const withCheck = {
        ...target,
        tenant: { ...target.tenant, health: { ...target.tenant.health, containerHealth: true } },
      };
      const health = dryRunCommands(withCheck, { version: 'v1' }).filter((c) => c.step === 'health');
      const expected = {
        'in-place': 'compose.project=acme)',
        commands: undefined,
        'blue-green': 'compose.project=acme-blue)',
      }[kind];
      if (!expected) return expect(health).toHaveLength(1); // the probe only: the commands own their stack
      expect(health).toHaveLength(2);
      expect(health[1]!.command).toContain(expected);
    });

    test('status: its inspection, and what it reads from it', () => {
      const s = strategyOf(kind);
      expect(s.inspect().text).not.toBe('');
      expect(s.status(parseInspection(kinds[kind].inspection))).toMatchObject(kinds[kind].status);
    });

    test('release keeps per-image versions: a second image at its own version', () => {
      const next = strategyOf(kind).release({ version: 'v1', versions: { WORKER_IMAGE: 'w7' } });
      expect(next.version).toBe('v1');
      if (kind === 'commands') return expect(next.refs).toEqual({ version: 'v1' }); // one version: the first image's
      expect(next.refs).toEqual({ APP_IMAGE: 'ghcr.io/acme/app:v1', WORKER_IMAGE: 'ghcr.io/acme/worker:w7' });
    });

    test('release keeps per-image versions: the first image at its own, the release is that version', () => {
      const next = strategyOf(kind).release({ version: 'v1', versions: { APP_IMAGE: 'slow1' } });
      expect(next.version).toBe('slow1');
      if (kind === 'commands') return expect(next.refs).toEqual({ version: 'slow1' });
      expect(next.refs).toEqual({
        APP_IMAGE: 'ghcr.io/acme/app:slow1',
        WORKER_IMAGE: 'ghcr.io/acme/worker:v1',
      });
    });
  });
});

describe("status of a blue-green target: the live slot's containers, and what each slot holds", () => {
  const statusOf = (inspection: string) => {
    const target = targetOf('blue-green');
    return targetStatus(target, 1, parseInspection(inspection), strategyFor(target), defaultStepLimits());
  };

  test("green live: its containers are the target's, and the idle slot holds v2", () => {
    const s = statusOf(kinds['blue-green'].inspection);
    expect(s).toMatchObject({ state: 'running', version: 'v3', health: 'healthy' });
    expect(slotsText(s)).toBe('live slot green: v3 (running); idle slot blue holds v2 (missing)');
  });

  test('before the first blue-green deploy: the in-place stack serves, and the slots hold nothing', () => {
    const legacy = `@@env\nAPP_IMAGE=ghcr.io/acme/app:v1\n@@containers\n/acme-app-1|running|sha256:${'b'.repeat(64)}||none\n@@active`;
    const s = statusOf(`${legacy}\n@@slotenv blue\n@@slotenv green\n@@history\n@@end`);
    expect(s).toMatchObject({ state: 'running', version: 'v1', slots: { blue: { state: 'missing' } } });
    expect(slotsText(s)).toBe(
      'no live slot (the in-place stack serves); blue holds nothing (missing), green nothing (missing)',
    );
  });
});

describe('the registry spells the user-commands strategy two ways', () => {
  const tenantWith = (extra: Record<string, unknown>) => {
    const r = baseRegistry();
    Object.assign(r.servers[0].tenants[0], extra);
    return r;
  };
  const messages = (r: unknown) =>
    problemsOf(JSON.stringify(r)).map((p) => `${formatPath(p.path)}: ${p.message} (${p.hint})`);

  test('top-level "commands" and "strategy": {"kind": "commands"} resolve alike', () => {
    const strategy = (r: unknown) =>
      parseRegistry(JSON.stringify(r), 'reg.json').servers[0]!.tenants[0]!.strategy;
    const expected = { kind: 'commands', ...commands };
    expect(strategy(tenantWith({ commands }))).toEqual(expected);
    expect(strategy(tenantWith({ strategy: { kind: 'commands', ...commands } }))).toEqual(expected);
  });

  test('commands with another strategy, or set twice: refused, naming the field and the fix', () => {
    const blueGreen = kinds['blue-green'].entry;
    expect(messages(tenantWith({ commands, ...blueGreen }))).toEqual([
      'servers[0].tenants[0].strategy: a tenant deployed by its own commands cannot use the blue-green strategy (remove one of "commands" and "strategy")',
    ]);
    expect(messages(tenantWith({ commands, strategy: { kind: 'commands', ...commands } }))).toEqual([
      'servers[0].tenants[0].strategy: the commands are set twice, in "commands" and in "strategy" (remove one of "commands" and "strategy")',
    ]);
    expect(messages(tenantWith({ strategy: { kind: 'commands', deploy: 'x' } }))[0]).toMatch(
      /^servers\[0\]\.tenants\[0\]\.strategy\.current: /,
    );
  });
});
