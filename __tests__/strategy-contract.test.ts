/**
 * What every release strategy (in-place Compose, the user's commands, blue-green) must do with the
 * release a deploy asks for: each image named in `versions` at its own version, the others at `version`,
 * the release's version the first image's. A strategy that drops `versions` fails here (blue-green did:
 * `deploy --versions` and per-image rollbacks deployed the one version to blue-green tenants).
 */
import { parseRegistry, targetsOf } from '../src/registry';
import { strategyFor } from '../src/deploy/strategies';
import { baseRegistry } from './helpers/registry';

const images = [
  { variable: 'APP_IMAGE', repository: 'ghcr.io/acme/app' },
  { variable: 'WORKER_IMAGE', repository: 'ghcr.io/acme/worker' },
];

const kinds: Record<string, Record<string, unknown>> = {
  compose: {},
  commands: { commands: { deploy: 'deploy "$FLEET_VERSION"', current: 'cat VERSION' } },
  'blue-green': {
    compose: { project: 'acme' },
    strategy: {
      kind: 'blue-green',
      slots: { blue: { port: 8081 }, green: { port: 8082 } },
      proxy: { kind: 'caddy' },
    },
  },
};

function strategyOf(kind: string) {
  const r = baseRegistry();
  Object.assign(r.servers[0].tenants[0], { images }, kinds[kind]);
  const [target] = targetsOf(parseRegistry(JSON.stringify(r), 'reg.json'));
  return strategyFor(target!);
}

describe.each(Object.keys(kinds))('the %s strategy keeps per-image versions', (kind) => {
  test('a second image at its own version', () => {
    const next = strategyOf(kind).release({ version: 'v1', versions: { WORKER_IMAGE: 'w7' } });
    expect(next.version).toBe('v1');
    if (kind === 'commands') return expect(next.refs).toEqual({ version: 'v1' }); // one version: the first image's
    expect(next.refs).toEqual({ APP_IMAGE: 'ghcr.io/acme/app:v1', WORKER_IMAGE: 'ghcr.io/acme/worker:w7' });
  });

  test('the first image at its own version: the release is that version', () => {
    const next = strategyOf(kind).release({ version: 'v1', versions: { APP_IMAGE: 'slow1' } });
    expect(next.version).toBe('slow1');
    if (kind === 'commands') return expect(next.refs).toEqual({ version: 'slow1' });
    expect(next.refs).toEqual({
      APP_IMAGE: 'ghcr.io/acme/app:slow1',
      WORKER_IMAGE: 'ghcr.io/acme/worker:v1',
    });
  });
});
