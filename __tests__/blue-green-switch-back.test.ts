/**
 * How much a blue-green switch back undoes, by how far the deploy got (`Reached` in
 * src/deploy/strategies/blue-green.ts): a failure before the proxy moved stops the idle slot only; once
 * the proxy moved, it is pointed back at the old slot; once the new slot was recorded as live, the old
 * one is recorded again. Whole deploys through `deployFleet` over the scripted transport (a double) with
 * a Caddy admin API double that holds where the proxy sends the tenant; and the switch back of a
 * cancelled job's post step, which reads how far the deploy got from the slots. The real proxies and
 * engine are in __tests__/e2e/blue-green.test.ts.
 */
import { deployFleet, type FleetOptions } from '../src/deploy/fleet';
import { TargetShell } from '../src/deploy/shell';
import { strategyFor } from '../src/deploy/strategies';
import { planDeployment } from '../src/plan/plan';
import { parseRegistry } from '../src/registry';
import { syntheticRegistry } from '../src/sandbox/synthetic';
import { FakeClock, ok, prepared, ScriptedConnector } from './helpers/fakes';

const REPO = 'registry.example.com/acme/app';
const [BLUE, GREEN] = [8081, 8082];

function registry() {
  const file: any = syntheticRegistry({ servers: 1, tenantsPerServer: 1 });
  file.defaults.tenant.health = {
    ...file.defaults.tenant.health,
    interval: '1s',
    deadline: '5s',
    successes: 2,
  };
  file.defaults.tenant.hooks = { postDeploy: ['./smoke-test'] };
  file.defaults.tenant.strategy = {
    kind: 'blue-green',
    slots: { blue: { port: BLUE }, green: { port: GREEN } },
    proxy: { kind: 'caddy' },
  };
  return parseRegistry(JSON.stringify(file), 'synthetic.json');
}

const options: FleetOptions = {
  version: 'v2',
  actor: 'test',
  runId: 'run-1',
  lockWaitMs: 5000,
  commandTimeoutMs: 1000,
  pullTimeoutMs: 1000,
  pullAttempts: 2,
  recoveryWindowMs: 10_000,
  leaseRenewMs: 0,
  concurrency: 1,
  perServer: 1,
  maxFailurePercent: 100,
};

/** Blue live with v1, green empty; `fails` says which check fails: the gate on green, the gate through the proxy, or the post-deploy hook. */
async function deployFailing(fails: 'green' | 'proxy' | 'hook') {
  let proxy = BLUE;
  const upstreams = () => ok(JSON.stringify([{ dial: `127.0.0.1:${proxy}` }]));
  const slots = [
    '@@active',
    'blue',
    '@@env blue',
    `APP_IMAGE=${REPO}:v1`,
    '@@running blue',
    'a'.repeat(64),
    '@@env green',
    '@@running green',
    '@@running legacy',
    '@@proxy',
    JSON.stringify([{ dial: `127.0.0.1:${BLUE}` }]),
  ].join('\n');
  const c = new ScriptedConnector(() => [
    { match: 'prepare', reply: prepared(`${REPO}:v1`, []) },
    { match: /@@active/, reply: ok(slots) },
    { match: 'pull', reply: ok(`sha256:${'b'.repeat(64)}|["${REPO}@sha256:${'d'.repeat(64)}"]\n`) },
    {
      match: /-X PATCH/,
      reply: (cmd) => {
        proxy = Number(/127\.0\.0\.1:(\d+)/.exec(cmd)![1]);
        return upstreams();
      },
    },
    { match: /\/upstreams/, reply: () => upstreams() },
    { match: /smoke-test/, reply: fails === 'hook' ? { code: 3, stdout: '', stderr: 'smoke' } : ok() },
    { match: 'finish', reply: ok('@@unlock released\n') },
    { match: /[^]*/, reply: ok() }, // start, record, stop, drain: done
  ]);
  c.http = (_, port) => {
    const version = port === GREEN || (port !== BLUE && proxy === GREEN) ? 'v2' : 'v1';
    const bad =
      (fails === 'green' && port === GREEN) || (fails === 'proxy' && port !== GREEN && proxy === GREEN);
    return bad ? { status: 500, body: '{}' } : { status: 200, body: JSON.stringify({ version }) };
  };
  const report = await deployFleet(planDeployment(registry(), {}), options, {
    connector: c,
    clock: new FakeClock(),
    urlGet: async () => ({ status: 200, body: '' }),
  });
  const after = c.log.slice(c.log.findIndex((l) => l.verb === 'startSlot'));
  const did = after.flatMap((l) => {
    if (/-X PATCH/.test(l.command)) return [`proxy → ${/127\.0\.0\.1:(\d+)/.exec(l.command)![1]}`];
    if (l.verb === 'recordLive') return [`record ${/printf '%s\\n' (\w+)/.exec(l.command)?.[1] ?? 'none'}`];
    if (l.verb === 'stopProject') return [`stop ${/project=([\w-]+)/.exec(l.command)![1]}`];
    return [];
  });
  return { target: report.targets[0]!, did, proxy };
}

test('the gate on the idle slot fails: only that slot is stopped; the proxy and the record are not touched', async () => {
  const { target, did, proxy } = await deployFailing('green');
  expect(target.outcome).toBe('rolled-back');
  expect(did).toEqual(['stop app-green']);
  expect(proxy).toBe(BLUE);
});

test('the check through the proxy fails: the proxy goes back to blue, nothing was recorded, green stops', async () => {
  const { target, did, proxy } = await deployFailing('proxy');
  expect(target.outcome).toBe('rolled-back');
  expect(did).toEqual([`proxy → ${GREEN}`, `proxy → ${BLUE}`, 'stop app-green']);
  expect(proxy).toBe(BLUE);
});

test('a post-deploy hook fails after the promote: the proxy goes back, blue is recorded live again, green stops', async () => {
  const { target, did, proxy } = await deployFailing('hook');
  expect(target.outcome).toBe('rolled-back');
  expect(did).toEqual([
    `proxy → ${GREEN}`,
    'record green',
    `proxy → ${BLUE}`,
    'record blue',
    'stop app-green',
  ]);
  expect(proxy).toBe(BLUE);
});

test("a switch back by a strategy that did not run the deploy (a cancelled job's post step) finds the slots under the project the server derived", async () => {
  // The registry sets no compose.project: the server derived "shop" (the compose file's `name:`), not the
  // directory's name; the release to return to carries it, as the lock's switch note recorded it.
  const target = planDeployment(registry(), {}).plan[0]!.targets[0]!;
  const slots = [
    '@@active',
    'blue',
    '@@env blue',
    `APP_IMAGE=${REPO}:v1`,
    '@@running blue',
    'a'.repeat(64),
    '@@env green',
    `APP_IMAGE=${REPO}:v2`,
    '@@running green',
    'b'.repeat(64),
    '@@running legacy',
    '@@proxy',
    JSON.stringify([{ dial: `127.0.0.1:${BLUE}` }]),
  ].join('\n');
  const c = new ScriptedConnector(() => [
    { match: /@@active/, reply: ok(slots) },
    { match: /[^]*/, reply: ok() },
  ]);
  const transport = await c.connect(target.server);
  const shell = new TargetShell({ transport: async () => transport }, 1000);
  const release = (v: string, project?: string) => ({
    refs: { APP_IMAGE: `${REPO}:${v}` },
    version: v,
    imageIds: [],
    digests: [],
    ...(project ? { project } : {}),
  });
  const ctx = { shell, clock: new FakeClock(), pullTimeoutMs: 1000, pullAttempts: 1 };
  await strategyFor(target).switchBack(ctx, release('v1', 'shop'), release('v2'));
  expect(c.log.map((l) => l.verb)).toEqual(['readSlots', 'stopProject']);
  expect(c.log[0]!.command).toContain('label=com.docker.compose.project=shop-blue');
  expect(c.log[1]!.command).toContain('label=com.docker.compose.project=shop-green');
});

/** The post step's switch back with the proxy on green (promoted); `answers`: what blue says through it. */
async function switchBackAfterPromote(answers: 'v1' | 'an error') {
  const target = planDeployment(registry(), {}).plan[0]!.targets[0]!;
  let proxy = GREEN;
  const upstreams = () => ok(JSON.stringify([{ dial: `127.0.0.1:${proxy}` }]));
  const slots = [
    '@@active',
    'green',
    '@@env blue',
    `APP_IMAGE=${REPO}:v1`,
    '@@running blue',
    'a'.repeat(64),
    '@@env green',
    `APP_IMAGE=${REPO}:v2`,
    '@@running green',
    'b'.repeat(64),
    '@@running legacy',
    '@@proxy',
    JSON.stringify([{ dial: `127.0.0.1:${GREEN}` }]),
  ].join('\n');
  const c = new ScriptedConnector(() => [
    { match: /@@active/, reply: ok(slots) },
    {
      match: /-X PATCH/,
      reply: (cmd) => {
        proxy = Number(/127\.0\.0\.1:(\d+)/.exec(cmd)![1]);
        return upstreams();
      },
    },
    { match: /\/upstreams/, reply: () => upstreams() },
    { match: /[^]*/, reply: ok() },
  ]);
  // through the proxy: the release of the slot it sends the tenant to
  c.http = () =>
    proxy === BLUE && answers === 'an error'
      ? { status: 502, body: 'bad gateway' }
      : { status: 200, body: JSON.stringify({ version: proxy === BLUE ? 'v1' : 'v2' }) };
  const transport = await c.connect(target.server);
  const shell = new TargetShell({ transport: async () => transport }, 1000);
  const release = (v: string) => ({
    refs: { APP_IMAGE: `${REPO}:${v}` },
    version: v,
    imageIds: [],
    digests: [],
  });
  const ctx = { shell, clock: new FakeClock(), pullTimeoutMs: 1000, pullAttempts: 1 };
  const done = strategyFor(target).switchBack(ctx, release('v1'), release('v2'));
  return { done, c, proxy: () => proxy };
}

test("the post step's switch back after the promote: the proxy back to blue, blue recorded live again, green stopped", async () => {
  const { done, c, proxy } = await switchBackAfterPromote('v1');
  await done;
  expect(c.log.map((l) => l.verb)).toEqual([
    'readSlots',
    'proxyRead',
    'proxySwitch',
    'recordLive',
    'connectionsTo', // green drained (the proxy's old workers may still send to it) before it stops
    'stopProject',
  ]);
  expect(proxy()).toBe(BLUE);
  expect(c.log[3]!.command).toContain(`APP_IMAGE=${REPO}:v1`);
  expect(c.log[3]!.command).toMatch(/printf '%s\\n' '?blue'? > new/);
  expect(c.log[4]!.command).toContain(`sport = :${GREEN}`);
  expect(c.log[5]!.command).toContain('label=com.docker.compose.project=t00000-green');
});

test('a switch back whose proxy does not answer with the old release: it fails, green left running', async () => {
  const { done, c, proxy } = await switchBackAfterPromote('an error');
  await expect(done).rejects.toThrow(
    'through the proxy on port 18000, after it was pointed back to slot blue: not healthy within 5 s',
  );
  expect(proxy()).toBe(BLUE);
  expect(c.log.map((l) => l.verb)).toEqual(['readSlots', 'proxyRead', 'proxySwitch']);
});
