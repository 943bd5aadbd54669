/**
 * Real reverse proxies for the end-to-end tests, from Debian's packages: Caddy with its admin API on
 * 127.0.0.1, and nginx run as the deploy user (who then may reload it), each with its files in a temp
 * dir. Both are started in the foreground and stopped by PID.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEPLOY_USER, handOver, stopProcesses } from '../../src/testing';

export interface RunningProxy {
  pid: number;
  stop(): void;
}

async function waitFor(what: string, ok: () => Promise<boolean>, child: ChildProcess, log: () => string) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${log()}`);
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer within 10 s: ${log()}`);
}

const answers = (url: string) => async () =>
  fetch(url, { signal: AbortSignal.timeout(1000) }).then(
    () => true,
    () => false,
  );

export interface CaddyRoute {
  /** The port Caddy serves the tenant on (127.0.0.1). */
  listen: number;
  /** The @id of the tenant's reverse_proxy handler. */
  id: string;
  upstream: number;
  /**
   * The flag-file switch: the tenant directory and its slots' ports. Each request goes to the slot
   * whose flag (.fleet/slots/live-SLOT) exists, else to `upstream` (the in-place stack).
   */
  flags?: { dir: string; blue: number; green: number };
}

const proxyTo = (port: number, id?: string) => ({
  handler: 'reverse_proxy',
  ...(id ? { '@id': id } : {}),
  upstreams: [{ dial: `127.0.0.1:${port}` }],
});

/** The route's handler: one reverse_proxy (switched through the admin API), or the flag-file routes. */
function caddyHandler(r: CaddyRoute) {
  if (!r.flags) return proxyTo(r.upstream, r.id);
  const root = join(r.flags.dir, '.fleet', 'slots');
  const slot = (name: 'blue' | 'green', port: number) => ({
    match: [{ file: { root, try_files: [`/live-${name}`] } }],
    handle: [proxyTo(port)],
    terminal: true,
  });
  return {
    handler: 'subroute',
    '@id': r.id,
    // blue a second time: a request that looked for live-blue just before live-green was renamed to it,
    // and for live-green just after, finds live-blue then instead of falling through to the in-place stack
    routes: [
      slot('blue', r.flags.blue),
      slot('green', r.flags.green),
      slot('blue', r.flags.blue),
      { handle: [proxyTo(r.upstream)] },
    ],
  };
}

/** Caddy with one server per route; its admin API on 127.0.0.1:admin. */
export async function startCaddy(dir: string, admin: number, routes: CaddyRoute[]): Promise<RunningProxy> {
  mkdirSync(dir, { recursive: true });
  const servers = Object.fromEntries(
    routes.map((r) => [
      r.id,
      {
        listen: [`127.0.0.1:${r.listen}`],
        routes: [{ handle: [caddyHandler(r)] }],
      },
    ]),
  );
  const config = { admin: { listen: `127.0.0.1:${admin}` }, apps: { http: { servers } } };
  writeFileSync(join(dir, 'caddy.json'), JSON.stringify(config, null, 2));
  let log = '';
  const child = spawn('caddy', ['run', '--config', join(dir, 'caddy.json')], {
    env: {
      PATH: '/usr/bin:/bin',
      HOME: dir,
      XDG_DATA_HOME: join(dir, 'data'),
      XDG_CONFIG_HOME: join(dir, 'config'),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-2000)));
  await waitFor('caddy', answers(`http://127.0.0.1:${admin}/config/`), child, () => log);
  return { pid: child.pid!, stop: () => void stopProcesses([child.pid!]) };
}

export interface NginxSite {
  listen: number;
  /** The upstream file the deploy writes (one `server 127.0.0.1:PORT;` line). */
  upstreamFile: string;
  upstream: number;
  /** The flag-file switch instead: as CaddyRoute's (`upstream` is the in-place stack's port). */
  flags?: { dir: string; blue: number; green: number };
}

/** A site's upstream and server blocks: the upstream file's, or the flag-file switch's (docs/deploy.md). */
function nginxSite(s: NginxSite, i: number): string {
  const server = (location: string) =>
    `  server { listen 127.0.0.1:${s.listen}; location / { ${location} proxy_read_timeout 60s; } }`;
  if (!s.flags) {
    writeFileSync(s.upstreamFile, `server 127.0.0.1:${s.upstream};\n`);
    return `  upstream site${i} { include ${s.upstreamFile}; }\n${server(`proxy_pass http://site${i};`)}`;
  }
  const { dir } = s.flags;
  const flag = (slot: string) =>
    `if (-f ${join(dir, '.fleet', 'slots', `live-${slot}`)}) { set $slot ${slot}; }`;
  return [
    `  upstream site${i}_blue { server 127.0.0.1:${s.flags.blue}; }`,
    `  upstream site${i}_green { server 127.0.0.1:${s.flags.green}; }`,
    `  upstream site${i}_inplace { server 127.0.0.1:${s.upstream}; }`,
    server(
      `set $slot inplace; ${flag('blue')} ${flag('green')} ${flag('blue')} proxy_pass http://site${i}_$slot;`,
    ),
  ].join('\n');
}

export interface Nginx extends RunningProxy {
  /** The tenant's registry `proxy.check` and `proxy.reload` for this instance. */
  check: string;
  reload: string;
}

/** nginx as the deploy user, its configuration, pid file, logs and temp paths under `dir`. */
export async function startNginx(dir: string, sites: NginxSite[]): Promise<Nginx> {
  mkdirSync(join(dir, 'upstreams'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const servers = sites.map(nginxSite);
  writeFileSync(
    conf,
    [
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log;`,
      'worker_processes 1;',
      'events { worker_connections 256; }',
      'http {',
      `  access_log off; client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp;`,
      `  fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;`,
      ...servers,
      '}',
      '',
    ].join('\n'),
  );
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  handOver(dir);
  const base = ['-e', join(dir, 'error.log'), '-c', conf];
  const uid = execFileSync('id', ['-u', DEPLOY_USER], { encoding: 'utf8' }).trim();
  const gid = execFileSync('id', ['-g', DEPLOY_USER], { encoding: 'utf8' }).trim();
  const asUser =
    process.getuid?.() === 0 ? ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups'] : [];
  let log = '';
  const argv = [...asUser, '/usr/sbin/nginx', ...base, '-g', 'daemon off;'];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-2000)));
  await waitFor('nginx', answers(`http://127.0.0.1:${sites[0]!.listen}/`), child, () => log);
  return {
    pid: child.pid!,
    stop: () => void stopProcesses([child.pid!]),
    check: `nginx ${base.join(' ')} -t -q`,
    reload: `nginx ${base.join(' ')} -s reload`,
  };
}
