/**
 * The remote verbs: exact command strings, and their behaviour run by a real local shell in a temp
 * tenant directory. Where a script calls `docker`, a recording shim stands in for it on PATH (a double,
 * named so here; the real engine is exercised by the integration and e2e tests).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
  readdirSync,
  lstatSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { parseRegistry, targetsOf, type Tenant } from '../src/registry';
import * as release from '../src/registry/release';
import * as compose from '../src/remote/compose';
import * as containers from '../src/remote/containers';
import * as exitCodes from '../src/remote/exit-codes';
import * as hooks from '../src/remote/hooks';
import * as images from '../src/remote/images';
import * as lock from '../src/remote/lock';
import * as prepare from '../src/remote/prepare';
import * as update from '../src/remote/update';
import { backup, backupId, restore, RESTORE_EXIT } from '../src/remote/backup';
import { startSlot } from '../src/remote/blue-green';
import { baseRegistry } from './helpers/registry';

/** The remote verbs this file drives, from their files by concern, under the one name it has always used. */
const R = {
  ...release,
  ...compose,
  ...containers,
  ...exitCodes,
  ...hooks,
  ...images,
  ...lock,
  ...prepare,
  ...update,
};

function tenant(extra: Record<string, unknown> = {}, path = '/srv/acme'): Tenant {
  const r = baseRegistry();
  Object.assign(r.servers[0].tenants[0], { path, ...extra });
  return targetsOf(parseRegistry(JSON.stringify(r), 'r.json'))[0]!.tenant;
}

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

/** A tenant directory plus a recording `docker` double on PATH. */
function workdir(env: string) {
  const root = mkdtempSync(join(tmpdir(), 'fd-cmd-'));
  roots.push(root);
  const dir = join(root, 'tenant');
  const bin = join(root, 'bin');
  mkdirSync(dir);
  mkdirSync(bin);
  writeFileSync(join(dir, '.env'), env, { mode: 0o640 });
  writeFileSync(join(dir, 'docker-compose.yml'), 'services: {}\n');
  writeFileSync(
    join(bin, 'docker'),
    `#!/bin/sh\n# double of the docker CLI: records its arguments\necho "$@" >> ${join(root, 'docker.log')}\n`,
  );
  chmodSync(join(bin, 'docker'), 0o755);
  const run = (script: { text: string }) =>
    spawnSync('sh', ['-c', script.text], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` } });
  /** The double answers `ps` with one container ID from now on: the stack runs. */
  const stackRuns = () =>
    writeFileSync(
      join(bin, 'docker'),
      `#!/bin/sh\n# double of the docker CLI: records its arguments; one container runs\necho "$@" >> ${join(root, 'docker.log')}\n[ "$1" != ps ] || echo 0123456789ab\n`,
    );
  const calls = () =>
    existsSync(join(root, 'docker.log'))
      ? readFileSync(join(root, 'docker.log'), 'utf8').trim().split('\n')
      : [];
  return { dir, run, calls, stackRuns };
}

describe('command strings', () => {
  test("the project label: the registry's project, or the directory name as Compose normalizes it", () => {
    expect(R.projectOf(tenant({ compose: { project: 'acme' } }))).toBe('acme');
    expect(R.projectOf(tenant({}, '/srv/Acme.Corp_1-x/'))).toBe('acmecorp_1-x');
  });

  test('compose v1 is looked up, not run, in preflight', () => {
    expect(
      R.prepare(tenant({ compose: { command: 'docker-compose' } }), { owner: '{}', leaseS: 3600 }).text,
    ).toContain('command -v docker-compose >/dev/null 2>&1 || exit 12');
  });

  const t = tenant({
    compose: { file: ['base.yml', 'prod.yml'], project: 'acme', services: ['web', 'worker'] },
  });

  test('pull: every image, then their IDs and digests', () => {
    expect(R.pullImages(t, ['ghcr.io/acme/app:v2']).text).toBe(
      "{ touch -c -- /srv/acme/.fleet/lock 2>/dev/null || :; } && docker pull -q ghcr.io/acme/app:v2 >/dev/null && docker image inspect --format '{{.Id}}|{{json .RepoDigests}}' ghcr.io/acme/app:v2",
    );
  });

  test('update: the compose files checked when they or .env (but its image variables) changed since their last check, an atomic .env switch (in a private directory, the values through the environment), then compose up with files, project and services', () => {
    const text = R.update(t, { APP_IMAGE: 'ghcr.io/acme/app:v2' }).text;
    expect(
      text.startsWith(
        "cd -- /srv/acme && { touch -c -- .fleet/lock 2>/dev/null || :; } && { sum=$({ printf '%s\\n' docker compose -f base.yml -f prod.yml -p acme; cat -- base.yml prod.yml; grep -vE '^(export[[:space:]]+)?(APP_IMAGE)=' .env; } 2>/dev/null | sha256sum) || sum=; " +
          'if [ -z "$sum" ] || [ "$sum" != "$(cat .fleet/compose-checked 2>/dev/null)" ]; then ' +
          "{ docker compose -f base.yml -f prod.yml -p acme config >/dev/null || { printf '%s\\n' 'the compose files of /srv/acme do not parse (docker compose config failed): nothing was changed' >&2; exit 30; }; echo @@compose-checked; " +
          '{ [ -z "$sum" ] || [ ! -d .fleet ] || { ( top=$(stat -c %d:%i .) && p=$(umask 077 && mktemp -d .fleet/.fleet-tmp.XXXXXX) || exit 1; cd -P -- "$p" 2>/dev/null && [ "$(stat -c %u:%a .)" = "$(id -u):700" ] && [ -z "$(ls -A)" ] && [ "$(stat -c %d:%i ../..)" = "$top" ] || { printf \'%s\\n\' \'fleet-deploy: refusing to write in .fleet: the private directory it made there was replaced (a link, or not its own): nothing was written\' >&2; exit 31; }; ' +
          'trap \'find . -mindepth 1 -delete 2>/dev/null; cd .. && rmdir -- "${p##*/}" 2>/dev/null\' EXIT; ' +
          '{ printf \'%s\\n\' "$sum" > new && mv -fT -- new ../compose-checked; } 2>/dev/null || : ) || exit $?; }; }; }; fi; } && ' +
          "{ [ ! -L .env ] || { printf '%s\\n' '.env in /srv/acme is a symbolic link: fleet-deploy replaces .env atomically and does not write through links; make it a regular file' >&2; exit 30; }; " +
          '{ ( top=$(stat -c %d:%i .) && p=$(umask 077 && mktemp -d ./.fleet-tmp.XXXXXX) || exit 1; cd -P -- "$p" 2>/dev/null && [ "$(stat -c %u:%a .)" = "$(id -u):700" ] && [ -z "$(ls -A)" ] && [ "$(stat -c %d:%i ..)" = "$top" ] || { printf \'%s\\n\' \'fleet-deploy: refusing to write in .: the private directory it made there was replaced (a link, or not its own): nothing was written\' >&2; exit 31; }; ' +
          'trap \'find . -mindepth 1 -delete 2>/dev/null; cd .. && rmdir -- "${p##*/}" 2>/dev/null\' EXIT; ' +
          "swapped=; for try in 1 2 3 4 5; do rm -f -- new old cur && ln -P -- ../.env old && { [ -f old ] && [ ! -L old ] || { printf '%s\\n' '.env was replaced by a link or a special file while it was being switched: fleet-deploy does not read or write through links; nothing was changed' >&2; { rm -f -- new old cur; exit 30; }; }; } && set -- $(cksum < old) && sum=\"$1 $2\" && size=$2 && FLEET_SET=APP_IMAGE=ghcr.io/acme/app:v2 awk 'BEGIN",
      ),
    ).toBe(true);
    expect(
      text.endsWith(
        `old > new && chmod "$(stat -c %a old)" new && { chown "$(stat -c %u:%g old)" new 2>/dev/null || :; } && ln -- new cur || { rm -f -- new old cur; exit 30; }; if [ ../.env -ef old ]; then mv -fT -- new ../.env || { rm -f -- new old cur; exit 30; }; if [ "$(head -c "$size" old | cksum)" = "$sum" ]; then tail -c +"$((size + 1))" old >> cur && swapped=yes; else mv -fT -- old ../.env; fi; fi; rm -f -- new old cur; [ -z "$swapped" ] || break; done; [ -n "$swapped" ] || { printf '%s\\n' '.env kept changing while it was being switched (another writer, five tries): nothing was changed' >&2; exit 30; } ) || exit $?; }; } && docker compose -f base.yml -f prod.yml -p acme up -d web worker`,
      ),
    ).toBe(true);
    expect(text).not.toContain('awk -v');
  });

  test('update with only: the changed services alone, without their dependencies', () => {
    expect(R.update(t, { APP_IMAGE: 'ghcr.io/acme/app:v2' }, { only: ['web', 'api'] }).text).toMatch(
      / && docker compose -f base\.yml -f prod\.yml -p acme up -d --no-deps web api$/,
    );
  });

  test('update refuses values that are not image references (they may come from a server)', () => {
    for (const bad of ['r/app:v2\nEVIL=1', 'r/app:v2; reboot', 'r/app:$(x)', 'r/app:v2\\n'])
      expect(() => R.update(t, { APP_IMAGE: bad })).toThrow('refusing to write');
    expect(() => R.update(t, { 'A B': 'r/app:v2' })).toThrow('refusing to write');
  });

  test("update with replace: the project's containers are removed by force, retried, before up -d", () => {
    expect(
      R.update(t, { APP_IMAGE: 'ghcr.io/acme/app:v1' }, { replace: { project: 'acme' } }).text,
    ).toContain(
      `nothing was changed' >&2; exit 30; } ) || exit $?; }; } && for try in 1 2 3 4 5; do ids=$(docker ps -aq --filter label=com.docker.compose.project=acme) || exit 1; [ -n "$ids" ] || break; docker rm -f $ids >/dev/null 2>&1 || sleep 1; done; [ -z "$(docker ps -aq --filter label=com.docker.compose.project=acme)" ] && docker compose`,
    );
  });

  test('podman compose uses podman for images; docker-compose v1 uses docker', () => {
    expect(R.pullImages(tenant({ compose: { command: 'podman-compose' } }), ['x/y:1']).text).toMatch(
      /\} && podman pull -q x\/y:1/,
    );
    expect(R.update(tenant({ compose: { command: 'docker-compose' } }), { A: 'x/y:1' }).text).toMatch(
      /&& docker-compose -f docker-compose.yml up -d $/,
    );
  });

  test("a compose file in a subdirectory: Compose is pointed at the tenant's .env, which it would not read", () => {
    const sub = tenant({ compose: { command: 'docker-compose', file: ['deploy/compose.yml', 'prod.yml'] } });
    expect(R.update(sub, { A: 'x/y:1' }).text).toMatch(
      /&& docker-compose -f deploy\/compose\.yml -f prod\.yml --env-file \.env up -d $/,
    );
    // the compose check and its fingerprint run the same command
    expect(R.update(sub, { A: 'x/y:1' }).text).toContain(
      'docker-compose -f deploy/compose.yml -f prod.yml --env-file .env config >/dev/null',
    );
    // not when the first file is the tenant directory's own (a later one may sit anywhere)
    const top = tenant({ compose: { command: 'docker-compose', file: ['compose.yml', 'extra/more.yml'] } });
    expect(R.update(top, { A: 'x/y:1' }).text).not.toContain('--env-file');
  });

  test('finish: only while the lock is ours — history line quoted whole, prune, unlock', () => {
    const entry = JSON.stringify({ note: "it's $(x)" });
    expect(
      R.finish(t, {
        token: 'abc123',
        history: entry,
        remove: ['ghcr.io/acme/app:v0', '--force', 'not a ref'],
      }).text,
    ).toBe(
      `cd -- /srv/acme && if grep -qF -- abc123 .fleet/lock/owner 2>/dev/null; then { printf '%s\\n' '{"note":"it'\\''s $(x)"}' >> .fleet/history.jsonl || echo '@@history-failed'; }; { docker image rm -- ghcr.io/acme/app:v0 >/dev/null 2>&1 || true; }; rm -rf -- .fleet/lock && echo '@@unlock released'; else echo '@@unlock not-ours'; fi`,
    );
  });

  test('a user command runs as its own shell with the version in its environment', () => {
    expect(
      R.runUserCommand(t, 'npm run migrate && echo "$FLEET_VERSION"', { FLEET_VERSION: 'v2' }).text,
    ).toBe(
      `cd -- /srv/acme && { touch -c -- .fleet/lock 2>/dev/null || :; } && FLEET_VERSION=v2 sh -c 'npm run migrate && echo "$FLEET_VERSION"'`,
    );
  });

  test('versions: a tag or a digest, nothing else', () => {
    expect(R.checkVersion('v1.2.3')).toBe('v1.2.3');
    expect(R.checkVersion(`sha256:${'a'.repeat(64)}`)).toMatch(/^sha256:/);
    for (const bad of ['v1;reboot', '$(x)', '', '-v', `sha256:${'a'.repeat(10)}`])
      expect(() => R.checkVersion(bad)).toThrow('--version');
    expect(R.imageRef({ variable: 'A', repository: 'r/app' }, `sha256:${'b'.repeat(64)}`)).toBe(
      `r/app@sha256:${'b'.repeat(64)}`,
    );
    expect(R.versionOf('reg:5000/a/b:v9')).toBe('v9');
    expect(R.versionOf('reg:5000/a/b')).toBe('latest');
    expect(R.versionOf(`a/b@sha256:${'c'.repeat(64)}`)).toBe(`sha256:${'c'.repeat(64)}`);
  });
});

describe('the registry login of the pull', () => {
  const t = tenant({ path: '/srv/acme' });
  const login = {
    logins: [
      { host: 'ghcr.io', username: 'bot' },
      { host: 'docker.io', username: 'hubuser' },
    ],
    keep: false,
  };

  test('registry hosts: the first component when it looks like a host, else Docker Hub', () => {
    expect(R.registryHost('ghcr.io/acme/app')).toBe('ghcr.io');
    expect(R.registryHost('127.0.0.1:5001/fleet/app')).toBe('127.0.0.1:5001');
    expect(R.registryHost('localhost/app')).toBe('localhost');
    expect(R.registryHost('acme/app')).toBe('docker.io');
    expect(R.registryHost('app')).toBe('docker.io');
  });

  test('the command line holds the user and the hosts, never a password: that comes on stdin', () => {
    expect(R.pullImages(t, ['ghcr.io/acme/app:v2'], login).text).toBe(
      "{ touch -c -- /srv/acme/.fleet/lock 2>/dev/null || :; } && tmp=$(umask 077; mktemp -d) || exit 1; trap 'rm -rf -- \"$tmp\"' EXIT; trap 'exit 129' HUP INT PIPE TERM; export DOCKER_CONFIG=\"$tmp\" REGISTRY_AUTH_FILE=\"$tmp/auth.json\"; { IFS= read -r pw && printf '%s\\n' \"$pw\" | docker login --username bot --password-stdin ghcr.io >/dev/null || { printf '%s\\n' 'registry login to ghcr.io as bot failed' >&2; exit 40; }; } && { IFS= read -r pw && printf '%s\\n' \"$pw\" | docker login --username hubuser --password-stdin docker.io >/dev/null || { printf '%s\\n' 'registry login to docker.io as hubuser failed' >&2; exit 40; }; } && docker pull -q ghcr.io/acme/app:v2 >/dev/null && docker image inspect --format '{{.Id}}|{{json .RepoDigests}}' ghcr.io/acme/app:v2",
    );
    // Kept: the engine's own config, no throwaway directory.
    expect(R.pullImages(t, ['ghcr.io/acme/app:v2'], { ...login, keep: true }).text).not.toContain('mktemp');
    // A hostile user name stays one quoted word.
    expect(
      R.pullImages(t, ['x/y:1'], { ...login, logins: [{ host: 'x', username: "a' b;$(id)" }] }).text,
    ).toContain("--username 'a'\\'' b;$(id)' --password-stdin");
  });

  /** A docker double that records its arguments, its DOCKER_CONFIG and what login read on stdin. */
  function loginWorkdir(loginExit = 0) {
    const w = workdir('APP_IMAGE=r/app:v1\n');
    const root = join(w.dir, '..');
    writeFileSync(
      join(root, 'bin', 'docker'),
      `#!/bin/sh
# double of the docker CLI: records its arguments, the config it was given and a login's stdin
echo "$@ config=$DOCKER_CONFIG auth=$REGISTRY_AUTH_FILE" >> ${join(root, 'docker.log')}
case "$1" in
  login) cat > "$DOCKER_CONFIG/stdin-$5"; ls -ld "$DOCKER_CONFIG" | cut -c1-10 >> ${join(root, 'docker.log')}; exit ${loginExit} ;;
  image) echo 'sha256:abc|["r/app@sha256:d1"]' ;;
esac
`,
    );
    return { ...w, root };
  }
  const runWithStdin = (root: string, script: { text: string }, stdin: string) =>
    spawnSync('sh', ['-c', script.text], {
      encoding: 'utf8',
      input: stdin,
      env: { PATH: `${join(root, 'bin')}:/usr/bin:/bin`, TMPDIR: root },
    });

  test('run by a real shell: each host gets the password from stdin, in a private config removed afterwards', () => {
    const w = loginWorkdir();
    const t2 = tenant({ path: w.dir });
    const r = runWithStdin(w.root, R.pullImages(t2, ['r/app:v2'], login), 'pa ss$(x)\nhub-token\n');
    expect([r.status, r.stderr]).toEqual([0, '']);
    const calls = w.calls();
    const config = /config=(\S+)/.exec(calls[0]!)![1]!;
    expect(config.startsWith(`${w.root}/tmp.`)).toBe(true);
    expect(calls).toEqual([
      `login --username bot --password-stdin ghcr.io config=${config} auth=${config}/auth.json`,
      'drwx------',
      `login --username hubuser --password-stdin docker.io config=${config} auth=${config}/auth.json`,
      'drwx------',
      `pull -q r/app:v2 config=${config} auth=${config}/auth.json`,
      expect.stringMatching(/^image inspect /),
    ]);
    // the throwaway config is gone, and with it what the logins stored
    expect(existsSync(config)).toBe(false);
  });

  test('each host reads its own password from stdin, byte for byte; a refused login stops with exit 40', () => {
    const w = loginWorkdir();
    const t2 = tenant({ path: w.dir });
    const keep = { ...login, keep: true };
    const config = join(w.root, 'kept');
    mkdirSync(config);
    const script = { text: `export DOCKER_CONFIG=${config}; ${R.pullImages(t2, ['r/app:v2'], keep).text}` };
    expect(runWithStdin(w.root, script, "pa ss'$(x) \\n\nhub token\n").status).toBe(0);
    expect(readFileSync(join(config, 'stdin-ghcr.io'), 'utf8')).toBe("pa ss'$(x) \\n\n");
    expect(readFileSync(join(config, 'stdin-docker.io'), 'utf8')).toBe('hub token\n');

    const refused = loginWorkdir(1);
    const r = runWithStdin(
      refused.root,
      R.pullImages(tenant({ path: refused.dir }), ['r/app:v2'], login),
      'x\ny\n',
    );
    expect([r.status, r.stderr]).toEqual([R.LOGIN_FAILED, 'registry login to ghcr.io as bot failed\n']);
    expect(refused.calls().filter((c) => c.startsWith('pull'))).toEqual([]);
    expect(readdirSync(refused.root).filter((f) => f.startsWith('tmp.'))).toEqual([]);
  });
});

describe('the .env switch, run by a real shell', () => {
  const ENV =
    '# the tenant\nexport APP_IMAGE="ghcr.io/acme/app:v1"\nOTHER_IMAGE=x/y:1\n\n# secrets\nTOKEN=s3cr=et\n';

  test('replaces the variables, keeps comments, order, export and other lines, and the file mode', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    const r = w.run(R.update(t, { APP_IMAGE: 'ghcr.io/acme/app:v2', NEW_IMAGE: 'n/m:2' }));
    expect(r.status).toBe(0);
    expect(readFileSync(join(w.dir, '.env'), 'utf8')).toBe(
      '# the tenant\nexport APP_IMAGE=ghcr.io/acme/app:v2\nOTHER_IMAGE=x/y:1\n\n# secrets\nTOKEN=s3cr=et\nNEW_IMAGE=n/m:2\n',
    );
    expect(statSync(join(w.dir, '.env')).mode & 0o777).toBe(0o640);
    expect(readdirSync(w.dir).sort()).toEqual(['.env', 'docker-compose.yml']);
    expect(w.calls()).toEqual([
      'compose -f docker-compose.yml config',
      'compose -f docker-compose.yml up -d',
    ]);
  });

  test('a missing .env makes the switch fail with exit 30 before compose starts anything', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    execFileSync('rm', [join(w.dir, '.env')]);
    const r = w.run(R.update(t, { APP_IMAGE: 'a/b:1' }));
    expect(r.status).toBe(R.SWITCH_FAILED);
    expect(w.calls()).toEqual(['compose -f docker-compose.yml config']); // only its files' check
    expect(readdirSync(w.dir)).toEqual(['docker-compose.yml']);
  });

  test('CRLF files stay CRLF; backslashes and other lines are kept byte for byte', () => {
    const w = workdir('A=1\r\nAPP_IMAGE=r/app:v1\r\nPASS=a\\nb\\\\c\r\n');
    const r = w.run(R.update(tenant({ path: w.dir }), { APP_IMAGE: 'r/app:v2', NEW_IMAGE: 'n/m:2' }));
    expect(r.status).toBe(0);
    expect(readFileSync(join(w.dir, '.env'), 'utf8')).toBe(
      'A=1\r\nAPP_IMAGE=r/app:v2\r\nPASS=a\\nb\\\\c\r\nNEW_IMAGE=n/m:2\r\n',
    );
  });

  test('a planted .env.fleet-* link is never written through; a .env that is a link is refused', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    const victim = join(w.dir, '..', 'victim');
    writeFileSync(victim, 'theirs\n');
    for (const name of ['.env.fleet-new', '.env.fleet-XXXXXX']) symlinkSync(victim, join(w.dir, name));
    expect(w.run(R.update(t, { APP_IMAGE: 'r/app:v2' })).status).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('theirs\n');
    expect(lstatSync(join(w.dir, '.env')).isSymbolicLink()).toBe(false);

    const w2 = workdir(ENV);
    const real = join(w2.dir, '..', 'real.env');
    writeFileSync(real, ENV);
    rmSync(join(w2.dir, '.env'));
    symlinkSync(real, join(w2.dir, '.env'));
    const r = w2.run(R.update(tenant({ path: w2.dir }), { APP_IMAGE: 'r/app:v2' }));
    expect(r.status).toBe(R.SWITCH_FAILED);
    expect(r.stderr).toContain('is a symbolic link');
    expect(readFileSync(real, 'utf8')).toBe(ENV);
    expect(w2.calls()).toEqual(['compose -f docker-compose.yml config']); // only its files' check
  });

  test('the compose check is remembered in .fleet by rename: a planted link there is replaced, never written through', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    const victim = join(w.dir, '..', 'victim');
    writeFileSync(victim, 'theirs\n');
    mkdirSync(join(w.dir, '.fleet'));
    symlinkSync(victim, join(w.dir, '.fleet', 'compose-checked'));
    const config = 'compose -f docker-compose.yml config';
    expect(w.run(R.update(t, { APP_IMAGE: 'r/app:v2' })).status).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('theirs\n');
    expect(lstatSync(join(w.dir, '.fleet', 'compose-checked')).isSymbolicLink()).toBe(false);
    expect(readdirSync(join(w.dir, '.fleet'))).toEqual(['compose-checked']); // the private directory is gone
    expect(w.calls().filter((c) => c === config)).toHaveLength(1);
    // Nothing the check reads changed (only the image variable): no second Compose process.
    expect(w.run(R.update(t, { APP_IMAGE: 'r/app:v3' })).status).toBe(0);
    expect(w.calls().filter((c) => c === config)).toHaveLength(1);
  });
});

describe("Compose v1 runs with the engine's API version the run asked for, not asking the engine again", () => {
  /** A tenant deployed with docker-compose, whose double records the API version it was given. */
  const v1 = (env: string) => {
    const w = workdir(env);
    const bin = join(w.dir, '..', 'bin');
    const log = join(w.dir, '..', 'compose.log');
    writeFileSync(
      join(bin, 'docker-compose'),
      `#!/bin/sh\n# double of docker-compose: records the API version it runs with\necho "api=\${COMPOSE_API_VERSION:-} $*" >> ${log}\n`,
    );
    chmodSync(join(bin, 'docker-compose'), 0o755);
    const t = tenant({ path: w.dir, compose: { command: 'docker-compose' } });
    const ups = () =>
      readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l.includes(' up -d'));
    return { ...w, t, ups };
  };

  test('the version given is exported for `up` (and only for Compose v1)', () => {
    const w = v1('APP_IMAGE=r/app:v1\n');
    expect(w.run(R.update(w.t, { APP_IMAGE: 'r/app:v2' }, { apiVersion: '1.41' })).status).toBe(0);
    expect(w.ups()).toEqual(['api=1.41 -f docker-compose.yml up -d']);
    expect(R.update(tenant(), { APP_IMAGE: 'r/app:v2' }, { apiVersion: '1.41' }).text).not.toContain(
      'COMPOSE_API_VERSION',
    );
    // none given (the engine's CLI did not say): Compose asks the engine itself, as before
    expect(w.run(R.update(w.t, { APP_IMAGE: 'r/app:v3' })).status).toBe(0);
    expect(w.ups()[1]).toBe('api= -f docker-compose.yml up -d');
  });

  test('an env file that names its own engine or API version (however written), or a session with its own version or docker context, is left to Compose', () => {
    for (const own of [
      'DOCKER_HOST=unix:///run/user/1000/podman.sock',
      ' export DOCKER_HOST = tcp://10.0.0.2:2375',
      '\ufeffDOCKER_HOST=ssh://deploy@other',
      'COMPOSE_API_VERSION=1.40',
    ]) {
      const w = v1(`APP_IMAGE=r/app:v1\n${own}\n`);
      expect(w.run(R.update(w.t, { APP_IMAGE: 'r/app:v2' }, { apiVersion: '1.41' })).status).toBe(0);
      expect(w.ups()).toEqual(['api= -f docker-compose.yml up -d']);
    }
    const w = v1('APP_IMAGE=r/app:v1\n');
    const script = R.update(w.t, { APP_IMAGE: 'r/app:v2' }, { apiVersion: '1.41' });
    const r = spawnSync('sh', ['-c', script.text], {
      encoding: 'utf8',
      env: { PATH: `${join(w.dir, '..', 'bin')}:/usr/bin:/bin`, COMPOSE_API_VERSION: '1.39' },
    });
    expect(r.status).toBe(0);
    expect(w.ups()).toEqual(['api=1.39 -f docker-compose.yml up -d']);
    // DOCKER_CONTEXT in the session: the engine's CLI follows it, Compose v1 does not
    const inContext = spawnSync('sh', ['-c', script.text], {
      encoding: 'utf8',
      env: { PATH: `${join(w.dir, '..', 'bin')}:/usr/bin:/bin`, DOCKER_CONTEXT: 'other' },
    });
    expect(inContext.status).toBe(0);
    expect(w.ups()[1]).toBe('api= -f docker-compose.yml up -d');
  });

  test("blue-green: a slot's `up` runs with it unless the slot's env file names an engine of its own", () => {
    const t1 = tenant({ compose: { command: 'docker-compose' } });
    const port = { variable: 'APP_PORT', value: 8081 };
    const text = startSlot(t1, 'green', 'acme-green', { APP_IMAGE: 'r/app:v2' }, port, '1.41').text;
    expect(text).toMatch(
      /grep -qsE '[^']+' \.fleet\/slots\/green\.env; then export COMPOSE_API_VERSION=1\.41; fi; } && docker-compose /,
    );
    expect(startSlot(t1, 'green', 'acme-green', { APP_IMAGE: 'r/app:v2' }, port).text).not.toContain(
      'COMPOSE_API_VERSION',
    );
  });

  test('what the engine printed is taken only when it is an API version; a bad one never reaches a script', () => {
    expect(R.parseApiVersion('1.41\n')).toBe('1.41');
    for (const bad of ['', '1.41; reboot', '1.41\n1.40', 'v1.41', '1.4100000', '$(x)'])
      expect(R.parseApiVersion(bad)).toBeUndefined();
    const t1 = tenant({ compose: { command: 'docker-compose' } });
    expect(() => R.update(t1, { APP_IMAGE: 'r/app:v2' }, { apiVersion: '1.41; reboot' })).toThrow(
      'not an engine API version',
    );
  });
});

describe("the engine's API version, asked by a real shell: the ping's header, else the engine's CLI", () => {
  // Stands in for the engine's Docker API on a Unix socket (a double, named so here; the e2e tests ask
  // the real engine): GET /_ping answers with the `Api-Version` header the engine sends, or without it.
  let engine: Server;
  let sock: string;
  let header: string | undefined = '1.43';
  const pings: string[] = [];
  let root: string;
  let bin: string;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fd-api-'));
    roots.push(root);
    sock = join(root, 'engine.sock');
    bin = join(root, 'bin');
    mkdirSync(bin);
    // doubles of the docker CLI (answers 1.40) and a recording wrapper around the real curl
    writeFileSync(join(bin, 'docker'), `#!/bin/sh\necho "docker $*" >> ${root}/calls\necho 1.40\n`);
    const curl = execFileSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).trim();
    writeFileSync(join(bin, 'curl'), `#!/bin/sh\necho "curl $*" >> ${root}/calls\nexec ${curl} "$@"\n`);
    chmodSync(join(bin, 'docker'), 0o755);
    chmodSync(join(bin, 'curl'), 0o755);
    engine = createServer((req, res) => {
      pings.push(`${req.method} ${req.url}`);
      if (header !== undefined) res.setHeader('Api-Version', header);
      res.end('OK');
    });
    await new Promise<void>((done) => engine.listen(sock, done));
  });
  afterAll(() => new Promise<void>((done) => engine.close(() => done())));

  const script = R.engineApiVersion(tenant({ compose: { command: 'docker-compose' } })).text;
  /** Runs the ask in a real shell (asynchronously: the engine double answers in this process). */
  const ask = (env: Record<string, string>, path = `${bin}:/usr/bin:/bin`, shell = ['/bin/sh', 'set -u']) =>
    new Promise<{ out: string; calls: string[] }>((done, fail) => {
      rmSync(join(root, 'calls'), { force: true });
      const [sh, opts] = shell as [string, string];
      const p = spawn(sh, ['-c', `${opts}; ${script}`], { env: { PATH: path, HOME: root, ...env } });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d));
      p.on('error', fail);
      p.on('close', () => {
        const log = join(root, 'calls');
        const calls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
        done({ out, calls: calls.map((c) => c.replace(/^(\S+) .*?(\S+)$/, '$1 … $2')) });
      });
    });

  test('a unix:// DOCKER_HOST: one GET /_ping on that socket, and its Api-Version header; the CLI is not run', async () => {
    pings.length = 0;
    const r = await ask({ DOCKER_HOST: `unix://${sock}` });
    expect(R.parseApiVersion(r.out)).toBe('1.43');
    expect(pings).toEqual(['GET /_ping']);
    expect(r.calls).toEqual(['curl … http://engine/_ping']);
  });

  test('no Api-Version header, or no curl: the engine CLI answers', async () => {
    header = undefined;
    try {
      const r = await ask({ DOCKER_HOST: `unix://${sock}` });
      expect(R.parseApiVersion(r.out)).toBe('1.40');
      expect(r.calls).toEqual(['curl … http://engine/_ping', 'docker … {{.Server.APIVersion}}']);
    } finally {
      header = '1.43';
    }
    // a PATH with the shell's tools and the docker double, but no curl
    const noCurl = join(root, 'no-curl');
    mkdirSync(noCurl);
    for (const tool of ['grep', 'sed', 'tr']) {
      const at = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
      symlinkSync(at, join(noCurl, tool));
    }
    symlinkSync(join(bin, 'docker'), join(noCurl, 'docker'));
    const r = await ask({ DOCKER_HOST: `unix://${sock}` }, noCurl);
    expect(R.parseApiVersion(r.out)).toBe('1.40');
    expect(r.calls).toEqual(['docker … {{.Server.APIVersion}}']);
  });

  test('a TCP host or a current context is left to the CLI; with neither, the default socket is pinged', async () => {
    expect((await ask({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).calls).toEqual([
      'docker … {{.Server.APIVersion}}',
    ]);
    const config = join(root, 'docker-config');
    mkdirSync(config);
    writeFileSync(join(config, 'config.json'), '{"currentContext":"remote"}\n');
    expect((await ask({ DOCKER_CONFIG: config })).calls).toEqual(['docker … {{.Server.APIVersion}}']);
    // DOCKER_CONFIG without a config file: docker-py falls back to ~/.docker/config.json, and so does the ask
    mkdirSync(join(root, '.docker'));
    writeFileSync(join(root, '.docker', 'config.json'), '{"currentContext":"remote"}\n');
    expect((await ask({ DOCKER_CONFIG: join(root, 'empty') })).calls).toEqual([
      'docker … {{.Server.APIVersion}}',
    ]);
    rmSync(join(root, '.docker'), { recursive: true });
    const none = await ask({});
    expect(none.calls[0]).toBe('curl … http://engine/_ping');
    expect(readFileSync(join(root, 'calls'), 'utf8')).toContain('--unix-socket /var/run/docker.sock ');
  });

  test('a header that is not a version is left to the CLI; the same under bash with set -e and pipefail', async () => {
    header = 'latest';
    try {
      const r = await ask({ DOCKER_HOST: `unix://${sock}` });
      expect([R.parseApiVersion(r.out), r.calls.length]).toEqual(['1.40', 2]);
    } finally {
      header = '1.43';
    }
    const strict = ['/bin/bash', 'set -euo pipefail'];
    expect(R.parseApiVersion((await ask({ DOCKER_HOST: `unix://${sock}` }, undefined, strict)).out)).toBe(
      '1.43',
    );
    // the socket is gone: curl fails inside the pipeline, and the CLI still answers
    const gone = await ask({ DOCKER_HOST: `unix://${join(root, 'gone.sock')}` }, undefined, strict);
    expect([R.parseApiVersion(gone.out), gone.calls]).toEqual([
      '1.40',
      ['curl … http://engine/_ping', 'docker … {{.Server.APIVersion}}'],
    ]);
  });
});

describe('the Compose project, derived on the server as Compose does', () => {
  const project = (
    env: string,
    extra: Record<string, unknown> = {},
    compose = 'services: {}\n',
    vars = {},
  ) => {
    const w = workdir(env);
    writeFileSync(join(w.dir, 'docker-compose.yml'), compose);
    const script = R.prepare(tenant({ path: w.dir, ...extra }), { owner: '{}', leaseS: 3600 }).text;
    const r = spawnSync('sh', ['-c', script], {
      encoding: 'utf8',
      env: { PATH: `${join(w.dir, '..', 'bin')}:/usr/bin:/bin`, ...vars },
    });
    return R.parsePrepared(r.stdout).project;
  };
  test("the registry's project first", () => {
    expect(project('COMPOSE_PROJECT_NAME=other\n', { compose: { project: 'acme' } })).toBe('acme');
  });
  test('then COMPOSE_PROJECT_NAME of the session, then of .env', () => {
    expect(
      project('COMPOSE_PROJECT_NAME=from-env\n', {}, undefined, { COMPOSE_PROJECT_NAME: 'Session_1' }),
    ).toBe('session_1');
    expect(project('A=1\nexport COMPOSE_PROJECT_NAME="My.Project"\r\n')).toBe('myproject');
  });
  test("then the compose file's top-level name:", () => {
    expect(project('A=1\n', {}, 'name: shop-eu\nservices: {}\n')).toBe('shop-eu');
    expect(project('A=1\n', {}, 'name: "shop-eu" # the EU shop\nservices:\n  a:\n    name: x\n')).toBe(
      'shop-eu',
    );
  });

  /**
   * .env lines and the project Compose v1 (python-dotenv; checked against Compose v1 itself below) and
   * Compose v2 (compose-go's dotenv: an unquoted value ends at " #" only; `KEY: value` taken) make of them.
   */
  const ENV_CASES: Array<[line: string, v1: string, v2: string]> = [
    ['COMPOSE_PROJECT_NAME=acme # the tenant', 'acme', 'acme'],
    ['COMPOSE_PROJECT_NAME=acme\t# a tab before the comment', 'acme', 'acmeatabbeforethecomment'],
    ['COMPOSE_PROJECT_NAME = acme', 'acme', 'acme'],
    ['  export  COMPOSE_PROJECT_NAME="Acme_Prod" # quoted, then a comment', 'acme_prod', 'acme_prod'],
    ["COMPOSE_PROJECT_NAME='x#y'", 'xy', 'xy'],
    ['COMPOSE_PROJECT_NAME=acme#1', 'acme1', 'acme1'],
    ['COMPOSE_PROJECT_NAME=a b  ', 'ab', 'ab'],
    ['COMPOSE_PROJECT_NAME=first\nCOMPOSE_PROJECT_NAME=second', 'second', 'second'],
    ['#COMPOSE_PROJECT_NAME=old\nA=1', 'tenant', 'tenant'],
    ['COMPOSE_PROJECT_NAME=', 'tenant', 'tenant'],
    ['COMPOSE_PROJECT_NAME: acme', 'tenant', 'acme'],
  ];
  const envText = (line: string) => `\uFEFFA=1\r\n${line}\r\n`; // a byte order mark, CRLF lines
  const v1 = { compose: { command: 'docker-compose' } };
  const v2 = { compose: { command: 'docker compose' } };
  test.each(ENV_CASES)('.env %j: Compose v1 makes the project %j, v2 %j', (line, p1, p2) => {
    expect(project(envText(line), v1)).toBe(p1);
    expect(project(envText(line), v2)).toBe(p2);
  });
  test('a byte order mark before the first line is no part of its key', () => {
    expect(project('\uFEFFCOMPOSE_PROJECT_NAME=bom\n', v1)).toBe('bom');
    expect(project('\uFEFFCOMPOSE_PROJECT_NAME=bom\n', v2)).toBe('bom');
  });

  // Compose v1's own reading (python-dotenv, then its get_project_name), where it is installed
  const composeV1 = spawnSync('/usr/bin/python3', ['-c', 'import compose.cli.command'], { stdio: 'ignore' });
  (composeV1.status === 0 ? test : test.skip)('the v1 column above is what Compose v1 itself derives', () => {
    const cases = [
      ...ENV_CASES.map(([line, p1]) => [envText(line), p1]),
      ['\uFEFFCOMPOSE_PROJECT_NAME=bom\n', 'bom'],
    ];
    for (const [text, expected] of cases) {
      const w = workdir(text!);
      const r = spawnSync(
        '/usr/bin/python3',
        ['-c', 'from compose.cli.command import get_project_name as p; print(p("."))'],
        { cwd: w.dir, encoding: 'utf8' },
      );
      expect([text, r.stdout.trim()]).toEqual([text, expected]);
    }
  });
  test('else the directory of the compose file, normalized', () => {
    expect(project('A=1\n')).toBe('tenant');
  });
  test('a hostile value is cut down to a project name, never run', () => {
    const w = project('COMPOSE_PROJECT_NAME=$(touch /tmp/fd-pwned)`id`;x\n');
    expect(w).toBe('touchtmpfd-pwnedidx');
    expect(existsSync('/tmp/fd-pwned')).toBe(false);
  });
});

describe('prepare, run by a real shell', () => {
  const ENV = 'APP_IMAGE=ghcr.io/acme/app:v1\n';
  const owner = (token: string) => JSON.stringify({ token, run: 'r1' });

  test('checks, takes the lock, reads .env, running image IDs, images and history', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    const r = w.run(R.prepare(t, { owner: owner('t1'), leaseS: 3600 }));
    expect(r.status).toBe(0);
    const p = R.parsePrepared(r.stdout);
    expect(p.env).toEqual({ APP_IMAGE: 'ghcr.io/acme/app:v1' });
    expect(p.freeMb).toBeGreaterThan(0);
    expect(p.lock).toBeUndefined();
    expect(readFileSync(join(w.dir, '.fleet/lock/owner'), 'utf8')).toBe(`${owner('t1')}\n`);
    // No Compose process at all (Compose v1 costs ~0.4 s of CPU a run): the engine answers by label.
    expect(w.calls()).toEqual(['compose version', 'ps -aq --filter label=com.docker.compose.project=tenant']);
  });

  test('a held lock exits 20 with its owner and age, and is left alone', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    expect(w.run(R.prepare(t, { owner: owner('first'), leaseS: 3600 })).status).toBe(0);
    const r = w.run(R.prepare(t, { owner: owner('second'), leaseS: 3600 }));
    expect(r.status).toBe(R.LOCK_HELD);
    expect(R.parsePrepared(r.stdout).lock).toEqual({
      owner: owner('first'),
      ageS: expect.any(Number),
      leaseLeftS: expect.any(Number),
    });
    expect(readFileSync(join(w.dir, '.fleet/lock/owner'), 'utf8')).toBe(`${owner('first')}\n`);
  });

  test('a lease past its second is taken over, with the old owner and its switch note; a live one is not', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    expect(w.run(R.prepare(t, { owner: owner('gone'), leaseS: 3600 })).status).toBe(0);
    expect(Number(readFileSync(join(w.dir, '.fleet/lock/lease'), 'utf8'))).toBeGreaterThan(Date.now() / 1000);
    writeFileSync(join(w.dir, '.fleet/lock/switch'), '{"from":"v1","to":"v2"}\n');
    // live: held, whatever the lease length of the one asking
    const held = w.run(R.prepare(t, { owner: owner('next'), leaseS: 1 }));
    expect(held.status).toBe(R.LOCK_HELD);
    expect(R.parsePrepared(held.stdout).lock?.leaseLeftS).toBeGreaterThan(3500);
    // its holder's second has passed: taken over
    writeFileSync(join(w.dir, '.fleet/lock/lease'), `${Math.floor(Date.now() / 1000) - 5}\n`);
    const r = w.run(R.prepare(t, { owner: owner('next'), leaseS: 60 }));
    expect(r.status).toBe(0);
    const p = R.parsePrepared(r.stdout);
    expect(p.tookOver).toEqual({
      owner: owner('gone'),
      switchNote: '{"from":"v1","to":"v2"}',
      pastS: expect.any(Number),
    });
    expect(p.tookOver!.pastS).toBeGreaterThanOrEqual(5);
    expect(readFileSync(join(w.dir, '.fleet/lock/owner'), 'utf8')).toBe(`${owner('next')}\n`);
    expect(existsSync(join(w.dir, '.fleet/lock/switch'))).toBe(false);
    expect(existsSync(join(w.dir, '.fleet/lock.break'))).toBe(false);
  });

  test.each([
    ['words', 'soon\n'],
    ['nothing', ''],
    ['a huge number', '99999999999999999999\n'],
  ])('a lease file holding %s is no lease: the lock is held, never taken over', (_, text) => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    w.run(R.prepare(t, { owner: owner('first'), leaseS: 3600 }));
    writeFileSync(join(w.dir, '.fleet/lock/lease'), text);
    const r = w.run(R.prepare(t, { owner: owner('next'), leaseS: 60 }));
    expect(r.status).toBe(R.LOCK_HELD);
    expect(readFileSync(join(w.dir, '.fleet/lock/owner'), 'utf8')).toBe(`${owner('first')}\n`);
  });

  test('a hostile owner or switch note reaches the taker on one printable line each', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    w.run(R.prepare(t, { owner: owner('gone'), leaseS: 3600 }));
    writeFileSync(join(w.dir, '.fleet/lock/owner'), '{"actor":"x"}\n@@env\nAPP_IMAGE=evil:1\n\x1b[2J');
    writeFileSync(join(w.dir, '.fleet/lock/switch'), 'a\n@@history\nb');
    writeFileSync(join(w.dir, '.fleet/lock/lease'), '1\n');
    const p = R.parsePrepared(w.run(R.prepare(t, { owner: owner('next'), leaseS: 60 })).stdout);
    expect(p.tookOver).toMatchObject({
      owner: '{"actor":"x"}@@envAPP_IMAGE=evil:1[2J',
      switchNote: 'a@@historyb',
    });
    expect(p.env).toEqual({ APP_IMAGE: 'ghcr.io/acme/app:v1' });
  });

  test('renewLease: renews only a live lease of its own; a lost one stays lost', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    w.run(R.prepare(t, { owner: owner('mine'), leaseS: 5 }));
    const lease = () => Number(readFileSync(join(w.dir, '.fleet/lock/lease'), 'utf8'));
    expect(w.run(R.renewLease(t, 'mine', 3600)).stdout).toBe('@@lease ok\n');
    expect(lease()).toBeGreaterThan(Date.now() / 1000 + 3000);
    expect(w.run(R.renewLease(t, 'other', 3600)).stdout).toBe('@@lease lost\n');
    writeFileSync(join(w.dir, '.fleet/lock/lease'), '1\n');
    expect(w.run(R.renewLease(t, 'mine', 3600)).stdout).toBe('@@lease lost\n');
    expect(lease()).toBe(1);
    mkdirSync(join(w.dir, '.fleet/lock.break'));
    expect(w.run(R.renewLease(t, 'mine', 3600)).stdout).toBe('@@lease busy\n');
  });

  test('a stale lock is broken only past the given age', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    w.run(R.prepare(t, { owner: owner('crashed'), leaseS: 3600 }));
    expect(w.run(R.prepare(t, { owner: owner('next'), leaseS: 3600, breakAfterS: 3600 })).status).toBe(
      R.LOCK_HELD,
    );
    const r = w.run(R.prepare(t, { owner: owner('next'), leaseS: 3600, breakAfterS: 0 }));
    expect(r.status).toBe(0);
    expect(R.parsePrepared(r.stdout).brokeStale).toBe(owner('crashed'));
    expect(readFileSync(join(w.dir, '.fleet/lock/owner'), 'utf8')).toBe(`${owner('next')}\n`);
  });

  test.each([
    ['an absolute tenant path', (dir: string) => dir],
    ['a tenant path relative to the login directory', () => 'tenant'],
  ])('with %s, every later round trip of the holder keeps its lock fresh', (_, pathOf) => {
    const w = workdir(ENV);
    const home = join(w.dir, '..'); // where an SSH session starts
    const t = tenant({ path: pathOf(w.dir) });
    const run = (script: { text: string }) =>
      spawnSync('sh', ['-c', script.text], {
        cwd: home,
        encoding: 'utf8',
        env: { PATH: `${join(home, 'bin')}:/usr/bin:/bin` },
      });
    expect(run(R.prepare(t, { owner: owner('working'), leaseS: 3600 })).status).toBe(0);
    const lock = join(w.dir, '.fleet/lock');
    const ageS = () => (Date.now() - statSync(lock).mtimeMs) / 1000;
    const longAgo = new Date(Date.now() - 2 * 3600_000);
    for (const step of [
      R.pullImages(t, ['ghcr.io/acme/app:v2']),
      R.update(t, { APP_IMAGE: 'ghcr.io/acme/app:v2' }),
      R.runUserCommand(t, 'true', {}),
      R.containerHealth(t),
    ]) {
      utimesSync(lock, longAgo, longAgo);
      expect(ageS()).toBeGreaterThan(3600);
      run(step);
      expect(ageS()).toBeLessThan(60);
    }
    // a deploy that would break locks older than an hour finds this one held
    expect(run(R.prepare(t, { owner: owner('next'), leaseS: 3600, breakAfterS: 3600 })).status).toBe(
      R.LOCK_HELD,
    );
    // and a touch never brings back a lock that is gone
    run(R.finish(t, { token: 'working' }));
    run(R.update(t, { APP_IMAGE: 'ghcr.io/acme/app:v3' }));
    expect(existsSync(lock)).toBe(false);
  });

  test('a breaking lock left by a breaker that died (a minute old) does not block breaking for good', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    w.run(R.prepare(t, { owner: owner('crashed'), leaseS: 3600 }));
    const leftover = join(w.dir, '.fleet/lock.break');
    mkdirSync(leftover);
    const old = new Date(Date.now() - 120_000);
    utimesSync(leftover, old, old);
    const r = w.run(R.prepare(t, { owner: owner('next'), leaseS: 3600, breakAfterS: 0 }));
    expect(r.status).toBe(0);
    expect(R.parsePrepared(r.stdout).brokeStale).toBe(owner('crashed'));
    expect(existsSync(leftover)).toBe(false);
  });

  test('a stale lock that another deploy is breaking right now is left to it', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    w.run(R.prepare(t, { owner: owner('crashed'), leaseS: 3600 }));
    mkdirSync(join(w.dir, '.fleet/lock.break')); // the other breaker's turn
    const r = w.run(R.prepare(t, { owner: owner('late'), leaseS: 3600, breakAfterS: 0 }));
    expect(r.status).toBe(R.LOCK_HELD);
    expect(R.parsePrepared(r.stdout).lock?.owner).toBe(owner('crashed'));
    expect(readFileSync(join(w.dir, '.fleet/lock/owner'), 'utf8')).toBe(`${owner('crashed')}\n`);
  });

  test('deploys that find the same lock stale at once: exactly one breaks and takes it', async () => {
    for (let round = 0; round < 10; round++) {
      const w = workdir(ENV);
      const t = tenant({ path: w.dir });
      w.run(R.prepare(t, { owner: owner('crashed'), leaseS: 3600 }));
      const old = new Date(Date.now() - 3600_000);
      utimesSync(join(w.dir, '.fleet/lock'), old, old);
      const codes = await Promise.all(
        ['a', 'b', 'c', 'd'].map(
          (who) =>
            new Promise<[string, number | null]>((done) => {
              const p = spawn(
                'sh',
                ['-c', R.prepare(t, { owner: owner(who), leaseS: 3600, breakAfterS: 60 }).text],
                {
                  env: { PATH: `${join(w.dir, '../bin')}:/usr/bin:/bin` },
                  stdio: 'ignore',
                },
              );
              p.on('close', (code) => done([who, code]));
            }),
        ),
      );
      const winners = codes.filter(([, c]) => c === 0).map(([who]) => who);
      expect(winners).toHaveLength(1);
      expect(codes.filter(([, c]) => c === R.LOCK_HELD)).toHaveLength(3);
      expect(readFileSync(join(w.dir, '.fleet/lock/owner'), 'utf8')).toBe(`${owner(winners[0]!)}\n`);
      expect(existsSync(join(w.dir, '.fleet/lock.break'))).toBe(false);
    }
  });

  test.each([
    [
      'no directory',
      (w: ReturnType<typeof workdir>) => execFileSync('rm', ['-r', w.dir]),
      R.PREFLIGHT.noDirectory,
    ],
    [
      'no compose file',
      (w: ReturnType<typeof workdir>) => execFileSync('rm', [join(w.dir, 'docker-compose.yml')]),
      R.PREFLIGHT.noComposeFile,
    ],
    [
      'no .env',
      (w: ReturnType<typeof workdir>) => execFileSync('rm', [join(w.dir, '.env')]),
      R.PREFLIGHT.noEnvFile,
    ],
  ])('%s: its own exit code, and no lock taken', (_, breakIt, code) => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    breakIt(w);
    const r = w.run(R.prepare(t, { owner: owner('x'), leaseS: 3600 }));
    expect(r.status).toBe(code);
    expect(existsSync(join(w.dir, '.fleet/lock'))).toBe(false);
  });

  test('finish releases our lock, not another one', () => {
    const w = workdir(ENV);
    const t = tenant({ path: w.dir });
    w.run(R.prepare(t, { owner: owner('mine'), leaseS: 3600 }));
    expect(w.run(R.finish(t, { token: 'other', history: '{"b":2}' })).stdout).toBe('@@unlock not-ours\n');
    expect(existsSync(join(w.dir, '.fleet/lock'))).toBe(true);
    expect(existsSync(join(w.dir, '.fleet/history.jsonl'))).toBe(false); // not ours: nothing written
    const r = w.run(R.finish(t, { token: 'mine', history: '{"a":1}' }));
    expect(r.stdout).toBe('@@unlock released\n');
    expect(existsSync(join(w.dir, '.fleet/lock'))).toBe(false);
    expect(readFileSync(join(w.dir, '.fleet/history.jsonl'), 'utf8')).toBe('{"a":1}\n');
  });

  test('parsePrepared reads every section', () => {
    const p = R.parsePrepared(
      [
        'free_kb=2048000',
        '@@env',
        'APP_IMAGE=r/a:v1',
        'export B_IMAGE="r/b:v1"',
        '@@running',
        'abc',
        'sha256:abc',
        'def',
        '@@history',
        '{"x":1}',
        '@@end',
      ].join('\n'),
    );
    expect(p).toEqual({
      freeMb: 2000,
      env: { APP_IMAGE: 'r/a:v1', B_IMAGE: 'r/b:v1' },
      running: ['sha256:abc', 'sha256:def'],
      containers: [],
      history: ['{"x":1}'],
    });
  });

  test('parsePrepared: each container with its state; stopped ones run no image; server text checked', () => {
    const p = R.parsePrepared(
      [
        '@@running',
        'sha256:aaa running 0123456789ab',
        'sha256:bbb paused 123456789abc',
        'sha256:ccc exited 23456789abcd',
        'sha256:ddd running $(reboot)',
        '@@history',
      ].join('\n'),
    );
    expect(p.running).toEqual(['sha256:aaa', 'sha256:bbb', 'sha256:ddd']);
    expect(p.containers).toEqual([
      { id: '0123456789ab', state: 'running' },
      { id: '123456789abc', state: 'paused' },
      { id: '23456789abcd', state: 'stopped' },
    ]);
  });

  test.each([
    [[], undefined],
    [['paused', 'paused'], 'paused'],
    [['paused', 'stopped'], 'stopped'],
    [['stopped'], 'stopped'],
    [['paused', 'running'], undefined],
    [['restarting'], undefined],
  ] as const)('hibernationOf %j is %s', (states, expected) => {
    expect(R.hibernationOf(states.map((state) => ({ state })))).toBe(expected);
  });

  test('configHashOf: one service its label; several a hash of the sorted labels; non-hashes ignored', () => {
    const h1 = 'a'.repeat(64);
    const h2 = 'b'.repeat(64);
    expect(R.configHashOf([h1, h1, 'junk'])).toBe(h1);
    expect(R.configHashOf([])).toBeUndefined();
    expect(R.configHashOf([h2, h1])).toBe(R.configHashOf([h1, h2]));
    expect(R.configHashOf([h2, h1])).toMatch(/^[a-f0-9]{64}$/);
    expect(R.configHashOf([h2, h1])).not.toBe(h1);
    expect(R.parseConfigHash(`Creating x\n@@confighash\n${h1}\n`)).toBe(h1);
    expect(R.parseConfigHash('no marker')).toBeUndefined();
  });
});

describe("backup and restore: the dump commands run with the tenant's Compose files and project", () => {
  test('a plain `docker compose exec` in dump.command and dump.restore reaches the deploy’s project', () => {
    const { dir, run, stackRuns } = workdir('APP_IMAGE=r/app:v1\n');
    /** The database dump in the backup `id` (what the dump command printed). */
    const dumpOf = (id: string) =>
      execFileSync('tar', ['-xzOf', join(dir, '.fleet', 'backups', `${id}.tar.gz`), '.fleet/dump/db.sql'], {
        encoding: 'utf8',
      });
    stackRuns();
    writeFileSync(join(dir, 'base.yml'), 'services: {}\n');
    writeFileSync(join(dir, 'prod.yml'), 'services: {}\n');
    const seen = 'printf "%s|%s\\n" "$COMPOSE_FILE" "${COMPOSE_PROJECT_NAME-unset}"';
    const t = tenant(
      {
        compose: { file: ['base.yml', 'prod.yml'], project: 'acme' },
        backup: {
          keepDays: 7,
          dump: { command: seen, restore: `cat > loaded.txt && ${seen} >> loaded.txt`, file: 'db.sql' },
        },
      },
      dir,
    );
    const id = backupId(new Date('2024-05-01T12:00:00Z'));
    const taken = run(backup(t, id));
    expect([taken.status, taken.stderr]).toEqual([0, '']);
    expect(dumpOf(id)).toBe('base.yml:prod.yml|acme\n');
    const restored = run(
      restore(t, id, { keepAs: backupId(new Date(), 'pre-restore'), database: true, up: false, owner: '{}' }),
    );
    expect([restored.status, restored.stderr]).toEqual([0, '']);
    expect(readFileSync(join(dir, 'loaded.txt'), 'utf8')).toBe(
      'base.yml:prod.yml|acme\nbase.yml:prod.yml|acme\n',
    );
    // without compose.project, Compose derives the project itself (as the deploy does): nothing is set
    const derived = tenant({ backup: { keepDays: 7, dump: { command: seen, file: 'db.sql' } } }, dir);
    const id2 = backupId(new Date('2024-05-01T13:00:00Z'));
    expect(run(backup(derived, id2)).status).toBe(0);
    expect(dumpOf(id2)).toBe('docker-compose.yml|unset\n');
    // a compose file in a subdirectory: the project the deploy's Compose derives from the tenant's .env,
    // not the one Compose would derive from the subdirectory's
    mkdirSync(join(dir, 'deploy'));
    writeFileSync(join(dir, 'deploy', 'compose.yml'), 'services: {}\n');
    writeFileSync(join(dir, '.env'), 'APP_IMAGE=r/app:v1\nCOMPOSE_PROJECT_NAME=Acme-Prod\n');
    const sub = tenant(
      {
        compose: { file: 'deploy/compose.yml' },
        backup: { keepDays: 7, dump: { command: seen, file: 'db.sql' } },
      },
      dir,
    );
    const id3 = backupId(new Date('2024-05-01T14:00:00Z'));
    expect(run(backup(sub, id3)).status).toBe(0);
    expect(dumpOf(id3)).toBe('deploy/compose.yml|acme-prod\n');
  });
});

test('a files-only restore works while the database is down: its pre-restore copy has no dump', () => {
  const { dir, run, stackRuns } = workdir('APP_IMAGE=r/app:v1\n');
  const dumpOk = tenant({ backup: { keepDays: 7, dump: { command: 'echo rows', file: 'db.sql' } } }, dir);
  const id = backupId(new Date('2024-05-01T12:00:00Z'));
  expect(run(backup(dumpOk, id)).status).toBe(0);
  // the stack is down now: the dump command fails
  const down = tenant({ backup: { keepDays: 7, dump: { command: 'exit 1', file: 'db.sql' } } }, dir);
  writeFileSync(join(dir, '.env'), 'APP_IMAGE=broken\n');
  const keepAs = backupId(new Date('2024-05-02T12:00:00Z'), 'pre-restore');
  const r = run(restore(down, id, { keepAs, database: false, up: false, owner: '{}' }));
  expect([r.status, r.stderr]).toEqual([0, '']);
  expect(readFileSync(join(dir, '.env'), 'utf8')).toBe('APP_IMAGE=r/app:v1\n');
  const kept = join(dir, '.fleet', 'backups', `${keepAs}.tar.gz`);
  expect(execFileSync('tar', ['-tzf', kept], { encoding: 'utf8' }).trim().split('\n').sort()).toEqual([
    '.env',
    'docker-compose.yml',
  ]);
  expect(execFileSync('tar', ['-xzOf', kept, '.env'], { encoding: 'utf8' })).toBe('APP_IMAGE=broken\n');
  // with --database the copy must hold the database as it is: a dump that fails refuses the restore
  stackRuns();
  const refused = run(
    restore(down, id, { keepAs: `${keepAs}-again`, database: true, up: false, owner: '{}' }),
  );
  expect([refused.status, refused.stderr.trim()]).toEqual([1, 'the dump command failed']);
});

describe('restore --database while the stack is stopped: started first, the dump retried while it comes up', () => {
  /** The dump command, a double of a database that answers from its third attempt after `up -d`. */
  const dumpOnceUp =
    '[ -f up ] && n=$(($(cat tries 2>/dev/null || echo 0) + 1)) && echo $n > tries && [ $n -ge 3 ] && echo rows';
  const setup = () => {
    const w = workdir('APP_IMAGE=r/app:v1\n');
    const t = tenant(
      {
        compose: { command: 'docker compose', project: 'acme' },
        backup: {
          keepDays: 7,
          dump: { command: 'echo rows-at-backup', restore: 'cat > loaded.txt', file: 'db.sql' },
        },
      },
      w.dir,
    );
    const id = backupId(new Date('2024-05-01T12:00:00Z'));
    expect(w.run(backup(t, id)).status).toBe(0);
    return { ...w, id };
  };

  test('no container runs: compose up -d, then the dump waits for the database, then the restore loads it', () => {
    const { dir, run, calls, id } = setup();
    // the double of `docker compose ... up -d` marks the stack started
    writeFileSync(
      join(dir, '..', 'bin', 'docker'),
      `#!/bin/sh\n# double of the docker CLI\necho "$@" >> ${join(dir, '..', 'docker.log')}\ncase "$*" in *' up -d') touch ${join(dir, 'up')};; esac\n`,
    );
    const t = tenant(
      {
        compose: { command: 'docker compose', project: 'acme' },
        backup: { keepDays: 7, dump: { command: dumpOnceUp, restore: 'cat > loaded.txt', file: 'db.sql' } },
      },
      dir,
    );
    const keepAs = backupId(new Date('2024-05-02T12:00:00Z'), 'pre-restore');
    const r = run(restore(t, id, { keepAs, database: true, up: false, owner: '{}' }));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^@@started$/m);
    expect(r.stdout).toMatch(/^@@restored database$/m);
    expect(calls().filter((c) => c.startsWith('ps ') || c.includes('up -d'))).toEqual([
      'ps -q --filter label=com.docker.compose.project=acme',
      'compose -f docker-compose.yml -p acme up -d',
    ]);
    expect(readFileSync(join(dir, 'tries'), 'utf8')).toBe('3\n');
    expect(readFileSync(join(dir, 'loaded.txt'), 'utf8')).toBe('rows-at-backup\n');
    const kept = join(dir, '.fleet', 'backups', `${keepAs}.tar.gz`);
    expect(execFileSync('tar', ['-xzOf', kept, '.fleet/dump/db.sql'], { encoding: 'utf8' })).toBe('rows\n');
  });

  test('the stack runs: nothing is started and the dump is tried once', () => {
    const { dir, run, calls, stackRuns, id } = setup();
    stackRuns();
    const t = tenant(
      {
        backup: { keepDays: 7, dump: { command: 'echo x >> tries; exit 1', restore: 'cat', file: 'db.sql' } },
      },
      dir,
    );
    const r = run(
      restore(t, id, { keepAs: backupId(new Date(), 'pre-restore'), database: true, up: false, owner: '{}' }),
    );
    expect([r.status, r.stderr.trim()]).toEqual([1, 'the dump command failed']);
    expect(readFileSync(join(dir, 'tries'), 'utf8')).toBe('x\n');
    expect(calls().filter((c) => c.includes('up -d'))).toEqual([]);
  });

  test('compose up -d fails: refused with its own exit code, nothing changed', () => {
    const { dir, run, id } = setup();
    writeFileSync(
      join(dir, '..', 'bin', 'docker'),
      '#!/bin/sh\n# double of the docker CLI: every command fails\nexit 1\n',
    );
    writeFileSync(join(dir, '.env'), 'APP_IMAGE=broken\n');
    const t = tenant(
      { backup: { keepDays: 7, dump: { command: 'echo x', restore: 'cat', file: 'db.sql' } } },
      dir,
    );
    const r = run(
      restore(t, id, { keepAs: backupId(new Date(), 'pre-restore'), database: true, up: false, owner: '{}' }),
    );
    expect(r.status).toBe(RESTORE_EXIT.notStarted);
    expect(r.stderr).toContain('the database is not running and compose up -d failed');
    expect(readFileSync(join(dir, '.env'), 'utf8')).toBe('APP_IMAGE=broken\n');
    expect(existsSync(join(dir, '.fleet', 'lock'))).toBe(false);
  });
});
