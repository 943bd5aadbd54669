/**
 * The SANDBOX container runtime: a stand-in for the `docker` CLI (and `docker compose`) that runs each
 * tenant's service as a local process instead of a container. It is a test double of the container
 * engine, used by the sandbox fleet and by tests where no real engine runs; the real-engine end-to-end
 * test uses podman. It is never used for a real target: it only runs when a sandbox server puts it first
 * on PATH as `docker`.
 *
 * What it models:
 *   - a registry where every `repository:tag` exists (tags starting with "missing" do not); the image ID
 *     and digest are hashes of the reference, so the same reference is always the same image;
 *   - local images (pull, image inspect, image ls, image rm — refused while a container uses it);
 *   - one service per compose project, configured by the tenant's .env: the first variable ending in
 *     _IMAGE is its image, APP_PORT its port. `up -d` replaces the process when the image changed;
 *   - the service: an HTTP server on 127.0.0.1:APP_PORT whose GET /health answers
 *     {"status":"ok","version":TAG}. The tag can break it: "broken…"/"bad…" answer 500 forever,
 *     "slow…" answer 503 for SANDBOX_SLOW_MS (default 20 s), "flaky…" alternate 200 and 500; and a tenant
 *     whose directory has a SANDBOX_BREAK file breaks the tags listed in it (one tenant's bad release);
 *     a SANDBOX_BOOT_MS file there makes its service listen only that long after it starts;
 *   - heartbeats: GET /metrics (Prometheus text, `sandbox_heartbeat_ok 1`) and GET /heartbeat
 *     ({"ok":true,"version":TAG}); a "silent…" tag is healthy but its heartbeats are 0 / false;
 *   - a blue-green slot: `compose --env-file FILE -p PROJECT-SLOT up -d` reads FILE instead of .env.
 * State lives in $FLEET_SANDBOX_STATE (one file per image and per project, written atomically).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as http from 'node:http';
import { basename, join } from 'node:path';
import { isRunning, stopProcesses } from './processes';
import { projectsDir as projectsOf } from './services';

interface Container {
  id: string;
  project: string;
  ref: string;
  imageId: string;
  pid: number;
  port: number;
  /** `docker pause`: the process is stopped by SIGSTOP until `docker unpause`. */
  paused?: boolean;
  /** Compose's config-hash label: here a hash of what configures the service (image and port). */
  configHash?: string;
}

const stateDir = process.env.FLEET_SANDBOX_STATE ?? join(process.env.HOME ?? '/tmp', '.fleet-sandbox');
const imagesDir = join(stateDir, 'images');
const projectsDir = projectsOf(stateDir);
/** Each project's service output (one line per request it answered), as `docker logs` shows it. */
const logFileOf = (project: string) => join(stateDir, 'logs', `${project}.log`);

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const imageId = (ref: string) => `sha256:${sha(`image:${ref}`)}`;
const digestOf = (ref: string) => `sha256:${sha(`digest:${ref}`)}`;
const repoOf = (ref: string) => ref.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
const tagOf = (ref: string) =>
  ref.includes('@') ? ref.slice(ref.indexOf('@') + 1) : (/:([^/:]+)$/.exec(ref)?.[1] ?? 'latest');
const fileOf = (ref: string) => join(imagesDir, `${sha(ref)}.json`);

function writeAtomic(path: string, data: unknown): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, JSON.stringify(data));
  renameSync(tmp, path);
}

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function localImages(): Array<{ ref: string; id: string }> {
  if (!existsSync(imagesDir)) return [];
  return readdirSync(imagesDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(imagesDir, f), 'utf8')) as { ref: string; id: string });
}

/** The running containers; with `all`, the stopped ones too (their process ended, their state kept). */
function containers(all = false): Container[] {
  if (!existsSync(projectsDir)) return [];
  return readdirSync(projectsDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(projectsDir, f), 'utf8')) as Container)
    .filter((c) => all || isRunning(c.pid));
}

const stateOf = (c: Container) => (!isRunning(c.pid) ? 'exited' : c.paused ? 'paused' : 'running');

/** docker logs [--tail N] [--since …] [-f] ID: the service's output; -f polls for more until killed. */
function logs(args: readonly string[]): void {
  const id = args.at(-1) ?? fail('docker logs needs a container');
  const c = containers(true).find((x) => x.id === id) ?? fail(`Error: No such container: ${id}`);
  const file = logFileOf(c.project);
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const at = args.indexOf('--tail');
  const lines = text.split('\n').filter(Boolean);
  const shown = at >= 0 && args[at + 1] !== 'all' ? lines.slice(-Number(args[at + 1])) : lines;
  if (shown.length) process.stdout.write(`${shown.join('\n')}\n`);
  if (!args.includes('-f') && !args.includes('--follow')) return;
  let pos = Buffer.byteLength(text);
  setInterval(() => {
    const now = existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
    if (now.length > pos) process.stdout.write(now.subarray(pos));
    pos = now.length;
  }, 100);
}

/** docker pause / unpause / stop ID…: SIGSTOP, SIGCONT, or end the process and keep the container. */
function lifecycle(verb: string, ids: readonly string[]): void {
  const all = containers(true);
  for (const id of ids) {
    const c = all.find((x) => x.id === id) ?? fail(`Error: No such container: ${id}`);
    if (verb === 'stop') stopProcesses([c.pid], 2000);
    else process.kill(c.pid, verb === 'pause' ? 'SIGSTOP' : 'SIGCONT');
    writeAtomic(join(projectsDir, `${c.project}.json`), { ...c, paused: verb === 'pause' });
    process.stdout.write(`${id}\n`);
  }
}

function pull(ref: string): void {
  if (/^missing/.test(tagOf(ref)))
    fail(`Error response from daemon: manifest for ${ref} not found: manifest unknown`);
  mkdirSync(imagesDir, { recursive: true });
  writeAtomic(fileOf(ref), { ref, id: imageId(ref) });
}

function readEnv(file = '.env'): Record<string, string> {
  if (!existsSync(file)) return {};
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(?:export\s+)?([A-Za-z_]\w*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return env;
}

function stop(c: Container | undefined): void {
  if (c) stopProcesses([c.pid], 2000);
}

/** The project as Compose names it without -p: COMPOSE_PROJECT_NAME (environment, then .env), else the directory. */
function defaultProject(): string {
  const name = process.env.COMPOSE_PROJECT_NAME || readEnv().COMPOSE_PROJECT_NAME || basename(process.cwd());
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[-_]+/, '');
}

/** The compose files a command names (-f), else the default one. */
function composeFiles(args: string[]): string[] {
  const files = args.flatMap((a, i) => (args[i - 1] === '-f' || args[i - 1] === '--file' ? [a] : []));
  return files.length ? files : ['docker-compose.yml'];
}

function compose(args: string[]): void {
  let project = defaultProject();
  let envFile = '.env'; // a blue-green slot's own, with --env-file
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-f' || args[i] === '--file') i++;
    else if (args[i] === '--env-file') envFile = args[++i]!;
    else if (args[i] === '-p' || args[i] === '--project-name') project = args[++i]!;
    else rest.push(args[i]!);
  }
  const [verb, ...opts] = rest;
  const stateFile = join(projectsDir, `${project}.json`);
  const current = existsSync(stateFile)
    ? (JSON.parse(readFileSync(stateFile, 'utf8')) as Container)
    : undefined;
  switch (verb) {
    case 'version':
      return void process.stdout.write('Docker Compose version v2.29.0 (fleet-deploy sandbox runtime)\n');
    case 'config':
      // Compose's own check of its files; the runtime reads only .env, so the files need only exist.
      for (const f of composeFiles(args)) if (!existsSync(f)) fail(`open ${f}: no such file or directory`);
      return;
    case 'ps':
      if (current && isRunning(current.pid))
        process.stdout.write(
          opts.includes('-q') ? `${current.id}\n` : `${current.id} ${current.ref} running\n`,
        );
      return;
    case 'down':
      stop(current);
      rmSync(stateFile, { force: true });
      return;
    case 'pull': {
      const env = readEnv();
      const ref = Object.entries(env).find(([k]) => k.endsWith('_IMAGE'))?.[1];
      if (ref) pull(ref);
      return;
    }
    case 'up':
      return composeUp(project, envFile, stateFile, current);
    default:
      fail(`sandbox runtime: unsupported compose command: ${verb}`);
  }
}

/** `compose up`: the service of the image in .env, on APP_PORT, unless it runs already as asked. */
function composeUp(
  project: string,
  envFile: string,
  stateFile: string,
  current: Container | undefined,
): void {
  const env = readEnv(envFile);
  const ref = Object.entries(env).find(([k]) => k.endsWith('_IMAGE'))?.[1];
  const port = Number(env.APP_PORT);
  if (!ref) fail('no service image: the sandbox runtime needs a variable ending in _IMAGE in .env');
  if (!Number.isInteger(port) || port < 1)
    fail('no service port: the sandbox runtime needs APP_PORT in .env');
  if (!existsSync(fileOf(ref))) pull(ref);
  const id = imageId(ref);
  if (current && isRunning(current.pid) && current.imageId === id && current.port === port) {
    return void process.stderr.write(`Container ${project}-app-1  Running\n`);
  }
  stop(current);
  // A tenant can be told to break chosen versions: SANDBOX_BREAK in its directory lists tags, one a line.
  const broken =
    existsSync('SANDBOX_BREAK') &&
    readFileSync('SANDBOX_BREAK', 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .includes(tagOf(ref));
  const args = [process.argv[1]!, '__serve', String(port), tagOf(ref), ...(broken ? ['broken'] : [])];
  mkdirSync(join(stateDir, 'logs'), { recursive: true });
  const log = openSync(logFileOf(project), 'a');
  // A tenant can be given a boot time like a real app's: SANDBOX_BOOT_MS in its directory.
  const bootMs = existsSync('SANDBOX_BOOT_MS') ? readFileSync('SANDBOX_BOOT_MS', 'utf8').trim() : '0';
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, SANDBOX_BOOT_MS: bootMs },
  });
  child.unref();
  mkdirSync(projectsDir, { recursive: true });
  writeAtomic(stateFile, {
    id: randomBytes(32).toString('hex'),
    project,
    ref,
    imageId: id,
    pid: child.pid!,
    port,
    configHash: sha(`config:${ref}:${port}`),
  } satisfies Container);
  return void process.stderr.write(`Container ${project}-app-1  Started\n`);
}

/** Go templates as the status and health commands use them: fields, `json`, a label, no health check. */
function format(template: string | undefined, fields: Record<string, string>): string {
  if (!template) return JSON.stringify(fields);
  return template
    .replace(/\{\{if \.State\.Health\}\}.*?\{\{else\}\}(.*?)\{\{end\}\}/g, '$1')
    .replace(
      /\{\{index \.Config\.Labels "([^"]*)"\}\}/g,
      (_, label: string) => fields[`label:${label}`] ?? '',
    )
    .replace(/\{\{\s*(json\s+)?\.([\w.]+)\s*\}\}/g, (_, json: string | undefined, key: string) =>
      json ? (fields[`json:${key}`] ?? 'null') : (fields[key] ?? ''),
    );
}

function main(argv: string[]): void {
  const [cmd, ...args] = argv;
  const fmtAt = args.indexOf('--format');
  const fmt = fmtAt >= 0 ? args[fmtAt + 1] : undefined;
  // options that take a value: --format TEMPLATE, stop -t SECONDS
  const valued = new Set(['--format', '-t', '--time']);
  const operands = args.filter((a, i) => !a.startsWith('-') && !valued.has(args[i - 1] ?? ''));
  switch (cmd) {
    case 'compose':
      return compose(args);
    case 'rm':
      return removeContainers(operands);
    case 'ps': {
      // docker ps [-a]q --filter label=com.docker.compose.project=NAME
      const filter = args[args.indexOf('--filter') + 1] ?? '';
      const project = /^label=com\.docker\.compose\.project=(.+)$/.exec(filter)?.[1];
      const all = args.some((a) => /^-[a-z]*a/.test(a));
      for (const c of containers(all))
        if (!project || c.project === project) process.stdout.write(`${c.id}\n`);
      return;
    }
    case 'logs':
      return logs(args);
    case 'pause':
    case 'unpause':
    case 'stop':
      return lifecycle(cmd, operands);
    case 'pull':
      pull(operands[0] ?? fail('docker pull needs an image'));
      return void process.stdout.write(`${operands[0]}\n`);
    case 'inspect':
      return inspectContainers(operands, fmt);
    case 'image':
      return image(operands, fmt);
    case '__serve':
      return serve(Number(args[0]), args[1] ?? 'latest', args[2] === 'broken');
    default:
      fail(`sandbox runtime: unsupported command: ${cmd ?? '(none)'}`);
  }
}

/** docker rm -f ID…: stop and forget the containers. */
function removeContainers(ids: string[]): void {
  const all = containers(true);
  for (const id of ids) {
    const c = all.find((x) => x.id === id) ?? fail(`Error: No such container: ${id}`);
    stop(c);
    rmSync(join(projectsDir, `${c.project}.json`), { force: true });
  }
}

function inspectContainers(ids: string[], fmt: string | undefined): void {
  const all = containers(true);
  for (const id of ids) {
    const c = all.find((x) => x.id === id) ?? fail(`Error: No such object: ${id}`);
    const fields = {
      Image: c.imageId,
      Id: c.id,
      Name: `/${c.project}-app-1`,
      'State.Status': stateOf(c),
      'label:com.docker.compose.config-hash': c.configHash ?? '',
    };
    process.stdout.write(`${format(fmt, fields)}\n`);
  }
}

/** docker image inspect|ls|rm. */
function image(operands: string[], fmt: string | undefined): void {
  const [sub, ...rest] = operands;
  if (sub === 'inspect') return inspectImages(rest, fmt);
  if (sub === 'ls') return listImages(rest[0], fmt);
  if (sub === 'rm') return removeImages(rest);
  return fail(`sandbox runtime: unsupported image command: ${sub}`);
}

function inspectImages(names: string[], fmt: string | undefined): void {
  for (const name of names) {
    // by reference, or by ID as `docker image inspect` takes it too
    const ref = localImages().find((i) => i.id === name)?.ref ?? name;
    if (!existsSync(fileOf(ref))) fail(`Error: No such image: ${name}`);
    const digests = JSON.stringify([`${repoOf(ref)}@${digestOf(ref)}`]);
    process.stdout.write(
      `${format(fmt, { Id: imageId(ref), 'json:RepoDigests': digests, Size: '1048576' })}\n`,
    );
  }
}

function listImages(repository: string | undefined, fmt: string | undefined): void {
  for (const img of localImages()) {
    if (repository && repoOf(img.ref) !== repository) continue;
    process.stdout.write(
      `${format(fmt, { Repository: repoOf(img.ref), Tag: tagOf(img.ref), ID: img.id })}\n`,
    );
  }
}

/** Removes the images no container uses; exits 1 after the others, as docker does. */
function removeImages(refs: string[]): void {
  const used = new Set(containers().map((c) => c.ref));
  let failed = false;
  for (const ref of refs) {
    if (used.has(ref)) {
      process.stderr.write(
        `Error response from daemon: conflict: unable to remove repository reference "${ref}" (must ` +
          `force) - container is using its referenced image\n`,
      );
      failed = true;
    } else if (existsSync(fileOf(ref))) {
      rmSync(fileOf(ref));
      process.stdout.write(`Untagged: ${ref}\n`);
    }
  }
  if (failed) process.exit(1);
}

function serve(port: number, version: string, forceBroken: boolean): void {
  const started = Date.now();
  const slowMs = Number(process.env.SANDBOX_SLOW_MS ?? 20_000);
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    const behaviour =
      forceBroken || /^(broken|bad)/.test(version)
        ? 'broken'
        : /^slow/.test(version)
          ? 'slow'
          : /^flaky/.test(version)
            ? 'flaky'
            : 'ok';
    const healthy =
      behaviour === 'ok' ||
      (behaviour === 'slow' && Date.now() - started >= slowMs) ||
      (behaviour === 'flaky' && n % 2 === 1);
    if (req.url === '/metrics' || req.url === '/heartbeat') {
      // A "silent…" release answers /health but its heartbeats stop: what only an analysis sees.
      const beating = !/^silent/.test(version);
      const text =
        req.url === '/metrics'
          ? `# HELP sandbox_heartbeat_ok 1 while the tenant's heartbeats reach the hub.\n# TYPE ` +
            `sandbox_heartbeat_ok gauge\nsandbox_heartbeat_ok ${beating ? 1 : 0}\n`
          : JSON.stringify({ ok: beating, version });
      res.writeHead(200, {
        'content-type': req.url === '/metrics' ? 'text/plain; version=0.0.4' : 'application/json',
      });
      res.end(text);
      return;
    }
    if (req.url !== '/health') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(healthy ? 200 : behaviour === 'slow' ? 503 : 500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: healthy ? 'ok' : 'error', version }));
    process.stdout.write(`${new Date().toISOString()} GET ${req.url} ${res.statusCode} (${version})\n`);
  });
  // Listening only after SANDBOX_BOOT_MS, as a real app that boots: the in-place switch's downtime.
  setTimeout(() => server.listen(port, '127.0.0.1'), Number(process.env.SANDBOX_BOOT_MS || 0));
  const bye = () => server.close(() => process.exit(0));
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

main(process.argv.slice(2));
