/**
 * Blue-green without a server: the registry field and its checks, the proxies' scripts and what they
 * read back from a server (untrusted), the slots' scripts and their parsing, and --dry-run's commands.
 */
import { execFileSync } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPath } from '../src/errors';
import { parseRegistry, targetsOf } from '../src/registry';
import { dryRunCommands } from '../src/deploy/dry-run';
import { proxyDriver } from '../src/proxy';
import { parseUpstreams } from '../src/proxy/caddy';
import { parseServerLine } from '../src/proxy/nginx';
import * as B from '../src/remote/blue-green';
import { baseRegistry, problemsOf, tenant } from './helpers/registry';

const strategy = (extra: Record<string, unknown> = {}) => ({
  kind: 'blue-green',
  slots: { blue: { port: 8081 }, green: { port: 8082 } },
  proxy: { kind: 'caddy' },
  ...extra,
});

function withStrategy(s: Record<string, unknown>, health: Record<string, unknown> = { port: 8080 }) {
  const r = baseRegistry();
  Object.assign(r.servers[0].tenants[0], { strategy: s, health, compose: { project: 'acme' } });
  return r;
}

const parse = (r: unknown) => parseRegistry(JSON.stringify(r), 'reg.json');
const messages = (r: unknown) =>
  problemsOf(JSON.stringify(r)).map((p) => `${formatPath(p.path)}: ${p.message}`);

describe('registry', () => {
  test('blue-green with its defaults; no strategy is in place', () => {
    const t = parse(withStrategy(strategy())).servers[0]!.tenants[0]!;
    expect(t.strategy).toEqual({
      kind: 'blue-green',
      slots: { blue: { port: 8081 }, green: { port: 8082 } },
      portVariable: 'APP_PORT',
      proxy: { kind: 'caddy', adminPort: 2019, route: 'fleet-acme' },
      drainTimeoutMs: 30_000,
    });
    expect(parse(baseRegistry()).servers[0]!.tenants[0]!.strategy).toEqual({ kind: 'in-place' });
    expect(parse(withStrategy({ kind: 'in-place' })).servers[0]!.tenants[0]!.strategy).toEqual({
      kind: 'in-place',
    });
  });

  test('nginx and command proxies, placeholders filled', () => {
    const nginx = parse(
      withStrategy(strategy({ proxy: { kind: 'nginx', upstreamFile: '/etc/nginx/fleet/{tenant}.conf' } })),
    );
    expect(nginx.servers[0]!.tenants[0]!.strategy).toHaveProperty('proxy', {
      kind: 'nginx',
      upstreamFile: '/etc/nginx/fleet/acme.conf',
      check: 'nginx -t -q',
      reload: 'nginx -s reload',
    });
    const cmd = parse(
      withStrategy(
        strategy({
          proxy: { kind: 'command', switch: 'proxyctl set "$FLEET_UPSTREAM"', current: 'proxyctl get' },
        }),
      ),
    );
    expect(cmd.servers[0]!.tenants[0]!.strategy).toHaveProperty('proxy.kind', 'command');
  });

  test('bad values name the field, the value and the fix', () => {
    expect(
      messages(withStrategy(strategy({ slots: { blue: { port: 8081 }, green: { port: 8081 } } }))),
    ).toEqual(['servers[0].tenants[0].strategy.slots.green.port: both slots use port 8081']);
    expect(
      messages(withStrategy(strategy({ slots: { blue: { port: 8080 }, green: { port: 8082 } } }))),
    ).toEqual([
      "servers[0].tenants[0].strategy.slots.blue.port: slot blue uses port 8080, the health port (the proxy's)",
    ]);
    expect(messages(withStrategy(strategy(), { url: 'https://acme.example.com/health' }))).toEqual([
      'servers[0].tenants[0].strategy: the blue-green strategy verifies through the proxy on health.port, but health has a url',
    ]);
    const r = withStrategy(strategy());
    r.servers[0].tenants.push(tenant('beta', 8082));
    expect(messages(r)).toEqual([
      'servers[0].tenants[0].strategy.slots.green.port: slot port 8082 is already the health port of beta on server eu-1',
    ]);
    expect(messages(withStrategy(strategy({ proxy: { kind: 'traefik' } })))[0]).toMatch(
      /^servers\[0\]\.tenants\[0\]\.strategy\.proxy/,
    );
    expect(messages(withStrategy(strategy({ proxy: { kind: 'caddy', route: 'a b' } })))[0]).toMatch(
      /route.*not a valid Caddy @id/,
    );
    expect(
      messages(withStrategy(strategy({ proxy: { kind: 'nginx', upstreamFile: '/etc/$(id)' } })))[0],
    ).toMatch(/upstreamFile.*not a valid path/);
  });
});

describe('proxies', () => {
  const t = parse(withStrategy(strategy())).servers[0]!.tenants[0]!;

  test("caddy: one PATCH of the route's upstreams on the server, read back with GET", () => {
    const caddy = proxyDriver(t, { kind: 'caddy', adminPort: 2019, route: 'fleet-acme' });
    expect(caddy.switchTo(8082).text).toBe(
      `curl -sS --fail-with-body --max-time 10 -X PATCH -H 'Content-Type: application/json' --data-binary '[{"dial":"127.0.0.1:8082"}]' http://127.0.0.1:2019/id/fleet-acme/upstreams >/dev/null && curl -sS --fail-with-body --max-time 10 http://127.0.0.1:2019/id/fleet-acme/upstreams`,
    );
    expect(caddy.read().verb).toBe('proxyRead');
  });

  test("caddy's answer is checked: exactly one loopback upstream", () => {
    expect(parseUpstreams('[{"dial":"127.0.0.1:8081"}]')).toEqual({ port: 8081 });
    expect(parseUpstreams('[{"dial":"localhost:8081"}]')).toEqual({ port: 8081 });
    expect(parseUpstreams('[{"dial":"10.0.0.9:8081"}]')).toEqual({
      error: 'the route\'s upstream "10.0.0.9:8081" is not 127.0.0.1:PORT',
    });
    expect(parseUpstreams('[{"dial":"127.0.0.1:1"},{"dial":"127.0.0.1:2"}]')).toEqual({
      error: 'the route has 2 upstreams; expected one',
    });
    expect(parseUpstreams('[{"dial":"127.0.0.1:99999"}]')).toHaveProperty('error');
    expect(parseUpstreams('{"error":"unknown object ID"}')).toEqual({
      error: 'the route has no upstreams; expected one',
    });
    expect(parseUpstreams('<html>')).toEqual({ error: 'Caddy answered "<html>", not JSON' });
  });

  test('nginx: the file renamed over, checked, reloaded, put back when either fails', () => {
    const nginx = proxyDriver(t, {
      kind: 'nginx',
      upstreamFile: '/etc/nginx/fleet/acme.conf',
      check: 'nginx -t -q',
      reload: 'nginx -s reload',
    });
    const text = nginx.switchTo(8082).text;
    expect(text).toContain(`f=/etc/nginx/fleet/acme.conf; old="$(cat -- "$f")" || exit 3;`);
    expect(text).toContain(`printf '%s\\n' 'server 127.0.0.1:8082;' > "$tmp"`);
    expect(text).toContain(`if ! sh -c 'nginx -t -q'; then`);
    expect(text).toContain(`if ! sh -c 'nginx -s reload'; then`);
    expect(text.match(/printf '%s\\n' "\$old"/g)).toHaveLength(2);
    expect(parseServerLine('# fleet\nserver 127.0.0.1:8081;\n')).toEqual({ port: 8081 });
    expect(parseServerLine('server 127.0.0.1:8081 max_fails=0;')).toEqual({ port: 8081 });
    expect(parseServerLine('server 127.0.0.1:8081;\nserver 127.0.0.1:8082;')).toHaveProperty('error');
    expect(parseServerLine('server evil.example:80;')).toHaveProperty('error');
  });

  test('flag-file: a real shell renames one flag into the other; neither: the in-place port from .env', () => {
    const flags = proxyDriver(t, { kind: 'flag-file' });
    const dir = mkdtempSync(join(tmpdir(), 'fd-flag-'));
    try {
      const run = (script: { text: string }) =>
        execFileSync('sh', ['-c', script.text], { cwd: dir, encoding: 'utf8' });
      const live = () => readdirSync(join(dir, '.fleet', 'slots')).sort();
      writeFileSync(join(dir, '.env'), 'APP_IMAGE=ghcr.io/acme/app:v1\nAPP_PORT=8080\n');
      expect(flags.parse(run(flags.read()))).toEqual({ port: 8080 });
      expect(flags.parse(run(flags.switchTo(8081)))).toEqual({ port: 8081 });
      expect(live()).toEqual(['live-blue']);
      expect(flags.parse(run(flags.switchTo(8081)))).toEqual({ port: 8081 }); // again: unchanged
      expect(flags.parse(run(flags.switchTo(8082)))).toEqual({ port: 8082 });
      expect(live()).toEqual(['live-green']);
      expect(flags.parse(run(flags.switchTo(8080)))).toEqual({ port: 8080 }); // back to the in-place stack
      expect(live()).toEqual([]);
      writeFileSync(join(dir, '.env'), 'APP_PORT=$(reboot)\n');
      expect(flags.parse(run(flags.read()))).toEqual({
        error: 'no flag file is set and .env\'s APP_PORT is "$(reboot)", not a port',
      });
      rmSync(join(dir, '.env'));
      expect(flags.parse(run(flags.read()))).toEqual({ port: 8081 }); // a new tenant: slot blue's
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('flag-file: a flag planted as a link to a directory is replaced, nothing is put into the directory', () => {
    const flags = proxyDriver(t, { kind: 'flag-file' });
    const dir = mkdtempSync(join(tmpdir(), 'fd-flag-'));
    try {
      const run = (script: { text: string }) =>
        execFileSync('sh', ['-c', script.text], { cwd: dir, encoding: 'utf8' });
      const [elsewhere, slots] = [join(dir, 'elsewhere'), join(dir, '.fleet', 'slots')];
      mkdirSync(slots, { recursive: true });
      mkdirSync(elsewhere);
      writeFileSync(join(elsewhere, 'precious'), 'keep me\n');
      // No flag yet, and the name a flag could be made under is a link to someone's file.
      symlinkSync(join(elsewhere, 'precious'), join(slots, 'live-green.tmp'));
      expect(flags.parse(run(flags.switchTo(8082)))).toEqual({ port: 8082 });
      // Green is live; the other flag's name is a link to a directory.
      symlinkSync(elsewhere, join(slots, 'live-blue'));
      expect(flags.parse(run(flags.switchTo(8081)))).toEqual({ port: 8081 });
      expect(lstatSync(join(slots, 'live-blue')).isSymbolicLink()).toBe(false);
      expect(readdirSync(elsewhere)).toEqual(['precious']);
      expect(readFileSync(join(elsewhere, 'precious'), 'utf8')).toBe('keep me\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('command: the switch gets FLEET_UPSTREAM, then the current command reads back', () => {
    const cmd = proxyDriver(t, {
      kind: 'command',
      switch: 'proxyctl set "$FLEET_UPSTREAM"',
      current: 'proxyctl get',
    });
    expect(cmd.switchTo(8082).text).toBe(
      `FLEET_UPSTREAM_PORT=8082 FLEET_UPSTREAM=127.0.0.1:8082 FLEET_TARGET=acme sh -c 'proxyctl set "$FLEET_UPSTREAM"' >&2 && sh -c 'proxyctl get'`,
    );
    expect(cmd.parse('switching…\n127.0.0.1:8082\n')).toEqual({ port: 8082 });
    expect(cmd.parse('8082; rm -rf /')).toHaveProperty('error');
  });
});

describe('slots', () => {
  const t = parse(withStrategy(strategy())).servers[0]!.tenants[0]!;
  const ref = 'ghcr.io/acme/app:v2';
  const id = (c: string) => `sha256:${c.repeat(64)}`;

  test('what readSlots prints is checked line by line; the proxy part is kept whole', () => {
    const out = [
      '@@active',
      'green',
      '@@env blue',
      `APP_IMAGE=${ref}`,
      '@@running blue',
      id('a'),
      '@@env green',
      'APP_IMAGE=$(reboot)',
      '@@running green',
      'not-an-id',
      '@@running legacy',
      id('b').slice(7),
      '@@proxy',
      '[{"dial":"127.0.0.1:8081"}]',
      '@@active',
    ].join('\n');
    expect(B.parseSlots(out)).toEqual({
      active: 'green',
      blue: { refs: { APP_IMAGE: ref }, running: [id('a')] },
      green: { refs: {}, running: [] },
      legacyRunning: [id('b')],
      proxy: '[{"dial":"127.0.0.1:8081"}]\n@@active\n',
    });
  });

  test('a slot starts from a copy of .env with its release and port, under its own project', () => {
    const text = B.startSlot(
      t,
      'green',
      'acme-green',
      { APP_IMAGE: ref },
      { variable: 'APP_PORT', value: 8082 },
    ).text;
    expect(text).toMatch(/^cd -- \/srv\/acme && /);
    expect(text).toContain(`FLEET_SET='APP_IMAGE=${ref}\nAPP_PORT=8082' awk`);
    expect(text).toContain('mktemp -d .fleet/slots/.fleet-tmp.XXXXXX');
    expect(text).toContain('ln -P -- ../../../.env env && [ -f env ] && [ ! -L env ] && FLEET_SET=');
    expect(text).toContain('mv -fT -- new ../green.env ) || exit $?; }');
    expect(text).toMatch(
      /docker compose -f docker-compose\.yml --env-file \.fleet\/slots\/green\.env -p acme-green up -d $/,
    );
    expect(() =>
      B.startSlot(t, 'blue', 'x', { APP_IMAGE: 'x;reboot' }, { variable: 'APP_PORT', value: 1 }),
    ).toThrow(/refusing to write/);
  });

  test('drain and stop', () => {
    expect(B.connectionsTo(8081).text).toBe(`ss -Htn state established '( sport = :8081 )' | wc -l`);
    expect(B.stopProject(t, 'acme-blue').text).toMatch(
      /\{ ids=\$\(docker ps -q --filter label=com\.docker\.compose\.project=acme-blue\) \|\| exit 1; \[ -z "\$ids" \] \|\| docker stop -t 10 \$ids >\/dev\/null; \}$/,
    );
  });
});

test('--dry-run shows the blue-green commands in the order they run', () => {
  const [target] = targetsOf(parse(withStrategy(strategy())));
  const planned = dryRunCommands(target!, { version: 'v2' });
  expect(planned.map((c) => c.step)).toEqual([
    'prepare',
    'pull',
    'start',
    'health',
    'promote',
    'promote',
    'retire',
    'retire',
    'finish',
  ]);
  const of = (step: string) => planned.filter((c) => c.step === step).map((c) => c.command);
  expect(of('pull')[0]).toContain(
    'curl -sS --fail-with-body --max-time 10 http://127.0.0.1:2019/id/fleet-acme/upstreams || exit 40',
  );
  expect(of('start')[0]).toContain('-p acme-blue up -d');
  expect(of('health')[0]).toMatch(/^# GET http:\/\/127\.0\.0\.1:8081\/health/);
  expect(of('promote')[0]).toContain('"127.0.0.1:8081"');
  expect(of('retire')).toEqual([
    `ss -Htn state established '( sport = :8082 )' | wc -l`,
    expect.stringContaining('acme-green'),
  ]);
});
