/******/ (() => { // webpackBootstrap
/******/ 	"use strict";
var __webpack_exports__ = {};

;// CONCATENATED MODULE: external "node:child_process"
const external_node_child_process_namespaceObject = require("node:child_process");
;// CONCATENATED MODULE: external "node:crypto"
const external_node_crypto_namespaceObject = require("node:crypto");
;// CONCATENATED MODULE: external "node:fs"
const external_node_fs_namespaceObject = require("node:fs");
;// CONCATENATED MODULE: external "node:http"
const external_node_http_namespaceObject = require("node:http");
;// CONCATENATED MODULE: external "node:path"
const external_node_path_namespaceObject = require("node:path");
;// CONCATENATED MODULE: ./src/sandbox/processes.ts
/**
 * Processes of a local fleet (sandbox services and servers, test and benchmark sshd), by PID.
 */

/** Running: exists and is not a zombie waiting to be reaped (an exited process is not running). */
function isRunning(pid) {
    try {
        process.kill(pid, 0);
    }
    catch (e) {
        if (e.code !== 'EPERM')
            return false; // EPERM: it exists, another user's
    }
    try {
        const stat = (0,external_node_fs_namespaceObject.readFileSync)(`/proc/${pid}/stat`, 'utf8');
        // "PID (name) STATE …": the name may hold spaces and parentheses, the state follows the last ")"
        return stat[stat.lastIndexOf(')') + 2] !== 'Z';
    }
    catch {
        return true; // no /proc: trust kill(0)
    }
}
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
function signal(pids, name) {
    for (const pid of pids) {
        try {
            process.kill(pid, name);
        }
        catch {
            // gone meanwhile
        }
    }
}
function waitGone(pids, ms) {
    for (let waited = 0; waited < ms && pids.some(isRunning); waited += 20)
        sleepSync(20);
}
/**
 * Stops processes by PID: SIGTERM to each, up to `graceMs` for them to exit, then SIGKILL to the rest.
 * Synchronous and bounded, so exit and signal handlers can use it too. Returns how many were running.
 */
function processes_stopProcesses(pids, graceMs = 3000) {
    const live = pids.filter(isRunning);
    signal(live, 'SIGTERM');
    waitGone(live, graceMs);
    signal(live.filter(isRunning), 'SIGKILL');
    waitGone(live, 1000);
    return live.length;
}

;// CONCATENATED MODULE: ./src/sandbox/services.ts
/**
 * The sandbox runtime's record of the services it started (runtime.ts): one JSON file per compose project
 * in `$FLEET_SANDBOX_STATE/projects`, holding the service's PID. Whoever brings a sandbox runtime up (the
 * sandbox, tests, benchmarks) stops its services from here.
 */



const projectsDir = (stateDir) => (0,external_node_path_namespaceObject.join)(stateDir, 'projects');
/** The PIDs of every service the runtime with this state directory started (running or not). */
function servicePids(stateDir) {
    const dir = projectsDir(stateDir);
    if (!existsSync(dir))
        return [];
    const pids = [];
    for (const f of readdirSync(dir).filter((name) => name.endsWith('.json'))) {
        try {
            pids.push(JSON.parse(readFileSync(join(dir, f), 'utf8')).pid);
        }
        catch {
            // removed or half-written meanwhile
        }
    }
    return pids;
}
/** Stops every service of these runtime state directories. Returns how many were running. */
function stopServices(stateDirs, graceMs = 3000) {
    return stopProcesses(stateDirs.flatMap(servicePids), graceMs);
}

;// CONCATENATED MODULE: ./src/sandbox/runtime.ts
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







const stateDir = process.env.FLEET_SANDBOX_STATE ?? (0,external_node_path_namespaceObject.join)(process.env.HOME ?? '/tmp', '.fleet-sandbox');
const imagesDir = (0,external_node_path_namespaceObject.join)(stateDir, 'images');
const runtime_projectsDir = projectsDir(stateDir);
/** Each project's service output (one line per request it answered), as `docker logs` shows it. */
const logFileOf = (project) => (0,external_node_path_namespaceObject.join)(stateDir, 'logs', `${project}.log`);
const sha = (s) => (0,external_node_crypto_namespaceObject.createHash)('sha256').update(s).digest('hex');
const imageId = (ref) => `sha256:${sha(`image:${ref}`)}`;
const digestOf = (ref) => `sha256:${sha(`digest:${ref}`)}`;
const repoOf = (ref) => ref.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
const tagOf = (ref) => ref.includes('@') ? ref.slice(ref.indexOf('@') + 1) : (/:([^/:]+)$/.exec(ref)?.[1] ?? 'latest');
const fileOf = (ref) => (0,external_node_path_namespaceObject.join)(imagesDir, `${sha(ref)}.json`);
function writeAtomic(path, data) {
    const tmp = `${path}.${process.pid}.${(0,external_node_crypto_namespaceObject.randomBytes)(4).toString('hex')}`;
    (0,external_node_fs_namespaceObject.writeFileSync)(tmp, JSON.stringify(data));
    (0,external_node_fs_namespaceObject.renameSync)(tmp, path);
}
function fail(message, code = 1) {
    process.stderr.write(`${message}\n`);
    process.exit(code);
}
function localImages() {
    if (!(0,external_node_fs_namespaceObject.existsSync)(imagesDir))
        return [];
    return (0,external_node_fs_namespaceObject.readdirSync)(imagesDir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => JSON.parse((0,external_node_fs_namespaceObject.readFileSync)((0,external_node_path_namespaceObject.join)(imagesDir, f), 'utf8')));
}
/** The running containers; with `all`, the stopped ones too (their process ended, their state kept). */
function containers(all = false) {
    if (!(0,external_node_fs_namespaceObject.existsSync)(runtime_projectsDir))
        return [];
    return (0,external_node_fs_namespaceObject.readdirSync)(runtime_projectsDir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => JSON.parse((0,external_node_fs_namespaceObject.readFileSync)((0,external_node_path_namespaceObject.join)(runtime_projectsDir, f), 'utf8')))
        .filter((c) => all || isRunning(c.pid));
}
const stateOf = (c) => (!isRunning(c.pid) ? 'exited' : c.paused ? 'paused' : 'running');
/** docker logs [--tail N] [--since …] [-f] ID: the service's output; -f polls for more until killed. */
function logs(args) {
    const id = args.at(-1) ?? fail('docker logs needs a container');
    const c = containers(true).find((x) => x.id === id) ?? fail(`Error: No such container: ${id}`);
    const file = logFileOf(c.project);
    const text = (0,external_node_fs_namespaceObject.existsSync)(file) ? (0,external_node_fs_namespaceObject.readFileSync)(file, 'utf8') : '';
    const at = args.indexOf('--tail');
    const lines = text.split('\n').filter(Boolean);
    const shown = at >= 0 && args[at + 1] !== 'all' ? lines.slice(-Number(args[at + 1])) : lines;
    if (shown.length)
        process.stdout.write(`${shown.join('\n')}\n`);
    if (!args.includes('-f') && !args.includes('--follow'))
        return;
    let pos = Buffer.byteLength(text);
    setInterval(() => {
        const now = (0,external_node_fs_namespaceObject.existsSync)(file) ? (0,external_node_fs_namespaceObject.readFileSync)(file) : Buffer.alloc(0);
        if (now.length > pos)
            process.stdout.write(now.subarray(pos));
        pos = now.length;
    }, 100);
}
/** docker pause / unpause / stop ID…: SIGSTOP, SIGCONT, or end the process and keep the container. */
function lifecycle(verb, ids) {
    const all = containers(true);
    for (const id of ids) {
        const c = all.find((x) => x.id === id) ?? fail(`Error: No such container: ${id}`);
        if (verb === 'stop')
            processes_stopProcesses([c.pid], 2000);
        else
            process.kill(c.pid, verb === 'pause' ? 'SIGSTOP' : 'SIGCONT');
        writeAtomic((0,external_node_path_namespaceObject.join)(runtime_projectsDir, `${c.project}.json`), { ...c, paused: verb === 'pause' });
        process.stdout.write(`${id}\n`);
    }
}
function pull(ref) {
    if (/^missing/.test(tagOf(ref)))
        fail(`Error response from daemon: manifest for ${ref} not found: manifest unknown`);
    (0,external_node_fs_namespaceObject.mkdirSync)(imagesDir, { recursive: true });
    writeAtomic(fileOf(ref), { ref, id: imageId(ref) });
}
function readEnv(file = '.env') {
    if (!(0,external_node_fs_namespaceObject.existsSync)(file))
        return {};
    const env = {};
    for (const line of (0,external_node_fs_namespaceObject.readFileSync)(file, 'utf8').split('\n')) {
        const m = /^(?:export\s+)?([A-Za-z_]\w*)=(.*)$/.exec(line.trim());
        if (m)
            env[m[1]] = m[2].replace(/^(["'])(.*)\1$/, '$2');
    }
    return env;
}
function stop(c) {
    if (c)
        processes_stopProcesses([c.pid], 2000);
}
/** The project as Compose names it without -p: COMPOSE_PROJECT_NAME (environment, then .env), else the directory. */
function defaultProject() {
    const name = process.env.COMPOSE_PROJECT_NAME || readEnv().COMPOSE_PROJECT_NAME || (0,external_node_path_namespaceObject.basename)(process.cwd());
    return name
        .toLowerCase()
        .replace(/[^a-z0-9_-]/g, '')
        .replace(/^[-_]+/, '');
}
/** The compose files a command names (-f), else the default one. */
function composeFiles(args) {
    const files = args.flatMap((a, i) => (args[i - 1] === '-f' || args[i - 1] === '--file' ? [a] : []));
    return files.length ? files : ['docker-compose.yml'];
}
function compose(args) {
    let project = defaultProject();
    let envFile = '.env'; // a blue-green slot's own, with --env-file
    const rest = [];
    for (let i = 0; i < args.length; i++) {
        if (args[i] === '-f' || args[i] === '--file')
            i++;
        else if (args[i] === '--env-file')
            envFile = args[++i];
        else if (args[i] === '-p' || args[i] === '--project-name')
            project = args[++i];
        else
            rest.push(args[i]);
    }
    const [verb, ...opts] = rest;
    const stateFile = (0,external_node_path_namespaceObject.join)(runtime_projectsDir, `${project}.json`);
    const current = (0,external_node_fs_namespaceObject.existsSync)(stateFile)
        ? JSON.parse((0,external_node_fs_namespaceObject.readFileSync)(stateFile, 'utf8'))
        : undefined;
    switch (verb) {
        case 'version':
            return void process.stdout.write('Docker Compose version v2.29.0 (fleet-deploy sandbox runtime)\n');
        case 'config':
            // Compose's own check of its files; the runtime reads only .env, so the files need only exist.
            for (const f of composeFiles(args))
                if (!(0,external_node_fs_namespaceObject.existsSync)(f))
                    fail(`open ${f}: no such file or directory`);
            return;
        case 'ps':
            if (current && isRunning(current.pid))
                process.stdout.write(opts.includes('-q') ? `${current.id}\n` : `${current.id} ${current.ref} running\n`);
            return;
        case 'down':
            stop(current);
            (0,external_node_fs_namespaceObject.rmSync)(stateFile, { force: true });
            return;
        case 'pull': {
            const env = readEnv();
            const ref = Object.entries(env).find(([k]) => k.endsWith('_IMAGE'))?.[1];
            if (ref)
                pull(ref);
            return;
        }
        case 'up':
            return composeUp(project, envFile, stateFile, current);
        default:
            fail(`sandbox runtime: unsupported compose command: ${verb}`);
    }
}
/** `compose up`: the service of the image in .env, on APP_PORT, unless it runs already as asked. */
function composeUp(project, envFile, stateFile, current) {
    const env = readEnv(envFile);
    const ref = Object.entries(env).find(([k]) => k.endsWith('_IMAGE'))?.[1];
    const port = Number(env.APP_PORT);
    if (!ref)
        fail('no service image: the sandbox runtime needs a variable ending in _IMAGE in .env');
    if (!Number.isInteger(port) || port < 1)
        fail('no service port: the sandbox runtime needs APP_PORT in .env');
    if (!(0,external_node_fs_namespaceObject.existsSync)(fileOf(ref)))
        pull(ref);
    const id = imageId(ref);
    if (current && isRunning(current.pid) && current.imageId === id && current.port === port) {
        return void process.stderr.write(`Container ${project}-app-1  Running\n`);
    }
    stop(current);
    // A tenant can be told to break chosen versions: SANDBOX_BREAK in its directory lists tags, one a line.
    const broken = (0,external_node_fs_namespaceObject.existsSync)('SANDBOX_BREAK') &&
        (0,external_node_fs_namespaceObject.readFileSync)('SANDBOX_BREAK', 'utf8')
            .split('\n')
            .map((l) => l.trim())
            .includes(tagOf(ref));
    const args = [process.argv[1], '__serve', String(port), tagOf(ref), ...(broken ? ['broken'] : [])];
    (0,external_node_fs_namespaceObject.mkdirSync)((0,external_node_path_namespaceObject.join)(stateDir, 'logs'), { recursive: true });
    const log = (0,external_node_fs_namespaceObject.openSync)(logFileOf(project), 'a');
    // A tenant can be given a boot time like a real app's: SANDBOX_BOOT_MS in its directory.
    const bootMs = (0,external_node_fs_namespaceObject.existsSync)('SANDBOX_BOOT_MS') ? (0,external_node_fs_namespaceObject.readFileSync)('SANDBOX_BOOT_MS', 'utf8').trim() : '0';
    const child = (0,external_node_child_process_namespaceObject.spawn)(process.execPath, args, {
        detached: true,
        stdio: ['ignore', log, log],
        env: { ...process.env, SANDBOX_BOOT_MS: bootMs },
    });
    child.unref();
    (0,external_node_fs_namespaceObject.mkdirSync)(runtime_projectsDir, { recursive: true });
    writeAtomic(stateFile, {
        id: (0,external_node_crypto_namespaceObject.randomBytes)(32).toString('hex'),
        project,
        ref,
        imageId: id,
        pid: child.pid,
        port,
        configHash: sha(`config:${ref}:${port}`),
    });
    return void process.stderr.write(`Container ${project}-app-1  Started\n`);
}
/** Go templates as the status and health commands use them: fields, `json`, a label, no health check. */
function format(template, fields) {
    if (!template)
        return JSON.stringify(fields);
    return template
        .replace(/\{\{if \.State\.Health\}\}.*?\{\{else\}\}(.*?)\{\{end\}\}/g, '$1')
        .replace(/\{\{index \.Config\.Labels "([^"]*)"\}\}/g, (_, label) => fields[`label:${label}`] ?? '')
        .replace(/\{\{\s*(json\s+)?\.([\w.]+)\s*\}\}/g, (_, json, key) => json ? (fields[`json:${key}`] ?? 'null') : (fields[key] ?? ''));
}
function main(argv) {
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
                if (!project || c.project === project)
                    process.stdout.write(`${c.id}\n`);
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
            return runtime_image(operands, fmt);
        case '__serve':
            return serve(Number(args[0]), args[1] ?? 'latest', args[2] === 'broken');
        default:
            fail(`sandbox runtime: unsupported command: ${cmd ?? '(none)'}`);
    }
}
/** docker rm -f ID…: stop and forget the containers. */
function removeContainers(ids) {
    const all = containers(true);
    for (const id of ids) {
        const c = all.find((x) => x.id === id) ?? fail(`Error: No such container: ${id}`);
        stop(c);
        (0,external_node_fs_namespaceObject.rmSync)((0,external_node_path_namespaceObject.join)(runtime_projectsDir, `${c.project}.json`), { force: true });
    }
}
function inspectContainers(ids, fmt) {
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
function runtime_image(operands, fmt) {
    const [sub, ...rest] = operands;
    if (sub === 'inspect')
        return inspectImages(rest, fmt);
    if (sub === 'ls')
        return listImages(rest[0], fmt);
    if (sub === 'rm')
        return removeImages(rest);
    return fail(`sandbox runtime: unsupported image command: ${sub}`);
}
function inspectImages(names, fmt) {
    for (const name of names) {
        // by reference, or by ID as `docker image inspect` takes it too
        const ref = localImages().find((i) => i.id === name)?.ref ?? name;
        if (!(0,external_node_fs_namespaceObject.existsSync)(fileOf(ref)))
            fail(`Error: No such image: ${name}`);
        const digests = JSON.stringify([`${repoOf(ref)}@${digestOf(ref)}`]);
        process.stdout.write(`${format(fmt, { Id: imageId(ref), 'json:RepoDigests': digests, Size: '1048576' })}\n`);
    }
}
function listImages(repository, fmt) {
    for (const img of localImages()) {
        if (repository && repoOf(img.ref) !== repository)
            continue;
        process.stdout.write(`${format(fmt, { Repository: repoOf(img.ref), Tag: tagOf(img.ref), ID: img.id })}\n`);
    }
}
/** Removes the images no container uses; exits 1 after the others, as docker does. */
function removeImages(refs) {
    const used = new Set(containers().map((c) => c.ref));
    let failed = false;
    for (const ref of refs) {
        if (used.has(ref)) {
            process.stderr.write(`Error response from daemon: conflict: unable to remove repository reference "${ref}" (must ` +
                `force) - container is using its referenced image\n`);
            failed = true;
        }
        else if ((0,external_node_fs_namespaceObject.existsSync)(fileOf(ref))) {
            (0,external_node_fs_namespaceObject.rmSync)(fileOf(ref));
            process.stdout.write(`Untagged: ${ref}\n`);
        }
    }
    if (failed)
        process.exit(1);
}
function serve(port, version, forceBroken) {
    const started = Date.now();
    const slowMs = Number(process.env.SANDBOX_SLOW_MS ?? 20_000);
    let n = 0;
    const server = external_node_http_namespaceObject.createServer((req, res) => {
        n++;
        const behaviour = forceBroken || /^(broken|bad)/.test(version)
            ? 'broken'
            : /^slow/.test(version)
                ? 'slow'
                : /^flaky/.test(version)
                    ? 'flaky'
                    : 'ok';
        const healthy = behaviour === 'ok' ||
            (behaviour === 'slow' && Date.now() - started >= slowMs) ||
            (behaviour === 'flaky' && n % 2 === 1);
        if (req.url === '/metrics' || req.url === '/heartbeat') {
            // A "silent…" release answers /health but its heartbeats stop: what only an analysis sees.
            const beating = !/^silent/.test(version);
            const text = req.url === '/metrics'
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

module.exports = __webpack_exports__;
/******/ })()
;