/** The release history (src/deploy/history.ts): parsing what a server sends back, and the choices made from it. */
import { History, historyLine, parseHistory, repositoryOf } from '../src/deploy/history';
import { serverPrunable } from '../src/fleet/prune';

const h = (from: string | null, to: string, extra: object = {}) =>
  JSON.stringify({ outcome: 'deployed', from, to, ...extra });

describe('release history', () => {
  const history = [
    h('v1', 'v2'),
    h('v2', 'v3'),
    JSON.stringify({ outcome: 'rolled-back', from: 'v3', to: 'bad' }),
    h('v3', 'v2', { rollback: true }),
  ];
  test('rolling back twice goes further back, never forward again', () => {
    expect(History.parse(history).previous('v2')).toBe('v1');
    expect(History.parse(history.slice(0, 2)).previous('v3')).toBe('v2');
    expect(History.parse([]).previous('v1')).toBeUndefined();
  });
  test('known versions, newest first, without failed ones', () => {
    expect(History.parse(history).releases()).toEqual(['v2', 'v3', 'v1']);
  });

  test('rollback ×3 from v3: v2, then v1, then a clear "no earlier release"', () => {
    const lines = [h('v0', 'v1'), h('v1', 'v2'), h('v2', 'v3')];
    const rollback = (running: string) => {
      const choice = History.parse(lines).rollbackTarget('s/t', running, undefined);
      if ('version' in choice) lines.push(h(running, choice.version, { rollback: true }));
      return choice;
    };
    expect(rollback('v3')).toEqual({ version: 'v2' });
    expect(rollback('v2')).toEqual({ version: 'v1' });
    expect(rollback('v1')).toEqual({ version: 'v0' });
    expect(rollback('v0')).toEqual({
      error: expect.stringContaining('s/t has no earlier release in its history to roll back to (running v0'),
    });
  });

  test('a release that never ran (a cut-off deploy left it in .env) is passed over', () => {
    const lines = [
      h('v0', 'v1'),
      JSON.stringify({ outcome: 'failed', from: 'v1', to: 'bad' }),
      h('bad', 'v2'),
      h('v2', 'v3'),
    ];
    expect(History.parse(lines).previous('v3')).toBe('v2');
    expect(History.parse(lines).previous('v2')).toBe('v1');
    // a failed attempt from the running release itself leads back to it: look at older deploys instead
    const again = [...lines, JSON.stringify({ outcome: 'failed', from: 'v2', to: 'bad2' }), h('bad2', 'v2')];
    expect(History.parse(again).previous('v2')).toBe('v1');
  });

  test('--to must name a version the target ran', () => {
    const hist = History.parse([h(null, 'v1'), h('v1', 'v2')]);
    expect(hist.rollbackTarget('s/t', 'v2', 'v1')).toEqual({ version: 'v1' });
    expect(hist.rollbackTarget('s/t', 'v2', 'v9')).toEqual({
      error: 'version v9 is not in the release history of s/t; known versions: v2, v1',
    });
  });
});

describe('a release whose images run at different versions', () => {
  const d = (c: string) => `sha256:${c.repeat(64)}`;
  const refs = (app: string, worker: string) => ({
    APP_IMAGE: app.startsWith('sha256:') ? `r/app@${app}` : `r/app:${app}`,
    WORKER_IMAGE: `r/worker:${worker}`,
  });
  // v1/w1 → v1/w2 (only the worker changed: the same first-image version) → v2/w3
  const lines = [
    h(null, 'v1', { fromRefs: {}, toRefs: refs('v1', 'w1') }),
    h('v1', 'v1', { fromRefs: refs('v1', 'w1'), toRefs: refs('v1', 'w2') }),
    h('v1', d('a'), { fromRefs: refs('v1', 'w2'), toRefs: refs(d('a'), 'w3') }),
  ];
  const hist = History.parse(lines);

  test('the previous release comes back with each image at the version it ran', () => {
    expect(hist.rollbackTarget('s/t', { version: d('a'), refs: refs(d('a'), 'w3') }, undefined)).toEqual({
      version: 'v1',
      versions: { APP_IMAGE: 'v1', WORKER_IMAGE: 'w2' },
    });
    // the release before v1/w2 shares its first image's version: told apart by the references
    expect(hist.rollbackTarget('s/t', { version: 'v1', refs: refs('v1', 'w2') }, undefined)).toEqual({
      version: 'v1',
      versions: { APP_IMAGE: 'v1', WORKER_IMAGE: 'w1' },
    });
  });

  test('--to V: the references of the newest deploy of V', () => {
    expect(hist.rollbackTarget('s/t', { version: d('a'), refs: refs(d('a'), 'w3') }, 'v1')).toEqual({
      version: 'v1',
      versions: { APP_IMAGE: 'v1', WORKER_IMAGE: 'w2' },
    });
    expect(hist.rollbackTarget('s/t', 'v1', d('a'))).toEqual({
      version: d('a'),
      versions: { APP_IMAGE: d('a'), WORKER_IMAGE: 'w3' },
    });
  });

  test('references the history never saw (the images changed in the registry): matched by version', () => {
    expect(
      hist.previous({ version: d('a'), refs: { APP_IMAGE: `r/app@${d('a')}`, NEW_IMAGE: 'n/x:1' } }),
    ).toBe('v1');
  });
});

describe('what a server sends back is checked like user input', () => {
  test('a line whose version, refs or images fail their patterns is dropped', () => {
    const hostile = [
      h('v1', 'v2\nAPP_IMAGE=evil'),
      h('v1', '$(touch /tmp/x)'),
      h('v1', 'v2', { toRefs: { APP_IMAGE: 'r/app:v2; rm -rf /' } }),
      h('v1', 'v2', { toRefs: { 'BAD NAME': 'r/app:v2' } }),
      h('v1', 'v2', { toImages: ['sha256:zz'] }),
      h('v1', 'v2', { actor: 'a\nb' }),
      JSON.stringify({ outcome: 'pwned', to: 'v2' }),
      'not json',
      '[1,2]',
    ];
    expect(parseHistory(hostile)).toEqual([]);
    expect(History.parse(hostile).releases()).toEqual([]);
  });

  test('a valid line is kept with its values as they were written', () => {
    const line = historyLine({
      time: new Date(0),
      actor: 'op',
      run: 'r#1',
      target: 's/t',
      outcome: 'deployed',
      previous: { refs: { APP_IMAGE: 'r/app:v1' }, version: 'v1', imageIds: [], digests: [] },
      next: {
        refs: { APP_IMAGE: 'r/app:v2' },
        version: 'v2',
        imageIds: [`sha256:${'a'.repeat(64)}`],
        digests: [],
      },
      rollback: false,
    });
    expect(parseHistory([line])).toEqual([JSON.parse(line)]);
  });
});

describe('prune list', () => {
  const release = (v: string) => ({
    refs: { APP_IMAGE: `r/app:${v}` },
    version: v,
    imageIds: [],
    digests: [],
  });
  const entry = (from: string, to: string) =>
    h(from, to, { fromRefs: { APP_IMAGE: `r/app:${from}` }, toRefs: { APP_IMAGE: `r/app:${to}` } });
  test('keeps the last releases, the running and the new one; removes only what the tool deployed', () => {
    const hist = History.parse([entry('v1', 'v2'), entry('v2', 'v3'), entry('v3', 'v4')]);
    expect(hist.prunable(release('v5'), release('v4'), 3, ['r/app'])).toEqual(['r/app:v2', 'r/app:v1']);
    expect(hist.prunable(release('v5'), release('v4'), 10, ['r/app'])).toEqual([]);
  });

  test('history lines naming other repositories (server text) never put another image on the list', () => {
    const hostile = (refs: Record<string, string>) => h('v0', 'v0', { fromRefs: refs, toRefs: refs });
    const hist = History.parse([
      hostile({ APP_IMAGE: 'postgres:16', DB: 'docker.io/library/redis:7' }),
      hostile({ APP_IMAGE: 'r/app-other:v1', X: 'r/app/sub:v1', Y: 'registry:5000/r/app:v1' }),
      entry('v1', 'v2'),
      entry('v2', 'v3'),
      hostile({ APP_IMAGE: 'r/app@sha256:' + 'a'.repeat(64) }),
    ]);
    expect(hist.prunable(release('v9'), release('v3'), 1, ['r/app']).sort()).toEqual([
      'r/app:v1',
      'r/app:v2',
      `r/app@sha256:${'a'.repeat(64)}`,
    ]);
    const tenant = { images: [{ variable: 'APP_IMAGE', repository: 'r/app' }], keepReleases: 1 } as never;
    const lines = [hostile({ APP_IMAGE: 'postgres:16' }), entry('v1', 'v2'), entry('v2', 'v3')];
    expect(serverPrunable([{ tenant, env: { APP_IMAGE: 'r/app:v3' }, history: lines }])).toEqual([
      'r/app:v1',
    ]);
    expect(repositoryOf('localhost:5000/r/app:v1')).toBe('localhost:5000/r/app');
    expect(repositoryOf('localhost:5000/r/app')).toBe('localhost:5000/r/app');
  });
});
